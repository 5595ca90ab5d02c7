using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Library.Gateway.Tests;

/// <summary>
/// A real Kestrel server on a loopback port standing where a service replica would stand, that
/// answers every request with its own name and what it received. It proves where the gateway sent
/// a request, which is all a routing test asks; the real services are exercised end to end in
/// <see cref="EndToEndTests"/>.
/// </summary>
public sealed class Destination : IAsyncDisposable
{
    private readonly WebApplication _app;

    private Destination(WebApplication app, string name)
    {
        _app = app;
        Name = name;
    }

    public string Name { get; }
    public string Address => _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
    public ConcurrentQueue<string> Received { get; } = new();

    /// <summary>Every request other than GET or HEAD that reached this destination, body included.</summary>
    public ConcurrentQueue<ReceivedWrite> Writes { get; } = new();

    /// <param name="name">The name it answers with.</param>
    /// <param name="dieOnWrites">
    /// A replica killed in the middle of a write: it reads the whole request, then its connection
    /// is gone without an answer (reads and /health are answered, so it stays in the rotation).
    /// </param>
    public static async Task<Destination> StartAsync(string name, bool dieOnWrites = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var destination = new Destination(app, name);
        app.MapGet("/health", () => Results.Ok());
        app.Map("/{**path}", async (HttpContext context) =>
        {
            // ?delayMs=N: a replica that is slow to answer.
            if (int.TryParse(context.Request.Query["delayMs"], out var delay))
            {
                await Task.Delay(delay, context.RequestAborted);
            }
            var target = context.Request.Path + context.Request.QueryString;
            if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
            {
                using var reader = new StreamReader(context.Request.Body);
                destination.Writes.Enqueue(new ReceivedWrite(context.Request.Method, target,
                    context.Request.Headers["Idempotency-Key"].ToString(), await reader.ReadToEndAsync(context.RequestAborted)));
                if (dieOnWrites)
                {
                    context.Abort();
                    return Results.Empty;
                }
            }
            destination.Received.Enqueue(target);
            return Results.Json(new EchoAnswer(name, context.Request.Method, target, context.Request.Headers.Authorization.ToString()));
        });
        await app.StartAsync();
        return destination;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

public sealed record EchoAnswer(string Service, string Method, string Target, string Authorization);

public sealed record ReceivedWrite(string Method, string Target, string IdempotencyKey, string Body);
