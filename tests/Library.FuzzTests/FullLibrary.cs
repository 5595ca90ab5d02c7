using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Library.Tests.InProcess;

namespace Library.FuzzTests;

/// <summary>
/// The whole library in process, as a client meets it: the user, book and lending services on
/// loopback ports sharing one exchange (events flow as in production) and the gateway in front of
/// them on its own port, on Kestrel, so its request limits apply. The catalog starts from
/// data/sample-catalog.json. The gateway's rate limits are raised through their configuration keys
/// (the contract's "Limits"), so the run is not mostly 429s; its body limit stays the default.
/// </summary>
public sealed class FullLibrary : InProcessLibrary
{
    /// <summary>The gateway's address, e.g. http://127.0.0.1:12345/.</summary>
    public Uri BaseAddress => Gateway.Address;

    // Raised, not switched off: the same keys benchmarks use (API.md, "Limits").
    protected override IReadOnlyDictionary<string, string?> GatewaySettings { get; } = new Dictionary<string, string?>
    {
        ["RateLimiting:AnonymousPerMinute"] = "100000",
        ["RateLimiting:UserPerMinute"] = "100000",
        ["RateLimiting:LoginPerMinute"] = "100000",
        ["RateLimiting:LoginPerIpPerMinute"] = "100000",
        ["RateLimiting:RegisterPerMinute"] = "100000",
    };

    // The run's one service token (World.ServiceToken, for "a service token on a person's
    // endpoint is a 403") must outlive the run: 5 minutes (the default) was shorter than a run on
    // a loaded machine (9.8 min at load ~30), and its last cases got 401 for an expired token.
    protected override IReadOnlyDictionary<string, string?> UserSettings { get; } = new Dictionary<string, string?>
    {
        ["Auth:ServiceTokenLifetime"] = "01:00:00",
    };

    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    /// <summary>Logs in through the gateway; the access and refresh tokens.</summary>
    public async Task<(string Access, string Refresh)> LoginAsync(string email, string password)
    {
        using var client = Client();
        using var response = await client.PostAsJsonAsync("/api/auth/login", new { email, password });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (body.GetProperty("accessToken").GetString()!, body.GetProperty("refreshToken").GetString()!);
    }
}
