using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
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
/// Sends committed outbox rows to the exchange, in commit order within a batch, each confirmed by
/// the broker before its row is marked sent. A batch is claimed in one statement that leases its
/// rows (<c>next_attempt_at</c> = now + <see cref="EventBusOptions.RelayLease"/>, chosen with
/// <c>FOR UPDATE SKIP LOCKED</c>), so replicas and lanes never send the same row at the same time
/// and no transaction stays open while the broker confirms. A lane sends its next batch without
/// waiting for the confirms of the last (up to <see cref="EventBusOptions.RelayBatchesInFlight"/>);
/// its marker awaits them in order and marks the confirmed rows sent in one statement. A row whose
/// send failed is released at once; if the process dies, its leased rows are sent again once the
/// lease ends, and the consumers' inbox absorbs what had already arrived. While the broker is
/// unreachable rows simply wait. <see cref="EventBusOptions.RelayLanes"/> lanes claim at once.
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

    /// <summary>How long a stopping lane's marker waits for the confirms of what it sent.</summary>
    private static readonly TimeSpan MarkGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A batch sent and not yet marked: its rows in order, their sends (complete at the confirm),
    /// its lease's end (PostgreSQL's clock, as the claim wrote it; renewed while confirms are late).
    /// </summary>
    private sealed class InFlight(IReadOnlyList<OutboxMessage> rows, IReadOnlyList<Task> sends, DateTimeOffset leaseEnd)
    {
        public IReadOnlyList<OutboxMessage> Rows { get; } = rows;
        public IReadOnlyList<Task> Sends { get; } = sends;
        public DateTimeOffset LeaseEnd { get; set; } = leaseEnd;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(1, _options.RelayLanes)).Select(lane => Task.Run(() => RunLaneAsync(lane, stoppingToken), CancellationToken.None)));

    /// <summary>
    /// One lane: claims and sends batches until one comes back short, then waits for a commit's
    /// wake-up; its marker marks them as their confirms arrive. Lane 0 also polls every
    /// <see cref="EventBusOptions.PollInterval"/> (rows of a replica that died, leases that ended)
    /// and does the housekeeping; the other lanes only add throughput while commits keep coming,
    /// so they poll ten times less often when idle.
    /// </summary>
    private async Task RunLaneAsync(int lane, CancellationToken stoppingToken)
    {
        var failures = 0;
        IChannel? channel = null;
        var inFlight = Channel.CreateBounded<InFlight>(new BoundedChannelOptions(Math.Max(1, _options.RelayBatchesInFlight))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        // The sends and the marks outlive the stopping token by a grace: a stop lets the confirms
        // of what was sent arrive and marks them, rather than releasing rows that have arrived.
        using var sending = new CancellationTokenSource();
        var marker = Task.Run(() => MarkLoopAsync(lane, inFlight.Reader, sending.Token), CancellationToken.None);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (channel is not { IsOpen: true })
                {
                    channel?.Dispose();
                    channel = await OpenChannelAsync(stoppingToken);
                }

                while (await RelayBatchAsync(channel, inFlight.Writer, sending.Token, stoppingToken) == _options.PublishBatchSize)
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
                if (channel is not { IsOpen: true } || ex is RabbitMQClientException or IOException or SendFailedException)
                {
                    // A broker failure. (A database failure leaves the channel, and the confirms
                    // of what it sent, alone.)
                    channel?.Dispose();
                    channel = null;
                }
                await connection.PauseAsync(delay, stoppingToken);
            }
        }

        // What was sent gets its confirms (and its marks) before the channel closes, for a while.
        inFlight.Writer.TryComplete();
        try
        {
            await marker.WaitAsync(MarkGrace, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            logger.LogWarning("Outbox relay lane {Lane} stopped before the broker confirmed all it sent; those rows are sent again when their lease ends", lane);
        }
        await sending.CancelAsync();
        channel?.Dispose();
        await marker;
    }

    /// <summary>A send of the batch failed at once while the channel looked open.</summary>
    private sealed class SendFailedException(Exception inner) : Exception("A send failed: " + inner.Message, inner);

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

    /// <summary>
    /// Claims (leases) and sends one batch, and hands it to the lane's marker (waiting while
    /// <see cref="EventBusOptions.RelayBatchesInFlight"/> batches await their confirms); returns
    /// how many rows it claimed. The lease is in PostgreSQL's clock, so replicas whose clocks
    /// differ agree on when it ends.
    /// </summary>
    private async Task<int> RelayBatchAsync(IChannel channel, ChannelWriter<InFlight> inFlight, CancellationToken sending, CancellationToken ct)
    {
        List<OutboxMessage> rows;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<TContext>();
            // One statement, its own transaction: the rows are leased once it commits.
            rows = await db.Set<OutboxMessage>()
                .FromSql($"""
                    UPDATE outbox_messages SET next_attempt_at = now() + {_options.RelayLease}
                    WHERE id IN (
                        SELECT id FROM outbox_messages
                        WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= now())
                        ORDER BY sequence
                        LIMIT {_options.PublishBatchSize}
                        FOR UPDATE SKIP LOCKED)
                    RETURNING *
                    """)
                .AsNoTracking()
                .ToListAsync(ct);
        }
        if (rows.Count == 0)
        {
            return 0;
        }

        // All of the batch goes out before any confirmation is awaited; the client library keeps
        // the order on the channel. The marker observes every send, failed or not.
        rows.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        var sends = rows.Select(row => SendAsync(channel, row, sending)).ToList();
        await inFlight.WriteAsync(new InFlight(rows, sends, rows[0].NextAttemptAt!.Value), CancellationToken.None);
        if (sends.FirstOrDefault(s => s.IsFaulted) is { } failed)
        {
            // Back off rather than claim, fail and release again at once.
            throw new SendFailedException(failed.Exception!.GetBaseException());
        }
        return rows.Count;
    }

    /// <summary>
    /// A lane's marker: awaits each batch's confirms in order (renewing its lease while they are
    /// late), then marks the batch's rows in one statement per outcome: sent; routed nowhere (sent,
    /// with the reason: nothing waits for it); nacked (retried after a backoff); not sent or unknown
    /// (released for the next claim). A failed mark leaves the rows leased: sent again when the
    /// lease ends, and the consumers' inbox drops what had arrived.
    /// </summary>
    private async Task MarkLoopAsync(int lane, ChannelReader<InFlight> batches, CancellationToken sending)
    {
        await foreach (var batch in batches.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                await RenewWhileSendingAsync(batch, sending);
            }
            catch (Exception ex)
            {
                if (!sending.IsCancellationRequested)
                {
                    logger.LogWarning("Outbox relay lane {Lane} could not renew the lease of {Count} rows waiting for their confirms: {Reason}", lane, batch.Rows.Count, ex.Message);
                }
            }
            var sent = new List<Guid>();
            var unroutable = new List<Guid>();
            var nacked = new List<(OutboxMessage Row, string Error)>();
            var released = new List<Guid>();
            Exception? failure = null;
            for (var i = 0; i < batch.Rows.Count; i++)
            {
                var row = batch.Rows[i];
                try
                {
                    await batch.Sends[i];
                    sent.Add(row.Id);
                    metrics.Published(row.EventName);
                }
                catch (PublishReturnException)
                {
                    unroutable.Add(row.Id);
                    logger.LogWarning("Event {EventName} {EventId} was routed to no queue: no service subscribes to it", row.EventName, row.Id);
                }
                catch (PublishException ex)
                {
                    nacked.Add((row, Truncate($"nacked by the broker: {ex.Message}")));
                }
                catch (Exception ex)
                {
                    // The channel closed or the lane stopped: perhaps delivered, perhaps not.
                    released.Add(row.Id);
                    failure ??= ex;
                }
            }
            if (failure is not null && !sending.IsCancellationRequested)
            {
                logger.LogWarning("Outbox relay lane {Lane} released {Count} rows whose send failed, for the next claim: {Reason}", lane, released.Count, failure.Message);
            }
            // Stopped: the marks too get a grace, not the database's whole retry budget.
            using var stopping = sending.IsCancellationRequested ? new CancellationTokenSource(MarkGrace) : null;
            try
            {
                await MarkAsync(batch.LeaseEnd, sent, unroutable, nacked, released, stopping?.Token ?? CancellationToken.None);
            }
            catch (Exception ex)
            {
                logger.LogWarning("Outbox relay lane {Lane} could not mark {Count} rows; they are sent again when their lease ends: {Reason}", lane, batch.Rows.Count, ex.Message);
            }
        }
    }

    /// <summary>
    /// Waits for the batch's confirms; each time half the lease has passed without them (a broker
    /// under flow control, a slow fsync), extends the lease, as long as it is still this batch's.
    /// </summary>
    private async Task RenewWhileSendingAsync(InFlight batch, CancellationToken sending)
    {
        var all = Task.WhenAll(batch.Sends);
        var half = _options.RelayLease / 2;
        while (!all.IsCompleted)
        {
            if (await Task.WhenAny(all, Task.Delay(half, time, sending)) == all || sending.IsCancellationRequested)
            {
                return;
            }
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<TContext>();
            var ids = batch.Rows.Select(r => r.Id).ToArray();
            var renewed = await db.Database
                .SqlQuery<DateTimeOffset>($"UPDATE outbox_messages SET next_attempt_at = now() + {_options.RelayLease} WHERE id = ANY({ids}) AND next_attempt_at = {batch.LeaseEnd} AND sent_at IS NULL RETURNING next_attempt_at AS value")
                .ToListAsync(sending);
            if (renewed.Count == 0)
            {
                return; // every row's lease is someone else's now (or all were marked)
            }
            batch.LeaseEnd = renewed[0];
        }
    }

    private async Task MarkAsync(DateTimeOffset leaseEnd, List<Guid> sent, List<Guid> unroutable, List<(OutboxMessage Row, string Error)> nacked, List<Guid> released, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var now = time.GetUtcNow();
        if (sent.Count > 0)
        {
            var ids = sent.ToArray();
            await db.Database.ExecuteSqlAsync($"UPDATE outbox_messages SET sent_at = {now}, last_error = NULL WHERE id = ANY({ids}) AND sent_at IS NULL", ct);
        }
        if (unroutable.Count > 0)
        {
            var ids = unroutable.ToArray();
            await db.Database.ExecuteSqlAsync($"UPDATE outbox_messages SET sent_at = {now}, last_error = 'unroutable: no queue is bound to this event' WHERE id = ANY({ids}) AND sent_at IS NULL", ct);
        }
        foreach (var (row, error) in nacked)
        {
            var backoff = Backoff(row.Attempts + 1);
            await db.Database.ExecuteSqlAsync($"UPDATE outbox_messages SET attempts = attempts + 1, next_attempt_at = now() + {backoff}, last_error = {error} WHERE id = {row.Id} AND next_attempt_at = {leaseEnd} AND sent_at IS NULL", ct);
        }
        if (released.Count > 0)
        {
            // Only while the lease is still this batch's: after it, another claim owns the row.
            var ids = released.ToArray();
            await db.Database.ExecuteSqlAsync($"UPDATE outbox_messages SET next_attempt_at = NULL WHERE id = ANY({ids}) AND next_attempt_at = {leaseEnd} AND sent_at IS NULL", ct);
        }
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
