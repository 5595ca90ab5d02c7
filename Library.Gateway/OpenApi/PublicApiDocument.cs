using System.Text.Json;
using System.Text.Json.Nodes;
using Library.Gateway.Routing;
using Library.ServiceDefaults;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Library.Gateway.OpenApi;

/// <summary>
/// One OpenAPI document of the whole public API (<c>/openapi/library.json</c>): each service's
/// own document, fetched through service discovery, keeping only the paths the gateway routes to
/// that service (<see cref="ApiRoutes"/>: a title's copies are the lending service's even if the
/// catalog had such a path), merged with their schemas (a name two services use for different
/// shapes gets the service's prefix), tags and the bearer scheme. Built at most once a minute
/// (every 10 s while a service is missing from it), and served with the gateway's public URL as
/// its only server: https outside Development, marked <c>x-audience: public</c>.
/// </summary>
public sealed class PublicApiDocument(IHttpClientFactory clients, TimeProvider time, IConfiguration configuration, IHostEnvironment environment, ILogger<PublicApiDocument> logger) : IDisposable
{
    public const string Path = "/openapi/library.json";
    public const string Client = "library-openapi";

    private readonly SemaphoreSlim _building = new(1, 1);
    private (JsonObject Document, DateTimeOffset BuiltAt, bool Complete)? _cached;

    public void Dispose() => _building.Dispose();

    public async Task<JsonObject> GetAsync(HttpRequest request, CancellationToken ct)
    {
        var document = (JsonObject)(await CachedAsync(ct)).DeepClone();
        document["servers"] = new JsonArray(Server(request));
        return document;
    }

    private async Task<JsonObject> CachedAsync(CancellationToken ct)
    {
        if (Fresh(_cached) is { } fresh)
        {
            return fresh;
        }
        await _building.WaitAsync(ct);
        try
        {
            if (Fresh(_cached) is { } built)
            {
                return built;
            }
            var documents = new List<(string Service, JsonObject Document)>();
            foreach (var service in ApiRoutes.Services)
            {
                try
                {
                    using var client = clients.CreateClient(Client);
                    var json = await client.GetStringAsync(new Uri($"http://{service}/openapi/v1.json"), ct);
                    documents.Add((service, JsonNode.Parse(json)!.AsObject()));
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
                {
                    logger.LogWarning(ex, "The OpenAPI document of {Service} could not be fetched; the public document leaves it out for now", service);
                }
            }
            var merged = Merge(documents, configuration.GetSection(LibraryOpenApiOptions.SectionName).Get<LibraryOpenApiOptions>() ?? new LibraryOpenApiOptions());
            _cached = (merged, time.GetUtcNow(), documents.Count == ApiRoutes.Services.Count);
            return merged;
        }
        finally
        {
            _building.Release();
        }
    }

    private JsonObject? Fresh((JsonObject Document, DateTimeOffset BuiltAt, bool Complete)? cached) =>
        cached is { } c && time.GetUtcNow() - c.BuiltAt < (c.Complete ? TimeSpan.FromMinutes(1) : TimeSpan.FromSeconds(10)) ? c.Document : null;

    /// <summary>The configured public URL, else the request's own address (https outside Development).</summary>
    private JsonObject Server(HttpRequest request)
    {
        var configured = configuration.GetSection(LibraryOpenApiOptions.SectionName).Get<LibraryOpenApiOptions>()?.PublicUrls ?? [];
        var url = configured.FirstOrDefault() ?? $"{(environment.IsDevelopment() ? request.Scheme : "https")}://{request.Host}";
        return new JsonObject
        {
            ["url"] = url.TrimEnd('/'),
            ["description"] = "The Library's public gateway",
            [OpenApiDefaults.AudienceExtension] = "public",
        };
    }

    /// <summary>The services' documents as one: public paths only, schemas kept apart where they differ.</summary>
    public static JsonObject Merge(IReadOnlyList<(string Service, JsonObject Document)> documents, LibraryOpenApiOptions options)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        var tags = new JsonArray();
        var tagNames = new HashSet<string>(StringComparer.Ordinal);
        JsonNode? securitySchemes = null;
        foreach (var (service, source) in documents)
        {
            var document = (JsonObject)source.DeepClone();
            var own = document["components"]?["schemas"] as JsonObject ?? [];
            // A schema name another service already uses for another shape: this service's copy is renamed.
            var renames = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, schema) in own)
            {
                if (schemas[name] is { } existing && !JsonNode.DeepEquals(existing, schema))
                {
                    renames[name] = Prefix(service) + name;
                }
            }
            if (renames.Count > 0)
            {
                Rename(document, renames);
            }
            foreach (var (name, schema) in (document["components"]?["schemas"] as JsonObject ?? []).ToList())
            {
                var key = renames.GetValueOrDefault(name, name);
                if (schemas[key] is null)
                {
                    schemas[key] = schema!.DeepClone();
                }
            }
            foreach (var (path, item) in document["paths"] as JsonObject ?? [])
            {
                if (ApiRoutes.ServiceFor(path) == service && paths[path] is null)
                {
                    paths[path] = item!.DeepClone();
                }
            }
            foreach (var tag in document["tags"] as JsonArray ?? [])
            {
                if (tag?["name"]?.GetValue<string>() is { } name && tagNames.Add(name))
                {
                    tags.Add(tag.DeepClone());
                }
            }
            securitySchemes ??= document["components"]?["securitySchemes"]?.DeepClone();
        }

        return new JsonObject
        {
            ["openapi"] = (documents.Count > 0 ? documents[0].Document["openapi"]?.DeepClone() : null) ?? "3.1.1",
            ["info"] = new JsonObject
            {
                ["title"] = options.Title,
                ["description"] = "The whole public API, as the gateway serves it: every path under /api, with the answers, limits and roles each operation has. Each service also serves its own document at /openapi/{service}.json.",
                ["version"] = options.Version,
                ["contact"] = new JsonObject { ["name"] = options.ContactName, ["email"] = options.ContactEmail },
            },
            ["paths"] = paths,
            ["components"] = new JsonObject
            {
                ["schemas"] = schemas,
                ["securitySchemes"] = securitySchemes ?? new JsonObject(),
            },
            ["tags"] = tags,
        };
    }

    private static string Prefix(string service) => service switch
    {
        ApiRoutes.UserService => "Users",
        ApiRoutes.BookService => "Catalog",
        ApiRoutes.LendingService => "Lending",
        _ => service,
    };

    private static void Rename(JsonNode? node, Dictionary<string, string> renames)
    {
        const string prefix = "#/components/schemas/";
        switch (node)
        {
            case JsonObject o:
                if (o["$ref"] is JsonValue r && r.TryGetValue<string>(out var target) && target.StartsWith(prefix, StringComparison.Ordinal)
                    && renames.TryGetValue(target[prefix.Length..], out var renamed))
                {
                    o["$ref"] = prefix + renamed;
                }
                foreach (var (_, child) in o.ToList())
                {
                    Rename(child, renames);
                }
                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Rename(child, renames);
                }
                break;
        }
    }
}

public static class PublicApiDocumentExtensions
{
    public static IServiceCollection AddPublicApiDocument(this IServiceCollection services)
    {
        services.AddHttpClient(PublicApiDocument.Client);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<PublicApiDocument>();
        return services;
    }

    public static IEndpointConventionBuilder MapPublicApiDocument(this IEndpointRouteBuilder app) =>
        app.MapGet(PublicApiDocument.Path, async (HttpRequest request, PublicApiDocument document, CancellationToken ct) =>
            TypedResults.Text((await document.GetAsync(request, ct)).ToJsonString(), "application/json"))
            .ExcludeFromDescription();
}
