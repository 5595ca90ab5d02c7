namespace Library.LendingService.Desk;

/// <summary>Where a copy goes when it is checked in at the desk.</summary>
public enum CheckInRoute
{
    /// <summary>Back on the shelf, available.</summary>
    Shelf,

    /// <summary>To the hold shelf, for the first reader waiting.</summary>
    HoldShelf,

    /// <summary>Out of the collection: it was marked for withdrawal.</summary>
    Withdrawn,
}

/// <summary>The check-in decision as a plain function (no I/O).</summary>
public static class CheckInRouting
{
    /// <summary>
    /// Withdrawal first: a surplus copy leaves even if someone waits, the title's holds being served by its
    /// remaining copies; then the first waiting hold; else the shelf.
    /// </summary>
    public static CheckInRoute Route(bool markedForWithdrawal, bool aHoldIsWaiting) =>
        markedForWithdrawal ? CheckInRoute.Withdrawn
        : aHoldIsWaiting ? CheckInRoute.HoldShelf
        : CheckInRoute.Shelf;

    /// <summary>The route as the API spells it: <c>shelf</c>, <c>hold-shelf</c> or <c>withdrawn</c>.</summary>
    public static string Name(CheckInRoute route) => route switch
    {
        CheckInRoute.Shelf => "shelf",
        CheckInRoute.HoldShelf => "hold-shelf",
        CheckInRoute.Withdrawn => "withdrawn",
        _ => throw new ArgumentOutOfRangeException(nameof(route), route, "Not a check-in route."),
    };
}
