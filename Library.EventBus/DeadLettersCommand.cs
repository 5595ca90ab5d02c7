using System.Globalization;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;

namespace Library.EventBus;

/// <summary>
/// The operator's command over <see cref="DeadLetters"/>, run by a service's own binary instead of
/// the service, with the service's configuration (<c>ConnectionStrings:messaging</c>,
/// <c>EventBus:QueuePrefix</c>) and the Library's topology:
/// <code>
/// dotnet Library.LendingService.dll dead-letters [list]
/// dotnet Library.LendingService.dll dead-letters peek SERVICE [N]
/// dotnet Library.LendingService.dll dead-letters replay SERVICE [N]
/// </code>
/// SERVICE is a service of the topology (<c>lendingservice</c>, <c>bookservice</c>) or its
/// dead-letter queue's name. Exit code 0, 2 for a usage error.
/// </summary>
public static class DeadLettersCommand
{
    public const string Name = "dead-letters";

    /// <summary>Null when <paramref name="args"/> are not this command (the service runs).</summary>
    public static async Task<int?> RunIfAskedAsync(string[] args, IConfiguration configuration, EventBusTopology topology, TextWriter output, CancellationToken ct = default)
    {
        if (args.Length == 0 || args[0] != Name)
        {
            return null;
        }
        var connectionString = configuration.GetConnectionString("messaging");
        if (string.IsNullOrEmpty(connectionString))
        {
            await output.WriteLineAsync("ConnectionStrings:messaging is not set (environment variable ConnectionStrings__messaging=amqp://user:password@host:port/vhost).");
            return 2;
        }
        var (verb, service, count) = args[1..] switch
        {
            [] => ("list", null, null),
            [var v] => (v, null, null),
            [var v, var s] => (v, s, null),
            [var v, var s, var n] => (v, s, n),
            _ => ("", (string?)null, (string?)null),
        };
        int? max = null;
        if (count is not null)
        {
            if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0)
            {
                return await UsageAsync(output, topology);
            }
            max = n;
        }
        if (verb is not ("list" or "peek" or "replay") || (verb == "list") != (service is null))
        {
            return await UsageAsync(output, topology);
        }

        var prefix = configuration[$"{EventBusOptions.SectionName}:{nameof(EventBusOptions.QueuePrefix)}"] ?? "";
        var factory = new ConnectionFactory { Uri = new Uri(connectionString), ClientProvidedName = "library dead-letters" };
        await using var connection = await factory.CreateConnectionAsync(ct);
        var deadLetters = new DeadLetters(connection, topology, prefix);
        try
        {
            switch (verb)
            {
                case "list":
                    var queues = await deadLetters.ListAsync(ct);
                    if (queues.Count == 0)
                    {
                        await output.WriteLineAsync("No dead-letter queue is declared yet (no service has connected to this broker).");
                    }
                    foreach (var queue in queues)
                    {
                        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{queue.Queue}\t{queue.Messages}"));
                    }
                    break;
                case "peek":
                    foreach (var letter in await deadLetters.PeekAsync(service!, max ?? 20, ct))
                    {
                        var body = letter.Body.Length <= 500 ? letter.Body : letter.Body[..500] + "...";
                        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"{letter.MessageId}\t{letter.EventName ?? letter.OriginalRoutingKey}\tretries {letter.Retries}\treplays {letter.Replays}\treason: {letter.Reason}\n  {body}"));
                    }
                    break;
                default:
                    var moved = await deadLetters.ReplayAsync(service!, max, ct);
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{moved} message(s) moved back to their queue"));
                    break;
            }
            return 0;
        }
        catch (ArgumentException ex)
        {
            await output.WriteLineAsync(ex.Message);
            return 2;
        }
    }

    private static async Task<int> UsageAsync(TextWriter output, EventBusTopology topology)
    {
        await output.WriteLineAsync($"usage: {Name} [list] | {Name} peek SERVICE [N] | {Name} replay SERVICE [N]   (SERVICE: {string.Join(", ", topology.Queues.Keys)})");
        return 2;
    }
}
