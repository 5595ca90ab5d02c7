using System.Diagnostics;
using System.Text;
using Library.ServiceDefaults;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;

namespace Library.EventBus.Tests;

/// <summary>
/// One test's world: its own database, exchange and queues on the real servers, and a way to
/// start "service" hosts (publisher, consumers) that use the bus exactly as the services do.
/// </summary>
public sealed class BusHarness : IAsyncDisposable
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private readonly List<IHost> _hosts = [];

    private BusHarness(TestDatabase database) => Database = database;

    public TestDatabase Database { get; }
    public Faults Faults { get; } = new();
    public AppliedLog Applied { get; } = new();
    public string Exchange => $"test.events.{_suffix}";
    public string Publisher => $"test-publisher-{_suffix}";
    public string Consumer => $"test-consumer-{_suffix}";

    /// <summary>Every test's topology: the consumer's queue receives both test events.</summary>
    public EventBusTopology Topology => new EventBusTopology()
        .Queue(Consumer, EventNames.Of<NoteAdded>(), EventNames.Of<ShelfChanged>(), EventNames.Of<TallyCounted>());

    public static async Task<BusHarness> CreateAsync()
    {
        var harness = new BusHarness(await TestDatabase.CreateAsync("eventbus"));
        await using var db = harness.NewContext();
        await db.Database.EnsureCreatedAsync();
        return harness;
    }

    public TestDbContext NewContext() => new(new DbContextOptionsBuilder<TestDbContext>()
        .UseNpgsql(Database.ConnectionString)
        .UseSnakeCaseNamingConvention()
        .Options);

    /// <summary>Starts a host of the publishing service (it consumes nothing).</summary>
    public Task<IHost> StartPublisherAsync(string? messaging = null, IDictionary<string, string?>? settings = null) =>
        StartAsync(Publisher, messaging, handlers: false, settings);

    /// <summary>Starts a replica of the consuming service.</summary>
    public Task<IHost> StartConsumerAsync(string? messaging = null, IDictionary<string, string?>? settings = null) =>
        StartAsync(Consumer, messaging, handlers: true, settings);

    private async Task<IHost> StartAsync(string service, string? messaging, bool handlers, IDictionary<string, string?>? settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:testdb"] = Database.ConnectionString,
            ["ConnectionStrings:messaging"] = messaging ?? TestServers.RabbitMQ,
            ["EventBus:Exchange"] = Exchange,
            ["EventBus:MaxRetries"] = "2",
            ["EventBus:RetryDelay"] = "00:00:00.200",
            ["EventBus:MaxBackoff"] = "00:00:01",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(Faults);
        builder.Services.AddSingleton(Applied);
        builder.AddLibraryNpgsqlDbContext<TestDbContext>("testdb");
        builder.AddLibraryRabbitMQ("messaging");
        var bus = builder.AddEventBus<TestDbContext>(service, Topology);
        if (handlers)
        {
            bus.AddHandler<NoteAdded, NoteAddedHandler>().AddHandler<ShelfChanged, ShelfChangedHandler>()
                .AddStatementHandler<TallyCounted, TallyCountedHandler>();
        }

        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            // A host that did not start (a setting refused) cannot be stopped: only disposed.
            host.Dispose();
            throw;
        }
        _hosts.Add(host);
        if (messaging is null)
        {
            await WaitForTopologyAsync();
        }
        return host;
    }

    /// <summary>The bus declares its topology in the background; raw publishes need it in place.</summary>
    private async Task WaitForTopologyAsync()
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await WaitUntilAsync(async () =>
        {
            await using var channel = await connection.CreateChannelAsync();
            try
            {
                await channel.QueueDeclarePassiveAsync(Consumer + ".dead-letter");
                return true;
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the bus declared its topology");
    }

    /// <summary>One use case of the publishing service: a note and its event, one SaveChanges.</summary>
    public static async Task<NoteAdded> AddNoteAsync(IHost publisher, string text)
    {
        await using var scope = publisher.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TestDbContext>();
        var note = new Note { Id = Guid.CreateVersion7(), Text = text };
        var added = new NoteAdded(note.Id, text);
        db.Notes.Add(note);
        db.AddEvent(added);
        await db.SaveChangesAsync();
        return added;
    }

    /// <summary>Publishes straight to the exchange, bypassing the outbox (to stage duplicates, disorder, poison).</summary>
    public async Task PublishRawAsync(string eventName, string json, string? messageId = null)
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        var properties = new BasicProperties { Type = eventName, MessageId = messageId ?? Guid.NewGuid().ToString(), DeliveryMode = DeliveryModes.Persistent };
        await channel.BasicPublishAsync(Exchange, eventName, mandatory: true, properties, Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Takes every message now in the consumer's dead-letter queue.</summary>
    public async Task<List<BasicGetResult>> DrainDeadLettersAsync()
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var messages = new List<BasicGetResult>();
        while (await channel.BasicGetAsync(Consumer + ".dead-letter", autoAck: true) is { } message)
        {
            messages.Add(message);
        }
        return messages;
    }

    /// <summary>Messages ready or unacknowledged in the consumer's queue and its retry queue.</summary>
    public async Task<uint> QueueDepthAsync()
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var main = await channel.QueueDeclarePassiveAsync(Consumer);
        var retry = await channel.QueueDeclarePassiveAsync(Consumer + ".retry");
        return main.MessageCount + retry.MessageCount;
    }

    public async Task<long> PendingOutboxRowsAsync()
    {
        await using var db = NewContext();
        return await db.Set<OutboxMessage>().LongCountAsync(m => m.SentAt == null);
    }

    /// <summary>Polls until the condition holds or the deadline passes (never a fixed sleep).</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"Not within {timeout}: {what}");
            }
            await Task.Delay(50);
        }
    }

    public async Task StopAsync(IHost host)
    {
        _hosts.Remove(host);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await host.StopAsync(cts.Token);
        host.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts.ToList())
        {
            await StopAsync(host);
        }

        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using (var connection = await factory.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            foreach (var queue in new[] { Consumer, Consumer + ".retry", Consumer + ".dead-letter" })
            {
                await channel.QueueDeleteAsync(queue);
            }
            await channel.ExchangeDeleteAsync(Exchange);
        }
        await Database.DisposeAsync();
    }
}
