using StackExchange.Redis;

namespace Library.AppHost.Servers;

/// <summary>
/// Redis from the distribution's package, started by DCP: configuration (with the password, never
/// on a command line) in <c>{data}/redis/redis.conf</c>, rewritten at every start; the port comes
/// from Aspire. The connection string has the shape of Aspire's container resource.
/// </summary>
internal sealed class RedisProcessResource(string name, string command, string root, ParameterResource password)
    : ExecutableResource(name, command, root), IResourceWithConnectionString
{
    public const string User = "redis";

    public string Root { get; } = root;
    public ParameterResource Password { get; } = password;
    public EndpointReference Endpoint => new(this, "tcp");

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"{Endpoint.Property(EndpointProperty.Host)}:{Endpoint.Property(EndpointProperty.Port)},password={Password}");
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class RedisProcessExtensions
{
    public static IResourceBuilder<RedisProcessResource> AddRedisProcess(
        this IDistributedApplicationBuilder builder, string name, string dataRoot, IResourceBuilder<ParameterResource> password)
    {
        const string server = "/usr/bin/redis-server";
        var root = Path.Combine(dataRoot, "redis");
        var config = Path.Combine(root, "redis.conf");
        var resource = new RedisProcessResource(name, Os.Env, root, password.Resource);
        var user = UserExists(RedisProcessResource.User) ? RedisProcessResource.User : null;
        var args = Os.CleanArguments(user, server, []);
        args.AddRange([config, "--port", ReferenceExpression.Create($"{resource.Endpoint.Property(EndpointProperty.TargetPort)}")]);

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(resource, async (e, ct) =>
        {
            Os.Require(server, "Redis (package redis-server)");
            Directory.CreateDirectory(root);
            Os.MakeTraversable(root);
            await Os.OwnedFolderAsync(root, user, ct);
            var pw = await resource.Password.GetValueAsync(ct);
            // A cache: the services work without it, so an append-only file once a second is
            // plenty; it still survives a restart of the AppHost.
            await Os.PrivateFileAsync(config, $"""
                # Written by Library.AppHost (Servers/RedisProcess.cs) at every start: edit that, not this.
                bind 127.0.0.1
                protected-mode yes
                daemonize no
                dir {root}
                save ""
                appendonly yes
                appendfsync everysec
                requirepass {pw}
                """, user, ct);
        });

        return builder.AddServerProcess(resource, args, "Memory", async ct =>
        {
            var options = ConfigurationOptions.Parse((await resource.ConnectionStringExpression.GetValueAsync(ct))!);
            options.ConnectTimeout = 2000;
            options.AbortOnConnectFail = true;
            await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
            await redis.GetDatabase().PingAsync();
        });
    }

    internal static bool UserExists(string user) =>
        File.ReadLines("/etc/passwd").Any(l => l.StartsWith(user + ":", StringComparison.Ordinal));
}
