using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;

namespace Library.ServiceDefaults;

public static class RabbitMQExtensions
{
    /// <summary>
    /// The service's AMQP connection from <c>ConnectionStrings:{connectionName}</c>
    /// (<c>amqp://user:pass@host:port/vhost</c>, the key Aspire sets), opened lazily and kept, with
    /// automatic recovery, and a health check that is Degraded while the broker is unreachable.
    /// The service does not wait for the broker: events go through the outbox, so a broker outage
    /// delays them and degrades health but never stops or slows the service.
    /// <para>
    /// Deliberately not Aspire.RabbitMQ.Client's <c>AddRabbitMQClient</c> (13.6.5), checked with a
    /// broker that refuses connections: its <see cref="IConnection"/> singleton connects
    /// synchronously inside the DI factory with 5 retries (1+2+4+8+16 s), so the first resolve
    /// blocks a thread about 31 s, cannot be cancelled (a stopping service waits for it), then
    /// throws; its health check is Unhealthy and takes those 31 s too; with
    /// <c>DisableAutoActivation=false</c> the service does not start at all (the host aborts after
    /// the retries). This connection is opened asynchronously on first use, cancellably, and the
    /// event bus's relay and consumer simply try again later.
    /// </para>
    /// </summary>
    public static TBuilder AddLibraryRabbitMQ<TBuilder>(this TBuilder builder, string connectionName)
        where TBuilder : IHostApplicationBuilder
    {
        var uri = new Uri(builder.Configuration.GetRequiredConnectionString(connectionName));
        var factory = new ConnectionFactory
        {
            Uri = uri,
            ClientProvidedName = builder.Environment.ApplicationName,
            AutomaticRecoveryEnabled = true,
            TopologyRecoveryEnabled = true,
            NetworkRecoveryInterval = TimeSpan.FromSeconds(2),
            RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
        };
        builder.Services.AddSingleton(new RabbitMQConnection(factory));

        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            connectionName,
            sp => new RabbitMQHealthCheck(sp.GetRequiredService<RabbitMQConnection>()),
            failureStatus: HealthStatus.Degraded,
            tags: null,
            timeout: TimeSpan.FromSeconds(5)));
        return builder;
    }

    private sealed class RabbitMQHealthCheck(RabbitMQConnection connection) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var open = await connection.GetAsync(cancellationToken);
                return open.IsOpen
                    ? HealthCheckResult.Healthy($"Connected to {open.Endpoint}")
                    : new HealthCheckResult(context.Registration.FailureStatus, "Connection is recovering");
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, ex.Message, ex);
            }
        }
    }
}

/// <summary>
/// The service's one AMQP connection, opened on first use (not at start, so a broker that starts
/// later is no start-up failure) and recovered by the client library after it drops.
/// </summary>
public sealed class RabbitMQConnection(ConnectionFactory factory) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    /// <summary>Completed (and replaced) each time the client library has recovered the connection.</summary>
    private TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConnectionFactory Factory => factory;

    public async Task<IConnection> GetAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } existing)
        {
            return existing;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_connection is null)
            {
                var opened = await factory.CreateConnectionAsync(cancellationToken);
                opened.RecoverySucceededAsync += (_, _) =>
                {
                    Interlocked.Exchange(ref _recovered, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                    return Task.CompletedTask;
                };
                _connection = opened;
            }
            return _connection;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A user of the connection's pause before it tries again after a failure: <paramref name="backoff"/>,
    /// cut short when the client library recovers the dropped connection meanwhile (it tries every
    /// <see cref="ConnectionFactory.NetworkRecoveryInterval"/>), or, for a connection never opened,
    /// when the pause itself opens it (tried as often). A relay or a consumer backing off
    /// through a long broker outage (up to its longest backoff between attempts) thus resumes as
    /// soon as the broker is reachable again, not up to one whole backoff later. Real time, not the
    /// app's TimeProvider: a test's frozen clock must not freeze the bus. Never throws; returns
    /// early when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async Task PauseAsync(TimeSpan backoff, CancellationToken cancellationToken)
    {
        // Taken before looking at the connection: a recovery after this line completes it.
        var recovered = Volatile.Read(ref _recovered).Task;
        var delay = Task.Delay(backoff, cancellationToken);
        var connection = _connection;
        if (connection is { IsOpen: false })
        {
            await Task.WhenAny(delay, recovered);
        }
        else if (connection is null)
        {
            // Never opened (the broker was unreachable since the service started): no library
            // recovers it, so the pause tries to open it as often as the library would retry a
            // dropped one, and ends once it is open.
            var opened = OpenWhileAsync(delay, cancellationToken);
            await Task.WhenAny(delay, opened);
        }
        else
        {
            // Open: the failure was not the connection's; nothing to wait for but the backoff.
            await delay.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Tries to open the connection every recovery interval until <paramref name="until"/> completes; completes once it is open.</summary>
    private async Task OpenWhileAsync(Task until, CancellationToken cancellationToken)
    {
        var interval = factory.NetworkRecoveryInterval > TimeSpan.Zero ? factory.NetworkRecoveryInterval : TimeSpan.FromSeconds(5);
        try
        {
            while (await Task.WhenAny(until, Task.Delay(interval, cancellationToken)) != until && !cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await GetAsync(cancellationToken);
                    return;
                }
                catch (Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    // Still unreachable: again after the next interval.
                }
            }
        }
        catch (Exception)
        {
            // Stopping (cancelled, or the connection disposed): the caller's pause ends anyway.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is { } connection)
        {
            await connection.CloseAsync();
            connection.Dispose();
        }
        _gate.Dispose();
    }
}
