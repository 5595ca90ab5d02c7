using Library.LendingService.Data;
using Library.ServiceDefaults;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;

namespace Library.LendingService.Tests;

/// <summary>
/// Spans are made only where they are exported (<see cref="Telemetry.IsExported"/>): without an
/// OTLP endpoint no tracer provider exists, so neither ASP.NET Core, Npgsql nor the bus's own
/// sources are sampled; with one, the services trace as before.
/// </summary>
public sealed class TracingTests
{
    private static TracerProvider? TracerOf(string? otlpEndpoint)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "Library.LendingService" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlpEndpoint,
            ["ConnectionStrings:lendingdb"] = "Host=127.0.0.1;Database=lendingdb",
        });
        builder.AddServiceDefaults();
        builder.AddLibraryNpgsqlDbContext<LendingDbContext>("lendingdb");
        using var host = builder.Build();
        return host.Services.GetService<TracerProvider>();
    }

    [Fact]
    public void Nothing_is_traced_without_an_endpoint()
    {
        Assert.Null(TracerOf(null));
        Assert.Null(TracerOf(" "));
    }

    [Fact]
    public void Spans_are_made_where_an_endpoint_takes_them()
    {
        Assert.NotNull(TracerOf("http://127.0.0.1:4317"));
    }
}
