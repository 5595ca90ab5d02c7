extern alias UserService;

using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using UserServiceProgram = UserService::Program;

namespace Library.Gateway.Tests;

/// <summary>
/// The real user service on a loopback port: it issues the tokens and publishes the keys the
/// gateway validates them with.
/// </summary>
public sealed class RealUserService : IAsyncDisposable
{
    public const string AdminEmail = "admin@gateway.test";
    public const string AdminPassword = "Admin-password-1";

    private RealUserService(TestDatabase database, ServiceHost<UserServiceProgram> host)
    {
        Database = database;
        Host = host;
    }

    public TestDatabase Database { get; }
    public ServiceHost<UserServiceProgram> Host { get; }
    public string MetadataAddress => new Uri(Host.Address, "/.well-known/openid-configuration").ToString();

    public static async Task<RealUserService> StartAsync()
    {
        var database = await TestDatabase.CreateAsync("userdb");
        var port = Ports.FreePort();
        var host = new ServiceHost<UserServiceProgram>(new Dictionary<string, string?>
        {
            ["ConnectionStrings:userdb"] = database.ConnectionString,
            ["services:userservice:http:0"] = $"http://127.0.0.1:{port}",
            ["Library:Admin:Email"] = AdminEmail,
            ["Library:Admin:Password"] = AdminPassword,
        }).OnPort(port);
        host.StartServer();
        return new RealUserService(database, host);
    }

    public async Task<string> AdminTokenAsync()
    {
        using var client = new HttpClient { BaseAddress = Host.Address };
        using var response = await client.PostAsJsonAsync("/api/auth/login", new { email = AdminEmail, password = AdminPassword });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Database.DisposeAsync();
    }
}
