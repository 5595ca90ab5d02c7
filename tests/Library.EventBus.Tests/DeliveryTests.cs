using System.Diagnostics;
using System.Text;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Library.EventBus.Tests;

public sealed class DeliveryTests
{
    private static string ThroughProxy(TcpProxy proxy)
    {
        var uri = new UriBuilder(TestServers.RabbitMQ) { Port = proxy.Port };
        return uri.Uri.ToString();
    }

    private static async Task AssertEachAppliedOnce(BusHarness harness, IReadOnlyCollection<NoteAdded> events)
    {
        await using var db = harness.NewContext();
        var applications = await db.Applications.ToDictionaryAsync(a => a.EventId, a => a.Times);
        Assert.Equal(events.Count, applications.Count);
        Assert.All(events, e => Assert.Equal(1, applications[e.Id]));
    }

    [Fact]
    public async Task Events_committed_while_the_broker_is_down_all_arrive_once_it_is_back()
    {
        await using var harness = await BusHarness.CreateAsync();
        var broker = new Uri(TestServers.RabbitMQ);
        await using var proxy = new TcpProxy(broker.Host, broker.Port);
        // The broker is "down" for both services from the start: nothing reaches it.
        var publisher = await harness.StartPublisherAsync(ThroughProxy(proxy));
        await harness.StartConsumerAsync(ThroughProxy(proxy));

        var events = new List<NoteAdded>();
        for (var i = 0; i < 1000; i++)
        {
            events.Add(await BusHarness.AddNoteAsync(publisher, $"note {i}"));
        }
        Assert.Equal(1000, await harness.PendingOutboxRowsAsync());

        proxy.Restore();

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() == 1000, TimeSpan.FromSeconds(90), "1000 events applied");
        await AssertEachAppliedOnce(harness, events);
        Assert.Equal(0, await harness.PendingOutboxRowsAsync());
    }

    /// <summary>The broker behind a proxy: created not listening, <see cref="TcpProxy.Restore"/> opens it.</summary>
    private static TcpProxy BrokerProxy()
    {
        var broker = new Uri(TestServers.RabbitMQ);
        return new TcpProxy(broker.Host, broker.Port);
    }

    /// <summary>A publisher and a consumer that reach the broker only through <paramref name="proxy"/>, with long pauses.</summary>
    private static async Task<IHost> StartThroughProxyAsync(BusHarness harness, TcpProxy proxy)
    {
        var settings = new Dictionary<string, string?>
        {
            // The services' longest pause between attempts is 15 s; a minute here makes the pause
            // in progress when the broker comes back long (16 s or more after 20 s without it).
            ["EventBus:MaxBackoff"] = "00:01:00",
            // Every relay lane notices the outage within a second (lanes other than the first
            // look ten times less often), so all of them are that deep into their pauses.
            ["EventBus:PollInterval"] = "00:00:00.100",
        };
        var publisher = await harness.StartPublisherAsync(ThroughProxy(proxy), settings);
        await harness.StartConsumerAsync(ThroughProxy(proxy), settings);
        return publisher;
    }

    /// <summary>Opens the proxy, then waits (8 s at most) until <paramref name="waiting"/> is applied.</summary>
    private static async Task RestoreAndExpectAppliedAsync(TcpProxy proxy, TestDbContext db, NoteAdded waiting)
    {
        proxy.Restore();
        var back = Stopwatch.StartNew();
        // The relay and the consumer go on once the connection is open again (tried every 2 s),
        // not when their pauses end (11.5 s or more after the broker's return).
        await BusHarness.WaitUntilAsync(async () => await db.Applications.AnyAsync(a => a.EventId == waiting.Id), TimeSpan.FromSeconds(8),
            $"'{waiting.Text}' applied within 8 s of the broker's return");
        TestContext.Current.TestOutputHelper?.WriteLine($"applied {back.Elapsed.TotalSeconds:F1} s after the broker's return");
    }

    [Fact]
    public async Task After_a_long_outage_events_flow_again_once_the_connection_recovers_not_a_whole_backoff_later()
    {
        await using var harness = await BusHarness.CreateAsync();
        await using var proxy = BrokerProxy();
        proxy.Restore();
        var publisher = await StartThroughProxyAsync(harness, proxy);
        await using var db = harness.NewContext();
        await BusHarness.AddNoteAsync(publisher, "before the outage");
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() == 1, TimeSpan.FromSeconds(30), "the first event applied");

        proxy.Cut();
        // The outage lasts 20 s (a fixed fault duration, not a wait for an effect): the relay and
        // the consumer fail again and again, 0.5, 1, 2, 4, 8 s apart, then pause 16 s. The client
        // library recovers the dropped connection.
        await Task.Delay(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        var outage = await BusHarness.AddNoteAsync(publisher, "committed during the outage");
        await RestoreAndExpectAppliedAsync(proxy, db, outage);
    }

    [Fact]
    public async Task A_service_started_while_the_broker_was_unreachable_connects_once_it_is_reachable_not_a_whole_backoff_later()
    {
        await using var harness = await BusHarness.CreateAsync();
        // Not listening yet: from their start the relay and the consumer cannot open a connection,
        // so no client library has one to recover; their pauses open it.
        await using var proxy = BrokerProxy();
        var publisher = await StartThroughProxyAsync(harness, proxy);
        await using var db = harness.NewContext();
        var early = await BusHarness.AddNoteAsync(publisher, "committed before the broker was reachable");
        // 20 s unreachable (a fixed fault duration, not a wait for an effect).
        await Task.Delay(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.False(await db.Applications.AnyAsync(), "nothing can be applied without a broker");
        await RestoreAndExpectAppliedAsync(proxy, db, early);
    }

    [Fact]
    public async Task While_the_broker_holds_its_confirms_the_relay_locks_nothing_and_keeps_sending_later_commits()
    {
        await using var harness = await BusHarness.CreateAsync();
        await using var proxy = BrokerProxy();
        proxy.Restore();
        // One lane: only sending without waiting for the confirms can get the later events out.
        // A lease longer than the test, so no other claim sends them meanwhile.
        var publisher = await harness.StartPublisherAsync(ThroughProxy(proxy), new Dictionary<string, string?>
        {
            ["EventBus:RelayLanes"] = "1",
            ["EventBus:RelayLease"] = "00:05:00",
        });
        // The consumer's host has a relay on the same database too: it must not send these rows.
        await harness.StartConsumerAsync(settings: new Dictionary<string, string?> { ["EventBus:PollInterval"] = "01:00:00" });
        await using var db = harness.NewContext();
        var ct = TestContext.Current.CancellationToken;
        await BusHarness.AddNoteAsync(publisher, "before the broker slowed down");
        await BusHarness.WaitUntilAsync(async () => await harness.PendingOutboxRowsAsync() == 0, TimeSpan.FromSeconds(30), "the first event sent and confirmed");

        // The broker gets and routes what the relay sends (the consumer, connected directly,
        // applies it), but none of its confirms reaches the relay.
        proxy.HoldReplies();
        var held = new List<NoteAdded>();
        for (var i = 0; i < 4; i++)
        {
            var e = await BusHarness.AddNoteAsync(publisher, $"sent while the confirms are held {i}");
            held.Add(e);
            await BusHarness.WaitUntilAsync(async () => await db.Applications.AnyAsync(a => a.EventId == e.Id), TimeSpan.FromSeconds(15),
                $"event {i} applied while the confirms of the ones before it are held");
        }

        // Their rows are leased, not locked: no transaction of the relay's waits for the broker.
        var ids = held.Select(e => e.Id).ToArray();
        var locked = await db.Database.SqlQuery<Guid>($"SELECT id AS value FROM outbox_messages WHERE id = ANY({ids}) FOR UPDATE NOWAIT").ToListAsync(ct);
        Assert.Equal(4, locked.Count);
        Assert.Equal(4, await harness.PendingOutboxRowsAsync());

        proxy.ReleaseReplies();
        await BusHarness.WaitUntilAsync(async () => await harness.PendingOutboxRowsAsync() == 0, TimeSpan.FromSeconds(30), "the held events marked sent once confirmed");
        Assert.Equal(5, await db.Set<InboxMessage>().CountAsync(ct));
        Assert.All(await db.Applications.AsNoTracking().ToListAsync(ct), a => Assert.Equal(1, a.Times));
    }

    [Fact]
    public async Task A_lease_is_renewed_while_the_confirms_are_late_so_no_other_relay_sends_the_rows_again()
    {
        await using var harness = await BusHarness.CreateAsync();
        await using var proxy = BrokerProxy();
        proxy.Restore();
        var publisher = await harness.StartPublisherAsync(ThroughProxy(proxy), new Dictionary<string, string?>
        {
            ["EventBus:RelayLanes"] = "1",
            // Renewed every 2 s: a margin of 2 s on a busy machine.
            ["EventBus:RelayLease"] = "00:00:04",
        });
        // The consumer's host has a relay on the same database, connected straight to the broker
        // and polling every second: like the publisher's own, it sends any row whose lease has ended.
        var consumer = await harness.StartConsumerAsync();
        // Every delivery the consumer's inbox recognised as already applied: a row sent again.
        var factory = consumer.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var duplicates = 0L;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == factory && instrument.Name == "library.eventbus.duplicates")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref duplicates, value));
        listener.Start();
        await using var db = harness.NewContext();
        await BusHarness.AddNoteAsync(publisher, "before the broker slowed down");
        await BusHarness.WaitUntilAsync(async () => await harness.PendingOutboxRowsAsync() == 0, TimeSpan.FromSeconds(30), "the first event sent and confirmed");

        proxy.HoldReplies();
        var late = await BusHarness.AddNoteAsync(publisher, "its confirm is late");
        await BusHarness.WaitUntilAsync(async () => await db.Applications.AnyAsync(a => a.EventId == late.Id), TimeSpan.FromSeconds(15), "the event applied");
        // Two and a half leases long (a fixed duration of the fault, not a wait for an effect):
        // without a renewal, a relay claims the row again each time its lease ends and sends it again.
        await Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(1, await harness.PendingOutboxRowsAsync());
        Assert.Equal(0, Interlocked.Read(ref duplicates));

        proxy.ReleaseReplies();
        await BusHarness.WaitUntilAsync(async () => await harness.PendingOutboxRowsAsync() == 0, TimeSpan.FromSeconds(30), "the late event marked sent once confirmed");
    }

    [Fact]
    public async Task A_consumer_killed_mid_batch_and_handlers_that_fail_once_still_apply_every_event_exactly_once()
    {
        await using var harness = await BusHarness.CreateAsync();
        var publisher = await harness.StartPublisherAsync();
        // Every 10th note fails on its first delivery, after its handler has written.
        for (var i = 0; i < 500; i += 10)
        {
            harness.Faults.Fail($"note {i}", times: 1);
        }

        var events = new List<NoteAdded>();
        for (var i = 0; i < 500; i++)
        {
            events.Add(await BusHarness.AddNoteAsync(publisher, $"note {i}"));
        }

        await using var db = harness.NewContext();
        var first = await harness.StartConsumerAsync();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() >= 100, TimeSpan.FromSeconds(60), "first consumer started applying");
        // Gone mid-batch: whatever it held unacknowledged goes back to the queue.
        await harness.StopAsync(first);
        Assert.True(await db.Applications.CountAsync() < 500, "the first consumer should have been stopped mid-batch");

        await harness.StartConsumerAsync();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() == 500, TimeSpan.FromSeconds(60), "all 500 applied");
        await AssertEachAppliedOnce(harness, events);
        Assert.Empty(await harness.DrainDeadLettersAsync());
    }

    [Fact]
    public async Task Duplicates_are_applied_once_and_the_newest_version_wins_in_any_order()
    {
        await using var harness = await BusHarness.CreateAsync();
        await harness.StartConsumerAsync();
        var book = Guid.CreateVersion7();
        var versions = Enumerable.Range(1, 30).Select(v => new ShelfChanged(book, Available: 100 - v, Version: v)).ToList();
        static string Json(ShelfChanged e) => System.Text.Json.JsonSerializer.Serialize(e, Outbox.Json);

        // Every version twice (a re-delivery), in a shuffled order, the newest somewhere in the middle.
        var deliveries = versions.Concat(versions).OrderBy(_ => Random.Shared.Next()).ToList();
        foreach (var e in deliveries)
        {
            await harness.PublishRawAsync("test.shelf-changed", Json(e), e.Id.ToString());
        }

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(
            async () => await db.Set<InboxMessage>().CountAsync() == 30,
            TimeSpan.FromSeconds(30), "30 distinct events seen");
        // A duplicate being retried after a conflict could still be in flight: let the queue drain.
        await BusHarness.WaitUntilAsync(async () => await harness.QueueDepthAsync() == 0, TimeSpan.FromSeconds(30), "queue drained");
        var shelf = await db.Shelves.AsNoTracking().SingleAsync();
        Assert.Equal(30, shelf.Version);
        Assert.Equal(70, shelf.Available);
        Assert.InRange(shelf.Changes, 1, 30);
        Assert.Empty(await harness.DrainDeadLettersAsync());
    }

    [Fact]
    public async Task Poison_messages_end_in_the_dead_letter_queue_and_the_queue_keeps_flowing()
    {
        await using var harness = await BusHarness.CreateAsync();
        var publisher = await harness.StartPublisherAsync();
        await harness.StartConsumerAsync();
        harness.Faults.Fail("always broken", times: -1);

        await harness.PublishRawAsync("test.note-added", "{ this is not json", "unreadable-1");
        var broken = await BusHarness.AddNoteAsync(publisher, "always broken");
        var fine = await BusHarness.AddNoteAsync(publisher, "fine");

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.AnyAsync(a => a.EventId == fine.Id), TimeSpan.FromSeconds(30), "the good event applied");

        var deadLetters = new List<RabbitMQ.Client.BasicGetResult>();
        await BusHarness.WaitUntilAsync(async () =>
        {
            deadLetters.AddRange(await harness.DrainDeadLettersAsync());
            return deadLetters.Count >= 2;
        }, TimeSpan.FromSeconds(30), "both poison messages dead-lettered");

        var ids = deadLetters.Select(m => m.BasicProperties.MessageId).ToHashSet();
        Assert.Equal(new HashSet<string?> { "unreadable-1", broken.Id.ToString() }, ids);
        var brokenLetter = deadLetters.Single(m => m.BasicProperties.MessageId == broken.Id.ToString());
        // First delivery + MaxRetries (2) retries, then the dead-letter queue.
        Assert.Equal(2, Convert.ToInt32(brokenLetter.BasicProperties.Headers!["x-retry-count"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("set to fail", Encoding.UTF8.GetString((byte[])brokenLetter.BasicProperties.Headers!["x-dead-letter-reason"]!), StringComparison.Ordinal);
        // The failed attempts left nothing behind: the handler's writes rolled back with them.
        Assert.False(await db.Applications.AnyAsync(a => a.EventId == broken.Id));
        Assert.False(await db.Set<InboxMessage>().AnyAsync(m => m.EventId == broken.Id));
    }

    [Fact]
    public async Task One_trace_spans_the_use_case_the_publish_and_the_consumer()
    {
        var recorded = new System.Collections.Concurrent.ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == EventBusMetrics.Name || s.Name == "Library.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = recorded.Add,
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource("Library.Tests");

        await using var harness = await BusHarness.CreateAsync();
        var publisher = await harness.StartPublisherAsync();
        await harness.StartConsumerAsync();

        NoteAdded added;
        ActivityTraceId traceId;
        using (var useCase = source.StartActivity("POST /notes", ActivityKind.Server))
        {
            traceId = useCase!.TraceId;
            added = await BusHarness.AddNoteAsync(publisher, "traced");
        }

        await BusHarness.WaitUntilAsync(
            () => Task.FromResult(recorded.Any(a => a.OperationName == "test.note-added process" && a.TraceId == traceId)),
            TimeSpan.FromSeconds(30), "the consumer's span in the same trace");

        var publish = recorded.Single(a => a.OperationName == "test.note-added publish" && a.TraceId == traceId);
        var process = recorded.Single(a => a.OperationName == "test.note-added process" && a.TraceId == traceId);
        Assert.Equal(ActivityKind.Producer, publish.Kind);
        Assert.Equal(ActivityKind.Consumer, process.Kind);
        Assert.Equal(publish.SpanId, process.ParentSpanId);
        Assert.Equal(added.Id.ToString(), process.GetTagItem("messaging.message.id"));
    }

    [Fact]
    public async Task A_burst_of_1000_events_is_applied_once_each_and_its_lag_is_reported()
    {
        await using var harness = await BusHarness.CreateAsync();
        var publisher = await harness.StartPublisherAsync();
        await harness.StartConsumerAsync();

        // Ten writers commit 100 use cases each, as fast as they can.
        var batches = await Task.WhenAll(Enumerable.Range(0, 10).Select(w => Task.Run(async () =>
        {
            var mine = new List<NoteAdded>();
            for (var i = 0; i < 100; i++)
            {
                mine.Add(await BusHarness.AddNoteAsync(publisher, $"burst {w}-{i}"));
            }
            return mine;
        })));
        var events = batches.SelectMany(b => b).ToList();

        await using var db = harness.NewContext();
        await BusHarness.WaitUntilAsync(async () => await db.Applications.CountAsync() == 1000, TimeSpan.FromSeconds(60), "1000 events applied");
        await AssertEachAppliedOnce(harness, events);

        // Lag: the event's creation in the publisher's use case to the consumer's transaction.
        var lags = (await db.Applications.Select(a => new { a.OccurredAt, a.AppliedAt }).ToListAsync())
            .Select(a => (a.AppliedAt - a.OccurredAt).TotalMilliseconds)
            .Order()
            .ToList();
        double Percentile(double p) => lags[(int)Math.Ceiling(p * lags.Count) - 1];
        var report = $"event-lag burst=1000 writers=10 p50_ms={Percentile(0.50):F1} p90_ms={Percentile(0.90):F1} p99_ms={Percentile(0.99):F1} max_ms={lags[^1]:F1}";
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        var artifacts = Environment.GetEnvironmentVariable("LIBRARY_BENCH_OUT");
        if (!string.IsNullOrEmpty(artifacts))
        {
            await File.AppendAllTextAsync(artifacts, report + Environment.NewLine);
        }
    }
}
