using Library.AppHost;
using Library.AppHost.Servers;
using Microsoft.Extensions.Configuration;

// The Library's topology: three services that each own a PostgreSQL database, a gateway in front,
// Redis as a cache, RabbitMQ for integration events and a mail server (MailDev) for notices. The
// resource names are the configuration keys every service reads (ConnectionStrings:bookdb,
// services:bookservice:http:0, ...).
//
// Settings (arguments --Key=value, environment Key__Sub=value, or appsettings.json):
//   Library:Servers   auto (default) | container | process: the backing servers as Aspire's
//                     containers, or as processes from the distribution's packages (Servers/)
//   Library:DataDir   process mode's data folder (default: <repository>/.local), kept across runs
//   Library:GatewayPort  the gateway's fixed port (default 8080; 0: any free port)
//   Library:Replicas  replicas of each service (default 2)
//   Library:GatewayReplicas  replicas of the gateway behind its one address (default 2)
//   Library:RollingSettleSeconds  a rolling restart's pause after each replica is healthy (default 3)
//   Library:Catalog   a catalog file loaded into an empty catalog (default data/sample-catalog.json; none)
//   Library:RunBuildOutput  true (default): services run as their built executables, not `dotnet run`
var builder = DistributedApplication.CreateBuilder(args);
var config = builder.Configuration;
var repository = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));

// Secrets are parameters: generated once and kept in the AppHost's user secrets (or given by the
// dashboard, `azd`, or --Parameters:name=value); never a value in source.
IResourceBuilder<ParameterResource> Secret(string name, bool special = true) =>
    builder.AddParameter(name, new GenerateParameterDefault { MinLength = 24, Special = special }, secret: true, persist: true);

var adminEmail = builder.AddParameter("admin-email");
var adminPassword = Secret("admin-password", special: false);
// The lending service's client secret for service tokens (its gRPC look-ups).
var lendingClientSecret = Secret("lending-client-secret", special: false);
var postgresPassword = Secret("postgres-password");
// No special characters: they would need escaping in the redis and amqp connection strings.
var cachePassword = Secret("cache-password", special: false);
var messagingPassword = Secret("messaging-password", special: false);

var mode = ServerModes.Choose(builder);
IResourceBuilder<IResourceWithConnectionString> userDb, bookDb, lendingDb, cache, messaging, mail;
if (builder.ExecutionContext.IsPublishMode)
{
    // What azd and `aspire publish` read: Aspire's own server resources (containers there; in
    // Azure, pass managed servers' connection strings instead, see README "Deploying").
    var postgres = builder.AddPostgres("postgres", password: postgresPassword).WithLibraryTuning();
    userDb = postgres.AddDatabase("userdb");
    bookDb = postgres.AddDatabase("bookdb");
    lendingDb = postgres.AddDatabase("lendingdb");
    cache = builder.AddRedis("cache", port: null, password: cachePassword);
    messaging = builder.AddRabbitMQ("messaging", password: messagingPassword).WithManagementPlugin();
    mail = builder.AddMailDevContainer("mail");
}
else if (mode == ServerMode.Container)
{
    var postgres = builder.AddPostgres("postgres", password: postgresPassword).WithDataVolume().WithLibraryTuning();
    var endpoint = postgres.Resource.PrimaryEndpoint;
    async Task<string> Admin(CancellationToken ct) =>
        await postgres.Resource.GetConnectionStringAsync(ct) + ";Database=postgres;Pooling=false";
    userDb = postgres.AddLibraryDatabase("userdb", "userservice", endpoint, Admin);
    bookDb = postgres.AddLibraryDatabase("bookdb", "bookservice", endpoint, Admin);
    lendingDb = postgres.AddLibraryDatabase("lendingdb", "lendingservice", endpoint, Admin);
    cache = builder.AddRedis("cache", port: null, password: cachePassword).WithDataVolume();
    messaging = builder.AddRabbitMQ("messaging", password: messagingPassword).WithManagementPlugin().WithDataVolume();
    mail = builder.AddMailDevContainer("mail");
}
else if (OperatingSystem.IsLinux())
{
    var data = Path.GetFullPath(config["Library:DataDir"] is { Length: > 0 } d ? d : Path.Combine(repository, ".local"));
    var postgres = builder.AddPostgresProcess("postgres", data, postgresPassword);
    Task<string> Admin(CancellationToken ct) =>
        Task.FromResult(postgres.Resource.AdminConnectionString(postgres.Resource.Endpoint.Port));
    userDb = postgres.AddLibraryDatabase("userdb", "userservice", postgres.Resource.Endpoint, Admin);
    bookDb = postgres.AddLibraryDatabase("bookdb", "bookservice", postgres.Resource.Endpoint, Admin);
    lendingDb = postgres.AddLibraryDatabase("lendingdb", "lendingservice", postgres.Resource.Endpoint, Admin);
    cache = builder.AddRedisProcess("cache", data, cachePassword);
    messaging = builder.AddRabbitMQProcess("messaging", data, messagingPassword);
    mail = builder.AddMailDevProcess("mail", data, repository);
}
else
{
    throw new PlatformNotSupportedException("process mode needs Linux");
}

var replicas = config.GetValue("Library:Replicas", 2);
var catalog = config["Library:Catalog"] is { Length: > 0 } c ? c : Path.Combine(repository, "data", "sample-catalog.json");

// The http launch profile: an https one needs a developer certificate this machine may not have.
var userService = builder.AddProject<Projects.Library_UserService>("userservice", launchProfileName: "http")
    .WithReference(userDb).WaitFor(userDb)
    .WithReference(messaging).WaitFor(messaging)
    .WithEnvironment("Library__Admin__Email", adminEmail)
    .WithEnvironment("Library__Admin__Password", adminPassword)
    .WithEnvironment("Auth__Clients__lendingservice__Secret", lendingClientSecret)
    .WithReplicas(replicas)
    .WithHttpHealthCheck("/health");
// The user service checks its own tokens as every service does, through its OpenID metadata at
// http://userservice/... (Auth:MetadataAddress): it needs service discovery of itself too.
userService.WithReference(userService);

var bookService = builder.AddProject<Projects.Library_BookService>("bookservice", launchProfileName: "http")
    .WithReference(bookDb).WaitFor(bookDb)
    .WithReference(cache).WaitFor(cache)
    .WithReference(messaging).WaitFor(messaging)
    .WithReference(userService) // token-signing keys (OpenID discovery, JWKS)
    .WithReplicas(replicas)
    .WithHttpHealthCheck("/health");
if (builder.ExecutionContext.IsRunMode && !string.Equals(catalog, "none", StringComparison.OrdinalIgnoreCase))
{
    // Loaded into an empty catalog only (a first run).
    bookService.WithEnvironment("Catalog__SeedFile", catalog);
}

var lendingService = builder.AddProject<Projects.Library_LendingService>("lendingservice", launchProfileName: "http")
    .WithReference(lendingDb).WaitFor(lendingDb)
    .WithReference(messaging).WaitFor(messaging)
    .WithReference(mail).WaitFor(mail) // notices by email (ConnectionStrings:mail)
    .WithReference(userService) // token-signing keys, service tokens, reader look-ups (gRPC-Web)
    .WithReference(bookService) // title look-ups (gRPC-Web)
    .WithEnvironment("Auth__Client__Id", "lendingservice")
    .WithEnvironment("Auth__Client__Secret", lendingClientSecret)
    .WithReplicas(replicas)
    .WithHttpHealthCheck("/health");
if (builder.ExecutionContext.IsRunMode)
{
    // PostgreSQL runs on this machine: each replica gets its share of its cores for the work that
    // takes turns (Library.ServiceDefaults/ConcurrencyGate.cs). Deployed, a replica takes its default.
    var share = RuntimeSettings.DatabaseShare(replicas).ToString(System.Globalization.CultureInfo.InvariantCulture);
    bookService.WithEnvironment("Catalog__QueryConcurrency", share);
    lendingService.WithEnvironment("Lending__RequestConcurrency", share);
}

var gateway = builder.AddProject<Projects.Library_Gateway>("gateway", launchProfileName: "http")
    // Its output cache of anonymous catalog reads (shared by its replicas); it starts without it.
    .WithReference(cache)
    .WithReference(userService).WaitFor(userService)
    .WithReference(bookService).WaitFor(bookService)
    .WithReference(lendingService).WaitFor(lendingService)
    .WithExternalHttpEndpoints()
    // Not a single point: its replicas share the one address (Aspire's endpoint proxy balances
    // new connections over them; Azure Container Apps' ingress does it there).
    .WithReplicas(config.GetValue("Library:GatewayReplicas", 2))
    .WithHttpHealthCheck("/health");
if (builder.ExecutionContext.IsRunMode && config.GetValue("Library:GatewayPort", 8080) is var gatewayPort and > 0)
{
    // One address for readers, the page and the benchmarks, whatever ports the services get
    // (the proxy's port; each replica listens on a port of its own behind it).
    gateway.WithEndpoint("http", e => e.Port = gatewayPort);
}

// The .NET runtime settings that only the environment can carry (RuntimeSettings), on every
// replica in every mode: the manifest passes them on to the containers.
foreach (var project in new[] { userService, bookService, lendingService, gateway })
{
    RuntimeSettings.Apply(project);
}

if (builder.ExecutionContext.IsRunMode)
{
    // An operator's rolling restart: "Rolling restart" on each project (its replicas, one at a
    // time, each back to Healthy before the next), and on the operations resource for everything
    // (the services' replicas in waves, one of each service at a time; the gateway's last;
    // eng/run.sh rolling-restart).
    var settle = TimeSpan.FromSeconds(config.GetValue("Library:RollingSettleSeconds", 3.0));
    IResourceBuilder<ProjectResource>[] services = [userService, bookService, lendingService];
    foreach (var project in services.Append(gateway))
    {
        project.WithRollingRestart(settle);
    }
    builder.AddOperations([services, [gateway]], settle);
}

if (builder.ExecutionContext.IsRunMode && config.GetValue("Library:RunBuildOutput", true))
{
    // Each replica as its built executable, not under `dotnet run` (Aspire's default): the same
    // binary, environment and working folder, without a second .NET process per replica that
    // holds about 140 MiB and spends a second of CPU starting (bench/apphost-start.sh).
    foreach (var project in new[] { userService, bookService, lendingService, gateway })
    {
        ProjectLaunch.FromBuildOutput(project);
    }
}

#if LIBRARY_PUBLISH_TARGETS
// Where `azd up` / `aspire publish` deploy to (publish mode only; a local run needs neither).
// Exactly one compute environment is declared, so every project lands in it without a
// per-resource choice: Azure Container Apps by default (what azd provisions), or Docker Compose
// for a host with Docker and no Azure (`aspire publish` with Deployment__Target=compose).
if (builder.ExecutionContext.IsPublishMode)
{
    if (string.Equals(config["Deployment:Target"], "compose", StringComparison.OrdinalIgnoreCase))
    {
        builder.AddDockerComposeEnvironment("compose");
    }
    else
    {
        builder.AddAzureContainerAppEnvironment("aca");
    }
}
#endif

builder.Build().Run();
