namespace Library.AppHost;

/// <summary>
/// .NET runtime settings of the services that have no runtimeconfig name and so are set as
/// environment variables by every launcher: this AppHost (run mode, and the manifest that azd
/// deploys) and eng/processes.sh, which must give the same value.
/// </summary>
internal static class RuntimeSettings
{
    /// <summary>
    /// The GC's generation-0 budget: 16 MiB (hex, as the runtime reads it). By default the
    /// workstation GC sizes gen0 from the L3 cache (32 MiB on the bench machine), and each
    /// replica keeps that much freshly allocated memory committed between collections. 4 MiB
    /// (session 22) took 6-17 MiB off each replica's RSS, but under the borrow load a lending
    /// replica (11 MB allocated a second) then collected 2.1 times a second, half of them gen1,
    /// and paused 28 ms a second: a stall of every request in flight. 16 MiB: 0.6 collections a
    /// second, 7 ms of pauses a second, borrow+return p99 0.71-0.91x and throughput 1.05-1.12x
    /// in three alternating pairs, for 5-10 MiB more per lending replica after the load
    /// (bench/README.md, "Issue 15, session 33"). Read from the environment only: the GC has no
    /// runtimeconfig name for it.
    /// </summary>
    public const string Gen0Size = "0x1000000";

    /// <summary>
    /// glibc's malloc arenas: 2. By default glibc gives busy threads arenas of their own (up to 8
    /// per core), and the runtime's native allocations (JIT, type loader, sockets, TLS) spread over
    /// them, each keeping its freed pages; two arenas hold 10-20 MiB less per replica after the
    /// bench load (bench/README.md, "Memory"). Native allocation is off the services' hot paths.
    /// Ignored where the C library is not glibc.
    /// </summary>
    public const string MallocArenas = "2";

    /// <summary>
    /// Each replica's share of the database work that runs at once (the catalog's uncached
    /// searches, the lending service's requests), where PostgreSQL runs on this machine: 2 per
    /// core, split among the replicas, at least 2 (Library.ServiceDefaults/ConcurrencyGate.cs says
    /// why; eng/processes.sh does the same).
    /// </summary>
    public static int DatabaseShare(int replicas) => Math.Max(2, 2 * Environment.ProcessorCount / Math.Max(1, replicas));

    public static IResourceBuilder<ProjectResource> Apply(IResourceBuilder<ProjectResource> project) =>
        project.WithEnvironment("DOTNET_GCgen0size", Gen0Size)
            .WithEnvironment("MALLOC_ARENA_MAX", MallocArenas);
}
