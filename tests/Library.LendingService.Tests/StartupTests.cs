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
        for (var attempt = 1; ; attempt++)
        {
            await using var host = new ServiceHost<Program>(settings);
            var failure = Assert.ThrowsAny<Exception>(() => host.CreateClient());
            // WebApplicationFactory's race (its DeferredHost asks the host's services for the lifetime
            // after the program's own Run, having failed, may already have disposed them): the start
            // failed, but the reason is lost. Seen twice in whole-project runs, never alone; try again.
            if (failure is ObjectDisposedException && attempt < 3)
            {
                continue;
            }
            Assert.True(failure.ToString().Contains("Circulation:BlockThreshold", StringComparison.Ordinal), failure.ToString());
            break;
        }
    }
}
