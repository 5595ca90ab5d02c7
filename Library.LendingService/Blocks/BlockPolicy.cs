using Library.LendingService.Loans;

namespace Library.LendingService.Blocks;

/// <summary>Where a block comes from: the reader's fines, an overdue loan, the loan limit, or a librarian.</summary>
public static class BlockSources
{
    public const string Fines = "fines";
    public const string Overdue = "overdue";
    public const string Limit = "limit";
    public const string Manual = "manual";
}

/// <summary>What a block may stop (FOLIO's blockBorrowing / blockRenewals / blockRequests).</summary>
public enum BlockedAction
{
    Borrowing,
    Renewals,
    Holds,
}

/// <summary>
/// One reason a reader may not do something, as the account and every 403 show it. Only a
/// manual block has an <see cref="Id"/> (to delete it), who set it and maybe an expiry.
/// </summary>
public sealed record ReaderBlock(string Source, string Reason, bool Borrowing, bool Renewals, bool Holds,
    Guid? Id = null, DateTimeOffset? ExpiresAt = null, DateTimeOffset? CreatedAt = null, Guid? CreatedBy = null)
{
    public bool Stops(BlockedAction action) => action switch
    {
        BlockedAction.Borrowing => Borrowing,
        BlockedAction.Renewals => Renewals,
        _ => Holds,
    };
}

/// <summary>A manual block as the policy needs it (the <c>blocks</c> row).</summary>
public sealed record ManualBlock(Guid Id, string Reason, DateTimeOffset? ExpiresAt, bool Borrowing, bool Renewals, bool Holds, DateTimeOffset CreatedAt, Guid CreatedBy);

/// <summary>
/// What is known of a reader when deciding: the open balance (charged fines still owed), how many
/// loans are overdue and out, the loan limit of the rule in question (null when no rule is in
/// question yet), and their manual blocks.
/// </summary>
public sealed record ReaderStanding(long Balance, int OverdueLoans, int ActiveLoans, int? MaxActiveLoans, IReadOnlyList<ManualBlock> Manual);

/// <summary>
/// Every block of a reader, computed from the data each time (never a stored flag, so paying the
/// balance below the threshold or returning the overdue copy lifts the block at once), as plain
/// functions. What each automatic block stops follows FOLIO's patron-block conditions and
/// Evergreen's penalties: fines and overdue loans stop borrowing, renewing and new holds; the loan
/// limit stops borrowing only (a hold or a renewal does not add a loan).
/// </summary>
public static class BlockPolicy
{
    public static IReadOnlyList<ReaderBlock> Blocks(ReaderStanding standing, long threshold, string currency, DateTimeOffset now)
    {
        var blocks = new List<ReaderBlock>();
        if (standing.Balance > 0 && standing.Balance >= threshold)
        {
            blocks.Add(new(BlockSources.Fines,
                $"The reader owes {standing.Balance} (minor units of {currency}) in fines, at or over the limit of {threshold}: pay to lift it.",
                Borrowing: true, Renewals: true, Holds: true));
        }
        if (standing.OverdueLoans > 0)
        {
            blocks.Add(new(BlockSources.Overdue,
                standing.OverdueLoans == 1 ? "The reader has an overdue loan: return it first." : $"The reader has {standing.OverdueLoans} overdue loans: return them first.",
                Borrowing: true, Renewals: true, Holds: true));
        }
        if (standing.MaxActiveLoans is { } max && standing.ActiveLoans >= max)
        {
            blocks.Add(new(BlockSources.Limit, $"The reader already has {standing.ActiveLoans} loans, the most allowed ({max}).",
                Borrowing: true, Renewals: false, Holds: false));
        }
        blocks.AddRange(standing.Manual.Where(m => IsInForce(m.ExpiresAt, now)).OrderBy(m => m.CreatedAt).Select(FromManual));
        return blocks;
    }

    public static ReaderBlock FromManual(ManualBlock manual) =>
        new(BlockSources.Manual, manual.Reason, manual.Borrowing, manual.Renewals, manual.Holds, manual.Id, manual.ExpiresAt, manual.CreatedAt, manual.CreatedBy);

    /// <summary>A manual block applies until its expiry (none: until a librarian deletes it).</summary>
    public static bool IsInForce(DateTimeOffset? expiresAt, DateTimeOffset now) => expiresAt is null || expiresAt > now;

    /// <summary>The 403 refusal naming every block that stops <paramref name="action"/>, or null.</summary>
    public static Refusal? Refusal(IReadOnlyList<ReaderBlock> blocks, BlockedAction action)
    {
        var stopping = blocks.Where(b => b.Stops(action)).ToList();
        if (stopping.Count == 0)
        {
            return null;
        }
        var what = action switch
        {
            BlockedAction.Borrowing => "Borrowing",
            BlockedAction.Renewals => "Renewing",
            _ => "Placing holds",
        };
        var title = stopping.All(b => b.Source == BlockSources.Limit) ? "Loan limit reached" : "Reader blocked";
        return new(RefusalKind.Forbidden, title,
            $"{what} is blocked: " + string.Join(" ", stopping.Select(b => $"[{b.Source}] {b.Reason}")), Blocks: stopping);
    }
}
