namespace Library.ServiceDefaults;

/// <summary>
/// Another service a request needed (a look-up over gRPC) did not answer, after the tries its
/// caller makes: the request is answered 503 with <c>Retry-After</c> and problem details naming
/// the service (<see cref="ProblemDetailsDefaults"/>), not 500. Thrown before the request changed
/// anything; the thrower logs the failure (a warning: the framework's error log is suppressed).
/// </summary>
public sealed class DependencyUnavailableException(string service, Exception? inner = null)
    : Exception($"The {service} did not answer.", inner)
{
    /// <summary>The seconds a client is told to wait: a replica that died is out of rotation by then.</summary>
    public const int RetryAfterSeconds = 2;

    public string Service { get; } = service;
}
