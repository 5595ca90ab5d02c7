using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Library.UserService.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Library.UserService.Tests;

/// <summary>
/// The user service on a real loopback port, found by its own token validation through service
/// discovery (services:userservice:http:0), exactly as other services find it; with a first
/// admin, a service client, and a clock the tests can move.
/// </summary>
public class UserServiceFixture : IAsyncLifetime
{
    public const string AdminEmail = "admin@library.test";
    public const string AdminPassword = "Admin-password-1";
    public const string ClientId = "lendingservice";
    public const string ClientSecret = "lending-client-secret-for-tests";

    /// <summary>The work factor of the tests' password hashes (ServiceHost gives every service under test this one).</summary>
    public const int PasswordIterations = TestSettings.PasswordIterations;

    public TestDatabase Database { get; private set; } = null!;
    public ServiceHost<Program> Host { get; private set; } = null!;
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    /// <summary>Settings a derived fixture adds or overrides.</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>();

    public async ValueTask InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync("userdb");
        var port = Ports.FreePort();
        var settings = new Dictionary<string, string?>
            {
                ["ConnectionStrings:userdb"] = Database.ConnectionString,
                ["services:userservice:http:0"] = $"http://127.0.0.1:{port}",
                ["Library:Admin:Email"] = AdminEmail,
                ["Library:Admin:Password"] = AdminPassword,
                [$"Auth:Clients:{ClientId}:Secret"] = ClientSecret,
            };
        foreach (var (key, value) in ExtraSettings)
        {
            settings[key] = value;
        }
        Host = new ServiceHost<Program>(settings, services => services.AddSingleton<TimeProvider>(Clock)).OnPort(port);
        Host.StartServer();
    }

    public HttpClient Client(string? accessToken = null)
    {
        // Every answer is checked against the service's published document (ContractCheck).
        var client = Host.AddressClient();
        if (accessToken is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }
        return client;
    }

    public async Task<JsonElement> RegisterAsync(string email, string password = "Reader-password-1", string firstName = "Ann", string lastName = "Reader")
    {
        using var client = Client();
        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email, firstName, lastName, password });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public async Task<JsonElement> LoginAsync(string email, string password)
    {
        using var client = Client();
        using var response = await client.PostAsJsonAsync("/api/auth/login", new { email, password });
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public async Task<string> AccessTokenAsync(string email, string password) =>
        (await LoginAsync(email, password)).GetProperty("accessToken").GetString()!;

    public Task<string> AdminTokenAsync() => AccessTokenAsync(AdminEmail, AdminPassword);

    /// <summary>A new reader with a unique email, and their access token.</summary>
    public async Task<(Guid Id, string Email, string Token)> NewMemberAsync(string password = "Reader-password-1")
    {
        var email = $"reader-{Guid.NewGuid():N}@library.test";
        var user = await RegisterAsync(email, password);
        return (user.GetProperty("id").GetGuid(), email, await AccessTokenAsync(email, password));
    }

    /// <summary>A librarian enrolled by the admin, and their access token.</summary>
    public async Task<(Guid Id, string Token)> NewLibrarianAsync()
    {
        var email = $"librarian-{Guid.NewGuid():N}@library.test";
        using var admin = Client(await AdminTokenAsync());
        using var response = await admin.PostAsJsonAsync("/api/users", new { email, firstName = "Lib", lastName = "Rarian", password = "Librarian-password-1", role = "librarian" });
        response.EnsureSuccessStatusCode();
        var user = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (user.GetProperty("id").GetGuid(), await AccessTokenAsync(email, "Librarian-password-1"));
    }

    public async Task<T> InScopeAsync<T>(Func<UserDbContext, Task<T>> work)
    {
        await using var scope = Host.Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<UserDbContext>());
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Database.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
