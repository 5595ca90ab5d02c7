using System.Diagnostics;
using System.Text;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Library.EventBus;

/// <summary>
/// Sends committed outbox rows to the exchange, in commit order, each confirmed by the broker
/// before its row is marked sent. Rows are claimed with <c>FOR UPDATE SKIP LOCKED</c> inside one
/// transaction per batch, so replicas never send the same row at the same time; if the process
/// dies after sending and before committing the mark, the rows are sent again later and the
/// consumers' inbox absorbs the duplicates. While the broker is unreachable rows simply wait.
/// <see cref="EventBusOptions.RelayLanes"/> batches are in flight at once, so rows committed while
/// one batch waits for its confirms go out without waiting for that cycle to end.
/// </summary>
internal sealed class OutboxRelay<TContext>(
    IServiceScopeFactory scopes,
    RabbitMQConnection connection,
    TopologyDeclarer topology,
    OutboxSignal signal,
    EventBusMetrics metrics,
    IOptions<EventBusOptions> options,
    TimeProvider time,
    ILogger<OutboxRelay<TContext>> logger) : BackgroundService
    where TContext : DbContext
{
    private readonly EventBusOptions _options = options.Value;
    private DateTimeOffset _nextCleanup;
    private long _nextBacklogTick;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(1, _options.RelayLanes)).Select(lane => Task.Run(() => RunLaneAsync(lane, stoppingToken), CancellationToken.None)));

    /// <summary>
    /// One lane: claims, sends and marks batches until one comes back short, then waits for a
    /// commit's wake-up. Lane 0 also polls every <see cref="EventBusOptions.PollInterval"/> (rows of
    /// a replica that died) and does the housekeeping; the other lanes only add throughput while
    /// commits keep coming, so they poll ten times less often when idle.
    /// </summary>
    private async Task RunLaneAsync(int lane, CancellationToken stoppingToken)
    {
        var failures = 0;
        IChannel? channel = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (channel is not { IsOpen: true })
                {
                    channel?.Dispose();
                    channel = await OpenChannelAsync(stoppingToken);
                }

                while (await RelayBatchAsync(channel, stoppingToken) == _options.PublishBatchSize)
                {
                    // A full batch: more may be waiting.
                }

                failures = 0;
                if (lane == 0)
                {
                    await HousekeepingAsync(stoppingToken);
                }
                await signal.WaitAsync(lane == 0 ? _options.PollInterval : _options.PollInterval * 10, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failures++;
                var delay = Backoff(failures);
                logger.LogWarning("Outbox relay lane {Lane} could not send (attempt {Attempt}), retrying in {Delay} or once the connection has recovered: {Reason}", lane, failures, delay, ex.Message);
                channel?.Dispose();
                channel = null;
                await connection.PauseAsync(delay, stoppingToken);
            }
        }
        channel?.Dispose();
    }

    private TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(_options.MaxBackoff.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures, 10))));

    private async Task<IChannel> OpenChannelAsync(CancellationToken ct)
    {
        var amqp = await connection.GetAsync(ct);
        // With confirmation tracking, BasicPublishAsync completes when the broker confirms the
        // message, and throws when it nacks (or returns a mandatory message).
        var channel = await amqp.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true),
            ct);
        await topology.DeclareAsync(channel, ct);
        return channel;
    }

    /// <summary>Claims, sends and marks one batch; returns how many rows it claimed.</summary>
    private async Task<int> RelayBatchAsync(IChannel channel, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            // One save per batch, and a failed one fails the batch (rolled back, claimed again): no
            // SAVEPOINT / RELEASE round trips around it (EF's default inside a transaction).
            db.Database.AutoSavepointsEnabled = false;
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            var now = time.GetUtcNow();
            var rows = await db.Set<OutboxMessage>()
                .FromSql($"""
                    SELECT * FROM outbox_messages
                    WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= {now})
                    ORDER BY sequence
                    LIMIT {_options.PublishBatchSize}
                    FOR UPDATE SKIP LOCKED
                    """)
                .ToListAsync(token);
            if (rows.Count == 0)
            {
                return 0;
            }

            // All of the batch goes out before any confirmation is awaited; the client library
            // keeps the order on the channel.
            var sends = rows.Select(row => SendAsync(channel, row, token)).ToList();
            var brokerFailure = default(Exception);
            for (var i = 0; i < rows.Count; i++)
            {
                var row = rows[i];
                try
                {
                    await sends[i];
                    row.SentAt = time.GetUtcNow();
                    row.LastError = null;
                    metrics.Published(row.EventName);
                }
                catch (PublishReturnException)
                {
                    // Routed nowhere: the topology binds no queue to this event, so no service
                    // consumes it. Nothing is waiting for it; do not retry forever.
                    row.SentAt = time.GetUtcNow();
                    row.LastError = "unroutable: no queue is bound to this event";
                    logger.LogWarning("Event {EventName} {EventId} was routed to no queue: no service subscribes to it", row.EventName, row.Id);
                }
                catch (PublishException ex)
                {
                    row.Attempts++;
                    row.NextAttemptAt = time.GetUtcNow() + Backoff(row.Attempts);
                    row.LastError = Truncate($"nacked by the broker: {ex.Message}");
                }
                catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or BrokerUnreachableException or IOException)
                {
                    brokerFailure ??= ex;
                }
            }

            await db.SaveChangesAsync(token);
            await transaction.CommitAsync(token);
            if (brokerFailure is not null)
            {
                throw new InvalidOperationException("The broker connection failed while sending", brokerFailure);
            }
            return rows.Count;
        }, ct);
    }

    private async Task SendAsync(IChannel channel, OutboxMessage row, CancellationToken ct)
    {
        ActivityContext.TryParse(row.TraceParent, row.TraceState, out var parent);
        using var activity = EventBusMetrics.ActivitySource.StartActivity($"{row.EventName} publish", ActivityKind.Producer, parent);
        activity?.SetTag("messaging.system", "rabbitmq");
        activity?.SetTag("messaging.destination.name", _options.Exchange);
        activity?.SetTag("messaging.rabbitmq.destination.routing_key", row.EventName);
        activity?.SetTag("messaging.message.id", row.Id.ToString());

        var headers = new Dictionary<string, object?>();
        TraceHeaders.Inject(activity, parent, headers);
        var properties = new BasicProperties
        {
            MessageId = row.Id.ToString(),
            Type = row.EventName,
            ContentType = "application/json",
            DeliveryMode = DeliveryModes.Persistent,
            Timestamp = new AmqpTimestamp(row.OccurredAt.ToUnixTimeSeconds()),
            Headers = headers,
        };
        await channel.BasicPublishAsync(_options.Exchange, row.EventName, mandatory: true, properties, Encoding.UTF8.GetBytes(row.Payload), ct);
    }

    /// <summary>
    /// Publishes the backlog gauge at most once per poll interval (the relay wakes after every
    /// commit: counting each time was a query per borrow); now and then deletes rows past retention.
    /// </summary>
    private async Task HousekeepingAsync(CancellationToken ct)
    {
        // Real time, not the app's TimeProvider: a test's frozen clock must not freeze the gauge.
        var tick = Environment.TickCount64;
        var now = time.GetUtcNow();
        if (tick < _nextBacklogTick && now < _nextCleanup)
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        if (tick >= _nextBacklogTick)
        {
            _nextBacklogTick = tick + (long)_options.PollInterval.TotalMilliseconds;
            metrics.Backlog(await db.Set<OutboxMessage>().LongCountAsync(m => m.SentAt == null, ct));
        }

        if (now < _nextCleanup)
        {
            return;
        }
        _nextCleanup = now.AddHours(1);
        var cutoff = now - _options.Retention;
        var outbox = await db.Set<OutboxMessage>().Where(m => m.SentAt < cutoff).ExecuteDeleteAsync(ct);
        var inbox = await db.Set<InboxMessage>().Where(m => m.HandledAt < cutoff).ExecuteDeleteAsync(ct);
        if (outbox + inbox > 0)
        {
            logger.LogInformation("Deleted {Outbox} sent outbox rows and {Inbox} inbox rows older than {Retention}", outbox, inbox, _options.Retention);
        }
    }

    private static string Truncate(string value) => value.Length <= 1000 ? value : value[..1000];
}
