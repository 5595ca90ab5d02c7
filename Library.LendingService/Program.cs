using Library.LendingService.Data;
using Library.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddNpgsqlDbContext<LendingDbContext>("lendingdb");
builder.AddRabbitMQClient("messaging");
builder.Services.AddMigration<LendingDbContext>();
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();

app.Run();

public partial class Program;
