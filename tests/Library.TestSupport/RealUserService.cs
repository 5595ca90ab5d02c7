using System.Net.Http.Json;
using System.Text.Json;

namespace Library.TestSupport;

/// <summary>
/// The real user service on a loopback port (TProgram: its Program, through the test project's
/// alias): it issues the tokens, and publishes the keys, that the service under test validates.
/// </summary>
public sealed class RealUserService<TProgram> : IAsyncDisposable where TProgram : class
{
    public const string ClientId = "lendingservice";
    public const string ClientSecret = "lending-client-secret-for-tests";

    public const string AdminEmail = "admin@gateway.test";
    public const string AdminPassword = "Admin-password-1";

    private RealUserService(TestDatabase database, ServiceHost<TProgram> host)
    {
        Database = database;
        Host = host;
    }

    public TestDatabase Database { get; }
    public ServiceHost<TProgram> Host { get; }
    public string MetadataAddress => new Uri(Host.Address, "/.well-known/openid-configuration").ToString();

    /// <param name="settings">More settings, e.g. a shared EventBus:Exchange so other services get its events.</param>
    public static async Task<RealUserService<TProgram>> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var database = await TestDatabase.CreateAsync("userdb");
        var port = Ports.FreePort();
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["ConnectionStrings:userdb"] = database.ConnectionString,
            ["services:userservice:http:0"] = $"http://127.0.0.1:{port}",
            ["Library:Admin:Email"] = AdminEmail,
            ["Library:Admin:Password"] = AdminPassword,
            [$"Auth:Clients:{ClientId}:Secret"] = ClientSecret,
        };
        var host = new ServiceHost<TProgram>(all).OnPort(port);
        host.StartServer();
        return new RealUserService<TProgram>(database, host);
    }

    public Task<string> AdminTokenAsync() => LoginAsync(AdminEmail, AdminPassword);

    public async Task<string> LoginAsync(string email, string password)
    {
        using var client = Host.AddressClient();
        using var response = await client.PostAsJsonAsync("/api/auth/login", new { email, password });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString()!;
    }

    /// <summary>A new person with the role, enrolled by the admin; their ID and access token.</summary>
    public async Task<(Guid Id, string Token)> NewUserAsync(string role)
    {
        var email = $"{role}-{Guid.NewGuid():N}@library.test";
        using var client = Host.AddressClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", await AdminTokenAsync());
        using var response = await client.PostAsJsonAsync("/api/users", new { email, firstName = "Test", lastName = role, password = "Test-password-1", role });
        response.EnsureSuccessStatusCode();
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        return (id, await LoginAsync(email, "Test-password-1"));
    }

    /// <summary>A service token (client credentials), as the lending service gets one.</summary>
    public async Task<string> ServiceTokenAsync()
    {
        using var client = Host.AddressClient();
        using var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = ClientId,
            ["client_secret"] = ClientSecret,
        }));
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Database.DisposeAsync();
    }
}
