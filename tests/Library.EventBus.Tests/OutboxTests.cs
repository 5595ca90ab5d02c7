using Microsoft.EntityFrameworkCore;

namespace Library.EventBus.Tests;

public sealed class OutboxTests
{
    [Fact]
    public async Task The_event_row_commits_with_the_change_it_announces()
    {
        await using var harness = await BusHarness.CreateAsync();
        await using var db = harness.NewContext();
        var note = new Note { Id = Guid.CreateVersion7(), Text = "kept" };

        db.Notes.Add(note);
        db.AddEvent(new NoteAdded(note.Id, note.Text));
        await db.SaveChangesAsync(TestContext.Current.CancellationToken);

        await using var check = harness.NewContext();
        var row = await check.Set<OutboxMessage>().SingleAsync(TestContext.Current.CancellationToken);
        Assert.Equal("test.note-added", row.EventName);
        Assert.Contains(note.Id.ToString(), row.Payload, StringComparison.Ordinal);
        Assert.Null(row.SentAt);
    }

    [Fact]
    public async Task A_use_case_that_fails_leaves_no_event_behind()
    {
        await using var harness = await BusHarness.CreateAsync();
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.CreateVersion7();
        await using (var first = harness.NewContext())
        {
            first.Notes.Add(new Note { Id = id, Text = "first" });
            await first.SaveChangesAsync(ct);
        }

        // The change violates the primary key: its event must not be written either.
        await using (var failing = harness.NewContext())
        {
            failing.Notes.Add(new Note { Id = id, Text = "duplicate" });
            failing.AddEvent(new NoteAdded(id, "duplicate"));
            await Assert.ThrowsAsync<DbUpdateException>(() => failing.SaveChangesAsync(ct));
        }

        // A transaction rolled back after SaveChanges takes its outbox row with it.
        await using (var rolledBack = harness.NewContext())
        {
            await using var transaction = await rolledBack.Database.BeginTransactionAsync(ct);
            rolledBack.Notes.Add(new Note { Id = Guid.CreateVersion7(), Text = "undone" });
            rolledBack.AddEvent(new NoteAdded(Guid.CreateVersion7(), "undone"));
            await rolledBack.SaveChangesAsync(ct);
            await transaction.RollbackAsync(ct);
        }

        await using var check = harness.NewContext();
        Assert.Equal(0, await check.Set<OutboxMessage>().CountAsync(ct));
        Assert.Equal(1, await check.Notes.CountAsync(ct));
    }

    [Fact]
    public async Task A_commit_wakes_the_relay_without_waiting_for_its_poll()
    {
        await using var harness = await BusHarness.CreateAsync();
        // The poll is set far beyond the test's deadlines: only the commit signal can get these
        // events out in time.
        var publisher = await harness.StartPublisherAsync(settings: new Dictionary<string, string?> { ["EventBus:PollInterval"] = "01:00:00" });
        await harness.StartConsumerAsync();

        for (var i = 0; i < 5; i++)
        {
            await BusHarness.AddNoteAsync(publisher, $"prompt-{i}");
            await BusHarness.WaitUntilAsync(async () => await harness.PendingOutboxRowsAsync() == 0, TimeSpan.FromSeconds(20), $"event {i} sent");
        }

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() == 5, TimeSpan.FromSeconds(20), "5 events applied");
    }

    [Fact]
    public async Task A_relay_lease_of_zero_is_refused_at_start_with_the_setting_named()
    {
        await using var harness = await BusHarness.CreateAsync();
        var refused = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            harness.StartPublisherAsync(settings: new Dictionary<string, string?> { ["EventBus:RelayLease"] = "00:00:00" }));
        Assert.Contains("EventBus:RelayLease", refused.Message, StringComparison.Ordinal);
    }
}
