using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Library.AppHost.Servers;

/// <summary>
/// PostgreSQL from the distribution's packages, started by DCP like any executable: its port is
/// allocated by Aspire, its data lives in <c>{data}/postgres</c> (initdb on first start, reused
/// after), and it answers the same connection-string shape as Aspire's container resource.
/// </summary>
internal sealed class PostgresProcessResource(string name, string command, string root, ParameterResource password)
    : ExecutableResource(name, command, root), IResourceWithConnectionString
{
    public const string User = "postgres";

    public string Root { get; } = root;
    public string DataFolder => System.IO.Path.Combine(Root, "data");
    public string SocketFolder => System.IO.Path.Combine(Root, "run");
    public ParameterResource Password { get; } = password;
    public EndpointReference Endpoint => new(this, "tcp");

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host={Endpoint.Property(EndpointProperty.Host)};Port={Endpoint.Property(EndpointProperty.Port)};Username={User};Password={Password}");

    /// <summary>
    /// The AppHost's own way in: the server's private unix socket, as the superuser, no password
    /// (pg_hba: <c>local all postgres trust</c>; the socket's folder is 0700, so only the server's
    /// user and root reach it). So a data folder whose passwords differ from today's parameters is
    /// repaired, never locked out.
    /// </summary>
    public string AdminConnectionString(int port) =>
        $"Host={SocketFolder};Port={port};Username={User};Database=postgres;Pooling=false;Timeout=5";
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class PostgresProcessExtensions
{
    public static IResourceBuilder<PostgresProcessResource> AddPostgresProcess(
        this IDistributedApplicationBuilder builder, string name, string dataRoot, IResourceBuilder<ParameterResource> password)
    {
        var bin = Os.FindPostgresBin();
        var root = System.IO.Path.Combine(dataRoot, "postgres");
        var resource = new PostgresProcessResource(name, Os.Env, root, password.Resource);
        var port = ReferenceExpression.Create($"{resource.Endpoint.Property(EndpointProperty.TargetPort)}");
        // DCP stops a process with SIGTERM, which is PostgreSQL's "smart" shutdown: it waits for
        // every client to leave, longer than DCP waits before it kills. A one-line shell turns the
        // SIGTERM into SIGINT ("fast": roll back, checkpoint, exit), so a stop is always clean.
        var args = Os.CleanArguments(PostgresProcessResource.User, "/bin/bash", []);
        args.AddRange(["-c", "trap 'kill -INT $pid' TERM INT; \"$@\" & pid=$!; wait $pid; trap - TERM INT; wait $pid", "postgres",
            System.IO.Path.Combine(bin ?? "/usr/lib/postgresql/bin", "postgres"), "-D", resource.DataFolder, "-k", resource.SocketFolder, "-c", "listen_addresses=127.0.0.1", "-p", port]);

        var result = builder.AddServerProcess(resource, args, "DatabaseMultiple", async ct =>
        {
            // Endpoint.Port throws until Aspire has allocated it: Unhealthy until then.
            await using var connection = new NpgsqlConnection(resource.AdminConnectionString(resource.Endpoint.Port));
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(ct);
        });

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(resource, async (e, ct) =>
        {
            Os.Require(bin, "PostgreSQL (package postgresql)");
            var logger = e.Services.GetRequiredService<ResourceLoggerService>().GetLogger(resource);
            await PrepareAsync(resource, bin!, logger, ct);
        });
        // Subscribed before any database's handler, so logins are made with today's password.
        builder.Eventing.Subscribe<ResourceReadyEvent>(resource, (_, ct) => SyncSuperuserPasswordAsync(resource, ct));
        // The dashboard's "Back up the databases" (Backup.cs: eng/run.sh backup).
        return result.WithBackupCommand(dataRoot);
    }

    private static async Task PrepareAsync(PostgresProcessResource resource, string bin, ILogger logger, CancellationToken ct)
    {
        Directory.CreateDirectory(resource.Root);
        Os.MakeTraversable(resource.Root);
        await Os.OwnedFolderAsync(resource.Root, PostgresProcessResource.User, ct);
        await Os.OwnedFolderAsync(resource.SocketFolder, PostgresProcessResource.User, ct);

        var pgdata = resource.DataFolder;
        if (!File.Exists(System.IO.Path.Combine(pgdata, "PG_VERSION")))
        {
            logger.LogInformation("initdb {DataFolder} (a new data folder)", pgdata);
            if (Directory.Exists(pgdata))
            {
                Directory.Delete(pgdata, recursive: true);
            }
            var pwfile = System.IO.Path.Combine(resource.Root, ".pwfile");
            var password = await resource.Password.GetValueAsync(ct) ?? throw new InvalidOperationException("postgres password parameter has no value");
            await Os.PrivateFileAsync(pwfile, password + "\n", PostgresProcessResource.User, ct);
            try
            {
                await Os.RunAsync(PostgresProcessResource.User, resource.Root, System.IO.Path.Combine(bin, "initdb"),
                    ["-D", pgdata, "-U", PostgresProcessResource.User, $"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
                     "--auth-local=peer", "--auth-host=scram-sha-256"], ct);
            }
            finally
            {
                File.Delete(pwfile);
            }
            await File.AppendAllTextAsync(System.IO.Path.Combine(pgdata, "postgresql.conf"),
                "\n# Library.AppHost's settings (rewritten at every start)\ninclude 'library.conf'\n", ct);
        }

        // Rewritten at every start, so a change here reaches an existing data folder. The port,
        // the listen address and the socket folder come on the command line (the port changes
        // from run to run).
        await Os.PrivateFileAsync(System.IO.Path.Combine(pgdata, "library.conf"), $"""
            # Written by Library.AppHost (Servers/PostgresProcess.cs, Servers/PostgresTuning.cs) at every start: edit those, not this.
            unix_socket_permissions = 0700
            {PostgresTuning.ConfigurationLines}
            password_encryption = scram-sha-256
            wal_level = replica
            max_wal_senders = 10
            max_replication_slots = 10
            logging_collector = off
            log_line_prefix = '%m [%p] %q%u@%d '
            """, PostgresProcessResource.User, ct);
        await Os.PrivateFileAsync(System.IO.Path.Combine(pgdata, "pg_hba.conf"), """
            # Written by Library.AppHost (Servers/PostgresProcess.cs) at every start: edit that, not this.
            # TYPE  DATABASE     USER      ADDRESS        METHOD
            local   all          postgres                 trust
            local   all          all                      scram-sha-256
            host    all          all       127.0.0.1/32   scram-sha-256
            host    all          all       ::1/128        scram-sha-256
            host    replication  all       127.0.0.1/32   scram-sha-256
            """, PostgresProcessResource.User, ct);
        // Leftovers of a killed run: a stale pid file would stop the postmaster from starting.
        var pidFile = System.IO.Path.Combine(pgdata, "postmaster.pid");
        if (File.Exists(pidFile) && !PostmasterAlive(pidFile))
        {
            logger.LogWarning("removing a stale postmaster.pid (the last run did not stop cleanly)");
            File.Delete(pidFile);
        }
    }

    private static bool PostmasterAlive(string pidFile)
    {
        var first = File.ReadLines(pidFile).FirstOrDefault();
        return int.TryParse(first, out var pid) && Directory.Exists($"/proc/{pid}")
            && File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("postgres", StringComparison.Ordinal);
    }

    /// <summary>
    /// Once the server is up: the superuser's password follows its parameter (the data folder may
    /// be older than today's parameter values).
    /// </summary>
    private static async Task SyncSuperuserPasswordAsync(PostgresProcessResource resource, CancellationToken ct)
    {
        var port = resource.Endpoint.Port;
        var password = await resource.Password.GetValueAsync(ct);
        await using var connection = new NpgsqlConnection(resource.AdminConnectionString(port));
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"ALTER ROLE {PostgresProcessResource.User} PASSWORD '{password!.Replace("'", "''", StringComparison.Ordinal)}'", connection);
        await command.ExecuteNonQueryAsync(ct);
    }
}
