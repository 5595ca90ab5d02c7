using Library.EventBus;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
// A book comes with its authors and categories: split queries avoid the cartesian product.
builder.AddNpgsqlDbContext<CatalogDbContext>("bookdb", npgsql => npgsql.UseQuerySplittingBehavior(QuerySplittingBehavior.SplitQuery));
// Migrations run first: the event bus's relay and consumer need their tables.
builder.Services.AddMigration<CatalogDbContext>();
builder.AddRedisClient("cache");
builder.AddRabbitMQClient("messaging");
builder.AddEventBus<CatalogDbContext>("bookservice", LibraryTopology.Create());
builder.AddLibraryAuthentication();
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapBooks();

app.Run();

public partial class Program;
