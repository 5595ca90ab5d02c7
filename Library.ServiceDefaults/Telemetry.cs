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
    /// Without one, tracing is not switched on at all: a sampled span per request, per SQL
    /// command, per Redis call and per message that nobody reads cost the lending service about
    /// a tenth of its CPU per borrow (bench/README.md, issue 15, the write path, fourth pass).
    /// </summary>
    public static bool IsExported(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}
