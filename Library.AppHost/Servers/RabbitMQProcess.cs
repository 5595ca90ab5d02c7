using System.Security.Cryptography;
using System.Text;
using RabbitMQ.Client;

namespace Library.AppHost.Servers;

/// <summary>
/// RabbitMQ from the distribution's package, started by DCP. Its data (mnesia, logs, the Erlang
/// cookie) lives in <c>{data}/rabbitmq</c>; the AMQP, distribution and epmd ports come from Aspire.
/// The broker has one vhost (<c>library</c>) and one user (<c>library</c>, its password the
/// <c>messaging-password</c> parameter, imported from definitions at every boot); no guest.
/// </summary>
internal sealed class RabbitMQProcessResource(string name, string command, string root, ParameterResource password)
    : ExecutableResource(name, command, root), IResourceWithConnectionString
{
    public const string User = "rabbitmq";
    public const string Login = "library";
    public const string VirtualHost = "library";

    public string Root { get; } = root;
    public ParameterResource Password { get; } = password;
    public EndpointReference Endpoint => new(this, "tcp");
    public EndpointReference Distribution => new(this, "dist");

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"amqp://{Login}:{Password}@{Endpoint.Property(EndpointProperty.Host)}:{Endpoint.Property(EndpointProperty.Port)}/{VirtualHost}");
}

/// <summary>
/// The broker's own epmd (Erlang's port mapper), in the foreground as a resource of its own:
/// left to itself, RabbitMQ starts a daemonised epmd that outlives the AppHost.
/// </summary>
internal sealed class EpmdProcessResource(string name, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory)
{
    public EndpointReference Endpoint => new(this, "tcp");
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class RabbitMQProcessExtensions
{
    private const string Bin = "/usr/lib/rabbitmq/bin";

    public static IResourceBuilder<RabbitMQProcessResource> AddRabbitMQProcess(
        this IDistributedApplicationBuilder builder, string name, string dataRoot, IResourceBuilder<ParameterResource> password)
    {
        var root = Path.Combine(dataRoot, "rabbitmq");
        var home = Path.Combine(root, "home");
        var user = RedisProcessExtensions.UserExists(RabbitMQProcessResource.User) ? RabbitMQProcessResource.User : null;

        var epmd = new EpmdProcessResource($"{name}-epmd", Os.Env, "/");
        var epmdArgs = Os.CleanArguments(user, "/usr/bin/epmd", []);
        epmdArgs.AddRange(["-address", "127.0.0.1", "-port", ReferenceExpression.Create($"{epmd.Endpoint.Property(EndpointProperty.TargetPort)}")]);
        var epmdBuilder = builder.AddResource(epmd)
            .WithEndpoint(name: "tcp", scheme: "tcp", isProxied: false)
            .WithArgs(context => epmdArgs.ForEach(context.Args.Add))
            .WithIconName("PlugConnected")
            .ExcludeFromManifest();

        var resource = new RabbitMQProcessResource(name, Os.Env, root, password.Resource);
        var node = $"library-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(root)))[..8]}@localhost";
        string F(string file) => Path.Combine(root, file);
        var environment = new List<KeyValuePair<string, object>>
        {
            new("HOME", home),
            // exec erl directly (no wrapper shell): the process DCP stops is the broker, and
            // RabbitMQ treats SIGTERM as a graceful stop.
            new("RUNNING_UNDER_SYSTEMD", "true"),
            new("RABBITMQ_NODENAME", node),
            new("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1"),
            new("RABBITMQ_NODE_PORT", ReferenceExpression.Create($"{resource.Endpoint.Property(EndpointProperty.TargetPort)}")),
            new("RABBITMQ_DIST_PORT", ReferenceExpression.Create($"{resource.Distribution.Property(EndpointProperty.TargetPort)}")),
            new("ERL_EPMD_PORT", ReferenceExpression.Create($"{epmd.Endpoint.Property(EndpointProperty.TargetPort)}")),
            new("ERL_EPMD_ADDRESS", "127.0.0.1"),
            new("RABBITMQ_CONF_ENV_FILE", F("rabbitmq-env.conf")),
            new("RABBITMQ_CONFIG_FILE", F("rabbitmq.conf")),
            new("RABBITMQ_ADVANCED_CONFIG_FILE", F("advanced.config")),
            new("RABBITMQ_ENABLED_PLUGINS_FILE", F("enabled_plugins")),
            new("RABBITMQ_FEATURE_FLAGS_FILE", F("feature_flags")),
            new("RABBITMQ_MNESIA_BASE", F("mnesia")),
            new("RABBITMQ_LOG_BASE", F("log")),
            new("RABBITMQ_LOGS", "-"),
            new("RABBITMQ_PID_FILE", F("rabbitmq.pid")),
            new("ERL_CRASH_DUMP", F("log/erl_crash.dump")),
        };
        var args = Os.CleanArguments(user, Path.Combine(Bin, "rabbitmq-server"), environment);

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(resource, async (e, ct) =>
        {
            Os.Require(Path.Combine(Bin, "rabbitmq-server"), "RabbitMQ (package rabbitmq-server)");
            var pw = await resource.Password.GetValueAsync(ct) ?? throw new InvalidOperationException("messaging password has no value");
            await WriteConfigurationAsync(root, home, pw, user, ct);
        });

        return builder.AddServerProcess(resource, args, "Mail", async ct =>
            {
                var cs = await resource.ConnectionStringExpression.GetValueAsync(ct);
                var factory = new ConnectionFactory { Uri = new Uri(cs!), RequestedConnectionTimeout = TimeSpan.FromSeconds(3), AutomaticRecoveryEnabled = false };
                await using var connection = await factory.CreateConnectionAsync(ct);
            })
            .WithEndpoint(name: "dist", scheme: "tcp", isProxied: false)
            .WaitForStart(epmdBuilder)
            .WithChildRelationship(epmdBuilder);
    }

    private static async Task WriteConfigurationAsync(string root, string home, string password, string? user, CancellationToken ct)
    {
        Directory.CreateDirectory(root);
        Os.MakeTraversable(root);
        foreach (var dir in new[] { "mnesia", "log" })
        {
            Directory.CreateDirectory(Path.Combine(root, dir));
        }
        Directory.CreateDirectory(home);
        await Os.PrivateFileAsync(Path.Combine(root, "rabbitmq-env.conf"), "", user, ct);
        await Os.PrivateFileAsync(Path.Combine(root, "enabled_plugins"), "[].\n", user, ct);
        await Os.PrivateFileAsync(Path.Combine(root, "rabbitmq.conf"), $"""
            # Written by Library.AppHost (Servers/RabbitMQProcess.cs) at every start: edit that, not this.
            loopback_users.guest = true
            load_definitions = {Path.Combine(root, "definitions.json")}
            log.console = true
            log.console.level = info
            log.file = false
            """, user, ct);
        await Os.PrivateFileAsync(Path.Combine(root, "advanced.config"),
            "%% Written by Library.AppHost: Erlang distribution listens on loopback only.\n[{kernel, [{inet_dist_use_interface, {127,0,0,1}}]}].\n",
            user, ct);
        await Os.PrivateFileAsync(Path.Combine(root, "definitions.json"), $$"""
            {
              "vhosts": [{"name": "{{RabbitMQProcessResource.VirtualHost}}"}],
              "users": [{"name": "{{RabbitMQProcessResource.Login}}", "password_hash": "{{HashPassword(password)}}",
                         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
              "permissions": [{"user": "{{RabbitMQProcessResource.Login}}", "vhost": "{{RabbitMQProcessResource.VirtualHost}}",
                               "configure": ".*", "write": ".*", "read": ".*"}]
            }
            """, user, ct);
        // The Erlang cookie: made once, kept with the data (the node's CLI tools need the same one).
        var cookie = Path.Combine(home, ".erlang.cookie");
        if (!File.Exists(cookie))
        {
            await Os.PrivateFileAsync(cookie, Convert.ToHexString(RandomNumberGenerator.GetBytes(20)), user, ct);
            File.SetUnixFileMode(cookie, UnixFileMode.UserRead);
        }
        await Os.OwnedFolderAsync(root, user, ct);
    }

    /// <summary>RabbitMQ's <c>rabbit_password_hashing_sha256</c>: base64(salt ++ sha256(salt ++ password)).</summary>
    private static string HashPassword(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(4);
        var hash = SHA256.HashData([.. salt, .. Encoding.UTF8.GetBytes(password)]);
        return Convert.ToBase64String([.. salt, .. hash]);
    }
}
