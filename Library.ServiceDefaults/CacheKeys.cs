using Microsoft.Extensions.Configuration;

namespace Library.ServiceDefaults;

/// <summary>
/// Names of the Redis keys, channel and headers that the catalog service and the gateway share.
/// Cached catalog answers are invalidated per entity, not catalog-wide: every committed change
/// names the dependencies it touches (a title, the lists, availability, loan history, authors,
/// categories, display names) and stamps each with the next value of one sequence
/// (<see cref="CatalogSequence"/>), in one Redis script that also announces it on
/// <see cref="CatalogInvalidations"/>. A cached answer records the sequence read before it was
/// computed and the dependencies it used; it is valid while none of them carries a later stamp.
/// <c>Cache:KeyPrefix</c> (empty by default) puts every key of a deployment under one prefix,
/// so two deployments (or two tests) can share one Redis without reading each other's entries.
/// </summary>
public static class CacheKeys
{
    public const string PrefixSetting = "Cache:KeyPrefix";

    /// <summary>
    /// On a catalog answer, service to gateway only: "{snapshot} {dependency} {dependency}...".
    /// No header: the answer is not cacheable.
    /// </summary>
    public const string AnswerHeader = "Library-Catalog-Cache";

    /// <summary>On a write's answer, service to gateway only: the sequence its invalidation was stamped with.</summary>
    public const string InvalidatedHeader = "Library-Catalog-Invalidated";

    public static string Prefix(IConfiguration configuration) => configuration[PrefixSetting] ?? "";

    public static string CatalogSequence(IConfiguration configuration) => Prefix(configuration) + "catalog:seq";

    /// <summary>Each dependency's latest stamp: <c>{this}{dependency}</c>, kept without expiry.</summary>
    public static string CatalogDependencyPrefix(IConfiguration configuration) => Prefix(configuration) + "catalog:dep:";

    /// <summary>The pub/sub channel: "{sequence} {dependency} {dependency}...", in sequence order.</summary>
    public static string CatalogInvalidations(IConfiguration configuration) => Prefix(configuration) + "catalog:invalidations";

    /// <summary>The gateway replicas' channel: "{replica} {sequence heard}", or "{replica} -" when it stops.</summary>
    public static string CatalogHeard(IConfiguration configuration) => Prefix(configuration) + "catalog:heard";
}

/// <summary>The dependencies a cached catalog answer can have (see <see cref="CacheKeys"/>).</summary>
public static class CatalogDependency
{
    /// <summary>Everything: a write that could not be described (an import, Redis back after an outage).</summary>
    public const string All = "all";

    /// <summary>Which titles a list, search or facet count holds, and in which order (catalog edits).</summary>
    public const string Lists = "lists";

    /// <summary>Any title's availability: lists filtered by it.</summary>
    public const string Availability = "availability";

    /// <summary>Loan history: the popular order, recommendations.</summary>
    public const string Loans = "loans";

    public const string Authors = "authors";

    public const string Categories = "categories";

    /// <summary>Author and category names, which every title shows.</summary>
    public const string Names = "names";

    public static string Book(Guid id) => "book:" + id.ToString("N");
}
