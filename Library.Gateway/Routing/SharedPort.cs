using System.Net;
using System.Net.Sockets;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Library.Gateway.Routing;

/// <summary>
/// Several gateway processes behind one address without a balancer in front
/// (<c>Gateway:ReusePort</c>, the process harness eng/processes.sh): every listening socket gets
/// SO_REUSEPORT, so processes bound to the same port share it and the kernel spreads new
/// connections over them. Under the AppHost (Aspire's endpoint proxy) or in Azure Container Apps
/// (its ingress) the platform does this and the setting stays off.
/// <para>
/// A stopping gateway must not lose what clients send it. Nothing probes a process behind a
/// shared port, so draining by readiness (<see cref="GracefulShutdown"/>) does not move new
/// connections away; instead, on SIGTERM the listening sockets close at once and the kernel sends
/// new connections to the other processes, while this one keeps serving the connections it has.
/// Independently of the setting, every HTTP/1.x answer of a stopping gateway says
/// <c>Connection: close</c>, so a keep-alive client opens its next connection elsewhere instead
/// of sending it on a connection that is about to close.
/// </para>
/// </summary>
public static partial class SharedPort
{
    public const string SettingName = "Gateway:ReusePort";

    // Linux's SOL_SOCKET / SO_REUSEPORT (asm-generic/socket.h); .NET has no managed name for it.
    private const int SolSocket = 1;
    private const int SoReusePort = 15;

    public static WebApplicationBuilder AddSharedPort(this WebApplicationBuilder builder)
    {
        if (!builder.Configuration.GetValue(SettingName, false))
        {
            return builder;
        }
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"{SettingName} needs Linux (SO_REUSEPORT balances connections there)");
        }
        var sockets = new ListenSockets();
        builder.Services.AddSingleton(sockets);
        builder.WebHost.UseSockets(o => o.CreateBoundListenSocket = sockets.Bind);
        builder.Services.AddHostedService<CloseListenersOnStop>();
        return builder;
    }

    /// <summary>
    /// <c>Connection: close</c> on every HTTP/1.x answer once the gateway is stopping (set when the
    /// answer starts, so requests in flight at SIGTERM get it too). HTTP/2 has no such header.
    /// </summary>
    public static IApplicationBuilder UseConnectionCloseWhileStopping(this IApplicationBuilder app)
    {
        var state = app.ApplicationServices.GetRequiredService<GracefulShutdown.ShutdownState>();
        var lifetime = app.ApplicationServices.GetRequiredService<IHostApplicationLifetime>();
        return app.Use((context, next) =>
        {
            if (context.Request.Protocol is "HTTP/1.1" or "HTTP/1.0")
            {
                context.Response.OnStarting(() =>
                {
                    if (state.Stopping || lifetime.ApplicationStopping.IsCancellationRequested)
                    {
                        context.Response.Headers.Connection = "close";
                    }
                    return Task.CompletedTask;
                });
            }
            return next(context);
        });
    }

    /// <summary>The listening sockets this process made, to close them when it stops.</summary>
    public sealed class ListenSockets
    {
        private readonly List<Socket> _sockets = [];
        private readonly Lock _gate = new();

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _sockets.Count;
                }
            }
        }

        internal Socket Bind(EndPoint endpoint)
        {
            if (endpoint is not IPEndPoint ip)
            {
                // A Unix socket or a file handle: nothing to share.
                return SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
            }
            var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (ip.Address.Equals(IPAddress.IPv6Any))
                {
                    socket.DualMode = true;
                }
                socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
                socket.Bind(ip);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            lock (_gate)
            {
                _sockets.Add(socket);
            }
            return socket;
        }

        /// <summary>
        /// Closes every listening socket: Kestrel's accept loop ends (it reads a closed socket as
        /// "unbound"), connections already accepted go on. What was still in this socket's accept
        /// queue is reset by the kernel, or handed to another process of the port where
        /// net.ipv4.tcp_migrate_req is 1.
        /// </summary>
        internal int CloseAll()
        {
            Socket[] sockets;
            lock (_gate)
            {
                sockets = [.. _sockets];
                _sockets.Clear();
            }
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
            return sockets.Length;
        }
    }

    private sealed partial class CloseListenersOnStop(ListenSockets sockets, IHostApplicationLifetime lifetime, ILogger<CloseListenersOnStop> logger) : IHostedService
    {
        private CancellationTokenRegistration _registration;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            // ApplicationStopping fires on SIGTERM before the drain starts.
            _registration = lifetime.ApplicationStopping.Register(() => LogClosed(logger, sockets.CloseAll()));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            _registration.Dispose();
            return Task.CompletedTask;
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: closed {Count} shared listening sockets, new connections go to the other gateway processes; serving the open ones until they finish")]
        private static partial void LogClosed(ILogger logger, int count);
    }
}
