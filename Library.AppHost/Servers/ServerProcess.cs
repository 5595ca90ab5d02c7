using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Library.AppHost.Servers;

internal static class ServerProcess
{
    /// <summary>
    /// Adds a server process as Aspire sees every one of them here: its <c>tcp</c> endpoint on a
    /// port Aspire allocates (no proxy: the server listens on it itself), the command line built
    /// by <see cref="Os.CleanArguments"/>, and a health check that is the real client's round trip
    /// (<paramref name="probe"/> throws while the server cannot answer), which <c>WaitFor</c> waits on.
    /// Not in the manifest: a deployment uses containers or managed servers.
    /// </summary>
    public static IResourceBuilder<T> AddServerProcess<T>(
        this IDistributedApplicationBuilder builder, T resource, IReadOnlyList<object> args, string icon, Func<CancellationToken, Task> probe)
        where T : ExecutableResource
    {
        var healthKey = $"{resource.Name}_check";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(healthKey, _ => new DelegateHealthCheck(async ct =>
        {
            await probe(ct);
            return HealthCheckResult.Healthy();
        }), failureStatus: null, tags: null));

        return builder.AddResource(resource)
            .WithEndpoint(name: "tcp", scheme: "tcp", isProxied: false)
            .WithArgs(context =>
            {
                foreach (var a in args)
                {
                    context.Args.Add(a);
                }
            })
            .WithIconName(icon)
            .WithHealthCheck(healthKey)
            .ExcludeFromManifest();
    }
}

/// <summary>A health check from a delegate (the AppHost's checks need state from its events).</summary>
internal sealed class DelegateHealthCheck(Func<CancellationToken, Task<HealthCheckResult>> check) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            return await check(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy(ex.Message, ex);
        }
    }
}
