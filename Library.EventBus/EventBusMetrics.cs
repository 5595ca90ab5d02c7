using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Library.EventBus;

/// <summary>Traces and counters of the event bus (exported with the service's telemetry).</summary>
public sealed class EventBusMetrics
{
    public const string Name = "Library.EventBus";
    public static readonly ActivitySource ActivitySource = new(Name);

    private readonly Counter<long> _published;
    private readonly Counter<long> _consumed;
    private readonly Counter<long> _duplicates;
    private readonly Counter<long> _retried;
    private readonly Counter<long> _deadLettered;
    private long _backlog;

    public EventBusMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Name);
        _published = meter.CreateCounter<long>("library.eventbus.published", description: "Events the broker confirmed");
        _consumed = meter.CreateCounter<long>("library.eventbus.consumed", description: "Events applied by a handler");
        _duplicates = meter.CreateCounter<long>("library.eventbus.duplicates", description: "Re-deliveries the inbox recognised and skipped");
        _retried = meter.CreateCounter<long>("library.eventbus.retried", description: "Deliveries that failed and were scheduled again");
        _deadLettered = meter.CreateCounter<long>("library.eventbus.dead_lettered", description: "Messages moved to the dead-letter queue");
        meter.CreateObservableGauge("library.eventbus.outbox.backlog", () => Volatile.Read(ref _backlog), description: "Outbox rows not yet sent");
    }

    public void Published(string eventName, int count = 1) => _published.Add(count, new KeyValuePair<string, object?>("event", eventName));
    public void Consumed(string eventName) => _consumed.Add(1, new KeyValuePair<string, object?>("event", eventName));
    public void Duplicate(string eventName) => _duplicates.Add(1, new KeyValuePair<string, object?>("event", eventName));
    public void Retried(string eventName) => _retried.Add(1, new KeyValuePair<string, object?>("event", eventName));
    public void DeadLettered(string eventName) => _deadLettered.Add(1, new KeyValuePair<string, object?>("event", eventName));
    public void Backlog(long pending) => Volatile.Write(ref _backlog, pending);
}
