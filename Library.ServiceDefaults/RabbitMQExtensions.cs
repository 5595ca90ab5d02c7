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
    /// <summary>Cancelled by <see cref="DisposeAsync"/>: ends the opener below.</summary>
    private readonly CancellationTokenSource _disposing = new();
    private IConnection? _connection;
    /// <summary>The one loop opening a connection never opened, shared by every pausing user (<see cref="PauseAsync"/>).</summary>
    private Task? _opener;
    private readonly Lock _openerLock = new();
    private static readonly Task Never = new TaskCompletionSource().Task;
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
            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
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
            // recovers it, so one opener per connection (not one per pausing relay lane or
            // consumer) tries to open it as often as the library would retry a dropped one, and
            // every pause ends once it is open.
            await Task.WhenAny(delay, Opener());
        }
        else
        {
            // Open: the failure was not the connection's; nothing to wait for but the backoff.
            await delay.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>The running opener, or a new one when none runs (the last one ended: open, or disposed).</summary>
    private Task Opener()
    {
        lock (_openerLock)
        {
            if (_disposing.IsCancellationRequested)
            {
                return Never; // disposed: a pause is its whole backoff, as for an open connection
            }
            if (_opener is not { IsCompleted: false })
            {
                _opener = Task.Run(OpenAsync);
            }
            return _opener;
        }
    }

    /// <summary>Tries to open the connection every recovery interval (the first try after one) until it is open or disposed.</summary>
    private async Task OpenAsync()
    {
        var interval = factory.NetworkRecoveryInterval > TimeSpan.Zero ? factory.NetworkRecoveryInterval : TimeSpan.FromSeconds(5);
        try
        {
            var stopping = _disposing.Token;
            while (_connection is null)
            {
                await Task.Delay(interval, stopping);
                try
                {
                    await GetAsync(stopping);
                }
                catch (Exception) when (!stopping.IsCancellationRequested)
                {
                    // Still unreachable: again after the next interval.
                }
            }
        }
        catch (Exception)
        {
            // Disposed: the pauses end with their own backoff or cancellation.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? opener;
        lock (_openerLock)
        {
            if (_disposing.IsCancellationRequested)
            {
                return; // disposed already
            }
            _disposing.Cancel(); // under the opener's lock: no opener starts after this
            opener = _opener;
        }
        if (opener is not null)
        {
            await opener; // never throws
        }
        // Under the gate: a GetAsync opening the connection right now finishes first, and any
        // later one finds the connection disposed; no connection is opened that nobody closes.
        await _gate.WaitAsync();
        try
        {
            if (_connection is { } connection)
            {
                await connection.CloseAsync();
                connection.Dispose();
            }
        }
        finally
        {
            _gate.Release();
        }
        _gate.Dispose();
        _disposing.Dispose();
    }
}
