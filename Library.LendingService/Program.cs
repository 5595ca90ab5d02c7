using Library.EventBus;
using Library.LendingService.Data;
using Library.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddNpgsqlDbContext<LendingDbContext>("lendingdb");
// Migrations run first: the event bus's relay and consumer need their tables.
builder.Services.AddMigration<LendingDbContext>();
builder.AddRabbitMQClient("messaging");
builder.AddEventBus<LendingDbContext>("lendingservice", LibraryTopology.Create());
builder.AddLibraryAuthentication();
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();

app.Run();

public partial class Program;
