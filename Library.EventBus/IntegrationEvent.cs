using System.Collections.Concurrent;
using System.Reflection;

namespace Library.EventBus;

/// <summary>
/// Base of every integration event: a plain record with an ID (the idempotency key consumers
/// record in their inbox) and the time it happened. Its routing key comes from
/// <see cref="EventNameAttribute"/>.
/// </summary>
public abstract record IntegrationEvent
{
    public Guid Id { get; init; } = Guid.CreateVersion7();
    public DateTimeOffset OccurredAt { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>
/// An event that carries the state of one thing (a title's availability, a reader's profile).
/// <see cref="Version"/> grows with every change of that thing, so a consumer keeps the highest
/// version it applied and ignores an older one that arrives late.
/// </summary>
public interface IVersionedEvent
{
    long Version { get; }
}

/// <summary>The routing key of an event type, e.g. <c>loan.created</c>.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class EventNameAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

public static class EventNames
{
    private static readonly ConcurrentDictionary<Type, string> Cache = new();

    public static string Of<TEvent>() where TEvent : IntegrationEvent => Of(typeof(TEvent));

    public static string Of(Type eventType) => Cache.GetOrAdd(eventType, static t =>
        t.GetCustomAttribute<EventNameAttribute>()?.Name
        ?? throw new InvalidOperationException($"{t.Name} has no [EventName(\"...\")]: every integration event needs its routing key."));
}
