using System.Collections.Concurrent;
using System.Diagnostics;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Library.AppHost.Tests;

/// <summary>Restarts disturb every other test: this collection runs alone, after the others.</summary>
[CollectionDefinition(nameof(Restarts), DisableParallelization = true)]
public sealed class Restarts;

/// <summary>
/// The gateway's two replicas behind its one address, and the operator's rolling restart (the
/// AppHost's "Rolling restart" command), while a client reads the catalog through the gateway
/// without any retry of its own.
/// </summary>
[Collection(nameof(Restarts))]
public sealed class RollingRestartTests(LibraryAppHost library)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Two_gateway_replicas_share_one_address_that_answers_while_one_restarts()
    {
        var model = library.App.Services.GetRequiredService<DistributedApplicationModel>();
        var gateway = model.Resources.OfType<ProjectResource>().Single(r => r.Name == "gateway");
        Assert.True(gateway.TryGetLastAnnotation<ReplicaAnnotation>(out var replicas));
        Assert.Equal(2, replicas.Replicas);
        var instances = await InstancesAsync(gateway);
        Assert.Equal(2, instances.Count);
        await WaitForRunningAsync(instances);

        var commands = library.App.Services.GetRequiredService<ResourceCommandService>();
        await using var loop = ReadLoop.Start(library);
        await loop.WaitForAsync(20);
        var restarted = instances[0];
        var before = StartOf(restarted);
        var result = await commands.ExecuteCommandAsync(restarted, KnownResourceCommands.RestartCommand, Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        Assert.True(result.Success, result.Message);
        await WaitForRunningAsync([restarted], before);
        await loop.WaitForAsync(loop.Sent + 20);
        var report = await loop.StopAsync();
        TestContext.Current.SendDiagnosticMessage($"one gateway replica restarted: {report}");

        Assert.NotEqual(before, StartOf(restarted));
        Assert.True(report.Ok > 20, report.ToString());
        Assert.True(report.Failed == 0, report.ToString());
    }

    [Fact]
    public async Task The_rolling_restart_command_restarts_every_replica_in_waves_and_the_gateway_keeps_answering()
    {
        var model = library.App.Services.GetRequiredService<DistributedApplicationModel>();
        var projects = model.Resources.OfType<ProjectResource>().ToList();
        var instances = new List<string>();
        foreach (var project in projects)
        {
            instances.AddRange(await InstancesAsync(project));
        }
        Assert.Equal(8, instances.Count); // 2 replicas of three services and of the gateway
        await WaitForRunningAsync(instances);
        var before = instances.ToDictionary(i => i, StartOf);

        var commands = library.App.Services.GetRequiredService<ResourceCommandService>();
        await using var loop = ReadLoop.Start(library);
        await loop.WaitForAsync(20);
        var clock = Stopwatch.StartNew();
        var result = await commands.ExecuteCommandAsync("operations", "rolling-restart", Ct).WaitAsync(TimeSpan.FromMinutes(15), Ct);
        var took = clock.Elapsed;
        var report = await loop.StopAsync();
        TestContext.Current.SendDiagnosticMessage($"rolling restart of {instances.Count} replicas in {took.TotalSeconds:F1} s: {report}");

        Assert.True(result.Success, result.Message);
        foreach (var instance in instances)
        {
            Assert.NotEqual(before[instance], StartOf(instance));
        }
        foreach (var name in LibraryAppHost.Resources)
        {
            await library.App.ResourceNotifications.WaitForResourceHealthyAsync(name, Ct).WaitAsync(TimeSpan.FromMinutes(1), Ct);
        }
        Assert.True(report.Ok > 200, report.ToString());
        Assert.True(report.Failed == 0, report.ToString());
    }

    /// <summary>A resource's replica ids, from the current state the notifications replay first.</summary>
    private async Task<List<string>> InstancesAsync(IResource resource)
    {
        var expected = resource.TryGetLastAnnotation<ReplicaAnnotation>(out var replicas) ? replicas.Replicas : 1;
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        await foreach (var e in library.App.ResourceNotifications.WatchAsync(deadline.Token))
        {
            if (ReferenceEquals(e.Resource, resource) && e.ResourceId.StartsWith(resource.Name + "-", StringComparison.Ordinal) && ids.Add(e.ResourceId) && ids.Count == expected)
            {
                break;
            }
        }
        return [.. ids];
    }

    private DateTime? StartOf(string instance) =>
        library.App.ResourceNotifications.TryGetCurrentState(instance, out var state) ? state.Snapshot.StartTimeStamp : null;

    /// <summary>Until each instance is Running (with a start time other than <paramref name="before"/>), or a deadline.</summary>
    private async Task WaitForRunningAsync(IEnumerable<string> instances, DateTime? before = null)
    {
        var deadline = Stopwatch.StartNew();
        foreach (var instance in instances)
        {
            while (!(library.App.ResourceNotifications.TryGetCurrentState(instance, out var state)
                     && state.Snapshot.State?.Text == KnownResourceStates.Running
                     && (before is null || state.Snapshot.StartTimeStamp != before)))
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2), $"{instance} is not running again");
                await Task.Delay(100, Ct); // polling interval
            }
        }
    }

    /// <summary>
    /// Two clients through the gateway's one address, one request after the other, with keep-alive
    /// connections and no retry: every answer other than the expected one counts as a failure. The
    /// paths reach every service behind the gateway (the catalog, and the user and lending
    /// services, which answer an anonymous request 401 themselves) and the page the gateway serves
    /// itself (not /health: a draining replica answers it 503 on purpose, that is its readiness).
    /// About 400 requests a minute: under the gateway's 600 anonymous requests per minute and IP.
    /// </summary>
    private sealed class ReadLoop : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly HttpClient _http;
        private readonly Task _running;
        private long _ok;
        private long _failed;

        public ConcurrentDictionary<string, int> Failures { get; } = new();

        public long Sent => Interlocked.Read(ref _ok) + Interlocked.Read(ref _failed);

        private ReadLoop(Uri gateway)
        {
            _http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }) { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(30) };
            _running = Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(RunAsync)));
        }

        public static ReadLoop Start(LibraryAppHost library) => new(library.App.GetEndpoint("gateway", "http"));

        private async Task RunAsync()
        {
            (string Path, int Status)[] requests = [("/api/books?pageSize=5", 200), ("/api/users/me", 401), ("/api/loans", 401), ("/", 200)];
            var i = 0;
            while (!_stop.IsCancellationRequested)
            {
                var (path, expected) = requests[i++ % requests.Length];
                try
                {
                    using var response = await _http.GetAsync(path, _stop.Token);
                    await response.Content.ReadAsByteArrayAsync(_stop.Token);
                    if ((int)response.StatusCode == expected)
                    {
                        Interlocked.Increment(ref _ok);
                    }
                    else
                    {
                        Fail($"{path} {(int)response.StatusCode}");
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
                {
                    Fail($"{path} {ex.GetType().Name}: {ex.InnerException?.Message ?? ex.Message}");
                }
                try
                {
                    await Task.Delay(250, _stop.Token); // the client's pace
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        private void Fail(string kind)
        {
            Interlocked.Increment(ref _failed);
            Failures.AddOrUpdate(kind, 1, (_, n) => n + 1);
        }

        public async Task WaitForAsync(long sent)
        {
            var deadline = Stopwatch.StartNew();
            while (Sent < sent)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(1), $"only {Sent} requests through the gateway, not {sent}");
                await Task.Delay(50, Ct); // polling a counter
            }
        }

        public async Task<Report> StopAsync()
        {
            await _stop.CancelAsync();
            await _running;
            return new Report(Interlocked.Read(ref _ok), Interlocked.Read(ref _failed),
                string.Join(", ", Failures.OrderByDescending(f => f.Value).Select(f => $"{f.Key} x{f.Value}")));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await StopAsync();
            }
            _http.Dispose();
            _stop.Dispose();
        }
    }

    private sealed record Report(long Ok, long Failed, string Failures)
    {
        public override string ToString() => $"{Ok} requests answered as expected, {Failed} failed{(Failed > 0 ? ": " + Failures : "")}";
    }
}
