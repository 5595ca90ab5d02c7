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

    public static IApplicationBuilder UsePageHeaders(this IApplicationBuilder app)
    {
        // One logger for the process (not one look-up per request); the scope's state is one
        // small object, not a dictionary per request.
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Gateway");
        return app.Use(async (context, next) =>
        {
            var requestId = RequestId(context);
            if (!ReferenceEquals(requestId, context.Request.Headers[RequestIdHeader].ToString()))
            {
                context.Request.Headers[RequestIdHeader] = requestId;
            }
            context.Response.OnStarting(static state =>
            {
                var context = (HttpContext)state;
                Write(context, context.Request.Headers[RequestIdHeader].ToString());
                return Task.CompletedTask;
            }, context);
            using (logger.BeginScope(new RequestIdScope(requestId)))
            {
                await next(context);
            }
        });
    }

    /// <summary>The client's request ID if it sent a usable one, else the trace ID (or the connection's request identifier).</summary>
    public static string RequestId(HttpContext context)
    {
        var requestId = context.Request.Headers[RequestIdHeader].ToString();
        if (string.IsNullOrWhiteSpace(requestId) || requestId.Length > 128)
        {
            requestId = System.Diagnostics.Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
        }
        return requestId;
    }

    /// <summary>The headers themselves, on an answer about to start (also the catalog cache's hits: <see cref="CatalogAnswers"/>).</summary>
    public static void Write(HttpContext context, string requestId)
    {
        var headers = context.Response.Headers;
        headers[RequestIdHeader] = requestId;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.ContentSecurityPolicy = context.Request.Path.StartsWithSegments("/docs") ? DocsCsp : PageCsp;
    }

    /// <summary>The logging scope of a request: its ID, as the JSON logs show it ("RequestId").</summary>
    private sealed class RequestIdScope(string requestId) : IReadOnlyList<KeyValuePair<string, object>>
    {
        public int Count => 1;

        public KeyValuePair<string, object> this[int index] =>
            index == 0 ? new("RequestId", requestId) : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
        {
            yield return this[0];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => "RequestId:" + requestId;
    }
}
