using Microsoft.Extensions.Configuration;

// The Library's topology: three services that each own a PostgreSQL database, a gateway in front,
// Redis as a cache and RabbitMQ for integration events. The names below are the configuration
// keys every service reads (ConnectionStrings:bookdb, services:bookservice:http:0, ...), the same
// keys eng/run.sh sets when it runs the same services without Docker.
var builder = DistributedApplication.CreateBuilder(args);

// The first admin: email is plain configuration, the password a secret the dashboard (or user
// secrets, or `azd`) asks for; never a value in source.
var adminEmail = builder.AddParameter("admin-email");
var adminPassword = builder.AddParameter("admin-password", secret: true);
// The lending service's client secret for service tokens (its gRPC look-ups).
var lendingClientSecret = builder.AddParameter("lending-client-secret", secret: true);

var postgres = builder.AddPostgres("postgres");
if (builder.ExecutionContext.IsRunMode && builder.Configuration.GetValue("Postgres:DataVolume", true))
{
    // Local runs keep their data (tests turn this off: a volume remembers the password of its
    // first run). Not in Azure Container Apps: Azure Files cannot chmod, so initdb fails on such
    // a volume (see README, "Deploying").
    postgres.WithDataVolume();
}
var userDb = postgres.AddDatabase("userdb");
var bookDb = postgres.AddDatabase("bookdb");
var lendingDb = postgres.AddDatabase("lendingdb");

var cache = builder.AddRedis("cache");
var messaging = builder.AddRabbitMQ("messaging").WithManagementPlugin();

const int Replicas = 2;

var userService = builder.AddProject<Projects.Library_UserService>("userservice")
    .WithReference(userDb).WaitFor(userDb)
    .WithReference(messaging).WaitFor(messaging)
    .WithEnvironment("Library__Admin__Email", adminEmail)
    .WithEnvironment("Library__Admin__Password", adminPassword)
    .WithEnvironment("Auth__Clients__lendingservice__Secret", lendingClientSecret)
    .WithReplicas(Replicas)
    .WithHttpHealthCheck("/health");

var bookService = builder.AddProject<Projects.Library_BookService>("bookservice")
    .WithReference(bookDb).WaitFor(bookDb)
    .WithReference(cache).WaitFor(cache)
    .WithReference(messaging).WaitFor(messaging)
    .WithReference(userService) // token-signing keys (OpenID discovery, JWKS)
    .WithReplicas(Replicas)
    .WithHttpHealthCheck("/health");

var lendingService = builder.AddProject<Projects.Library_LendingService>("lendingservice")
    .WithReference(lendingDb).WaitFor(lendingDb)
    .WithReference(messaging).WaitFor(messaging)
    .WithReference(userService) // token-signing keys, service tokens, reader look-ups (gRPC-Web)
    .WithReference(bookService) // title look-ups (gRPC-Web)
    .WithEnvironment("Auth__Client__Id", "lendingservice")
    .WithEnvironment("Auth__Client__Secret", lendingClientSecret)
    .WithReplicas(Replicas)
    .WithHttpHealthCheck("/health");

builder.AddProject<Projects.Library_Gateway>("gateway")
    // Its output cache of anonymous catalog reads (shared by its replicas); it starts without it.
    .WithReference(cache)
    .WithReference(userService).WaitFor(userService)
    .WithReference(bookService).WaitFor(bookService)
    .WithReference(lendingService).WaitFor(lendingService)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

// Where `azd up` / `aspire publish` deploy to (publish mode only; a local run needs neither).
// Exactly one compute environment is declared, so every project lands in it without a
// per-resource choice: Azure Container Apps by default (what azd provisions), or Docker Compose
// for a host with Docker and no Azure (`aspire publish` with Deployment__Target=compose).
if (builder.ExecutionContext.IsPublishMode)
{
    if (string.Equals(builder.Configuration["Deployment:Target"], "compose", StringComparison.OrdinalIgnoreCase))
    {
        builder.AddDockerComposeEnvironment("compose");
    }
    else
    {
        builder.AddAzureContainerAppEnvironment("aca");
    }
}

builder.Build().Run();
