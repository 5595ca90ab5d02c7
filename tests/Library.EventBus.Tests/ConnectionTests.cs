using System.Net;
using System.Net.Sockets;
using Library.ServiceDefaults;
using Library.TestSupport;
using RabbitMQ.Client;

namespace Library.EventBus.Tests;

public sealed class ConnectionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// A connection never opened is opened by one loop, whoever pauses on it (the relay's lanes and
    /// the consumers all do during an outage since the start): one per pausing user tried four
    /// times as often and each try held the gate. The loop goes on between pauses, as the client
    /// library's recovery of a dropped connection does, and disposing the connection ends it (it
    /// could otherwise open a connection after the dispose, which nobody would close).
    /// </summary>
    [Fact]
    public async Task Pausing_users_of_a_never_opened_connection_share_one_opener_and_disposing_ends_it()
    {
        // A listener that accepts and hangs up at once: each try to open fails, and is counted.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var tries = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                Interlocked.Increment(ref tries);
            }
        }, Ct);
        var interval = TimeSpan.FromMilliseconds(250);
        var connection = new RabbitMQConnection(new ConnectionFactory
        {
            HostName = "127.0.0.1",
            Port = ((IPEndPoint)listener.LocalEndpoint).Port,
            NetworkRecoveryInterval = interval,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(2),
        });

        // Four users (two relay lanes, two consumers) pausing 3 s at once: one loop tries about
        // 3 s / 250 ms = 12 times; a loop each tried about 48 times.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => connection.PauseAsync(TimeSpan.FromSeconds(3), Ct)));
        var paused = Volatile.Read(ref tries);
        Assert.InRange(paused, 2, 16);

        // Still trying after the pauses, until open or disposed.
        await Eventually.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref tries) > paused), "a try after the pauses", 10);
        await connection.DisposeAsync();
        // A try in flight at the dispose may still be counted: one interval for it, then none more.
        await Task.Delay(interval, Ct);
        var disposed = Volatile.Read(ref tries);
        // No try after the dispose: a window of eight intervals (an absence has no event to poll for).
        await Task.Delay(interval * 8, Ct);
        Assert.Equal(disposed, Volatile.Read(ref tries));

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepting);
    }
}
