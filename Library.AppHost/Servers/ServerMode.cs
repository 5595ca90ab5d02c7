using System.Diagnostics;
using Microsoft.Extensions.Configuration;

namespace Library.AppHost.Servers;

/// <summary>How the backing servers (PostgreSQL, Redis, RabbitMQ) run.</summary>
internal enum ServerMode
{
    /// <summary>Aspire's own container resources (<c>AddPostgres</c>, <c>AddRedis</c>, <c>AddRabbitMQ</c>).</summary>
    Container,

    /// <summary>
    /// The distribution's packages as executable resources that Aspire (DCP) starts, watches and
    /// stops: for machines without a working container runtime.
    /// </summary>
    Process,
}

internal static class ServerModes
{
    /// <summary>
    /// <c>Library:Servers</c> = <c>container</c>, <c>process</c> or <c>auto</c> (the default):
    /// containers when a container runtime answers within a few seconds, processes otherwise.
    /// Publishing (the manifest azd reads) always describes containers.
    /// </summary>
    public static ServerMode Choose(IDistributedApplicationBuilder builder)
    {
        if (builder.ExecutionContext.IsPublishMode)
        {
            return ServerMode.Container;
        }

        var setting = builder.Configuration["Library:Servers"] ?? "auto";
        return setting.ToUpperInvariant() switch
        {
            "CONTAINER" or "CONTAINERS" => ServerMode.Container,
            "PROCESS" or "PROCESSES" when OperatingSystem.IsLinux() => ServerMode.Process,
            "PROCESS" or "PROCESSES" => throw new InvalidOperationException("Library:Servers=process runs the servers from Linux distribution packages; use containers here."),
            "AUTO" => ContainerRuntimeAnswers(builder.Configuration) || !OperatingSystem.IsLinux() ? ServerMode.Container : ServerMode.Process,
            _ => throw new InvalidOperationException(
                $"Library:Servers is '{setting}': use 'container', 'process' or 'auto'."),
        };
    }

    // The runtime DCP would use (ASPIRE_CONTAINER_RUNTIME, as Aspire reads it; docker by default)
    // must answer `info`: a docker client without a daemon (this build machine) does not.
    private static bool ContainerRuntimeAnswers(ConfigurationManager configuration)
    {
        var runtime = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"] ?? "docker";
        try
        {
            using var process = Process.Start(new ProcessStartInfo(runtime, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }
            if (!process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // not installed
        }
    }
}
