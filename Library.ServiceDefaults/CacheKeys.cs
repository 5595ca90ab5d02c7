using Microsoft.Extensions.Configuration;

namespace Library.ServiceDefaults;

/// <summary>
/// Names of the Redis keys that more than one service reads. The catalog service bumps
/// <see cref="CatalogVersion"/> after every committed change to the catalog or to a title's
/// availability; its own read cache and the gateway's output cache both key their entries by
/// that version, so neither serves an answer older than the last committed change.
/// <c>Cache:KeyPrefix</c> (empty by default) puts every key of a deployment under one prefix,
/// so two deployments (or two tests) can share one Redis without reading each other's entries.
/// </summary>
public static class CacheKeys
{
    public const string PrefixSetting = "Cache:KeyPrefix";

    public static string Prefix(IConfiguration configuration) => configuration[PrefixSetting] ?? "";

    public static string CatalogVersion(IConfiguration configuration) => Prefix(configuration) + "catalog:v";
}
