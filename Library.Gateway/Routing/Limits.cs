using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.RateLimiting;

namespace Library.Gateway.Routing;

/// <summary>The "Limits" table of the API contract (section <c>RateLimiting</c>), per minute.</summary>
public sealed class LimitOptions
{
    public const string SectionName = "RateLimiting";

    public int AnonymousPerMinute { get; set; } = 600;
    public int UserPerMinute { get; set; } = 1200;
    public int LoginPerMinute { get; set; } = 10;
    public int LoginPerIpPerMinute { get; set; } = 120;
    public int RegisterPerMinute { get; set; } = 20;
    public long MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>The catalog import's own, larger limit (<see cref="Limits.ImportPath"/>): a whole catalog file.</summary>
    public long MaxImportBytes { get; set; } = 16 * 1024 * 1024;
}

/// <summary>
/// Rate limits at the door: every request counts against its signed-in user (the validated
/// token's <c>sub</c>) or, anonymous, its client IP; log-in and refresh also count per IP and per
/// (IP, email), registration per IP. Over a limit: 429 problem details with Retry-After.
/// </summary>
public static class Limits
{
    private const string EmailItem = RateLimitPolicies.EmailItem;

    /// <summary>The one request whose body may exceed <see cref="LimitOptions.MaxBodyBytes"/>: up to <see cref="LimitOptions.MaxImportBytes"/>.</summary>
    public const string ImportPath = "/api/books/import";

    public static IServiceCollection AddLibraryRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        var limits = configuration.GetSection(LimitOptions.SectionName).Get<LimitOptions>() ?? new LimitOptions();
        var policies = new RateLimitPolicies(limits);
        services.AddSingleton(policies);
        services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = policies.Chained;
            o.OnRejected = async (rejected, ct) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(60);
                var response = rejected.HttpContext.Response;
                response.StatusCode = StatusCodes.Status429TooManyRequests;
                response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                await Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                    detail: $"Slow down: try again in {response.Headers.RetryAfter} s.").ExecuteAsync(rejected.HttpContext);
            };
        });
        return services;
    }

    /// <summary>
    /// The email of a log-in or refresh request, read from its (small, size-limited) body before
    /// the limiter runs, so attempts at one account are counted together; the body is then
    /// forwarded untouched.
    /// </summary>
    public static IApplicationBuilder UseLoginEmailForLimits(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (HttpMethods.IsPost(context.Request.Method) && IsPath(context, "/api/auth/login", "/api/auth/refresh"))
        {
            context.Request.EnableBuffering();
            var email = "";
            try
            {
                using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
                if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("email", out var value) && value.ValueKind == JsonValueKind.String)
                {
                    email = value.GetString()!.Trim().ToLowerInvariant();
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                // Malformed, or an email that is not a string of valid UTF-16 (a lone surrogate
                // escaped as \ud800 parses but cannot be read): the service answers 400; it still
                // counts, under an empty email.
            }
            context.Request.Body.Position = 0;
            context.Items[EmailItem] = email;
        }
        await next(context);
    });

    /// <summary>
    /// A declared body over the limit is refused before a byte of it is read (Kestrel's own
    /// limit, set from the same key, stops chunked bodies that grow past it). A catalog import
    /// (POST <see cref="ImportPath"/>) has its own limit, <c>RateLimiting:MaxImportBytes</c>: this
    /// request's Kestrel limit is raised to it, every other request keeps the small one.
    /// </summary>
    public static IApplicationBuilder UseBodyLimit(this IApplicationBuilder app, long maxBytes, long maxImportBytes) => app.Use(async (context, next) =>
    {
        var limit = maxBytes;
        if (HttpMethods.IsPost(context.Request.Method) && IsPath(context, ImportPath))
        {
            limit = maxImportBytes;
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } kestrel)
            {
                kestrel.MaxRequestBodySize = maxImportBytes;
            }
        }
        if (context.Request.ContentLength > limit)
        {
            await Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request too large",
                detail: $"Bodies are limited to {limit} bytes.").ExecuteAsync(context);
            return;
        }
        await next(context);
    });

    private static bool IsPath(HttpContext context, params string[] paths) =>
        paths.Any(p => context.Request.Path.Equals(p, StringComparison.OrdinalIgnoreCase));

}

/// <summary>
/// The limits of the contract's "Limits" table, each a named policy (the names the RateLimit
/// headers give: <see cref="RateLimitHeaders"/>): every request counts against its signed-in user
/// (<c>user</c>) or its client IP (<c>anonymous</c>); log-in and refresh also per IP
/// (<c>login-ip</c>) and per (IP, email) (<c>login</c>); registration per IP (<c>register</c>).
/// </summary>
public sealed class RateLimitPolicies
{
    public const string EmailItem = "library.login-email";

    /// <summary>Sliding windows of a minute in six parts: a part of the quota comes back every 10 s.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    public const int Segments = 6;

    public RateLimitPolicies(LimitOptions limits)
    {
        Limits = limits;
        // One factory per quota, made once: a partition look-up allocates no closure.
        var user = PerMinute(limits.UserPerMinute);
        var anonymous = PerMinute(limits.AnonymousPerMinute);
        var loginIp = PerMinute(limits.LoginPerIpPerMinute);
        var login = PerMinute(limits.LoginPerMinute);
        var register = PerMinute(limits.RegisterPerMinute);
        Identity = PartitionedRateLimiter.Create<HttpContext, string>(context => context.User.FindFirstValue("sub") is { } sub
            ? RateLimitPartition.Get("user:" + sub, user)
            : RateLimitPartition.Get("ip:" + Ip(context), anonymous));
        LoginPerIp = PartitionedRateLimiter.Create<HttpContext, string>(context => IsLogin(context)
            ? RateLimitPartition.Get("login-ip:" + Ip(context), loginIp)
            : RateLimitPartition.GetNoLimiter("none"));
        Login = PartitionedRateLimiter.Create<HttpContext, string>(context => IsLogin(context)
            ? RateLimitPartition.Get($"login:{Ip(context)}:{context.Items[EmailItem] as string}", login)
            : RateLimitPartition.GetNoLimiter("none"));
        Register = PartitionedRateLimiter.Create<HttpContext, string>(context => IsRegister(context)
            ? RateLimitPartition.Get("register:" + Ip(context), register)
            : RateLimitPartition.GetNoLimiter("none"));
        Chained = PartitionedRateLimiter.CreateChained(Identity, LoginPerIp, Login, Register);
        var window = (int)Window.TotalSeconds;
        userItem = string.Create(CultureInfo.InvariantCulture, $"\"user\";q={limits.UserPerMinute};w={window}");
        anonymousItem = string.Create(CultureInfo.InvariantCulture, $"\"anonymous\";q={limits.AnonymousPerMinute};w={window}");
    }

    private readonly string userItem;
    private readonly string anonymousItem;

    public LimitOptions Limits { get; }
    public PartitionedRateLimiter<HttpContext> Identity { get; }
    public PartitionedRateLimiter<HttpContext> LoginPerIp { get; }
    public PartitionedRateLimiter<HttpContext> Login { get; }
    public PartitionedRateLimiter<HttpContext> Register { get; }
    public PartitionedRateLimiter<HttpContext> Chained { get; }

    /// <summary>The policies a request counts against: name, quota per window, its limiter.</summary>
    public IEnumerable<(string Name, int Quota, PartitionedRateLimiter<HttpContext> Limiter)> For(HttpContext context)
    {
        yield return IdentityPolicy(context);
        if (IsLogin(context))
        {
            yield return ("login-ip", Limits.LoginPerIpPerMinute, LoginPerIp);
            yield return ("login", Limits.LoginPerMinute, Login);
        }
        if (IsRegister(context))
        {
            yield return ("register", Limits.RegisterPerMinute, Register);
        }
    }

    /// <summary>The policy every request counts against: its user's, or its IP's when anonymous.</summary>
    public (string Name, int Quota, PartitionedRateLimiter<HttpContext> Limiter) IdentityPolicy(HttpContext context) =>
        context.User.FindFirstValue("sub") is not null ? ("user", Limits.UserPerMinute, Identity) : ("anonymous", Limits.AnonymousPerMinute, Identity);

    /// <summary>True when a request counts against more than its identity's policy (log-in, refresh, registration).</summary>
    public bool HasOwnPolicies(HttpContext context) => IsLogin(context) || IsRegister(context);

    /// <summary>The <c>RateLimit-Policy</c> item of the identity policy (made once).</summary>
    public string PolicyItem(string name) => name == "user" ? userItem : anonymousItem;

    private static bool IsLogin(HttpContext context) => IsPath(context, "/api/auth/login") || IsPath(context, "/api/auth/refresh");

    private static bool IsRegister(HttpContext context) => IsPath(context, "/api/auth/register");

    /// <summary>
    /// As <c>RateLimitPartition.GetSlidingWindowLimiter</c> makes them: the partitioned limiter's
    /// one timer replenishes every partition (no timer per limiter).
    /// </summary>
    private static Func<string, RateLimiter> PerMinute(int permits) => _ => new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
    {
        PermitLimit = permits,
        Window = Window,
        SegmentsPerWindow = Segments,
        QueueLimit = 0,
        AutoReplenishment = false,
    });

    private static bool IsPath(HttpContext context, string path) =>
        context.Request.Path.Equals(path, StringComparison.OrdinalIgnoreCase);

    private static string Ip(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}
