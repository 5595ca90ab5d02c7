using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Library.TestSupport;

/// <summary>
/// A service under test, in process, configured exactly as eng/run.sh and the AppHost configure
/// it: Aspire's configuration keys pointing at the real test servers.
/// </summary>
public class ServiceHost<TProgram> : WebApplicationFactory<TProgram> where TProgram : class
{
    private readonly Dictionary<string, string?> _settings;

    public ServiceHost(IDictionary<string, string?> settings)
    {
        _settings = new Dictionary<string, string?>(settings)
        {
            ["ConnectionStrings:cache"] = settings.TryGetValue("ConnectionStrings:cache", out var cache) ? cache : TestServers.Redis,
            ["ConnectionStrings:messaging"] = settings.TryGetValue("ConnectionStrings:messaging", out var messaging) ? messaging : TestServers.RabbitMQ,
            ["Logging:PlainText"] = "true",
        };
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
