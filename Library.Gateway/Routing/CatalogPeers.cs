using System.Collections.Concurrent;
using System.Globalization;
using StackExchange.Redis;

namespace Library.Gateway.Routing;

/// <summary>
/// The other gateway replicas' progress on the catalog's invalidation channel. A write's answer
/// waits until this replica has heard the write's stamp and until every other live replica has
/// said it has too (<see cref="CatalogAnswerStore.WaitUntilHeardAsync"/>): the writer, or anyone
/// they tell, may read next through another replica (the kernel spreads connections over the
/// replicas sharing the port under eng/processes.sh, Aspire's proxy does under the AppHost), and
/// that anonymous read, answered from the other replica's memory, must not be older than the write.
/// <para>
/// Each replica says on <see cref="Library.ServiceDefaults.CacheKeys.CatalogHeard"/>
/// "{replica} {sequence}": at once after each stamp it hears, and every second while it is live
/// (a heartbeat); "{replica} -" when it stops. A replica not heard from for <see cref="Silence"/>
/// is no longer waited for: it has stopped or lost Redis, and a replica without the channel serves
/// nothing from memory (<see cref="CatalogAnswerStore.IsLive"/>). Stamps are frequent (one per
/// catalog write, plus availability): a replica's announcement is one fire-and-forget PUBLISH,
/// and a hit costs nothing more.
/// </para>
/// </summary>
internal sealed class CatalogPeers(RedisChannel channel, TimeProvider time)
{
    /// <summary>How long a replica may say nothing before it is no longer waited for (three heartbeats).</summary>
    public static readonly TimeSpan Silence = TimeSpan.FromSeconds(3);

    /// <summary>The heartbeat: a live replica says what it has heard at least this often.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(1);

    private readonly string id = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<string, (long Heard, long SeenAt)> peers = new(StringComparer.Ordinal);
    private readonly object gate = new();
    private TaskCompletionSource news = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The replicas heard from within <see cref="Silence"/>, with the last sequence each said it heard.</summary>
    public IReadOnlyDictionary<string, long> Live()
    {
        var since = time.GetTimestamp() - Ticks(Silence);
        return peers.Where(p => p.Value.SeenAt >= since).ToDictionary(p => p.Key, p => p.Value.Heard, StringComparer.Ordinal);
    }

    public async Task JoinAsync(ISubscriber subscriber)
    {
        await subscriber.UnsubscribeAsync(channel);
        await subscriber.SubscribeAsync(channel, (_, message) => Hear(message.ToString()));
    }

    /// <summary>Tells the other replicas what this one has heard (no reply awaited: a lost one is repeated by the heartbeat).</summary>
    public void Say(ISubscriber subscriber, long heard) =>
        subscriber.Publish(channel, string.Create(CultureInfo.InvariantCulture, $"{id} {heard}"), CommandFlags.FireAndForget);

    /// <summary>This replica stops: the others stop waiting for it at once.</summary>
    public Task SayGoneAsync(ISubscriber subscriber) => subscriber.PublishAsync(channel, $"{id} -");

    /// <summary>
    /// Until every live replica has said it heard <paramref name="sequence"/>, or the deadline (a
    /// timestamp of <see cref="TimeProvider"/>). Returns the replicas still behind (none: all heard it).
    /// </summary>
    public async Task<IReadOnlyList<string>> WaitAsync(long sequence, long deadline, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next;
            List<string> behind;
            lock (gate)
            {
                behind = Live().Where(p => p.Value < sequence).Select(p => p.Key).ToList();
                if (behind.Count == 0)
                {
                    return behind;
                }
                next = news.Task;
            }
            var left = deadline - time.GetTimestamp();
            if (left <= 0)
            {
                return behind;
            }
            // Woken by the next announcement, or after a heartbeat's time (a replica may fall silent).
            var wait = TimeSpan.FromSeconds(Math.Min((double)left / time.TimestampFrequency, Heartbeat.TotalSeconds));
            await next.WaitAsync(wait, time, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Replicas silent for long are forgotten (each restart is a new replica).</summary>
    public void Sweep()
    {
        var forget = time.GetTimestamp() - 10 * Ticks(Silence);
        foreach (var peer in peers.Where(p => p.Value.SeenAt < forget).Select(p => p.Key).ToList())
        {
            peers.TryRemove(peer, out _);
        }
    }

    private void Hear(string message)
    {
        var space = message.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || message.AsSpan(0, space).SequenceEqual(id))
        {
            return;
        }
        var peer = message[..space];
        var said = message.AsSpan(space + 1);
        lock (gate)
        {
            if (said is "-")
            {
                peers.TryRemove(peer, out _);
            }
            else if (long.TryParse(said, NumberStyles.None, CultureInfo.InvariantCulture, out var heard))
            {
                var known = peers.TryGetValue(peer, out var before) ? before.Heard : 0;
                peers[peer] = (Math.Max(known, heard), time.GetTimestamp());
            }
            else
            {
                return;
            }
            news.TrySetResult();
            news = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * time.TimestampFrequency);
}
