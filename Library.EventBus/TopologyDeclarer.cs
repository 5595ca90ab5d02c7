using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Library.EventBus;

/// <summary>
/// Declares the exchange and, for every service of the topology, its queue (bound by routing
/// key), its retry queue (a delay: each retry waits there for its expiration, the consumer's
/// <see cref="EventBusOptions.RetryDelay"/>, then flows back to the service's queue) and its
/// dead-letter queue (read by an operator). Declarations must agree between services:
/// <see cref="EventBusOptions.QueueType"/> has to be the same everywhere.
/// </summary>
public sealed class TopologyDeclarer(EventBusTopology topology, IOptions<EventBusOptions> options)
{
    private readonly EventBusOptions _options = options.Value;

    public async Task DeclareAsync(IChannel channel, CancellationToken ct)
    {
        await channel.ExchangeDeclareAsync(_options.Exchange, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: ct);
        foreach (var (service, eventNames) in topology.Queues)
        {
            var queue = _options.QueuePrefix + service;
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, DurableQueueArguments(), cancellationToken: ct);
            foreach (var eventName in eventNames)
            {
                await channel.QueueBindAsync(queue, _options.Exchange, eventName, cancellationToken: ct);
            }

            // No TTL on the queue (each retry carries its own expiration): the arguments do not
            // depend on any service's settings, so every service declares them identically.
            await channel.QueueDeclareAsync(queue + ".retry", durable: true, exclusive: false, autoDelete: false, new Dictionary<string, object?>
            {
                ["x-queue-type"] = "classic",
                ["x-dead-letter-exchange"] = "",
                ["x-dead-letter-routing-key"] = queue,
            }, cancellationToken: ct);

            await channel.QueueDeclareAsync(queue + ".dead-letter", durable: true, exclusive: false, autoDelete: false, DurableQueueArguments(), cancellationToken: ct);
        }
    }

    private Dictionary<string, object?> DurableQueueArguments() => new()
    {
        ["x-queue-type"] = string.Equals(_options.QueueType, "classic", StringComparison.OrdinalIgnoreCase) ? "classic" : "quorum",
    };
}
