using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Library.EventBus;

public static class Outbox
{
    /// <summary>How event payloads are written and read (camelCase JSON).</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Raises an integration event as part of the current unit of work: it is written to the
    /// outbox by the same <c>SaveChanges</c> (and so the same transaction) as the change it
    /// announces, and sent to the broker only once that commits.
    /// </summary>
    public static void AddEvent<TEvent>(this DbContext db, TEvent integrationEvent) where TEvent : IntegrationEvent
    {
        var activity = Activity.Current;
        db.Set<OutboxMessage>().Add(new OutboxMessage
        {
            Id = integrationEvent.Id,
            EventName = EventNames.Of(integrationEvent.GetType()),
            Payload = JsonSerializer.Serialize(integrationEvent, integrationEvent.GetType(), Json),
            OccurredAt = integrationEvent.OccurredAt,
            TraceParent = activity?.Id is { } id && activity.IdFormat == ActivityIdFormat.W3C ? id : null,
            TraceState = activity?.TraceStateString,
        });
    }
}
