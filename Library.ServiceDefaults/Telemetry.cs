using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Library.ServiceDefaults;

/// <summary>Names of the library's own activity sources and meters (all start with "Library.").</summary>
public static class Telemetry
{
    public const string ActivitySourcePrefix = "Library.";
    public const string MeterPrefix = "Library.";

    /// <summary>Start-up work (migrations, seeding) shows as spans of this source.</summary>
    public static readonly ActivitySource Startup = new("Library.Startup");
}
