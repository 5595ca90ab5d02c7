using System.Text;
using System.Text.Json;
using RabbitMQ.Client;

namespace Library.TestSupport;

/// <summary>Puts an event on a test exchange as another service's outbox relay would.</summary>
public static class Broker
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task PublishAsync(string exchange, string eventName, object integrationEvent, Guid eventId)
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        var properties = new BasicProperties { Type = eventName, MessageId = eventId.ToString(), DeliveryMode = DeliveryModes.Persistent, ContentType = "application/json" };
        await channel.BasicPublishAsync(exchange, eventName, mandatory: true, properties, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(integrationEvent, Json)));
    }
}

/// <summary>
/// Removes a test host's exchange and queues from the shared test broker. Every host declares
/// the whole topology under its own prefix (three quorum queues per service); without this a
/// long-lived test broker collects hundreds of them, and RabbitMQ on two cores was seen to stop
/// answering during a storm of declarations on top of them.
/// </summary>
public static class BrokerCleanup
{
    public static async Task DeleteTopologyAsync(string connectionString, string exchange, string queuePrefix)
    {
        try
        {
            var factory = new ConnectionFactory
            {
                Uri = new Uri(connectionString),
                RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                ContinuationTimeout = TimeSpan.FromSeconds(5),
            };
            await using var connection = await factory.CreateConnectionAsync();
            foreach (var service in Library.EventBus.LibraryTopology.Create().Queues.Keys)
            {
                foreach (var queue in new[] { queuePrefix + service, queuePrefix + service + ".retry", queuePrefix + service + ".dead-letter" })
                {
                    // A channel per deletion: deleting a queue that is not there closes the channel on
                    // some RabbitMQ versions.
                    await using var channel = await connection.CreateChannelAsync();
                    try
                    {
                        await channel.QueueDeleteAsync(queue, ifUnused: false, ifEmpty: false);
                    }
                    catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
                    {
                    }
                }
            }
            await using (var channel = await connection.CreateChannelAsync())
            {
                await channel.ExchangeDeleteAsync(exchange, ifUnused: false);
            }
        }
        catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.BrokerUnreachableException or RabbitMQ.Client.Exceptions.OperationInterruptedException or IOException or TimeoutException)
        {
            // A test that stopped the broker (or a broker gone at the end of the run): nothing to clean.
        }
    }
}
