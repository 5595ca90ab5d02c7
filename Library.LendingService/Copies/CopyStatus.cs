using System.Text;

namespace Library.LendingService.Copies;

/// <summary>
/// A copy's status and the changes allowed between them, as one table that both the code
/// (<see cref="CanChange"/>) and the database (<see cref="TransitionCheckSql"/>) enforce.
/// </summary>
public static class CopyStatus
{
    public const string Available = "available";
    public const string CheckedOut = "checked-out";
    public const string AwaitingPickup = "awaiting-pickup";
    public const string Missing = "missing";
    public const string InRepair = "in-repair";
    public const string Withdrawn = "withdrawn";
    public const string Lost = "lost";

    public static IReadOnlyList<string> All { get; } = [Available, CheckedOut, AwaitingPickup, Missing, InRepair, Withdrawn, Lost];

    /// <summary>The statuses a librarian may set by hand (PATCH); the others follow circulation (check-out, check-in, holds).</summary>
    public static IReadOnlyList<string> ManualTargets { get; } = [Available, Missing, InRepair, Withdrawn, Lost];

    /// <summary>Every allowed change of status; staying in the same status is not a change, so not listed.</summary>
    public static IReadOnlyList<(string From, string To)> Transitions { get; } =
    [
        (Available, CheckedOut),       // checked out
        (Available, AwaitingPickup),   // a hold is waiting: put on the hold shelf
        (Available, Missing),
        (Available, InRepair),
        (Available, Withdrawn),
        (Available, Lost),
        (CheckedOut, Available),       // check-in
        (CheckedOut, AwaitingPickup),  // check-in to a waiting hold
        (CheckedOut, Withdrawn),       // check-in of a copy marked for withdrawal
        (CheckedOut, Lost),            // declared lost
        (AwaitingPickup, CheckedOut),  // picked up
        (AwaitingPickup, Available),   // the hold expired or was cancelled, no one else waits
        (AwaitingPickup, Missing),
        (AwaitingPickup, Lost),
        (Missing, Available),          // found
        (Missing, Withdrawn),
        (Missing, Lost),
        (InRepair, Available),
        (InRepair, Withdrawn),
        (InRepair, Missing),
        (Lost, Available),             // found
        (Lost, Withdrawn),
        (Withdrawn, Available),        // re-instated
    ];

    private static readonly HashSet<(string From, string To)> Allowed = [.. Transitions];

    /// <summary>True when a copy may go from <paramref name="from"/> to <paramref name="to"/>; false for the same status (not a change).</summary>
    public static bool CanChange(string from, string to) => Allowed.Contains((from, to));

    /// <summary>
    /// Why a librarian may not set <paramref name="to"/> by hand on a copy that is <paramref name="from"/>, or null.
    /// The same status is allowed as a no-op (a PATCH that repeats the status changes nothing), though
    /// <see cref="CanChange"/> does not count it as a change.
    /// </summary>
    public static string? ManualChangeRefusal(string from, string to)
    {
        if (!All.Contains(to))
        {
            return $"status must be one of: {string.Join(", ", ManualTargets)}.";
        }
        if (from == to)
        {
            return null;
        }
        if (!ManualTargets.Contains(to))
        {
            return $"{to} follows circulation (check-out, check-in, holds) and cannot be set by hand; set one of: {string.Join(", ", ManualTargets)}.";
        }
        return from switch
        {
            CheckedOut when to != Lost => "the copy is checked out: check it in first (or declare it lost, which ends the loan and charges the reader).",
            AwaitingPickup when to == Available => "the copy is on the hold shelf for a reader: cancel the hold or let it expire first.",
            _ when !CanChange(from, to) => $"copy status cannot change from {from} to {to}.",
            _ => null,
        };
    }

    /// <summary>
    /// The body of a PostgreSQL trigger function (<c>RETURNS trigger LANGUAGE plpgsql</c>, for
    /// <c>BEFORE UPDATE OF status</c> on the copies) that refuses, with SQLSTATE 23514 (check_violation),
    /// a status change not in <see cref="Transitions"/>: generated from that table, so code and database agree.
    /// </summary>
    public static string TransitionCheckSql()
    {
        var pairs = string.Join(",\n            ", Transitions.Select(t => $"({Literal(t.From)}, {Literal(t.To)})"));
        return new StringBuilder()
            .Append("BEGIN\n")
            .Append("    IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN (\n")
            .Append("            ").Append(pairs).Append(") THEN\n")
            .Append("        RAISE EXCEPTION 'copy status cannot change from % to %', OLD.status, NEW.status\n")
            .Append("            USING ERRCODE = 'check_violation';\n")
            .Append("    END IF;\n")
            .Append("    RETURN NEW;\n")
            .Append("END;\n")
            .ToString();
    }

    internal static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
