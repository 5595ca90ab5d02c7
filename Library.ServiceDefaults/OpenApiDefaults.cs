using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.OpenApi;

namespace Library.ServiceDefaults;

/// <summary>
/// An example of a request or response body, shown in the documents (<c>example</c> of the type's
/// schema): <c>[OpenApiExample("""{"email":"ann@library.example"}""")]</c> on the record.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class OpenApiExampleAttribute(string json) : Attribute
{
    public string Json { get; } = json;
}

/// <summary>Settings of the section <c>OpenApi</c>: what the documents say about the API as a whole.</summary>
public sealed class LibraryOpenApiOptions
{
    public const string SectionName = "OpenApi";

    public string Title { get; set; } = "Library API";
    public string Version { get; set; } = "1.0";
    public string ContactName { get; set; } = "Library API team";
    public string ContactEmail { get; set; } = "api@library.example";

    /// <summary>
    /// The gateway's public URL(s) (the only way in for clients). Empty: the documents name only
    /// the address they were fetched from (a developer's, or the gateway forwarding its own host).
    /// </summary>
    public List<string> PublicUrls { get; set; } = [];

    /// <summary>
    /// Every public operation is reached through the gateway, which rate-limits every request and
    /// limits bodies: so the documents promise 429 (with Retry-After and the RateLimit headers)
    /// and 413 on every operation. Off only for a service nobody reaches through the gateway.
    /// </summary>
    public bool BehindGateway { get; set; } = true;
}

/// <summary>
/// One OpenAPI setup for every service, so the documents say what the services do without each
/// endpoint repeating it: the bearer scheme and each operation's requirement, read from the
/// authorization metadata the route groups declare (an explicit <c>x-anonymous</c> marker for
/// <c>AllowAnonymous</c>); the 401/403 that authorization adds (and the gateway's 401 for a bad
/// token on an anonymous operation); the 400/415/413/429 that binding, routing and the gateway
/// add; and one problem-details schema (with <c>traceId</c> and <c>errors</c>) on every
/// 4xx/5xx, as <see cref="ProblemDetailsDefaults"/> writes them.
/// </summary>
public static class OpenApiDefaults
{
    public const string BearerScheme = "Bearer";
    public const string ProblemSchema = "ProblemDetails";
    public const string ProblemMediaType = "application/problem+json";
    public const string AnonymousExtension = "x-anonymous";
    public const string AudienceExtension = "x-audience";

    /// <summary>IETF draft-ietf-httpapi-ratelimit-headers: the gateway sends these on every rate-limited answer.</summary>
    public const string RateLimitPolicyHeader = "RateLimit-Policy";
    public const string RateLimitHeader = "RateLimit";

    /// <summary>
    /// Applies to every OpenAPI document a service adds (<c>AddOpenApi()</c>): called by
    /// <c>AddServiceDefaults</c>, so no service can publish a document without it.
    /// </summary>
    public static IServiceCollection ConfigureLibraryOpenApi(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = configuration.GetSection(LibraryOpenApiOptions.SectionName).Get<LibraryOpenApiOptions>() ?? new LibraryOpenApiOptions();
        services.ConfigureAll<OpenApiOptions>(o =>
        {
            o.AddSchemaTransformer(DescribeFormats);
            o.AddOperationTransformer((operation, context, _) =>
            {
                DescribeOperation(operation, context, settings);
                return Task.CompletedTask;
            });
            o.AddDocumentTransformer((document, context, _) =>
            {
                var environment = context.ApplicationServices.GetRequiredService<IHostEnvironment>();
                DescribeDocument(document, settings, environment);
                return Task.CompletedTask;
            });
        });
        return services;
    }

    /// <summary>
    /// What the framework does not derive from annotations: <c>[EmailAddress]</c> is an email;
    /// <see cref="OpenApiExampleAttribute"/> gives a body its example.
    /// </summary>
    private static Task DescribeFormats(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (context.JsonPropertyInfo is null && context.JsonTypeInfo.Type.GetCustomAttributes(typeof(OpenApiExampleAttribute), false) is [OpenApiExampleAttribute example, ..])
        {
            schema.Example = JsonNode.Parse(example.Json);
        }
        var attributes = context.JsonPropertyInfo?.AttributeProvider?.GetCustomAttributes(true)
            ?? (context.ParameterDescription?.ParameterDescriptor is Microsoft.AspNetCore.Mvc.Infrastructure.IParameterInfoParameterDescriptor p
                ? p.ParameterInfo.GetCustomAttributes(true) : []);
        if (attributes.OfType<EmailAddressAttribute>().Any())
        {
            schema.Format = "email";
        }
        return Task.CompletedTask;
    }

    private static void DescribeOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, LibraryOpenApiOptions settings)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        operation.Responses ??= new OpenApiResponses();
        var anonymous = metadata.OfType<IAllowAnonymous>().Any();
        var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy ?? a.Roles ?? "authenticated").Distinct().ToList();
        // A group's "member" under an endpoint's "admin" is simply "admin": the roles nest.
        if (policies.Contains(Policies.Admin) || policies.Contains(Policies.Librarian))
        {
            policies.Remove(Policies.Member);
        }
        if (policies.Contains(Policies.Admin))
        {
            policies.Remove(Policies.Librarian);
        }

        if (anonymous)
        {
            // An empty requirement: "no credentials needed", plus a marker a reader (and the lint) can't miss.
            operation.Security = [new OpenApiSecurityRequirement()];
            operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
            operation.Extensions[AnonymousExtension] = new JsonNodeExtension(JsonValue.Create(true));
        }
        else if (policies.Count > 0)
        {
            // OpenAPI 3.1: for a non-OAuth scheme the list names the roles the operation needs.
            operation.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = policies },
            ];
            AddResponse(operation, StatusCodes.Status401Unauthorized, "No valid access token: missing, expired, forged or for another audience.");
            AddResponse(operation, StatusCodes.Status403Forbidden, $"The token's role does not allow it (needs: {string.Join(", ", policies)}).");
        }

        var hasBody = operation.RequestBody is not null;
        var hasInput = operation.Parameters?.Any(p => p.In is ParameterLocation.Query or ParameterLocation.Header) == true;
        if (hasBody || hasInput)
        {
            // Binding failures (malformed JSON, a wrong type) are refused before the handler runs.
            AddResponse(operation, StatusCodes.Status400BadRequest, "The request could not be read or is not valid.");
        }
        if (hasBody)
        {
            // Routing refuses a body of another media type than the operation accepts (Accepts metadata).
            var accepted = string.Join(", ", operation.RequestBody!.Content?.Keys.AsEnumerable() ?? []);
            AddResponse(operation, StatusCodes.Status415UnsupportedMediaType,
                accepted.Length > 0 ? $"The body's Content-Type is not one the operation accepts ({accepted})." : "The body's Content-Type is not one the operation accepts.");
        }
        // Any operation: its database did not answer after the retries (a failover, a restart),
        // or another service a look-up needed did not (ProblemDetailsDefaults).
        AddResponse(operation, StatusCodes.Status503ServiceUnavailable,
            "The service's database did not answer (a failover or a restart), or another service it needed did not: wait Retry-After seconds and try again.");
        if (operation.Responses!["503"] is OpenApiResponse unavailable)
        {
            unavailable.Headers ??= new Dictionary<string, IOpenApiHeader>();
            unavailable.Headers["Retry-After"] = RetryAfterHeader();
        }
        if (settings.BehindGateway)
        {
            if (anonymous)
            {
                // The gateway checks any Authorization header at the door (TokenCheck), even where none is needed;
                // an operation with a 401 of its own (log-in, refresh) gets the gateway's reason added to it.
                const string refusedAtTheDoor = "an Authorization header that is not a valid access token (expired, forged, another scheme) is refused by the gateway: send none.";
                if (operation.Responses!.TryGetValue("401", out var own) && own is OpenApiResponse ownResponse)
                {
                    ownResponse.Description = $"{ownResponse.Description?.TrimEnd().TrimEnd('.')}. Also: {refusedAtTheDoor}";
                }
                else
                {
                    AddResponse(operation, StatusCodes.Status401Unauthorized, $"No credentials are needed, but {refusedAtTheDoor}");
                }
            }
            if (hasBody)
            {
                AddResponse(operation, StatusCodes.Status413PayloadTooLarge, "The body is over the gateway's limit (RateLimiting:MaxBodyBytes).");
            }
            AddResponse(operation, StatusCodes.Status429TooManyRequests, "Over a rate limit of the gateway: wait Retry-After seconds.");
            foreach (var (status, response) in operation.Responses)
            {
                if (response is not OpenApiResponse concrete)
                {
                    continue;
                }
                concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                concrete.Headers[RateLimitPolicyHeader] = StringHeader("The quota policies that apply (IETF draft-ietf-httpapi-ratelimit-headers), e.g. `\"user\";q=1200;w=60`.");
                concrete.Headers[RateLimitHeader] = StringHeader("What is left of the quota, and when it resets, e.g. `\"user\";r=1187;t=42`.");
                if (status == "429")
                {
                    concrete.Headers["Retry-After"] = RetryAfterHeader();
                }
            }
        }
    }

    /// <summary>The Retry-After of a 429 and a 503: seconds to wait.</summary>
    private static OpenApiHeader RetryAfterHeader() => new()
    {
        Description = "Seconds to wait before trying again.",
        Required = true,
        Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1", Maximum = "3600" },
    };

    private static OpenApiHeader StringHeader(string description) => new()
    {
        Description = description,
        Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 200 },
    };

    private static void AddResponse(OpenApiOperation operation, int status, string description)
    {
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!operation.Responses!.ContainsKey(key))
        {
            operation.Responses[key] = new OpenApiResponse { Description = description };
        }
    }

    private static void DescribeDocument(OpenApiDocument document, LibraryOpenApiOptions settings, IHostEnvironment environment)
    {
        document.Info ??= new OpenApiInfo();
        document.Info.Title = $"{settings.Title}: {environment.ApplicationName}";
        document.Info.Version = settings.Version;
        document.Info.Contact = new OpenApiContact { Name = settings.ContactName, Email = settings.ContactEmail };

        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "An access token from POST /api/auth/login (ES256, 15 minutes); its `role` claim is member, librarian or admin.",
        };
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas[ProblemSchema] = Problem();
        // The framework's own name for a validation problem: the same shape (errors is in both).
        document.Components.Schemas["HttpValidationProblemDetails"] = Problem();

        foreach (var operation in (document.Paths?.Values.AsEnumerable() ?? []).SelectMany(p => p.Operations?.Values.AsEnumerable() ?? []))
        {
            foreach (var (status, response) in operation.Responses ?? new OpenApiResponses())
            {
                if (response is OpenApiResponse concrete && int.TryParse(status, out var code) && code >= 400)
                {
                    concrete.Content = new Dictionary<string, OpenApiMediaType>
                    {
                        [ProblemMediaType] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
                    };
                }
            }
        }

        // The address the document was fetched from is an internal one (a replica, or the
        // gateway's own when it forwards the host); the configured public URLs come first.
        var fetchedFrom = (document.Servers ?? []).ToList();
        var servers = new List<OpenApiServer>();
        foreach (var url in settings.PublicUrls)
        {
            servers.Add(Server(url, "The Library's public gateway", "public"));
        }
        foreach (var server in fetchedFrom.Where(s => !settings.PublicUrls.Contains(s.Url ?? "", StringComparer.OrdinalIgnoreCase)))
        {
            servers.Add(Server(server.Url!, "The address this document was fetched from", settings.PublicUrls.Count > 0 ? "internal" : "public"));
        }
        document.Servers = servers;
    }

    public static OpenApiServer Server(string url, string description, string audience) => new()
    {
        Url = url,
        Description = description,
        Extensions = new Dictionary<string, IOpenApiExtension> { [AudienceExtension] = new JsonNodeExtension(JsonValue.Create(audience)) },
    };

    /// <summary>RFC 9457 problem details as <see cref="ProblemDetailsDefaults"/> writes them.</summary>
    public static OpenApiSchema Problem() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "RFC 9457 problem details. Refusals may carry more members (e.g. `blocks`).",
        Required = new HashSet<string> { "title", "status", "traceId" },
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "400", Maximum = "599" },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
            ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
            ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The trace ID the service's logs carry for this request." },
            ["errors"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Validation errors: the (camelCase) field, and what is wrong with it.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
            },
        },
    };
}
