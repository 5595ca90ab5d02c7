using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;

namespace Library.EventBus.Tests;

/// <summary>The operator's dead-letter command against the real broker: look, fix, replay.</summary>
public sealed class DeadLettersTests
{
    [Fact]
    public async Task A_dead_letter_replayed_after_the_fix_is_applied_exactly_once_and_the_queue_is_left_empty()
    {
        await using var harness = await BusHarness.CreateAsync();
        var publisher = await harness.StartPublisherAsync();
        await harness.StartConsumerAsync();
        // A bug: every delivery of this note fails, retries included.
        harness.Faults.Fail("broken until fixed", times: -1);
        var broken = await BusHarness.AddNoteAsync(publisher, "broken until fixed");
        var fine = await BusHarness.AddNoteAsync(publisher, "fine");

        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        var deadLetters = new DeadLetters(connection, harness.Topology);
        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => (await deadLetters.ListAsync()).Single().Messages == 1, TimeSpan.FromSeconds(30), "the broken note dead-lettered");
        Assert.True(await db.Applications.AnyAsync(a => a.EventId == fine.Id));

        // Look: the reason is there, and looking leaves the message where it is (twice over).
        for (var look = 0; look < 2; look++)
        {
            var letter = Assert.Single(await deadLetters.PeekAsync(harness.Consumer));
            Assert.Equal(broken.Id.ToString(), letter.MessageId);
            Assert.Equal(EventNames.Of<NoteAdded>(), letter.EventName);
            Assert.Contains("set to fail", letter.Reason, StringComparison.Ordinal);
            Assert.Equal(2, letter.Retries);
            Assert.Contains("broken until fixed", letter.Body, StringComparison.Ordinal);
        }
        // A peeked message goes back to the queue when the peeking channel closes: the broker does
        // that a moment after the close returns.
        await BusHarness.WaitUntilAsync(async () => (await deadLetters.ListAsync()).Single().Messages == 1, TimeSpan.FromSeconds(30), "the peeked note back in the queue");

        // The fix is deployed; the operator replays the queue (by the command, as from a shell).
        harness.Faults.Fail("broken until fixed", times: 0);
        var output = new StringWriter();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:messaging"] = TestServers.RabbitMQ,
        }).Build();
        var exitCode = await DeadLettersCommand.RunIfAskedAsync(["dead-letters", "replay", harness.Consumer + ".dead-letter"], configuration, harness.Topology, output);
        Assert.Equal(0, exitCode);
        Assert.StartsWith("1 message(s) moved back", output.ToString(), StringComparison.Ordinal);

        await BusHarness.WaitUntilAsync(async () => await db.Applications.AnyAsync(a => a.EventId == broken.Id), TimeSpan.FromSeconds(30), "the replayed note applied");
        // A copy of it dead-lettered again meanwhile (say, a second replica had sent one there
        // before the fix): replaying it changes nothing, the inbox knows the event.
        await PublishToDeadLetterQueueAsync(harness, broken);
        Assert.Equal(1, await deadLetters.ReplayAsync(harness.Consumer));
        await BusHarness.WaitUntilAsync(async () => await harness.QueueDepthAsync() == 0, TimeSpan.FromSeconds(30), "the duplicate consumed");

        Assert.Equal(1, (await db.Applications.AsNoTracking().SingleAsync(a => a.EventId == broken.Id)).Times);
        Assert.Equal(0u, (await deadLetters.ListAsync()).Single().Messages);
        Assert.Empty(await harness.DrainDeadLettersAsync());

        // And the listing, as the operator sees it.
        output.GetStringBuilder().Clear();
        Assert.Equal(0, await DeadLettersCommand.RunIfAskedAsync(["dead-letters", "list"], configuration, harness.Topology, output));
        Assert.Equal($"{harness.Consumer}.dead-letter\t0", output.ToString().Trim());
        Assert.Null(await DeadLettersCommand.RunIfAskedAsync([], configuration, harness.Topology, output));
        Assert.Equal(2, await DeadLettersCommand.RunIfAskedAsync(["dead-letters", "replay", "no-such-service"], configuration, harness.Topology, output));
    }

    private static async Task PublishToDeadLetterQueueAsync(BusHarness harness, NoteAdded note)
    {
        var factory = new ConnectionFactory { Uri = new Uri(TestServers.RabbitMQ) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        var properties = new BasicProperties
        {
            Type = EventNames.Of<NoteAdded>(),
            MessageId = note.Id.ToString(),
            DeliveryMode = DeliveryModes.Persistent,
            Headers = new Dictionary<string, object?> { ["x-dead-letter-reason"] = "set to fail", ["x-retry-count"] = 2 },
        };
        var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(note, Outbox.Json);
        await channel.BasicPublishAsync("", harness.Consumer + ".dead-letter", mandatory: true, properties, body);
    }
}
