namespace Library.LendingService.Rules;

/// <summary>
/// One line of the circulation rules: for which readers (<paramref name="PatronGroupId"/>) and copies
/// (<paramref name="LoanType"/>), null meaning any, how they lend. Money is in minor units (cents).
/// </summary>
public sealed record CirculationRule(
    Guid? PatronGroupId,
    string? LoanType,
    bool Loanable,
    int LoanDays,
    int MaxLoanDays,
    int MaxActiveLoans,
    int MaxRenewals,
    int RenewalDays,
    int HoldPickupDays,
    int GracePeriodDays,
    long FinePerDay,
    long MaxFinePerLoan,
    long LostFee)
{
    /// <summary>True when this rule matches a reader of <paramref name="patronGroupId"/> borrowing a <paramref name="loanType"/> copy.</summary>
    public bool Matches(Guid? patronGroupId, string? loanType) =>
        (PatronGroupId is null || PatronGroupId == patronGroupId)
        && (LoanType is null || string.Equals(LoanType, loanType, StringComparison.OrdinalIgnoreCase));

    /// <summary>True when every reader and copy <paramref name="later"/> matches is matched by this rule too.</summary>
    public bool Covers(CirculationRule later) => Matches(later.PatronGroupId, later.LoanType);
}

/// <summary>What kind of lending a copy allows; a type that is not loanable stays so whatever the rules say.</summary>
public sealed record LoanType(string Name, bool Loanable);

/// <summary>The loan types a copy may have.</summary>
public static class LoanTypes
{
    public const string Standard = "standard";
    public const string ShortLoan = "short-loan";
    public const string Reference = "reference";

    public static IReadOnlyList<LoanType> All { get; } =
        [new(Standard, Loanable: true), new(ShortLoan, Loanable: true), new(Reference, Loanable: false)];

    /// <summary>The loan type called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static LoanType? Find(string? name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase));

    public static bool IsKnown(string? name) => Find(name) is not null;

    /// <summary>The names of the types that are ever lent (what the shelf counts).</summary>
    public static IReadOnlyList<string> LoanableNames { get; } = All.Where(t => t.Loanable).Select(t => t.Name).ToArray();

    /// <summary>Whether copies of this type are ever lent (reference copies never are).</summary>
    public static bool IsLoanable(string? name) => Find(name)?.Loanable ?? false;
}

/// <summary>Which rule applied, where it is in the list, the rules' version, and why, in words.</summary>
public sealed record RuleMatch(CirculationRule Rule, int Index, long Version, string Explanation);

/// <summary>
/// The circulation rules, first match wins, and their version (bumped on each change, so a loan can record
/// the rules it was made under). Validation guarantees the last rule is a catch-all, so every loan finds one.
/// </summary>
public sealed record RuleSet(long Version, IReadOnlyList<CirculationRule> Rules)
{
    public const int MaxRules = 200;
    public const int MaxDays = 366;
    public const int MaxActiveLoansLimit = 1000;
    public const int MaxRenewalsLimit = 100;
    public const int MaxHoldPickupDays = 60;
    public const int MaxGracePeriodDays = 60;
    public const long MaxMoney = 100_000_000;

    /// <summary>The first rule matching the reader's group and the copy's loan type, with why.</summary>
    /// <exception cref="InvalidOperationException">No rule matches: the list is empty or has no catch-all.</exception>
    public RuleMatch Resolve(Guid? patronGroupId, string loanType)
    {
        for (var i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            if (rule.Matches(patronGroupId, loanType))
            {
                var why = $"rule {i} matches {Group(rule.PatronGroupId)} and {Type(rule.LoanType)}";
                if (i > 0)
                {
                    var misses = string.Join(", ", Rules.Take(i).Select((r, j) => $"rule {j} needs {Needs(r, patronGroupId, loanType)}"));
                    why += $"; {(i == 1 ? "rule 0" : $"rules 0-{i - 1}")} did not match: {misses}";
                }
                return new RuleMatch(rule, i, Version, why);
            }
        }
        throw new InvalidOperationException(
            $"No circulation rule (version {Version}, {Rules.Count} rules) matches patron group {patronGroupId?.ToString() ?? "(none)"} and loan type {loanType}: the rules need a catch-all last.");
    }

    /// <summary>
    /// True when the loan type lends at all (a reference copy never does, whatever the rules say; an unknown
    /// type does not either) and the matching rule lends.
    /// </summary>
    public bool IsLoanable(Guid? patronGroupId, string loanType) =>
        LoanTypes.Find(loanType) is { Loanable: true } && Resolve(patronGroupId, loanType).Rule.Loanable;

    /// <summary>
    /// The rules before a librarian sets any: a short-loan rule (7 days, one renewal) and a catch-all from
    /// today's <c>Lending</c> configuration (14 days). Neither is more generous than the configuration. Version 0.
    /// </summary>
    public static RuleSet Seed(int maxLoanDays, int maxActiveLoans, int maxRenewals, int holdPickupDays)
    {
        var catchAll = new CirculationRule(
            PatronGroupId: null, LoanType: null, Loanable: true,
            LoanDays: Math.Min(14, maxLoanDays), MaxLoanDays: maxLoanDays, MaxActiveLoans: maxActiveLoans,
            MaxRenewals: maxRenewals, RenewalDays: 14, HoldPickupDays: holdPickupDays,
            GracePeriodDays: 0, FinePerDay: 0, MaxFinePerLoan: 0, LostFee: 0);
        var shortLoan = catchAll with
        {
            LoanType = LoanTypes.ShortLoan,
            LoanDays = Math.Min(7, maxLoanDays),
            MaxLoanDays = Math.Min(7, maxLoanDays),
            MaxRenewals = Math.Min(1, maxRenewals),
            RenewalDays = 7,
        };
        return new RuleSet(0, [shortLoan, catchAll]);
    }

    /// <summary>
    /// Field checks with no I/O but <paramref name="knownPatronGroup"/>: keys such as <c>rules[2].loanDays</c>,
    /// messages naming the rule; empty when the rules are valid.
    /// </summary>
    public static IDictionary<string, string[]> Validate(IReadOnlyList<CirculationRule?>? rules, Func<Guid, bool> knownPatronGroup)
    {
        var errors = new Dictionary<string, string[]>();
        if (rules is null || rules.Count == 0)
        {
            Add(errors, "rules", "rules must hold at least one rule: a catch-all last.");
            return errors;
        }
        if (rules.Count > MaxRules)
        {
            Add(errors, "rules", $"rules must hold at most {MaxRules} rules.");
            return errors;
        }
        for (var i = 0; i < rules.Count; i++)
        {
            if (rules[i] is not { } rule)
            {
                Add(errors, $"rules[{i}]", $"rule {i} is missing (null).");
                continue;
            }
            ValidateRule(errors, i, rule, knownPatronGroup);
            for (var j = 0; j < i; j++)
            {
                if (rules[j] is { } earlier && earlier.Covers(rule))
                {
                    Add(errors, $"rules[{i}]", $"rule {i} can never match: rule {j} matches the same readers and loan types first.");
                    break;
                }
            }
        }
        if (rules[^1] is not { PatronGroupId: null, LoanType: null })
        {
            Add(errors, "rules", "the last rule must match every reader and loan type (a catch-all): no patronGroupId, no loanType.");
        }
        return errors;
    }

    private static void ValidateRule(Dictionary<string, string[]> errors, int i, CirculationRule rule, Func<Guid, bool> knownPatronGroup)
    {
        void Check(bool ok, string field, string message)
        {
            if (!ok)
            {
                Add(errors, $"rules[{i}].{field}", $"rule {i}: {field} {message}.");
            }
        }

        if (rule.LoanType is { } loanType)
        {
            Check(LoanTypes.IsKnown(loanType), "loanType", $"must be one of: {string.Join(", ", LoanTypes.All.Select(t => t.Name))} (or none, for any)");
        }
        if (rule.PatronGroupId is { } group)
        {
            Check(group != Guid.Empty && knownPatronGroup(group), "patronGroupId", $"{group} is not a patron group");
        }
        Check(rule.MaxLoanDays is >= 1 and <= MaxDays, "maxLoanDays", $"must be between 1 and {MaxDays}");
        var maxLoanDays = rule.MaxLoanDays is >= 1 and <= MaxDays ? rule.MaxLoanDays : MaxDays;
        Check(rule.LoanDays >= 1 && rule.LoanDays <= maxLoanDays, "loanDays", $"must be between 1 and maxLoanDays ({maxLoanDays})");
        Check(rule.MaxActiveLoans is >= 0 and <= MaxActiveLoansLimit, "maxActiveLoans", $"must be between 0 and {MaxActiveLoansLimit}");
        Check(rule.MaxRenewals is >= 0 and <= MaxRenewalsLimit, "maxRenewals", $"must be between 0 and {MaxRenewalsLimit}");
        Check(rule.RenewalDays is >= 1 and <= MaxDays, "renewalDays", $"must be between 1 and {MaxDays}");
        Check(rule.HoldPickupDays is >= 1 and <= MaxHoldPickupDays, "holdPickupDays", $"must be between 1 and {MaxHoldPickupDays}");
        Check(rule.GracePeriodDays is >= 0 and <= MaxGracePeriodDays, "gracePeriodDays", $"must be between 0 and {MaxGracePeriodDays}");
        Check(rule.FinePerDay is >= 0 and <= MaxMoney, "finePerDay", $"must be between 0 and {MaxMoney}");
        Check(rule.MaxFinePerLoan is >= 0 and <= MaxMoney, "maxFinePerLoan", $"must be between 0 and {MaxMoney}");
        Check(rule.LostFee is >= 0 and <= MaxMoney, "lostFee", $"must be between 0 and {MaxMoney}");
    }

    private static string Group(Guid? id) => id is { } g ? $"patron group {g}" : "any patron group";

    private static string Type(string? loanType) => loanType is null ? "any loan type" : $"loan type {loanType}";

    /// <summary>What an earlier rule needed that the reader or copy did not have.</summary>
    private static string Needs(CirculationRule rule, Guid? patronGroupId, string loanType)
    {
        var needs = new List<string>(2);
        if (rule.PatronGroupId is { } group && group != patronGroupId)
        {
            needs.Add($"patron group {group}");
        }
        if (rule.LoanType is { } type && !string.Equals(type, loanType, StringComparison.OrdinalIgnoreCase))
        {
            needs.Add($"loan type {type}");
        }
        return string.Join(" and ", needs);
    }

    private static void Add(Dictionary<string, string[]> errors, string field, string message) =>
        errors[field] = errors.TryGetValue(field, out var previous) ? [.. previous, message] : [message];
}
