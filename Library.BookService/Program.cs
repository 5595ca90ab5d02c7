using Library.EventBus;
using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddNpgsqlDbContext<CatalogDbContext>("bookdb");
// Migrations run first: the event bus's relay and consumer need their tables.
builder.Services.AddMigration<CatalogDbContext>();
builder.AddRedisClient("cache");
builder.AddRabbitMQClient("messaging");
builder.AddEventBus<CatalogDbContext>("bookservice", LibraryTopology.Create());
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapBooks();

app.Run();

public partial class Program;
