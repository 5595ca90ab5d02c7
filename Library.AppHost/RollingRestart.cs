using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Library.AppHost;

/// <summary>
/// An operator's rolling restart under the AppHost, in waves: one replica of each project of a
/// stage at a time, each through Aspire's own per-replica Restart command (what the dashboard's
/// Restart button does), and the next wave only once every replica of this one answers its own
/// <c>/health</c> Healthy (not the resource's health, which Aspire checks through the endpoint
/// proxy: any replica answers there). With two or more replicas the others serve meanwhile, behind
/// the same proxied address: each project loses one replica at a time, as a rollout of several
/// deployments runs side by side, not the whole Library one process at a time.
/// <list type="bullet">
/// <item>each project resource gets the command "Rolling restart" (its replicas, one at a time);</item>
/// <item>the <c>operations</c> resource gets "Rolling restart of everything": the services' replicas
/// in waves, then the gateway's one at a time (<c>eng/run.sh rolling-restart</c> runs it through the Aspire CLI:
/// <c>aspire resource operations rolling-restart</c>; a resource with replicas has no unique name
/// the CLI could address).</item>
/// </list>
/// One rolling restart at a time; a second is refused while one runs.
/// </summary>
internal static class RollingRestart
{
    public const string CommandName = "rolling-restart";
    public const string OperationsResourceName = "operations";

    /// <summary>How long one replica may take from the restart to Healthy.</summary>
    private static readonly TimeSpan ReplicaDeadline = TimeSpan.FromMinutes(3);

    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static IResourceBuilder<ProjectResource> WithRollingRestart(this IResourceBuilder<ProjectResource> project, TimeSpan settle) =>
        project.WithCommand(CommandName, "Rolling restart",
            context => RunAsync(context, [[project.Resource]], settle),
            new CommandOptions
            {
                Description = "Restarts the replicas one at a time, each once the previous one answers /health Healthy again",
                IconName = "ArrowSync",
                ConfirmationMessage = $"Restart every replica of {project.Resource.Name}, one at a time?",
                UpdateState = c => c.ResourceSnapshot.State?.Text == KnownResourceStates.Running
                    ? ResourceCommandState.Enabled
                    : ResourceCommandState.Disabled,
            });

    /// <summary>
    /// The <c>operations</c> resource: commands that span resources (run mode only, not in the
    /// manifest: nothing to deploy).
    /// </summary>
    /// <param name="stages">Restarted one stage after the other (the services, then the gateway);
    /// within a stage, replica i of every project at once.</param>
    public static IResourceBuilder<OperationsResource> AddOperations(this IDistributedApplicationBuilder builder,
        IReadOnlyList<IReadOnlyList<IResourceBuilder<ProjectResource>>> stages, TimeSpan settle) =>
        builder.AddResource(new OperationsResource(OperationsResourceName))
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "Operations",
                State = KnownResourceStates.Running,
                Properties = [new("Description", "Operator commands that span resources")],
            })
            .ExcludeFromManifest()
            .WithCommand(CommandName, "Rolling restart of everything",
                context => RunAsync(context, [.. stages.Select(s => (IReadOnlyList<ProjectResource>)[.. s.Select(p => p.Resource)])], settle),
                new CommandOptions
                {
                    Description = "Every service's replicas, one of each service at a time, then the gateway's (eng/run.sh rolling-restart)",
                    IconName = "ArrowSync",
                    ConfirmationMessage = "Restart every replica of every service (one of each at a time) and then the gateway's?",
                });

    private static async Task<ExecuteCommandResult> RunAsync(ExecuteCommandContext context, IReadOnlyList<IReadOnlyList<ProjectResource>> stages, TimeSpan settle)
    {
        var ct = context.CancellationToken;
        if (!await OneAtATime.WaitAsync(0, ct))
        {
            return CommandResults.Failure("a rolling restart is already running");
        }
        try
        {
            var commands = context.Services.GetRequiredService<ResourceCommandService>();
            var notifications = context.Services.GetRequiredService<ResourceNotificationService>();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            var total = Stopwatch.StartNew();
            var waves = new List<List<string>>();
            foreach (var stage in stages)
            {
                var replicas = new List<IReadOnlyList<string>>();
                foreach (var project in stage)
                {
                    replicas.Add(await InstancesAsync(notifications, project, ct));
                }
                for (var i = 0; i < replicas.Max(r => r.Count); i++)
                {
                    waves.Add([.. replicas.Where(r => i < r.Count).Select(r => r[i])]);
                }
            }
            var count = waves.Sum(w => w.Count);
            var done = 0;
            foreach (var wave in waves)
            {
                var one = Stopwatch.StartNew();
                context.Logger.LogInformation("Rolling restart: restarting {Instances} ({Done} of {Total} done)", string.Join(", ", wave), done, count);
                var problems = await Task.WhenAll(wave.Select(instance => RestartAsync(commands, notifications, http, instance, ct)));
                if (problems.FirstOrDefault(p => p is not null) is { } problem)
                {
                    return CommandResults.Failure($"{problem}; stopped after {done} of {count} replicas");
                }
                done += wave.Count;
                context.Logger.LogInformation("Rolling restart: {Instances} restarted and healthy in {Seconds:F1} s ({Done} of {Total})",
                    string.Join(", ", wave), one.Elapsed.TotalSeconds, done, count);
                // Connection pools and the gateway's health checks see the restarted replicas
                // before their siblings stop.
                await Task.Delay(settle, ct);
            }
            context.Logger.LogInformation("Rolling restart of {Count} replicas in {Waves} waves done in {Seconds:F1} s", count, waves.Count, total.Elapsed.TotalSeconds);
            return CommandResults.Success();
        }
        finally
        {
            OneAtATime.Release();
        }
    }

    /// <summary>One replica restarted and back to Healthy; null when it is, else what went wrong.</summary>
    private static async Task<string?> RestartAsync(ResourceCommandService commands, ResourceNotificationService notifications,
        HttpClient http, string instance, CancellationToken ct)
    {
        var before = notifications.TryGetCurrentState(instance, out var current) ? current.Snapshot.StartTimeStamp : null;
        var result = await commands.ExecuteCommandAsync(instance, KnownResourceCommands.RestartCommand, ct);
        if (!result.Success)
        {
            return $"{instance}: restart failed: {result.Message}";
        }
        return await WaitUntilHealthyAsync(notifications, http, instance, before, ct) is { } problem ? $"{instance}: {problem}" : null;
    }

    /// <summary>
    /// The ids of a resource's replicas (<c>gateway-abcdwxyz</c>, ...), as the notifications name
    /// them: the current state of every resource comes first from <see cref="ResourceNotificationService.WatchAsync"/>.
    /// </summary>
    internal static async Task<IReadOnlyList<string>> InstancesAsync(ResourceNotificationService notifications, IResource resource, CancellationToken ct)
    {
        var expected = resource.TryGetLastAnnotation<ReplicaAnnotation>(out var replicas) ? replicas.Replicas : 1;
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await foreach (var e in notifications.WatchAsync(deadline.Token))
            {
                if (ReferenceEquals(e.Resource, resource) && e.ResourceId.StartsWith(resource.Name + "-", StringComparison.Ordinal))
                {
                    ids.Add(e.ResourceId);
                    if (ids.Count >= expected)
                    {
                        break;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The deadline: what was seen.
        }
        return ids.Count == expected
            ? [.. ids]
            : throw new InvalidOperationException($"{resource.Name}: {ids.Count} replicas known, {expected} expected");
    }

    /// <summary>
    /// Until the replica runs again (a start after <paramref name="before"/>) and its own address
    /// answers /health Healthy; null when it does, else what was last seen.
    /// </summary>
    private static async Task<string?> WaitUntilHealthyAsync(ResourceNotificationService notifications, HttpClient http,
        string instance, DateTime? before, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        var seen = "no state";
        while (deadline.Elapsed < ReplicaDeadline)
        {
            if (notifications.TryGetCurrentState(instance, out var state))
            {
                var snapshot = state.Snapshot;
                seen = $"state {snapshot.State?.Text ?? "none"}";
                if (snapshot.State?.Text == KnownResourceStates.Running && snapshot.StartTimeStamp is { } started && started != before)
                {
                    var url = OwnUrl(snapshot);
                    if (url is null)
                    {
                        seen = "running, but its own address is not known yet";
                    }
                    else
                    {
                        seen = await HealthAsync(http, new Uri(url, "/health"), ct);
                        if (seen == "Healthy")
                        {
                            return null;
                        }
                    }
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct); // polling interval
        }
        return $"not healthy within {ReplicaDeadline.TotalSeconds:F0} s ({seen})";
    }

    /// <summary>
    /// The replica's own address: the http URL it listens on (ASPNETCORE_URLS or HTTP_PORTS, which
    /// Aspire gives each replica: its target port behind the proxy).
    /// </summary>
    internal static Uri? OwnUrl(CustomResourceSnapshot snapshot)
    {
        foreach (var variable in snapshot.EnvironmentVariables)
        {
            if (variable.Name == "ASPNETCORE_URLS" && variable.Value is { Length: > 0 } urls)
            {
                var http = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .FirstOrDefault(u => u.StartsWith("http://", StringComparison.Ordinal));
                if (http is not null)
                {
                    return new Uri(http.Replace("://+:", "://127.0.0.1:", StringComparison.Ordinal).Replace("://*:", "://127.0.0.1:", StringComparison.Ordinal)
                        .Replace("://localhost:", "://127.0.0.1:", StringComparison.Ordinal));
                }
            }
            if (variable.Name == "HTTP_PORTS" && variable.Value is { Length: > 0 } ports && int.TryParse(ports.Split(';')[0], out var port))
            {
                return new Uri($"http://127.0.0.1:{port}");
            }
        }
        return null;
    }

    private static async Task<string> HealthAsync(HttpClient http, Uri health, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(health, ct);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            return body.RootElement.TryGetProperty("status", out var status) ? status.GetString() ?? "no status" : $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            return $"no answer at {health} ({ex.GetType().Name})";
        }
    }
}

/// <summary>A resource that only carries operator commands (see <see cref="RollingRestart"/>).</summary>
internal sealed class OperationsResource(string name) : Resource(name);
