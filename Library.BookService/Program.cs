using Library.BookService.Books;
using Library.BookService.Data;
using Library.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddNpgsqlDbContext<CatalogDbContext>("bookdb");
builder.AddRedisClient("cache");
builder.AddRabbitMQClient("messaging");
builder.Services.AddMigration<CatalogDbContext>();
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapBooks();

app.Run();

public partial class Program;
