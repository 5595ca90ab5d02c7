using Library.ServiceDefaults;
using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

// Same namespace as Aspire's ServiceDefaults template, so `builder.AddServiceDefaults()` reads the
// same in every service and in the AppHost's documentation.
namespace Microsoft.Extensions.Hosting;

public static class Extensions
{
    public const string HealthEndpointPath = "/health";
    public const string AlivenessEndpointPath = "/alive";

    /// <summary>Tag of the health checks /alive runs: only "is the process responsive".</summary>
    public const string LiveTag = "live";

    /// <summary>
    /// Telemetry, JSON logs, health checks, graceful shutdown (<see cref="GracefulShutdown"/>),
    /// service discovery, resilient HttpClients, problem details and what every OpenAPI document
    /// says (<see cref="OpenApiDefaults"/>): everything every Library
    /// service needs before its own features.
    /// </summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureLogging();
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();
        builder.AddGracefulShutdown();
        builder.AddIdleMemoryTrim();
        builder.Services.AddLibraryProblemDetails();
        builder.Services.ConfigureLibraryOpenApi(builder.Configuration);

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });

        return builder;
    }

    /// <summary>JSON console logs that carry the trace and span IDs of the current activity.</summary>
    public static TBuilder ConfigureLogging<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        if (!builder.Configuration.GetValue("Logging:PlainText", false))
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        var otel = builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(Library.ServiceDefaults.Telemetry.MeterPrefix + "*"));
        // Npgsql's traces and metrics are added by Aspire's EF Core integration (AddLibraryNpgsqlDbContext).

        // Export only when somebody is listening (the AppHost, or a collector in Azure); trace only
        // then too: unexported spans are pure cost (Telemetry.IsExported). Requests still carry a
        // W3C trace ID into the logs and the outbox's traceparent (ASP.NET Core starts its request
        // activity whenever logging is on, listener or not).
        if (Library.ServiceDefaults.Telemetry.IsExported(builder.Configuration))
        {
            otel.WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(Library.ServiceDefaults.Telemetry.ActivitySourcePrefix + "*")
                // RabbitMQ.Client 7 emits its own publish/deliver activities under these names.
                .AddSource("RabbitMQ.Client.*")
                .AddAspNetCoreInstrumentation(o => o.Filter = context =>
                    !context.Request.Path.StartsWithSegments(HealthEndpointPath) &&
                    !context.Request.Path.StartsWithSegments(AlivenessEndpointPath))
                .AddGrpcClientInstrumentation()
                .AddHttpClientInstrumentation());
            otel.UseOtlpExporter();
        }

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        return builder;
    }

    /// <summary>
    /// /health (ready: every check, including database, cache and broker) and /alive (live: the
    /// process answers). Mapped in every environment: Azure Container Apps runs Production and its
    /// probes need them (Aspire pitfall: the template maps them in Development only).
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthEndpointPath, new HealthCheckOptions
        {
            ResponseWriter = HealthReportWriter.WriteAsync,
        }).DisableHttpMetrics();
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(LiveTag),
            ResponseWriter = HealthReportWriter.WriteAsync,
        }).DisableHttpMetrics();
        return app;
    }
}
