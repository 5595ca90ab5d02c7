using System.Text;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;

namespace Library.EventBus.Tests;

/// <summary>
/// Handlers whose statements the bus sends in one round trip with the inbox row
/// (<see cref="IIntegrationEventStatements{TEvent}"/>): still exactly once, still all or nothing.
/// </summary>
public sealed class StatementHandlerTests
{
    private static string Json(TallyCounted e) => System.Text.Json.JsonSerializer.Serialize(e, Outbox.Json);

    [Fact]
    public async Task Each_event_is_applied_once_by_two_replicas_receiving_every_event_twice()
    {
        await using var harness = await BusHarness.CreateAsync();
        await harness.StartConsumerAsync();
        await harness.StartConsumerAsync();
        var events = Enumerable.Range(0, 200).Select(i => new TallyCounted(Guid.CreateVersion7(), $"tally {i}")).ToList();

        // Every event twice (a re-delivery), the copies side by side: the two replicas' parallel
        // deliveries often hold both at once, so one waits on the other's uncommitted inbox row.
        foreach (var e in events)
        {
            await harness.PublishRawAsync("test.tally-counted", Json(e), e.Id.ToString());
            await harness.PublishRawAsync("test.tally-counted", Json(e), e.Id.ToString());
        }

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Set<InboxMessage>().CountAsync() == 200, TimeSpan.FromSeconds(60), "200 distinct events seen");
        await BusHarness.WaitUntilAsync(async () => await harness.QueueDepthAsync() == 0, TimeSpan.FromSeconds(30), "queue drained");
        var tallies = await db.Tallies.AsNoTracking().ToDictionaryAsync(t => t.Key, t => t.Times);
        Assert.Equal(200, tallies.Count);
        Assert.All(events, e => Assert.Equal(1, tallies[e.Key]));

        // Told once per event, after its commit, with the rows its statement changed.
        var applied = harness.Applied.Entries;
        Assert.Equal(200, applied.Count);
        Assert.Equal(events.Select(e => e.Id).Order(), applied.Select(a => a.EventId).Order());
        Assert.All(applied, a => Assert.Equal([1], a.Rows!));
        Assert.Empty(await harness.DrainDeadLettersAsync());
    }

    /// <summary>
    /// Publishes the events while no consumer runs (the queue declared by one started and
    /// stopped before), so a consumer started afterwards receives them as fast as it takes them.
    /// </summary>
    private static async Task<IHost> ConsumeBacklogAsync(BusHarness harness, IEnumerable<TallyCounted> events)
    {
        await harness.StopAsync(await harness.StartConsumerAsync());
        foreach (var e in events)
        {
            await harness.PublishRawAsync("test.tally-counted", Json(e), e.Id.ToString());
        }
        return await harness.StartConsumerAsync();
    }

    /// <summary>How many transactions wrote the inbox rows (rows one transaction wrote carry its ID, xmin).</summary>
    private static Task<long> InboxTransactionsAsync(TestDbContext db, IEnumerable<Guid> eventIds) =>
        db.Database.SqlQuery<long>($"SELECT count(DISTINCT xmin::text)::bigint AS \"Value\" FROM inbox_messages WHERE event_id = ANY({eventIds.ToArray()})").SingleAsync();

    [Fact]
    public async Task Deliveries_that_arrive_together_share_a_transaction_and_each_is_applied_once()
    {
        await using var harness = await BusHarness.CreateAsync();
        var events = Enumerable.Range(0, 100).Select(i => new TallyCounted(Guid.CreateVersion7(), $"together {i}")).ToList();
        await ConsumeBacklogAsync(harness, events);

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => harness.Applied.Entries.Count == 100, TimeSpan.FromSeconds(60), "100 events applied");
        var tallies = await db.Tallies.AsNoTracking().ToDictionaryAsync(t => t.Key, t => t.Times);
        Assert.All(events, e => Assert.Equal(1, tallies[e.Key]));
        Assert.Equal(events.Select(e => e.Id).Order(), harness.Applied.Entries.Select(a => a.EventId).Order());
        Assert.All(harness.Applied.Entries, a => Assert.Equal([1], a.Rows!));
        // Four deliveries at a time (EventBus:ConsumerConcurrency): the ones that wait while a
        // transaction runs share the next. Alone, each event was a transaction of its own.
        var transactions = await InboxTransactionsAsync(db, events.Select(e => e.Id));
        Assert.True(transactions <= 75, $"{transactions} transactions for 100 events");
        Assert.Empty(await harness.DrainDeadLettersAsync());
    }

    [Fact]
    public async Task A_failing_event_among_others_that_share_a_transaction_fails_alone()
    {
        await using var harness = await BusHarness.CreateAsync();
        harness.Faults.Fail("together poison", times: -1);
        var events = Enumerable.Range(0, 60).Select(i => new TallyCounted(Guid.CreateVersion7(), i == 30 ? "together poison" : $"together {i}")).ToList();
        var poison = events[30];
        var others = events.Where(e => e != poison).ToList();
        await ConsumeBacklogAsync(harness, events);

        var deadLetters = new List<RabbitMQ.Client.BasicGetResult>();
        await BusHarness.WaitUntilAsync(async () =>
        {
            deadLetters.AddRange(await harness.DrainDeadLettersAsync());
            return deadLetters.Count >= 1 && harness.Applied.Entries.Count >= others.Count;
        }, TimeSpan.FromSeconds(60), "59 applied and the poison dead-lettered");

        await using var db = harness.NewContext();
        var tallies = await db.Tallies.AsNoTracking().ToDictionaryAsync(t => t.Key, t => t.Times);
        Assert.All(others, e => Assert.Equal(1, tallies[e.Key]));
        Assert.False(tallies.ContainsKey(poison.Key));
        Assert.False(await db.Set<InboxMessage>().AnyAsync(m => m.EventId == poison.Id));
        Assert.Equal(others.Select(e => e.Id).Order(), harness.Applied.Entries.Select(a => a.EventId).Order());
        Assert.Equal(poison.Id.ToString(), Assert.Single(deadLetters).BasicProperties.MessageId);
        // The others still shared transactions.
        var transactions = await InboxTransactionsAsync(db, others.Select(e => e.Id));
        Assert.True(transactions < others.Count, $"{transactions} transactions for {others.Count} events");
        Assert.Empty(await harness.DrainDeadLettersAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_delivery_waits_for_an_uncommitted_inbox_row_of_its_event_and_applies_only_if_that_rolls_back(bool commits)
    {
        await using var harness = await BusHarness.CreateAsync();
        var consumer = await harness.StartConsumerAsync();
        var e = new TallyCounted(Guid.CreateVersion7(), "in flight elsewhere");
        // Another delivery of the same event, in flight: its inbox row written, not committed.
        await using var other = await HeldTransaction.BeginAsync(harness.Database,
            "INSERT INTO inbox_messages (event_id, handler, handled_at) VALUES (@id, @handler, now())",
            ("id", e.Id), ("handler", typeof(TallyCountedHandler).FullName!));

        await harness.PublishRawAsync("test.tally-counted", Json(e), e.Id.ToString());
        await other.WaitUntilSomeoneWaitsAsync("the delivery waiting on the inbox row's key");
        if (commits)
        {
            await other.CommitAsync();
        }
        else
        {
            await other.RollbackAsync();
        }

        // A graceful stop lets the delivery in flight finish and be acknowledged (the queue's depth
        // counts only messages not yet delivered: it was 0 while the delivery still waited, and the
        // rolled-back case read the tallies before the delivery had applied the event).
        await harness.StopAsync(consumer);
        Assert.Equal(0u, await harness.QueueDepthAsync());
        await using var db = harness.NewContext();
        // Committed: the other delivery applied it (here, without a counter), so this one is a
        // duplicate. Rolled back: this one applies it.
        Assert.Equal(commits ? 0 : 1, await db.Tallies.CountAsync(t => t.Key == e.Key));
        Assert.Equal(commits ? [] : [e.Id], harness.Applied.Entries.Select(a => a.EventId));
        Assert.Equal(1, await db.Set<InboxMessage>().CountAsync(m => m.EventId == e.Id));
    }

    [Fact]
    public async Task A_failing_statement_undoes_the_ones_before_it_and_the_inbox_row()
    {
        await using var harness = await BusHarness.CreateAsync();
        await harness.StartConsumerAsync();
        harness.Faults.Fail("fails once", times: 1);
        harness.Faults.Fail("always fails", times: -1);
        var once = new TallyCounted(Guid.CreateVersion7(), "fails once");
        var always = new TallyCounted(Guid.CreateVersion7(), "always fails");
        await harness.PublishRawAsync("test.tally-counted", Json(once), once.Id.ToString());
        await harness.PublishRawAsync("test.tally-counted", Json(always), always.Id.ToString());

        var deadLetters = new List<RabbitMQ.Client.BasicGetResult>();
        await BusHarness.WaitUntilAsync(async () =>
        {
            deadLetters.AddRange(await harness.DrainDeadLettersAsync());
            return deadLetters.Count >= 1;
        }, TimeSpan.FromSeconds(30), "the event that always fails dead-lettered");
        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Tallies.AnyAsync(t => t.Key == once.Key), TimeSpan.FromSeconds(30), "the event that failed once applied on its retry");

        // Its first delivery raised the counter, then failed: the retry found nothing of it.
        Assert.Equal(1, await db.Tallies.Where(t => t.Key == once.Key).Select(t => t.Times).SingleAsync());
        // The one that always failed left no counter and no inbox row, and nobody was told it applied.
        Assert.False(await db.Tallies.AnyAsync(t => t.Key == always.Key));
        Assert.False(await db.Set<InboxMessage>().AnyAsync(m => m.EventId == always.Id));
        Assert.Equal([once.Id], harness.Applied.Entries.Select(a => a.EventId));
        var letter = Assert.Single(deadLetters);
        Assert.Equal(always.Id.ToString(), letter.BasicProperties.MessageId);
        Assert.Contains("division by zero", Encoding.UTF8.GetString((byte[])letter.BasicProperties.Headers!["x-dead-letter-reason"]!), StringComparison.Ordinal);
    }
}
