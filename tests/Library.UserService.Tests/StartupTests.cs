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
        await AssertStartFailsAsync(settings, "Auth:PasswordIterations must be at least 1,000");
    }
}
