using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Library.ServiceDefaults;

/// <summary>
/// Graceful shutdown, the same in every service. On SIGTERM (or any stop of the host):
/// <list type="number">
/// <item>/health (readiness) turns Unhealthy at once (503, check "shutdown"); /alive stays Healthy;</item>
/// <item>the process keeps serving for <c>Shutdown:DrainSeconds</c> (default 5; 0 in the Testing
/// environment), long enough for the gateway's active health check (every 2 s, two failures) or
/// an orchestrator's readiness probe to stop sending it requests;</item>
/// <item>then the hosted services stop: Kestrel stops accepting and lets in-flight requests
/// finish, the event consumer takes no new delivery and finishes the ones it has;</item>
/// <item>all of it within <see cref="HostOptions.ShutdownTimeout"/>: the drain plus
/// <c>Shutdown:TimeoutSeconds</c> (default 25).</item>
/// </list>
/// </summary>
public static partial class GracefulShutdown
{
    public const string HealthCheckName = "shutdown";

    public static TBuilder AddGracefulShutdown<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var drain = TimeSpan.FromSeconds(Math.Max(0, builder.Configuration.GetValue<double?>("Shutdown:DrainSeconds")
            ?? (builder.Environment.IsEnvironment("Testing") ? 0 : 5)));
        var finish = TimeSpan.FromSeconds(Math.Max(1, builder.Configuration.GetValue("Shutdown:TimeoutSeconds", 25.0)));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = drain + finish);
        builder.Services.AddSingleton(new ShutdownState(drain));
        // Registered before the application's own hosted services: its StoppingAsync runs before
        // any StopAsync (Kestrel's included) in every case.
        builder.Services.AddHostedService<DrainOnStop>();
        builder.Services.AddHealthChecks().AddCheck<ShutdownHealthCheck>(HealthCheckName);
        return builder;
    }

    /// <summary>Whether this process is shutting down (readiness false).</summary>
    public sealed class ShutdownState(TimeSpan drain)
    {
        private volatile bool _stopping;

        public TimeSpan Drain { get; } = drain;

        public bool Stopping => _stopping;

        internal void Stop() => _stopping = true;
    }

    private sealed class ShutdownHealthCheck(ShutdownState state, IHostApplicationLifetime lifetime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(state.Stopping || lifetime.ApplicationStopping.IsCancellationRequested
                ? HealthCheckResult.Unhealthy("shutting down: draining before exit")
                : HealthCheckResult.Healthy());
    }

    private sealed partial class DrainOnStop(ShutdownState state, IHostApplicationLifetime lifetime, ILogger<DrainOnStop> logger) : IHostedLifecycleService
    {
        private CancellationTokenRegistration _registration;

        public Task StartingAsync(CancellationToken cancellationToken)
        {
            // SIGTERM fires ApplicationStopping before the host's StopAsync begins.
            _registration = lifetime.ApplicationStopping.Register(state.Stop);
            return Task.CompletedTask;
        }

        public async Task StoppingAsync(CancellationToken cancellationToken)
        {
            state.Stop();
            if (state.Drain <= TimeSpan.Zero)
            {
                return;
            }
            LogDraining(logger, state.Drain.TotalSeconds);
            try
            {
                await Task.Delay(state.Drain, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The shutdown timeout: stop now.
            }
        }

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken)
        {
            _registration.Dispose();
            return Task.CompletedTask;
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Shutting down: /health is Unhealthy, still serving for {Seconds} s so that load balancers stop sending, then finishing in-flight work")]
        private static partial void LogDraining(ILogger logger, double seconds);
    }
}
