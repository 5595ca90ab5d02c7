using System.Diagnostics;
using System.Text.Json;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Library.EventBus;

/// <summary>Applies one event to the service's own data. Runs inside the bus's transaction.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "An integration event handler, as eShop names it; not a .NET event delegate.")]
public interface IIntegrationEventHandler<in TEvent> where TEvent : IntegrationEvent
{
    Task HandleAsync(TEvent integrationEvent, CancellationToken cancellationToken);
}

/// <summary>
/// A handler whose whole effect is a few SQL statements that need nothing read between them (a
/// conditional update, an upsert, an advisory lock before one). The bus sends them in one round
/// trip, after the event's inbox row, as one implicit transaction: the inbox row and the effect
/// commit together or not at all, as with <see cref="IIntegrationEventHandler{TEvent}"/>, but
/// without a BEGIN, a round trip per statement and a COMMIT (a handler with a transaction of its
/// own costs its service a thread wake-up per round trip: bench/README.md, issue 15, session 32).
/// A duplicate (the inbox row exists, or a concurrent delivery of the same event commits it
/// first) fails the inbox row's insert, and nothing of the statements is applied; PostgreSQL's
/// log shows it as a unique violation on <c>inbox_messages</c> (duplicates are rare: a re-delivery
/// after a consumer or broker failure, a relay's lease ending before its confirms came).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "An integration event handler, as eShop names it; not a .NET event delegate.")]
public interface IIntegrationEventStatements<in TEvent> where TEvent : IntegrationEvent
{
    /// <summary>The statements that apply the event, in order; each reads what the ones before it wrote.</summary>
    IReadOnlyList<FormattableString> Statements(TEvent integrationEvent);

    /// <summary>
    /// Where the statements' row locks fall in one order of every lock the handlers of a service
    /// take (compared ordinally), or null. Events that share one transaction
    /// (<see cref="EventBusOptions.SharedTransaction"/>) apply in this order, so two shared
    /// transactions of two replicas take the same rows in the same order and do not deadlock:
    /// an event that locks two rows (a title, then a loan) is placed by the first, and the rows
    /// after it must sort after that place too (the catalog's: "title/0" for the title's row,
    /// "title/1/loan" for a loan of it). Without one, an event comes after the others.
    /// </summary>
    string? LockOrder(TEvent integrationEvent) => null;

    /// <summary>
    /// Runs once the statements have committed (for example, to invalidate a cache), with the rows
    /// each changed; with null when a retry of the same delivery (its connection failed) found the
    /// inbox row that its own first attempt committed, so the counts are unknown. Not run for a duplicate.
    /// </summary>
    Task AppliedAsync(TEvent integrationEvent, IReadOnlyList<int>? rowsAffected);
}

/// <summary>
/// One handler of one event type, resolved and run in its own scope: either with a transaction
/// of the bus's (<see cref="Invoke"/>) or as statements sent in one round trip (<see cref="Statements"/>).
/// </summary>
internal sealed record HandlerRegistration(
    string EventName,
    Type EventType,
    string HandlerName,
    Func<IServiceProvider, IntegrationEvent, CancellationToken, Task>? Invoke,
    Func<IServiceProvider, IntegrationEvent, IReadOnlyList<FormattableString>>? Statements = null,
    Func<IServiceProvider, IntegrationEvent, IReadOnlyList<int>?, Task>? Applied = null,
    Func<IServiceProvider, IntegrationEvent, string?>? LockOrder = null);

/// <summary>
/// Consumes this service's queue with manual acknowledgements. Each handler applies an event in
/// one database transaction that also records the event ID in the inbox, so a re-delivered event
/// changes nothing. A failing delivery goes to the retry queue (back after a delay) up to
/// <see cref="EventBusOptions.MaxRetries"/> times, then to the dead-letter queue; a message that
/// cannot be read at all goes there at once. The next message is never held up by a bad one.
/// </summary>
internal sealed class EventConsumer<TContext>(
    IServiceScopeFactory scopes,
    RabbitMQConnection connection,
    TopologyDeclarer topology,
    IEnumerable<HandlerRegistration> registrations,
    EventBusMetrics metrics,
    IOptions<EventBusOptions> options,
    TimeProvider time,
    ILogger<EventConsumer<TContext>> logger) : BackgroundService
    where TContext : DbContext
{
    private const string RetryCountHeader = "x-retry-count";
    private readonly EventBusOptions _options = options.Value;
    private readonly ILookup<string, HandlerRegistration> _handlers = registrations.ToLookup(r => r.EventName, StringComparer.Ordinal);

    /// <summary>How long a stopping consumer lets the deliveries it has started finish.</summary>
    private static readonly TimeSpan FinishGrace = TimeSpan.FromSeconds(15);

    /// <summary>Cancelled when the deliveries being handled at shutdown did not finish in <see cref="FinishGrace"/>.</summary>
    private readonly CancellationTokenSource _abort = new();
    private int _inFlight;

    /// <summary>Statement handlers' events waiting to be sent in one transaction (<see cref="ApplyStatementsAsync"/>).</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<PendingStatements> _pending = new();

    /// <summary>Held by the delivery that sends the waiting events: one shared transaction at a time per replica.</summary>
    private readonly SemaphoreSlim _sending = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var amqp = await connection.GetAsync(stoppingToken);
                await using var channel = await amqp.CreateChannelAsync(
                    new CreateChannelOptions(
                        publisherConfirmationsEnabled: true,
                        publisherConfirmationTrackingEnabled: true,
                        consumerDispatchConcurrency: _options.ConsumerConcurrency),
                    stoppingToken);
                await topology.DeclareAsync(channel, stoppingToken);
                if (_handlers.Count == 0)
                {
                    // Publishes only: the topology is declared, nothing to consume.
                    return;
                }

                var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                channel.ChannelShutdownAsync += (_, args) =>
                {
                    closed.TrySetResult();
                    return Task.CompletedTask;
                };
                await channel.BasicQosAsync(0, _options.PrefetchCount, global: false, stoppingToken);
                var consumer = new AsyncEventingBasicConsumer(channel);
                // Deliveries run on their own token: a stop lets the ones started finish (FinishCurrentAsync).
                consumer.ReceivedAsync += async (_, delivery) =>
                {
                    Interlocked.Increment(ref _inFlight);
                    try
                    {
                        await OnDeliveryAsync(channel, delivery, _abort.Token);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _inFlight);
                    }
                };
                var consumerTag = await channel.BasicConsumeAsync(_options.QueueName, autoAck: false, consumer, stoppingToken);
                logger.LogInformation("Consuming {Queue} for {Events}", _options.QueueName, _handlers.Select(h => h.Key));
                failures = 0;

                // Connection drops are recovered by the client library (consumers included); a
                // closed channel is not, so start over.
                try
                {
                    await closed.Task.WaitAsync(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    await FinishCurrentAsync(channel, consumerTag);
                    throw;
                }
                logger.LogWarning("Channel of {Queue} closed; reopening", _options.QueueName);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(_options.MaxBackoff.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures, 10))));
                logger.LogWarning("Consumer of {Queue} cannot connect (attempt {Attempt}), retrying in {Delay} or once the connection has recovered: {Reason}", _options.QueueName, failures, delay, ex.Message);
                await connection.PauseAsync(delay, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Graceful stop: no new deliveries (basic.cancel), the ones being handled finish and are
    /// acknowledged, up to <see cref="FinishGrace"/>; what the channel still holds unacknowledged
    /// goes back to the queue when it closes, for another replica.
    /// </summary>
    private async Task FinishCurrentAsync(IChannel channel, string consumerTag)
    {
        using var grace = new CancellationTokenSource(FinishGrace);
        try
        {
            if (channel.IsOpen)
            {
                await channel.BasicCancelAsync(consumerTag, noWait: false, grace.Token);
            }
            while (Volatile.Read(ref _inFlight) > 0 && !grace.IsCancellationRequested)
            {
                await Task.Delay(20, CancellationToken.None); // polling a counter in memory
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RabbitMQ.Client.Exceptions.RabbitMQClientException or ObjectDisposedException)
        {
            logger.LogWarning("Consumer of {Queue} could not stop cleanly: {Reason}", _options.QueueName, ex.Message);
        }
        var left = Volatile.Read(ref _inFlight);
        if (left > 0)
        {
            logger.LogWarning("Consumer of {Queue} stopping with {Count} deliveries unfinished after {Grace}; they will be redelivered", _options.QueueName, left, FinishGrace);
        }
        await _abort.CancelAsync();
    }

    public override void Dispose()
    {
        _abort.Dispose();
        _sending.Dispose();
        base.Dispose();
    }

    private async Task OnDeliveryAsync(IChannel channel, BasicDeliverEventArgs delivery, CancellationToken stoppingToken)
    {
        var eventName = delivery.BasicProperties.Type ?? delivery.RoutingKey;
        var headers = delivery.BasicProperties.Headers;
        var retries = headers is not null && headers.TryGetValue(RetryCountHeader, out var raw) ? Convert.ToInt32(raw, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var parent = TraceHeaders.Extract(headers);
        using var activity = EventBusMetrics.ActivitySource.StartActivity($"{eventName} process", ActivityKind.Consumer, parent);
        activity?.SetTag("messaging.system", "rabbitmq");
        activity?.SetTag("messaging.destination.name", _options.QueueName);
        activity?.SetTag("messaging.message.id", delivery.BasicProperties.MessageId);
        var traceId = activity?.TraceId.ToString() ?? (parent != default ? parent.TraceId.ToString() : null);
        using var scope = logger.BeginScope(new Dictionary<string, object?>
        {
            ["EventName"] = eventName,
            ["EventId"] = delivery.BasicProperties.MessageId,
            ["TraceId"] = traceId,
        });

        IntegrationEvent? integrationEvent;
        var handlers = _handlers[eventName].ToList();
        try
        {
            integrationEvent = handlers.Count == 0
                ? null
                : (IntegrationEvent?)JsonSerializer.Deserialize(delivery.Body.Span, handlers[0].EventType, Outbox.Json);
        }
        catch (JsonException ex)
        {
            logger.LogError(ex, "Event {EventName} {EventId} is unreadable; dead-lettering it (trace {TraceId})", eventName, delivery.BasicProperties.MessageId, traceId);
            await DeadLetterAsync(channel, delivery, eventName, $"unreadable: {ex.Message}", stoppingToken);
            return;
        }

        if (integrationEvent is null)
        {
            logger.LogError("No handler for event {EventName} {EventId} in {Queue}; dead-lettering it (trace {TraceId})", eventName, delivery.BasicProperties.MessageId, _options.QueueName, traceId);
            await DeadLetterAsync(channel, delivery, eventName, "no handler for this event", stoppingToken);
            return;
        }

        try
        {
            foreach (var handler in handlers)
            {
                await ApplyOnceAsync(handler, integrationEvent, stoppingToken);
            }
            await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false, stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            activity?.AddException(ex);
            activity?.SetStatus(ActivityStatusCode.Error);
            if (retries < _options.MaxRetries)
            {
                logger.LogWarning(ex, "Handling {EventName} {EventId} failed (delivery {Delivery} of {Max}); retrying in {Delay} (trace {TraceId})",
                    eventName, integrationEvent.Id, retries + 1, _options.MaxRetries + 1, _options.RetryDelay, traceId);
                await RepublishAsync(channel, delivery, _options.RetryQueueName, retries + 1, null, stoppingToken, expiration: _options.RetryDelay);
                metrics.Retried(eventName);
            }
            else
            {
                logger.LogError(ex, "Handling {EventName} {EventId} failed {Count} times; dead-lettering it (trace {TraceId})",
                    eventName, integrationEvent.Id, retries + 1, traceId);
                await DeadLetterAsync(channel, delivery, eventName, ex.Message, stoppingToken);
            }
        }
    }

    /// <summary>The handler's effect and the inbox row commit together, or neither does.</summary>
    private async Task ApplyOnceAsync(HandlerRegistration handler, IntegrationEvent integrationEvent, CancellationToken ct)
    {
        if (handler.Statements is not null)
        {
            await ApplyStatementsAsync(handler, integrationEvent, ct);
            return;
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var afterCommit = scope.ServiceProvider.GetRequiredService<AfterCommit>();
        var applied = await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            afterCommit.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            // Claim the event for this handler first: a concurrent duplicate waits here on the
            // primary key until this transaction ends, then finds the row and does nothing.
            var claimed = await db.Database.ExecuteSqlAsync(
                $"INSERT INTO inbox_messages (event_id, handler, handled_at) VALUES ({integrationEvent.Id}, {handler.HandlerName}, {time.GetUtcNow()}) ON CONFLICT DO NOTHING",
                token);
            if (claimed == 0)
            {
                return false;
            }

            await handler.Invoke!(scope.ServiceProvider, integrationEvent, token);
            await db.SaveChangesAsync(token);
            await transaction.CommitAsync(token);
            return true;
        }, ct);

        if (applied)
        {
            await afterCommit.RunAsync();
            metrics.Consumed(handler.EventName);
        }
        else
        {
            Skipped(handler, integrationEvent);
        }
    }

    private void Skipped(HandlerRegistration handler, IntegrationEvent integrationEvent)
    {
        metrics.Duplicate(handler.EventName);
        logger.LogInformation("Event {EventName} {EventId} was already applied by {Handler}; skipped", handler.EventName, integrationEvent.Id, handler.HandlerName);
    }

    /// <summary>A statement handler's event waiting for a shared transaction, and what became of it.</summary>
    private sealed class PendingStatements(HandlerRegistration handler, IntegrationEvent integrationEvent)
    {
        public HandlerRegistration Handler { get; } = handler;
        public IntegrationEvent Event { get; } = integrationEvent;

        /// <summary>Set by the delivery that sent it: applied (with its rows, null when unknown), or to be applied alone.</summary>
        public TaskCompletionSource<(bool Alone, IReadOnlyList<int>? Rows)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// A statement handler's event, applied in one transaction with the other statement handlers'
    /// events that arrived while the replica's previous transaction of them ran (up to
    /// <see cref="EventBusOptions.SharedTransaction"/>), as a group commit: one such transaction
    /// at a time per replica, and under load its concurrent deliveries share one round trip and
    /// one commit instead of one each (bench/README.md, issue 15, session 38); idle, an event
    /// goes at once, alone. The delivery that takes the turn sends every waiting event, its own
    /// among them; the others wait for it, then hear of the commit and acknowledge as before.
    /// Every event of a transaction that failed on a statement or met a duplicate is then
    /// applied alone (<see cref="ApplyStatementsOnceAsync"/>): the inbox still applies each
    /// event once, and a failing event fails alone (its retries and dead letter are its own).
    /// </summary>
    private async Task ApplyStatementsAsync(HandlerRegistration handler, IntegrationEvent integrationEvent, CancellationToken ct)
    {
        var mine = new PendingStatements(handler, integrationEvent);
        _pending.Enqueue(mine);
        while (!mine.Done.Task.IsCompleted)
        {
            await _sending.WaitAsync(ct);
            try
            {
                if (!mine.Done.Task.IsCompleted)
                {
                    await SendPendingAsync(ct);
                }
            }
            finally
            {
                _sending.Release();
            }
        }

        var (alone, rows) = await mine.Done.Task;
        if (alone)
        {
            await ApplyStatementsOnceAsync(handler, integrationEvent, ct);
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        await handler.Applied!(scope.ServiceProvider, integrationEvent, rows);
        metrics.Consumed(handler.EventName);
    }

    /// <summary>Sends the waiting events (the caller's among them) in one transaction.</summary>
    private async Task SendPendingAsync(CancellationToken ct)
    {
        var batch = new List<PendingStatements>();
        while (batch.Count < _options.SharedTransaction && _pending.TryDequeue(out var next))
        {
            batch.Add(next);
        }
        if (batch.Count == 0)
        {
            return;
        }
        try
        {
            var rows = await SendTogetherAsync(batch, ct);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(rows is null ? (Alone: true, Rows: null) : (Alone: false, Rows: rows[i]));
            }
        }
        catch (Exception ex)
        {
            // The database did not answer through the retries (or the consumer is stopping):
            // each delivery fails as it would alone, without trying again first.
            batch.ForEach(p => p.Done.TrySetException(ex));
        }
    }

    /// <summary>
    /// Every event's inbox row (in the order of their IDs, so two replicas' duplicate deliveries
    /// wait on each other without a deadlock), then every event's statements (in the order of
    /// their <see cref="IIntegrationEventStatements{TEvent}.LockOrder"/>), in one batch that
    /// PostgreSQL runs as one implicit transaction. Returns each event's rows changed (null rows:
    /// a retry found its own first attempt committed), or null when the events are to be applied
    /// alone: a duplicate among them (its inbox row exists) or a statement that failed for a
    /// reason that is not the connection's; nothing of the batch is applied then.
    /// </summary>
    private async Task<IReadOnlyList<int>?[]?> SendTogetherAsync(List<PendingStatements> batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var statements = batch.Select(p => p.Handler.Statements!(scope.ServiceProvider, p.Event)).ToArray();
        var inboxOrder = Enumerable.Range(0, batch.Count).OrderBy(i => batch[i].Event.Id).ThenBy(i => batch[i].Handler.HandlerName, StringComparer.Ordinal).ToArray();
        var lockOrder = Enumerable.Range(0, batch.Count)
            .Select(i => (Index: i, Key: batch[i].Handler.LockOrder?.Invoke(scope.ServiceProvider, batch[i].Event)))
            .OrderBy(k => k.Key is null).ThenBy(k => k.Key, StringComparer.Ordinal).ThenBy(k => batch[k.Index].Event.Id).Select(k => k.Index).ToArray();
        var handledAt = time.GetUtcNow();
        var attempts = 0;
        return await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            attempts++;
            await db.Database.OpenConnectionAsync(token);
            try
            {
                var connection = (NpgsqlConnection)db.Database.GetDbConnection();
                try
                {
                    await using var npgsqlBatch = new NpgsqlBatch(connection);
                    if (db.Database.GetCommandTimeout() is { } timeout)
                    {
                        npgsqlBatch.Timeout = timeout;
                    }
                    foreach (var i in inboxOrder)
                    {
                        npgsqlBatch.BatchCommands.Add(InboxRow(batch[i].Handler, batch[i].Event, handledAt));
                    }
                    var first = new int[batch.Count];
                    foreach (var i in lockOrder)
                    {
                        first[i] = npgsqlBatch.BatchCommands.Count;
                        foreach (var statement in statements[i])
                        {
                            npgsqlBatch.BatchCommands.Add(Statement(statement));
                        }
                    }
                    await npgsqlBatch.ExecuteNonQueryAsync(token);
                    var rows = new IReadOnlyList<int>?[batch.Count];
                    for (var i = 0; i < batch.Count; i++)
                    {
                        rows[i] = Enumerable.Range(first[i], statements[i].Count).Select(c => npgsqlBatch.BatchCommands[c].RecordsAffected).ToArray();
                    }
                    return rows;
                }
                catch (PostgresException ex) when (ex is { SqlState: PostgresErrorCodes.UniqueViolation, TableName: "inbox_messages" })
                {
                    // After a failed connection, this batch's own first attempt may have committed:
                    // then every row is its own (one transaction), and the counts are unknown.
                    var own = attempts > 1 && await OwnInboxRowAsync(connection, batch[0].Event.Id, batch[0].Handler.HandlerName, handledAt, token);
                    return own ? new IReadOnlyList<int>?[batch.Count] : null;
                }
                catch (PostgresException ex) when (!PostgresExtensions.IsTransientForFailover(ex) && !PostgresExtensions.IsStalePreparedStatement(ex))
                {
                    logger.LogDebug("A shared transaction of {Count} events failed ({SqlState}); applying each alone", batch.Count, ex.SqlState);
                    return null;
                }
            }
            finally
            {
                await db.Database.CloseConnectionAsync();
            }
        }, ct);
    }

    /// <summary>The event's inbox row for the handler, a plain INSERT: a duplicate fails it.</summary>
    private static NpgsqlBatchCommand InboxRow(HandlerRegistration handler, IntegrationEvent integrationEvent, DateTimeOffset handledAt) =>
        Statement($"INSERT INTO inbox_messages (event_id, handler, handled_at) VALUES ({integrationEvent.Id}, {handler.HandlerName}, {handledAt})");

    /// <summary>
    /// <see cref="IIntegrationEventStatements{TEvent}"/>: the inbox row (a plain INSERT: a duplicate
    /// fails it, which aborts the rest) and the handler's statements in one batch, which PostgreSQL
    /// runs as one implicit transaction. A concurrent delivery of the same event waits on the
    /// inbox row's key until the other commits, then fails as a duplicate, as with a transaction.
    /// </summary>
    private async Task ApplyStatementsOnceAsync(HandlerRegistration handler, IntegrationEvent integrationEvent, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var statements = handler.Statements!(scope.ServiceProvider, integrationEvent);
        // One value for every attempt: a retry that meets the inbox row tells its own first
        // attempt's commit (same handled_at) from a duplicate delivery's (another).
        var handledAt = time.GetUtcNow();
        var attempts = 0;
        var (applied, rows) = await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            attempts++;
            await db.Database.OpenConnectionAsync(token);
            try
            {
                var connection = (NpgsqlConnection)db.Database.GetDbConnection();
                try
                {
                    await using var batch = new NpgsqlBatch(connection);
                    if (db.Database.GetCommandTimeout() is { } timeout)
                    {
                        batch.Timeout = timeout;
                    }
                    batch.BatchCommands.Add(InboxRow(handler, integrationEvent, handledAt));
                    foreach (var statement in statements)
                    {
                        batch.BatchCommands.Add(Statement(statement));
                    }
                    await batch.ExecuteNonQueryAsync(token);
                    var affected = new int[statements.Count];
                    for (var i = 0; i < affected.Length; i++)
                    {
                        affected[i] = batch.BatchCommands[i + 1].RecordsAffected;
                    }
                    return (Applied: true, Rows: (IReadOnlyList<int>?)affected);
                }
                catch (PostgresException ex) when (ex is { SqlState: PostgresErrorCodes.UniqueViolation, TableName: "inbox_messages" })
                {
                    // Applied before: by another delivery (a duplicate), or, after a failed
                    // connection, by this delivery's own first attempt (then the counts are unknown).
                    var mine = attempts > 1 && await OwnInboxRowAsync(connection, integrationEvent.Id, handler.HandlerName, handledAt, token);
                    return (Applied: mine, Rows: (IReadOnlyList<int>?)null);
                }
            }
            finally
            {
                await db.Database.CloseConnectionAsync();
            }
        }, ct);

        if (applied)
        {
            await handler.Applied!(scope.ServiceProvider, integrationEvent, rows);
            metrics.Consumed(handler.EventName);
        }
        else
        {
            Skipped(handler, integrationEvent);
        }
    }

    /// <summary>Whether the event's inbox row for this handler is the one written with <paramref name="handledAt"/>.</summary>
    private static async Task<bool> OwnInboxRowAsync(NpgsqlConnection connection, Guid eventId, string handlerName, DateTimeOffset handledAt, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands = { Statement($"SELECT handled_at FROM inbox_messages WHERE event_id = {eventId} AND handler = {handlerName}") },
        };
        // PostgreSQL keeps microseconds (10 ticks).
        return await batch.ExecuteScalarAsync(ct) is DateTime at && Math.Abs((at - handledAt.UtcDateTime).Ticks) < 10;
    }

    /// <summary>An interpolated statement as a batch command: each hole a positional parameter ($1, $2...).</summary>
    private static NpgsqlBatchCommand Statement(FormattableString sql)
    {
        var arguments = sql.GetArguments();
        var placeholders = Enumerable.Range(1, arguments.Length).Select(i => (object)("$" + i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        var command = new NpgsqlBatchCommand(string.Format(System.Globalization.CultureInfo.InvariantCulture, sql.Format, placeholders));
        foreach (var argument in arguments)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = argument ?? DBNull.Value });
        }
        return command;
    }

    private async Task DeadLetterAsync(IChannel channel, BasicDeliverEventArgs delivery, string eventName, string reason, CancellationToken ct)
    {
        await RepublishAsync(channel, delivery, _options.DeadLetterQueueName, null, reason, ct);
        metrics.DeadLettered(eventName);
    }

    /// <summary>
    /// Copies the delivery to a queue of this service (default exchange) and, once the broker has
    /// confirmed the copy, acknowledges the original: a crash in between duplicates, never loses.
    /// </summary>
    private async Task RepublishAsync(IChannel channel, BasicDeliverEventArgs delivery, string queue, int? retryCount, string? reason, CancellationToken ct, TimeSpan? expiration = null)
    {
        var headers = new Dictionary<string, object?>(delivery.BasicProperties.Headers ?? new Dictionary<string, object?>());
        if (retryCount is { } count)
        {
            headers[RetryCountHeader] = count;
        }
        if (reason is not null)
        {
            headers["x-dead-letter-reason"] = reason.Length <= 500 ? reason : reason[..500];
            headers["x-original-routing-key"] = delivery.RoutingKey;
        }

        var properties = new BasicProperties(delivery.BasicProperties) { Headers = headers, DeliveryMode = DeliveryModes.Persistent };
        if (expiration is { } wait)
        {
            properties.Expiration = ((long)wait.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        try
        {
            await channel.BasicPublishAsync("", queue, mandatory: true, properties, delivery.Body, ct);
            await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false, ct);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            logger.LogError(ex, "Could not move {EventId} to {Queue}; returning it to the queue", delivery.BasicProperties.MessageId, queue);
            await channel.BasicNackAsync(delivery.DeliveryTag, multiple: false, requeue: true, ct);
        }
    }
}
