using Library.LendingService.Data;
using Library.TestSupport;

namespace Library.LendingService.Tests;

public sealed class StartupTests() : ServiceStartupTests<Program, LendingDbContext>("lendingdb")
{
    [Theory]
    [InlineData("Circulation:Currency", "euro")]
    [InlineData("Circulation:BlockThreshold", "0")]
    public async Task A_bad_currency_or_block_threshold_stops_the_service_at_start(string key, string value)
    {
        await using var database = await TestDatabase.CreateAsync("lendingdb");
        var settings = Settings(database);
        settings[key] = value;
        await AssertStartFailsAsync(settings, "Circulation:BlockThreshold");
    }
}
