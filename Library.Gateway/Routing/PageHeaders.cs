namespace Library.Gateway.Routing;

/// <summary>
/// Headers on every answer: a request ID the logs and the services share (kept if the client
/// sent one, forwarded to the service), no MIME sniffing, no framing, no referrer leaks, and a
/// strict content security policy for the web page (the API docs need inline scripts).
/// </summary>
public static class PageHeaders
{
    public const string RequestIdHeader = "X-Request-Id";

    private const string PageCsp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";
    private const string DocsCsp = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

    public static IApplicationBuilder UsePageHeaders(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var requestId = context.Request.Headers[RequestIdHeader].ToString();
        if (string.IsNullOrWhiteSpace(requestId) || requestId.Length > 128)
        {
            requestId = System.Diagnostics.Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
            context.Request.Headers[RequestIdHeader] = requestId;
        }
        context.Response.OnStarting(() =>
        {
            var headers = context.Response.Headers;
            headers[RequestIdHeader] = requestId;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = context.Request.Path.StartsWithSegments("/docs") ? DocsCsp : PageCsp;
            return Task.CompletedTask;
        });
        using (context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Gateway").BeginScope(new Dictionary<string, object> { ["RequestId"] = requestId }))
        {
            await next(context);
        }
    });
}
