using System.Text.Json;
using Yarp.ReverseProxy.Configuration;

// Two modes, one per process (see bench/run.sh, scenario "baseline"):
//   dotnet Baseline.dll bare URL BOOK.json SEARCH.json
//       GET /api/books/{id} answers BOOK.json's document, GET /api/books answers SEARCH.json's
//       (both captured from the real catalog, so the bytes on the wire have the same size);
//       each answer is serialized per request from a parsed document, as a service would.
//   dotnet Baseline.dll hop URL DESTINATION
//       YARP with one catch-all route to DESTINATION: no auth, no rate limits, no health checks,
//       no retries, no extra headers - the cheapest gateway there is.
// Kestrel only: no logging providers, no middleware besides routing (and the proxy).
if (args.Length < 3 || args[0] is not ("bare" or "hop") || (args[0] == "bare" && args.Length < 4))
{
    await Console.Error.WriteLineAsync("usage: Baseline bare URL BOOK.json SEARCH.json | Baseline hop URL DESTINATION");
    return 2;
}

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls(args[1]);

if (args[0] == "hop")
{
    builder.Services.AddReverseProxy().LoadFromMemory(
        [new RouteConfig { RouteId = "all", ClusterId = "bare", Match = new RouteMatch { Path = "/{**rest}" } }],
        [new ClusterConfig { ClusterId = "bare", Destinations = new Dictionary<string, DestinationConfig> { ["bare"] = new() { Address = args[2] } } }]);
    var hop = builder.Build();
    hop.MapReverseProxy();
    await hop.RunAsync();
    return 0;
}

using var book = JsonDocument.Parse(await File.ReadAllBytesAsync(args[2]));
using var search = JsonDocument.Parse(await File.ReadAllBytesAsync(args[3]));
var bookJson = book.RootElement;
var searchJson = search.RootElement;
var app = builder.Build();
app.MapGet("/api/books/{id}", (string id) => Results.Json(bookJson));
app.MapGet("/api/books", () => Results.Json(searchJson));
app.MapGet("/health", () => Results.Text("Healthy"));
await app.RunAsync();
return 0;
