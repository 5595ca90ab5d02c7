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
