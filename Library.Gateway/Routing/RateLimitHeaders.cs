using System.Globalization;
using System.Text;

namespace Library.Gateway.Routing;

/// <summary>
/// Clients see their budget: every answer the rate limiter counted carries the IETF
/// <c>RateLimit-Policy</c> and <c>RateLimit</c> headers (draft-ietf-httpapi-ratelimit-headers,
/// structured fields), one item per policy the request counts against
/// (<see cref="RateLimitPolicies"/>): <c>"user";q=1200;w=60</c> and <c>"user";r=1187;t=10</c>,
/// where r is what is left of the quota and t the seconds until part of it comes back (the
/// windows slide in 10-second parts). A 429 also has Retry-After (the limiter's OnRejected).
/// </summary>
public static class RateLimitHeaders
{
    public const string PolicyHeader = "RateLimit-Policy";
    public const string Header = "RateLimit";

    /// <summary>Before <c>UseRateLimiter</c>: the headers are written as the answer starts, after the request was counted.</summary>
    public static IApplicationBuilder UseRateLimitHeaders(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var policies = context.RequestServices.GetRequiredService<RateLimitPolicies>();
        context.Response.OnStarting(() =>
        {
            var policy = new StringBuilder();
            var state = new StringBuilder();
            var window = (int)RateLimitPolicies.Window.TotalSeconds;
            var reset = window / RateLimitPolicies.Segments;
            foreach (var (name, quota, limiter) in policies.For(context))
            {
                var left = limiter.GetStatistics(context)?.CurrentAvailablePermits ?? quota;
                Append(policy, $"\"{name}\";q={quota};w={window}");
                Append(state, $"\"{name}\";r={Math.Clamp(left, 0, quota)};t={reset}");
            }
            context.Response.Headers[PolicyHeader] = policy.ToString();
            context.Response.Headers[Header] = state.ToString();
            return Task.CompletedTask;
        });
        await next(context);
    });

    private static void Append(StringBuilder list, string item)
    {
        if (list.Length > 0)
        {
            list.Append(", ");
        }
        list.Append(CultureInfo.InvariantCulture, $"{item}");
    }
}
