using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;

namespace Library.ServiceDefaults;

/// <summary>Names of the library's own activity sources and meters (all start with "Library.").</summary>
public static class Telemetry
{
    public const string ActivitySourcePrefix = "Library.";
    public const string MeterPrefix = "Library.";

    /// <summary>Start-up work (migrations, seeding) shows as spans of this source.</summary>
    public static readonly ActivitySource Startup = new("Library.Startup");

    /// <summary>
    /// Whether spans leave the process (an OTLP endpoint: the AppHost's dashboard, a collector).
    /// Without one, tracing is not switched on at all: otherwise every request, SQL command, Redis
    /// call and message gets a sampled, tagged span that nobody reads (OpenTelemetry's sampler and
    /// Npgsql's span bookkeeping showed in the lending service's profile under the borrow load:
    /// bench/README.md, issue 15, the write path, fourth pass).
    /// </summary>
    public static bool IsExported(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}
