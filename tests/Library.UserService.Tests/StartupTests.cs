using Library.UserService.Data;
using Library.TestSupport;

namespace Library.UserService.Tests;

public sealed class StartupTests() : ServiceStartupTests<Program, UserDbContext>("userdb")
{
    [Fact]
    public async Task A_password_work_factor_under_a_thousand_iterations_stops_the_service_at_start()
    {
        await using var database = await TestDatabase.CreateAsync("userdb");
        var settings = Settings(database);
        settings["Auth:PasswordIterations"] = "999";
        for (var attempt = 1; ; attempt++)
        {
            await using var host = new ServiceHost<Program>(settings);
            var failure = Assert.ThrowsAny<Exception>(() => host.CreateClient());
            // WebApplicationFactory's race (as in the lending service's StartupTests): try again.
            if (failure is ObjectDisposedException && attempt < 3)
            {
                continue;
            }
            Assert.True(failure.ToString().Contains("Auth:PasswordIterations must be at least 1,000", StringComparison.Ordinal), failure.ToString());
            break;
        }
    }
}
