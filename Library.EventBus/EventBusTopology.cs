namespace Library.EventBus;

/// <summary>
/// Which service's queue receives which events. Every service declares the whole topology when
/// it connects (declarations are idempotent), so a queue exists, and keeps what is published to
/// it, before its consumer has ever started: no event is dropped for arriving "too early".
/// </summary>
public sealed class EventBusTopology
{
    private readonly Dictionary<string, HashSet<string>> _queues = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, HashSet<string>> Queues => _queues;

    /// <summary><paramref name="service"/>'s queue receives events with these routing keys.</summary>
    public EventBusTopology Queue(string service, params string[] eventNames)
    {
        if (!_queues.TryGetValue(service, out var keys))
        {
            _queues[service] = keys = new HashSet<string>(StringComparer.Ordinal);
        }
        keys.UnionWith(eventNames);
        return this;
    }

    public IReadOnlySet<string> EventsFor(string service) =>
        _queues.TryGetValue(service, out var keys) ? keys : new HashSet<string>();
}
