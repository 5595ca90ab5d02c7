using System.Diagnostics;
using System.Globalization;
using System.Text;
using Library.TestSupport;
using Npgsql;

namespace Library.FaultTests;

/// <summary>
/// The whole Library as real processes, started by <c>eng/processes.sh --ha start</c> in a data folder
/// of its own (under /tmp) on ports of its own: PostgreSQL primary and synchronous standby,
/// Redis, RabbitMQ, two replicas of every service, two gateway processes sharing one port
/// (SO_REUSEPORT; each also on a port of its own, the gateway port + 1 + i). The faults are done to these
/// processes by their pid files and by the scripts' own verbs, never by process name.
/// Ports (environment, defaults): LIBRARY_FAULT_PG_PORT (22432; +1 standby), LIBRARY_FAULT_REDIS_PORT
/// (22379), LIBRARY_FAULT_RABBITMQ_PORT (22672; +1, +2), LIBRARY_FAULT_GATEWAY_PORT (22080), and the
/// services on LIBRARY_FAULT_SERVICE_PORT (22100: user service 22101.., book 22201.., lending 22301..).
/// LIBRARY_FAULT_KEEP_DATA=1 keeps the folder (logs) afterwards.
/// </summary>
public sealed class RealLibrary : IAsyncLifetime
{
    public const string AdminEmail = "admin@library.local";
    public static readonly string AdminPassword = "Fault-admin-" + Guid.NewGuid().ToString("N")[..12];

    private static readonly string[] Services = ["userservice", "bookservice", "lendingservice"];

    public string Root { get; } = FindRepoRoot();
    public string Data { get; } = Directory.CreateTempSubdirectory("library-fault.").FullName;
    public int PgPort { get; } = Port("LIBRARY_FAULT_PG_PORT", 22432);
    public int RedisPort { get; } = Port("LIBRARY_FAULT_REDIS_PORT", 22379);
    public int RabbitPort { get; } = Port("LIBRARY_FAULT_RABBITMQ_PORT", 22672);
    public int GatewayPort { get; } = Port("LIBRARY_FAULT_GATEWAY_PORT", 22080);
    public int ServiceBase { get; } = Port("LIBRARY_FAULT_SERVICE_PORT", 22100);
    public Uri Gateway => new($"http://127.0.0.1:{GatewayPort}");

    /// <summary>What happened while starting and faulting, for the test output.</summary>
    public StringBuilder Log { get; } = new();

    private readonly Dictionary<string, object> _once = [];

    /// <summary>
    /// Runs <paramref name="run"/> once for this stack, under <paramref name="key"/>: the tests that
    /// share one fault (F6 and F7) each await the same run and check their part of it.
    /// </summary>
    public Task<T> OnceAsync<T>(string key, Func<Task<T>> run)
    {
        lock (_once)
        {
            if (!_once.TryGetValue(key, out var task))
            {
                task = run();
                _once[key] = task;
            }
            return (Task<T>)task;
        }
    }

    public async ValueTask InitializeAsync()
    {
        var started = Stopwatch.StartNew();
        var artifacts = Path.Combine(Root, "artifacts");
        Directory.CreateDirectory(artifacts);
        File.Delete(Path.Combine(artifacts, "fault-details.txt"));
        await File.WriteAllTextAsync(Path.Combine(artifacts, "fault-results.md"),
            "| fault | requests sent | errors seen | recovery time | items lost |\n|---|---|---|---|---|\n");
        await RunAsync("start", "eng/processes.sh --ha start", TimeSpan.FromMinutes(5));
        Log.AppendLine(CultureInfo.InvariantCulture, $"stack up in {started.Elapsed.TotalSeconds:F1} s ({Data})");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsync("stop", "eng/processes.sh stop", TimeSpan.FromMinutes(3));
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("LIBRARY_FAULT_KEEP_DATA") != "1")
            {
                try
                {
                    Directory.Delete(Data, recursive: true);
                }
                catch (IOException)
                {
                    // A server still writing its log: the folder stays in /tmp.
                }
            }
        }
    }

    /// <summary>The environment every eng/processes.sh call gets: this stack's folder and ports.</summary>
    private Dictionary<string, string> Environment_() => new()
    {
        ["LIBRARY_DATA_DIR"] = Data,
        ["LIBRARY_PG_PORT"] = Str(PgPort),
        ["LIBRARY_REDIS_PORT"] = Str(RedisPort),
        ["LIBRARY_RABBITMQ_PORT"] = Str(RabbitPort),
        ["LIBRARY_GATEWAY_PORT"] = Str(GatewayPort),
        ["LIBRARY_USERSERVICE_PORT"] = Str(ServiceBase + 1),
        ["LIBRARY_BOOKSERVICE_PORT"] = Str(ServiceBase + 101),
        ["LIBRARY_LENDINGSERVICE_PORT"] = Str(ServiceBase + 201),
        ["LIBRARY_REPLICAS"] = "2",
        ["LIBRARY_GATEWAY_REPLICAS"] = "2",
        ["LIBRARY_PG_STANDBY"] = "1",
        // eng/test.sh has just built Release; LIBRARY_FAULT_BUILD=1 builds first (a run on its own).
        ["LIBRARY_NO_BUILD"] = Environment.GetEnvironmentVariable("LIBRARY_FAULT_BUILD") == "1" ? "0" : "1",
        ["LIBRARY_CATALOG"] = "none",
        ["LIBRARY_ADMIN_EMAIL"] = AdminEmail,
        ["LIBRARY_ADMIN_PASSWORD"] = AdminPassword,
        ["LIBRARY_START_TIMEOUT"] = "240",
        // The drain and probe timings at half the production defaults, in the same ratio: each
        // gateway probes every replica's /health every 1 s (not 2 s) and takes one out after two
        // failures, so a service replica draining for 2.5 s (not 5 s) still leaves the rotation
        // before it stops accepting, and rolling-restart's settle of 1.5 s (not 3 s) still lets a
        // probe see a restarted replica back before the next stops. The gateways keep their own
        // 5 s drain (nothing probes them: the kernel moves new connections off a stopping one).
        ["Gateway__HealthProbeSeconds"] = "1",
        ["LIBRARY_SERVICE_DRAIN_SECONDS"] = "2.5",
        ["LIBRARY_ROLLING_SETTLE"] = "1.5",
        // The event bus retries an absent broker (or database) at most every 3 s, not 15 s
        // (EventBus:MaxBackoff, as tests/Library.EventBus.Tests do with 1 s): the same backoff,
        // capped sooner, so the catalog levels a few seconds after RabbitMQ is back (F2) instead
        // of the suite waiting out a 15 s sleep that no check looks at.
        ["EventBus__MaxBackoff"] = "00:00:03",
        // The readers' password hashes at the tests' work factor (TestSettings.PasswordIterations):
        // each fault registers and logs in its readers, two hashes each; hashing is not the subject.
        ["Auth__PasswordIterations"] = TestSettings.PasswordIterations.ToString(CultureInfo.InvariantCulture),
        // The load comes from one address and a few dozen accounts: the limits are not the subject.
        ["RateLimiting__AnonymousPerMinute"] = "10000000",
        ["RateLimiting__UserPerMinute"] = "10000000",
        ["RateLimiting__LoginPerMinute"] = "100000",
        ["RateLimiting__LoginPerIpPerMinute"] = "100000",
        ["RateLimiting__RegisterPerMinute"] = "100000",
        ["Logging__LogLevel__Default"] = "Warning",
        // Each gateway's view of its destinations (InRotation): YARP logs a destination set
        // Unhealthy at Warning but set Healthy again, or reset by the passive check, at Information.
        ["Logging__LogLevel__Yarp.ReverseProxy.Health.DestinationHealthUpdater"] = "Information",
    };

    /// <summary>Runs a bash command in the repository with this stack's environment; throws on failure.</summary>
    public async Task<string> RunAsync(string what, string command, TimeSpan timeout)
    {
        var (code, output) = await TryRunAsync(command, timeout);
        Log.AppendLine(CultureInfo.InvariantCulture, $"$ {command} -> {code}");
        if (code != 0)
        {
            throw new InvalidOperationException($"{what}: `{command}` exited {code}:\n{Tail(output, 60)}");
        }
        return output;
    }

    public async Task<(int Code, string Output)> TryRunAsync(string command, TimeSpan timeout)
    {
        var info = new ProcessStartInfo("bash", ["-c", $"set -euo pipefail; source eng/lib/servers.sh; {command}"])
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in Environment_())
        {
            info.Environment[key] = value;
        }
        return await RunProcessAsync(info, timeout);
    }

    /// <summary>
    /// Runs a process to its end or the deadline (then kills its whole tree), with stdout and
    /// stderr interleaved as they came; exit code -1 on a timeout.
    /// </summary>
    public static async Task<(int Code, string Output)> RunProcessAsync(ProcessStartInfo info, TimeSpan timeout)
    {
        using var process = Process.Start(info)!;
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            lock (gate)
            {
                return (-1, output + $"\n(timed out after {timeout})");
            }
        }
        process.WaitForExit();
        lock (gate)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    // ------------------------------------------------------------------------------ faults

    /// <summary>SIGKILL to the PostgreSQL primary's postmaster and every process of its data folder.</summary>
    public async Task<int> KillPostgresPrimaryAsync(Action killed)
    {
        var node = (await RunAsync("primary", "pg_primary_node \"$LIBRARY_DATA_DIR\"", TimeSpan.FromSeconds(30))).Trim().Split('\n')[^1];
        var folder = Path.Combine(Data, node == "2" ? "postgres-2" : "postgres", "data");
        var postmaster = int.Parse(File.ReadLines(Path.Combine(folder, "postmaster.pid")).First(), CultureInfo.InvariantCulture);
        var victims = new List<int> { postmaster };
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(proc), out var pid) && pid != postmaster && ParentOf(pid) == postmaster)
            {
                victims.Add(pid);
            }
        }
        foreach (var pid in victims)
        {
            try
            {
                Process.GetProcessById(pid).Kill();   // SIGKILL
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
        killed();
        Log.AppendLine(CultureInfo.InvariantCulture, $"SIGKILL postgres node {node} (postmaster {postmaster} and {victims.Count - 1} children)");
        return int.Parse(node, CultureInfo.InvariantCulture);
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(afterName[1], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return -1;
        }
    }

    /// <summary>SIGKILL to replica 0 of every service (by its pid file).</summary>
    public IReadOnlyList<string> KillOneReplicaOfEachService()
    {
        var killed = new List<string>();
        foreach (var service in Services)
        {
            var pidFile = Path.Combine(Data, "run", $"{service}-0.pid");
            var pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
            using var process = Process.GetProcessById(pid);
            process.Kill();
            killed.Add($"{service}-0 (pid {pid})");
        }
        Log.AppendLine(CultureInfo.InvariantCulture, $"SIGKILL {string.Join(", ", killed)}");
        return killed;
    }

    /// <summary>SIGKILL to one process (by its pid file, e.g. "gateway-0" or "lendingservice-0").</summary>
    public string Kill(string instance)
    {
        var pid = int.Parse(File.ReadAllText(Path.Combine(Data, "run", $"{instance}.pid")).Trim(), CultureInfo.InvariantCulture);
        using var process = Process.GetProcessById(pid);
        process.Kill();
        Log.AppendLine(CultureInfo.InvariantCulture, $"SIGKILL {instance} (pid {pid})");
        return $"{instance} (pid {pid})";
    }

    /// <summary>
    /// The services' and gateways' Error and Critical log entries (JSON console lines, the logs kept
    /// from a replica's earlier start included; not the expected ones of a drain or a first start):
    /// what a fault's 5xx answers are read by, since the stack's folder is gone afterwards. First
    /// the entries of requests that failed (the exception handler's, up to
    /// <paramref name="requests"/>), then one line per log file and category with its count and
    /// its first entry: the first entries in file order alone hid a request's failure behind a
    /// replica's start-up noise.
    /// </summary>
    public (int Count, List<string> Lines) ErrorLogLines(int requests)
    {
        var count = 0;
        var failedRequests = new List<string>();
        var byCategory = new SortedDictionary<string, (int Count, string First)>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Data, "logs"), "*.log*").Order(StringComparer.Ordinal))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                if ((line.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal) || line.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal))
                    // Expected ones: a draining replica's health check, EF's look for a migrations table not made yet.
                    && !line.Contains("DefaultHealthCheckService", StringComparison.Ordinal)
                    && !line.Contains("__EFMigrationsHistory", StringComparison.Ordinal))
                {
                    count++;
                    var entry = $"{Path.GetFileName(file)}: {(line.Length > 2000 ? line[..2000] + "..." : line)}";
                    var category = System.Text.RegularExpressions.Regex.Match(line, "\"Category\":\"([^\"]*)\"").Groups[1].Value;
                    if (category.EndsWith("ExceptionHandlerMiddleware", StringComparison.Ordinal) || category.EndsWith("DeveloperExceptionPageMiddleware", StringComparison.Ordinal))
                    {
                        if (failedRequests.Count < requests)
                        {
                            failedRequests.Add(entry);
                        }
                    }
                    var key = $"{Path.GetFileName(file)} {category}";
                    byCategory[key] = byCategory.TryGetValue(key, out var seen) ? (seen.Count + 1, seen.First) : (1, entry.Length > 400 ? entry[..400] + "..." : entry);
                }
            }
        }
        var lines = new List<string> { $"-- requests that failed ({failedRequests.Count} shown):" };
        lines.AddRange(failedRequests);
        lines.Add("-- by log file and category (count, first entry):");
        lines.AddRange(byCategory.Select(c => $"{c.Key} x{c.Value.Count}: {c.Value.First}"));
        return (count, lines);
    }

    /// <summary>Lines of the running gateways' logs that contain <paramref name="text"/>.</summary>
    public int GatewayLogLines(string text) =>
        Directory.EnumerateFiles(Path.Combine(Data, "logs"), "gateway-*.log")
            .Sum(f =>
            {
                using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                var count = 0;
                while (reader.ReadLine() is { } line)
                {
                    if (line.Contains(text, StringComparison.Ordinal))
                    {
                        count++;
                    }
                }
                return count;
            });

    /// <summary>
    /// Whether both gateway processes route to <paramref name="instance"/> (e.g. "lendingservice-0"),
    /// by what they logged of their health checks (Yarp.ReverseProxy.Health at Information in this
    /// stack): in rotation unless the active probe last set it Unhealthy, or the passive check
    /// marked it unhealthy and has not reset it since. A destination a gateway never reported on is
    /// in its rotation (Unknown counts as healthy). <paramref name="history"/>: those lines, per gateway.
    /// </summary>
    public bool InRotation(string instance, out string history)
    {
        var service = instance[..instance.LastIndexOf('-')];
        var replica = int.Parse(instance[(instance.LastIndexOf('-') + 1)..], CultureInfo.InvariantCulture);
        var port = ServiceBase + 1 + (Array.IndexOf(Services, service) * 100) + replica;
        var destination = $"{service}[http://127.0.0.1:{port}/]";
        var inAll = true;
        var seen = new StringBuilder();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Data, "logs"), "gateway-*.log").Order(StringComparer.Ordinal))
        {
            bool activeDown = false, passiveDown = false;
            var lines = new List<string>();
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                if (!line.Contains("Yarp.ReverseProxy.Health.DestinationHealthUpdater", StringComparison.Ordinal))
                {
                    continue;
                }
                string message;
                string? cluster;
                try
                {
                    using var json = System.Text.Json.JsonDocument.Parse(line);
                    var state = json.RootElement.GetProperty("State");
                    if (!state.TryGetProperty("destinationId", out var id) || id.GetString() != destination)
                    {
                        continue;
                    }
                    message = json.RootElement.GetProperty("Message").GetString() ?? "";
                    cluster = state.TryGetProperty("clusterId", out var c) ? c.GetString() : null;
                }
                catch (System.Text.Json.JsonException)
                {
                    continue; // a line cut off by the log's last write
                }
                if (message.StartsWith("Active health state", StringComparison.Ordinal) && cluster == service)
                {
                    activeDown = message.EndsWith("'unhealthy'.", StringComparison.OrdinalIgnoreCase);
                }
                else if (message.Contains("by the passive health check", StringComparison.Ordinal))
                {
                    passiveDown = true;
                }
                else if (message.StartsWith("Passive health state", StringComparison.Ordinal))
                {
                    passiveDown = false;
                }
                else
                {
                    continue;
                }
                lines.Add(message);
            }
            inAll &= !activeDown && !passiveDown;
            seen.Append(CultureInfo.InvariantCulture, $"{Path.GetFileName(file)}: {(activeDown || passiveDown ? "out" : "in")}")
                .Append(CultureInfo.InvariantCulture, $" ({lines.Count} health lines{(lines.Count > 0 ? ", last: " + string.Join(" | ", lines.TakeLast(3)) : "")}); ");
        }
        history = seen.ToString();
        return inAll;
    }

    /// <summary>SIGTERM to every service replica and the gateway at once (by their pid files).</summary>
    public IReadOnlyList<Process> StopEveryServiceAtOnce()
    {
        var processes = Directory.EnumerateFiles(Path.Combine(Data, "run"), "*.pid")
            .Select(f => Process.GetProcessById(int.Parse(File.ReadAllText(f).Trim(), CultureInfo.InvariantCulture)))
            .ToList();
        foreach (var process in processes)
        {
            using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }
        Log.AppendLine(CultureInfo.InvariantCulture, $"SIGTERM {processes.Count} service processes");
        return processes;
    }

    // ------------------------------------------------------------------------------ truth

    /// <summary>Superuser connection to a database on whichever node is primary.</summary>
    public NpgsqlConnection Database(string name)
    {
        var password = File.ReadAllText(Path.Combine(Data, "secrets", "postgres.password")).Trim();
        return new NpgsqlConnection(
            $"Host=127.0.0.1:{PgPort},127.0.0.1:{PgPort + 1};Database={name};Username=postgres;Password={password};" +
            "Target Session Attributes=primary;Host Recheck Seconds=1;Pooling=false;Timeout=5");
    }

    /// <summary>Messages in every dead-letter queue, by queue.</summary>
    public async Task<Dictionary<string, long>> DeadLettersAsync()
    {
        var output = await RunAsync("dead letters", "rabbitmq_ctl \"$LIBRARY_DATA_DIR\" list_queues -q -p library name messages", TimeSpan.FromMinutes(1));
        var result = new Dictionary<string, long>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0].EndsWith("dead-letter", StringComparison.Ordinal) && long.TryParse(parts[1], out var count))
            {
                result[parts[0]] = count;
            }
        }
        return result;
    }

    // ------------------------------------------------------------------------------ helpers

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out var port) ? port : fallback;

    private static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Library.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Library.sln above {AppContext.BaseDirectory}");
    }
}
