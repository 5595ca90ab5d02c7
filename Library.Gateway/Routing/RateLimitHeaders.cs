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
    public static IApplicationBuilder UseRateLimitHeaders(this IApplicationBuilder app)
    {
        var policies = app.ApplicationServices.GetRequiredService<RateLimitPolicies>();
        return app.Use((context, next) =>
        {
            context.Response.OnStarting(static state =>
            {
                var (context, policies) = ((HttpContext, RateLimitPolicies))state;
                Write(context, policies);
                return Task.CompletedTask;
            }, (context, policies));
            return next(context);
        });
    }

    /// <summary>
    /// The two headers for the policies a request counts against (after it was counted; also on
    /// the catalog cache's hits: <see cref="CatalogAnswers"/>). The one-policy case, every request
    /// but log-in and registration, is written without builders.
    /// </summary>
    public static void Write(HttpContext context, RateLimitPolicies policies)
    {
        var window = (int)RateLimitPolicies.Window.TotalSeconds;
        var reset = window / RateLimitPolicies.Segments;
        string policy, state;
        if (!policies.HasOwnPolicies(context))
        {
            var (name, quota, limiter) = policies.IdentityPolicy(context);
            var left = limiter.GetStatistics(context)?.CurrentAvailablePermits ?? quota;
            policy = policies.PolicyItem(name);
            state = string.Create(CultureInfo.InvariantCulture, $"\"{name}\";r={Math.Clamp(left, 0, quota)};t={reset}");
        }
        else
        {
            var policyList = new StringBuilder();
            var stateList = new StringBuilder();
            foreach (var (name, quota, limiter) in policies.For(context))
            {
                var left = limiter.GetStatistics(context)?.CurrentAvailablePermits ?? quota;
                Append(policyList, $"\"{name}\";q={quota};w={window}");
                Append(stateList, $"\"{name}\";r={Math.Clamp(left, 0, quota)};t={reset}");
            }
            policy = policyList.ToString();
            state = stateList.ToString();
        }
        context.Response.Headers[PolicyHeader] = policy;
        context.Response.Headers[Header] = state;
    }

    private static void Append(StringBuilder list, string item)
    {
        if (list.Length > 0)
        {
            list.Append(", ");
        }
        list.Append(CultureInfo.InvariantCulture, $"{item}");
    }
}
