namespace Library.AppHost;

/// <summary>
/// .NET runtime settings of the services that have no runtimeconfig name and so are set as
/// environment variables by every launcher: this AppHost (run mode, and the manifest that azd
/// deploys) and eng/processes.sh, which must give the same value.
/// </summary>
internal static class RuntimeSettings
{
    /// <summary>
    /// The GC's generation-0 budget: 4 MiB (hex, as the runtime reads it). By default the
    /// workstation GC sizes gen0 from the L3 cache (32 MiB on the bench machine), and each
    /// replica keeps that much freshly allocated memory committed between collections. A replica
    /// here allocates little per request, so a small budget costs more, but cheap, gen0
    /// collections and takes 6-17 MiB off each service replica's RSS after the bench load
    /// (bench/README.md, "Memory", bench/memory.sh). Read from the environment only: the GC has
    /// no runtimeconfig name for it.
    /// </summary>
    public const string Gen0Size = "0x400000";

    /// <summary>
    /// glibc's malloc arenas: 2. By default glibc gives busy threads arenas of their own (up to 8
    /// per core), and the runtime's native allocations (JIT, type loader, sockets, TLS) spread over
    /// them, each keeping its freed pages; two arenas hold 10-20 MiB less per replica after the
    /// bench load (bench/README.md, "Memory"). Native allocation is off the services' hot paths.
    /// Ignored where the C library is not glibc.
    /// </summary>
    public const string MallocArenas = "2";

    public static IResourceBuilder<ProjectResource> Apply(IResourceBuilder<ProjectResource> project) =>
        project.WithEnvironment("DOTNET_GCgen0size", Gen0Size)
            .WithEnvironment("MALLOC_ARENA_MAX", MallocArenas);
}
