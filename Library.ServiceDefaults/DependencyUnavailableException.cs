namespace Library.ServiceDefaults;

/// <summary>
/// Another service a request needed (a look-up over gRPC) did not answer, after the tries its
/// caller makes: the request is answered 503 with <c>Retry-After</c> and problem details naming
/// the service (<see cref="ProblemDetailsDefaults"/>), not 500. Thrown before the request changed
/// anything; the thrower logs the failure (a warning: the framework's error log is suppressed).
/// Also a request that a service turns away before it starts, because too many wait for the same
/// resource (<paramref name="detail"/> then says so instead of "did not answer").
/// </summary>
public sealed class DependencyUnavailableException(string service, Exception? inner = null, string? detail = null)
    : Exception(detail ?? $"The {service} did not answer.", inner)
{
    /// <summary>The seconds a client is told to wait: a replica that died is out of rotation by then.</summary>
    public const int RetryAfterSeconds = 2;

    public string Service { get; } = service;

    /// <summary>The problem details' detail, when not "did not answer".</summary>
    public string? Detail { get; } = detail;
}
