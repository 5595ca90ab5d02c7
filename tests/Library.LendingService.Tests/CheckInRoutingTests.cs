using Library.LendingService.Desk;

namespace Library.LendingService.Tests;

public sealed class CheckInRoutingTests
{
    [Theory]
    [InlineData(false, false, CheckInRoute.Shelf, "shelf")]
    [InlineData(false, true, CheckInRoute.HoldShelf, "hold-shelf")]
    [InlineData(true, false, CheckInRoute.Withdrawn, "withdrawn")]
    [InlineData(true, true, CheckInRoute.Withdrawn, "withdrawn")] // a surplus copy leaves even if someone waits
    public void Withdrawal_comes_first_then_a_waiting_hold_then_the_shelf(bool markedForWithdrawal, bool aHoldIsWaiting, CheckInRoute expected, string name)
    {
        var route = CheckInRouting.Route(markedForWithdrawal, aHoldIsWaiting);
        Assert.Equal(expected, route);
        Assert.Equal(name, CheckInRouting.Name(route));
    }

    [Fact]
    public void Every_route_has_a_name_and_nothing_else_does()
    {
        Assert.Equal(3, Enum.GetValues<CheckInRoute>().Select(CheckInRouting.Name).Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => CheckInRouting.Name((CheckInRoute)42));
    }
}
