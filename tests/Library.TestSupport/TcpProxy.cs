using System.Net;
using System.Net.Sockets;

namespace Library.TestSupport;

/// <summary>
/// A TCP forwarder between a client under test and a real server (the way Toxiproxy is used):
/// <see cref="Cut"/> drops every connection and refuses new ones, as if the server had died;
/// <see cref="Restore"/> lets traffic through again on the same port; <see cref="Stall"/> makes it a
/// server that accepts and never answers. Shared servers stay up for the other tests while this
/// client sees an outage.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly List<TcpClient> _connections = [];
    private readonly Lock _gate = new();
    private TcpListener? _listener;
    private CancellationTokenSource _cts = new();
    private volatile bool _stalling;
    private int _stalledOpen;
    private int _stalledTotal;
    private TaskCompletionSource? _repliesHeld;

    public TcpProxy(string targetHost, int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Parse(targetHost == "localhost" ? "127.0.0.1" : targetHost), targetPort);
        // Below the ephemeral range (Ports.FreePort): a cut proxy leaves its port unbound, and an
        // outgoing connection could otherwise take it before Restore binds it again.
        Port = Ports.FreePort();
    }

    public int Port { get; }

    /// <summary>An open proxy in front of the test Redis, and the connection string that goes through it.</summary>
    public static TcpProxy ToTestRedis(out string connectionString)
    {
        var parts = TestServers.Redis.Split(',');
        var endpoint = parts[0].Split(':');
        var proxy = new TcpProxy(endpoint[0], int.Parse(endpoint[1], System.Globalization.CultureInfo.InvariantCulture));
        proxy.Restore();
        connectionString = string.Join(',', [$"127.0.0.1:{proxy.Port}", .. parts[1..]]);
        return proxy;
    }

    public void Restore()
    {
        _cts = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        _ = AcceptLoopAsync(_listener, _cts.Token);
    }

    /// <summary>
    /// Connections accepted from now on are held open and silent, never forwarded (a server that
    /// accepts and does not answer), until <see cref="Cut"/>. The proxy must be open (<see cref="Restore"/>).
    /// </summary>
    public void Stall() => _stalling = true;

    /// <summary>
    /// From now on, what the server sends on any connection waits in the proxy (what the client
    /// sends still goes through) until <see cref="ReleaseReplies"/>: a server slow to answer, such
    /// as a broker whose confirms are late.
    /// </summary>
    public void HoldReplies() => Interlocked.CompareExchange(ref _repliesHeld, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);

    /// <summary>Lets the server's held replies through, in order, and the next ones at once.</summary>
    public void ReleaseReplies() => Interlocked.Exchange(ref _repliesHeld, null)?.TrySetResult();

    /// <summary>Stalled connections that their clients have not closed yet.</summary>
    public int StalledOpen => Volatile.Read(ref _stalledOpen);

    /// <summary>Every connection accepted while stalling, closed or not: how many times a client tried.</summary>
    public int StalledTotal => Volatile.Read(ref _stalledTotal);

    public void Cut()
    {
        _stalling = false;
        ReleaseReplies();
        _cts.Cancel();
        _listener?.Stop();
        _listener = null;
        lock (_gate)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
            _connections.Clear();
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }

            if (_stalling)
            {
                lock (_gate)
                {
                    _connections.Add(client);
                }
                Interlocked.Increment(ref _stalledOpen);
                Interlocked.Increment(ref _stalledTotal);
                _ = HoldAsync(client, ct);
                continue;
            }

            var server = new TcpClient();
            try
            {
                await server.ConnectAsync(_target, ct);
            }
            catch (Exception)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_gate)
            {
                _connections.Add(client);
                _connections.Add(server);
            }
            _ = PumpAsync(client, server, ct);
            _ = PumpRepliesAsync(server, client, ct);
        }
    }

    /// <summary>Reads what a stalled connection's client sends, answering nothing, until it closes (or the proxy is cut).</summary>
    private async Task HoldAsync(TcpClient client, CancellationToken ct)
    {
        var buffer = new byte[1024];
        try
        {
            while (await client.GetStream().ReadAsync(buffer, ct) > 0)
            {
            }
        }
        catch (Exception)
        {
            // The client gave up, or the proxy was cut.
        }
        Interlocked.Decrement(ref _stalledOpen);
        client.Dispose();
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to, CancellationToken ct)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream(), ct);
        }
        catch (Exception)
        {
            // The other side went away, or the proxy was cut.
        }
        from.Dispose();
        to.Dispose();
    }

    /// <summary>The server's side: each chunk waits while the replies are held (<see cref="HoldReplies"/>).</summary>
    private async Task PumpRepliesAsync(TcpClient server, TcpClient client, CancellationToken ct)
    {
        var buffer = new byte[81920];
        try
        {
            int read;
            while ((read = await server.GetStream().ReadAsync(buffer, ct)) > 0)
            {
                if (Volatile.Read(ref _repliesHeld) is { } held)
                {
                    await held.Task.WaitAsync(ct);
                }
                await client.GetStream().WriteAsync(buffer.AsMemory(0, read), ct);
            }
        }
        catch (Exception)
        {
            // The other side went away, or the proxy was cut.
        }
        server.Dispose();
        client.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        _cts.Dispose();
        return ValueTask.CompletedTask;
    }
}
