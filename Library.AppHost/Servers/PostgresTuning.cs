namespace Library.AppHost.Servers;

/// <summary>
/// The PostgreSQL settings the services are sized and tuned for, wherever the server runs: written
/// into <c>library.conf</c> by the process mode (<see cref="PostgresProcessExtensions"/>), passed as
/// <c>-c</c> arguments to Aspire's container in the container and publish modes (the official
/// image's entrypoint hands them to <c>postgres</c>), and the same as eng/lib/servers.sh's. Without
/// them a container kept PostgreSQL's default of 100 connections, fewer than the services' pools
/// may open at once.
/// </summary>
internal static class PostgresTuning
{
    public static readonly IReadOnlyList<(string Name, string Value)> Settings =
    [
        // 3 services x 2 replicas x 32 pooled connections (PostgresExtensions.PoolSize) = 192,
        // plus migrations' own connections, backups and psql: the default 100 is too few.
        ("max_connections", "300"),
        ("shared_buffers", "256MB"),
        // The catalog's searches (bench/README.md, search at scale): the data is in memory or on
        // SSD, so a random page costs about a sequential one (at 4 the planner read every book for
        // a category's facets instead of the category's IDs); 16 MB keeps the facets' hashes in
        // memory (4 MB spilled them to temporary files).
        ("random_page_cost", "1.1"),
        ("work_mem", "16MB"),
    ];

    /// <summary>The settings as postgresql.conf lines.</summary>
    public static string ConfigurationLines => string.Join('\n', Settings.Select(s => $"{s.Name} = {s.Value}"));

    /// <summary>Aspire's PostgreSQL container with the settings on its command line.</summary>
    public static IResourceBuilder<PostgresServerResource> WithLibraryTuning(this IResourceBuilder<PostgresServerResource> postgres) =>
        postgres.WithArgs([.. Settings.SelectMany(s => new[] { "-c", $"{s.Name}={s.Value}" })]);
}
