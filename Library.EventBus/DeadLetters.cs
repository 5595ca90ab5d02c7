using System.Globalization;
using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Library.EventBus;

/// <summary>One service's dead-letter queue and how many messages wait in it.</summary>
public sealed record DeadLetterCount(string Service, string Queue, uint Messages);

/// <summary>A dead-lettered message as the operator sees it (the message stays in its queue).</summary>
public sealed record DeadLetter(string? MessageId, string? EventName, string? Reason, string? OriginalRoutingKey, int Retries, int Replays, string Body);

/// <summary>
/// The operator's view of the dead-letter queues (<c>&lt;service&gt;.dead-letter</c>, filled by the
/// consumer after <see cref="EventBusOptions.MaxRetries"/> failed deliveries, or at once for a
/// message it cannot read): count them, look at their messages with the reason they failed, and,
/// once the cause is fixed, move them back to the service's own queue. A replayed message keeps its
/// ID, body, type and headers (trace context included), so the inbox still applies it at most once:
/// replaying one that was applied after all changes nothing. Its retry count starts again from 0;
/// <c>x-replayed</c> counts replays. Each message is acknowledged in the dead-letter queue only
/// after the broker confirmed its copy: a crash in between duplicates it, never loses it.
/// </summary>
public sealed class DeadLetters(IConnection connection, EventBusTopology topology, string queuePrefix = "")
{
    private const string ReplaysHeader = "x-replayed";
    private const string RetryCountHeader = "x-retry-count";

    /// <summary>Every service's dead-letter queue of the topology (those not declared yet are left out).</summary>
    public async Task<IReadOnlyList<DeadLetterCount>> ListAsync(CancellationToken ct = default)
    {
        var queues = new List<DeadLetterCount>();
        foreach (var service in topology.Queues.Keys.Order(StringComparer.Ordinal))
        {
            var queue = DeadLetterQueueOf(service);
            // A failed passive declare closes its channel: one channel per look.
            await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
            try
            {
                var declared = await channel.QueueDeclarePassiveAsync(queue, ct);
                queues.Add(new DeadLetterCount(service, queue, declared.MessageCount));
            }
            catch (OperationInterruptedException)
            {
                // Not declared yet: no service of this topology has connected.
            }
        }
        return queues;
    }

    /// <summary>
    /// Up to <paramref name="max"/> messages from the head of a service's dead-letter queue, left
    /// where they are: taken unacknowledged and released by closing the channel (a release does
    /// not count as a failed delivery, so looking never uses up a quorum queue's delivery limit).
    /// </summary>
    public async Task<IReadOnlyList<DeadLetter>> PeekAsync(string service, int max = 20, CancellationToken ct = default)
    {
        var queue = DeadLetterQueueOf(Service(service));
        var letters = new List<DeadLetter>();
        await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        while (letters.Count < max && await channel.BasicGetAsync(queue, autoAck: false, ct) is { } message)
        {
            var headers = message.BasicProperties.Headers;
            letters.Add(new DeadLetter(
                message.BasicProperties.MessageId,
                message.BasicProperties.Type,
                Text(headers, "x-dead-letter-reason"),
                Text(headers, "x-original-routing-key"),
                Number(headers, RetryCountHeader),
                Number(headers, ReplaysHeader),
                Encoding.UTF8.GetString(message.Body.Span)));
        }
        await channel.CloseAsync(ct);
        return letters;
    }

    /// <summary>
    /// Moves the messages now in a service's dead-letter queue (at most <paramref name="max"/>)
    /// back to the service's queue; answers how many. Messages that fail again and come back to the
    /// dead-letter queue meanwhile are not taken a second time: only as many as were there at the start.
    /// </summary>
    public async Task<int> ReplayAsync(string service, int? max = null, CancellationToken ct = default)
    {
        var name = Service(service);
        var target = queuePrefix + name;
        var queue = DeadLetterQueueOf(name);
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(
            publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct);
        // The service's queue must exist, or the copies would be dropped (mandatory: returned).
        await channel.QueueDeclarePassiveAsync(target, ct);
        var waiting = (await channel.QueueDeclarePassiveAsync(queue, ct)).MessageCount;
        var limit = Math.Min(waiting, (uint)Math.Max(0, max ?? int.MaxValue));
        var moved = 0;
        while (moved < limit && await channel.BasicGetAsync(queue, autoAck: false, ct) is { } message)
        {
            var headers = new Dictionary<string, object?>(message.BasicProperties.Headers ?? new Dictionary<string, object?>());
            var originalRoutingKey = Text(headers, "x-original-routing-key");
            headers.Remove("x-dead-letter-reason");
            headers.Remove("x-original-routing-key");
            headers.Remove(RetryCountHeader);
            headers[ReplaysHeader] = Number(headers, ReplaysHeader) + 1;
            var properties = new BasicProperties(message.BasicProperties)
            {
                Headers = headers,
                DeliveryMode = DeliveryModes.Persistent,
                // The consumer reads the event's name from the type, else the routing key, which
                // is the queue's own name once sent through the default exchange.
                Type = message.BasicProperties.Type ?? originalRoutingKey,
            };
            // Awaits the broker's confirmation (tracking is on); then the dead letter goes.
            await channel.BasicPublishAsync("", target, mandatory: true, properties, message.Body, ct);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, ct);
            moved++;
        }
        return moved;
    }

    /// <summary>A service of the topology, named as such or by its (dead-letter) queue.</summary>
    private string Service(string name)
    {
        var service = name;
        if (service.EndsWith(".dead-letter", StringComparison.Ordinal))
        {
            service = service[..^".dead-letter".Length];
        }
        if (queuePrefix.Length > 0 && service.StartsWith(queuePrefix, StringComparison.Ordinal))
        {
            service = service[queuePrefix.Length..];
        }
        return topology.Queues.ContainsKey(service)
            ? service
            : throw new ArgumentException($"No queue of the topology is called {name}: one of {string.Join(", ", topology.Queues.Keys)}.", nameof(name));
    }

    private string DeadLetterQueueOf(string service) => queuePrefix + service + ".dead-letter";

    private static string? Text(IDictionary<string, object?>? headers, string key) =>
        headers is not null && headers.TryGetValue(key, out var value)
            ? value switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                null => null,
                _ => Convert.ToString(value, CultureInfo.InvariantCulture),
            }
            : null;

    private static int Number(IDictionary<string, object?>? headers, string key) =>
        headers is not null && headers.TryGetValue(key, out var value) && value is not null
            ? value is byte[] bytes ? int.Parse(Encoding.UTF8.GetString(bytes), CultureInfo.InvariantCulture) : Convert.ToInt32(value, CultureInfo.InvariantCulture)
            : 0;
}
