using Library.EventBus;
using Library.ServiceDefaults;
using Library.UserService.Auth;
using Library.UserService.Data;
using Library.UserService.Grpc;
using Library.UserService.PatronGroups;
using Library.UserService.Users;
using Microsoft.AspNetCore.Identity;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddLibraryNpgsqlDbContext<UserDbContext>("userdb");
// Migrations (then the first signing key and admin) run first: the event bus needs its tables.
builder.Services.AddMigration<UserDbContext>(FirstAdmin.SeedAsync);
builder.AddLibraryRabbitMQ("messaging");
builder.AddEventBus<UserDbContext>("userservice", LibraryTopology.Create());
builder.AddLibraryAuthentication();
builder.Services.AddOptions<IssuerOptions>().Bind(builder.Configuration.GetSection(AuthOptions.SectionName))
    .Validate(o => o.PasswordIterations >= 1_000, "Auth:PasswordIterations must be at least 1,000")
    .ValidateOnStart();
builder.Services.AddOptions<PasswordHasherOptions>()
    .Configure<Microsoft.Extensions.Options.IOptions<IssuerOptions>>((hasher, issuer) => hasher.IterationCount = issuer.Value.PasswordIterations);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<IPasswordHasher<User>, PasswordHasher<User>>();
builder.Services.AddSingleton<DummyPassword>();
builder.Services.Configure<PatronGroupOptions>(builder.Configuration.GetSection(PatronGroupOptions.SectionName));
builder.Services.AddSingleton<DefaultPatronGroup>();
builder.Services.AddSingleton<SigningKeys>();
builder.Services.AddSingleton<TokenIssuer>();
// No catch-all for unknown gRPC services: its route, /{service}/{method} for any POST, also
// matches /api/users; a POST there with a body of another type than JSON then fell to it
// (routing sees it accept any type) and got a 404 instead of the 415. An unknown service is
// a 404 now, as any unknown path; an unknown method of a known service is still UNIMPLEMENTED.
builder.Services.AddGrpc(o => o.IgnoreUnknownServices = true);
builder.Services.AddOpenApi();
// The request records' annotations, checked before a handler runs (400 with the field's message).
builder.Services.AddValidation();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapDiscovery();
app.MapAuth();
app.MapUsers();
app.MapPatronGroups();
// gRPC (HTTP/2 where TLS or h2c is available) and gRPC-Web (HTTP/1.1, on the plain port every
// service has): internal look-ups for service tokens only.
app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
app.MapGrpcService<UsersGrpcService>().RequireAuthorization(Policies.Service);

app.Run();

public partial class Program;
