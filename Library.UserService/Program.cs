using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddNpgsqlDbContext<UserDbContext>("userdb");
// Migrations run first: the event bus's relay and consumer need their tables.
builder.Services.AddMigration<UserDbContext>();
builder.AddRabbitMQClient("messaging");
builder.AddEventBus<UserDbContext>("userservice", LibraryTopology.Create());
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();

app.Run();

public partial class Program;
