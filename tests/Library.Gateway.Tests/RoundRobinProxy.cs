using System.Net;
using System.Net.Sockets;

namespace Library.Gateway.Tests;

/// <summary>
/// A TCP proxy in front of replicas that sends each new connection to the next one, as Aspire's
/// endpoint proxy does in front of a service's replicas under the AppHost: the gateway sees one
/// address for the service. A replica that drops a connection drops the client's too; one taken
/// out of the rotation (<see cref="SendNewConnectionsTo"/>) keeps the connections it has.
/// </summary>
public sealed class RoundRobinProxy : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private volatile Uri[] replicas;
    private readonly CancellationTokenSource stop = new();
    private readonly Task accepting;
    private int next = -1;

    private RoundRobinProxy(IEnumerable<string> replicas)
    {
        this.replicas = replicas.Select(r => new Uri(r)).ToArray();
        listener.Start();
        accepting = AcceptAsync();
    }

    public static RoundRobinProxy Start(params string[] replicas) => new(replicas);

    /// <summary>New connections go to these replicas from now on; those made before stay where they are.</summary>
    public void SendNewConnectionsTo(params string[] replicas) => this.replicas = replicas.Select(r => new Uri(r)).ToArray();

    public string Address => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync(stop.Token);
                var rotation = replicas;
                _ = PipeAsync(client, rotation[(uint)Interlocked.Increment(ref next) % rotation.Length]);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PipeAsync(TcpClient client, Uri replica)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(replica.Host, replica.Port, stop.Token);
                var toServer = client.GetStream().CopyToAsync(server.GetStream(), stop.Token);
                var toClient = server.GetStream().CopyToAsync(client.GetStream(), stop.Token);
                await Task.WhenAny(toServer, toClient);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        await accepting;
        stop.Dispose();
    }
}
