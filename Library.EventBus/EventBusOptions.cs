namespace Library.EventBus;

/// <summary>Configuration section <c>EventBus</c>; every value has a working default.</summary>
public sealed class EventBusOptions
{
    public const string SectionName = "EventBus";

    /// <summary>This service's name: its queue is called after it.</summary>
    public string ServiceName { get; set; } = "";

    /// <summary>The library's one durable topic exchange.</summary>
    public string Exchange { get; set; } = "library.events";

    /// <summary><c>quorum</c> (replicated; RabbitMQ 3.8+) or <c>classic</c> (durable).</summary>
    public string QueueType { get; set; } = "quorum";

    /// <summary>Deliveries of one message after the first, before it is dead-lettered.</summary>
    public int MaxRetries { get; set; } = 5;

    /// <summary>Wait before each retry (the retry queue's message TTL).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Unacknowledged messages a consumer holds at once.</summary>
    public ushort PrefetchCount { get; set; } = 32;

    /// <summary>
    /// Deliveries a replica handles at once. More than one reorders events, which is harmless by
    /// design: state-carrying events are versioned and every event is applied at most once.
    /// </summary>
    public ushort ConsumerConcurrency { get; set; } = 4;

    /// <summary>
    /// Most events of statement handlers (<see cref="IIntegrationEventStatements{TEvent}"/>) a
    /// replica applies in one transaction: those that arrive while its previous one runs share
    /// the next (at most <see cref="ConsumerConcurrency"/> are in flight). 1 applies each alone.
    /// </summary>
    public int SharedTransaction { get; set; } = 32;

    /// <summary>Outbox rows the relay claims and sends per round trip.</summary>
    public int PublishBatchSize { get; set; } = 200;

    /// <summary>
    /// Lanes of one relay replica that claim and send at once, each with its own channel. With
    /// one, rows committed while it claims or sends wait for that; a second lane claims and sends
    /// them meanwhile (<c>FOR UPDATE SKIP LOCKED</c> keeps the lanes apart, as it keeps replicas
    /// apart). Lanes reorder events between batches as replicas always could, which the consumers
    /// absorb (state-carrying events are versioned, every event is applied at most once).
    /// </summary>
    public int RelayLanes { get; set; } = 2;

    /// <summary>
    /// Batches a lane has sent whose confirms it has not seen yet (a quorum queue confirms after
    /// its fsync): the lane goes on claiming and sending while they come, up to this many.
    /// </summary>
    public int RelayBatchesInFlight { get; set; } = 8;

    /// <summary>
    /// How long claimed rows are the claiming lane's: no other lane or replica sends them before it
    /// ends. Rows whose send failed are released at once; those of a process that died wait this long.
    /// </summary>
    public TimeSpan RelayLease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often the relay looks for rows when nothing woke it (a commit in this process wakes it
    /// at once; this catches rows committed by a replica that died before sending them).
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between attempts while the broker is unreachable.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Sent outbox rows and inbox rows are deleted after this long.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Put before every queue name (tests give each service host its own, so hosts sharing a
    /// broker never take each other's messages).
    /// </summary>
    public string QueuePrefix { get; set; } = "";

    public string QueueName => QueuePrefix + ServiceName;
    public string RetryQueueName => QueueName + ".retry";
    public string DeadLetterQueueName => QueueName + ".dead-letter";
}
