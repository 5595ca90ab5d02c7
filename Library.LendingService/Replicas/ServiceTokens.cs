using System.Net.Http.Json;
using System.Text.Json.Serialization;

namespace Library.LendingService.Replicas;

/// <summary>
/// This service's token for internal calls: client credentials (Auth:Client:Id / Auth:Client:Secret)
/// at the user service found by service discovery, reused until shortly before it expires.
/// </summary>
public sealed class ServiceTokens(IHttpClientFactory clients, IConfiguration configuration, TimeProvider time) : IDisposable
{
    public const string HttpClientName = "service-tokens";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (string Token, DateTimeOffset RenewAt)? _current;

    public async Task<string> GetAsync(CancellationToken ct)
    {
        if (_current is { } current && time.GetUtcNow() < current.RenewAt)
        {
            return current.Token;
        }
        await _gate.WaitAsync(ct);
        try
        {
            if (_current is { } again && time.GetUtcNow() < again.RenewAt)
            {
                return again.Token;
            }
            var client = clients.CreateClient(HttpClientName);
            using var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = configuration["Auth:Client:Id"] ?? "lendingservice",
                ["client_secret"] = configuration["Auth:Client:Secret"]
                    ?? throw new InvalidOperationException("Auth:Client:Secret is not set: the lending service cannot call the catalog or the user service."),
            }), ct);
            response.EnsureSuccessStatusCode();
            var token = await response.Content.ReadFromJsonAsync<TokenResponse>(ct) ?? throw new InvalidOperationException("empty token response");
            _current = (token.AccessToken, time.GetUtcNow().AddSeconds(Math.Max(10, token.ExpiresIn - 60)));
            return token.AccessToken;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    private sealed record TokenResponse([property: JsonPropertyName("access_token")] string AccessToken, [property: JsonPropertyName("expires_in")] int ExpiresIn);
}
