using System.Diagnostics;
using System.Text;

namespace Library.EventBus;

/// <summary>W3C trace context in AMQP message headers (<c>traceparent</c>, <c>tracestate</c>).</summary>
internal static class TraceHeaders
{
    public static void Inject(Activity? activity, ActivityContext fallback, IDictionary<string, object?> headers)
    {
        if (activity is not null)
        {
            DistributedContextPropagator.Current.Inject(activity, headers, static (carrier, key, value) =>
                ((IDictionary<string, object?>)carrier!)[key] = value);
            return;
        }

        // Nobody listens to our spans: still pass the use case's context on, so the consumer's
        // work joins the same trace.
        if (fallback != default)
        {
            headers["traceparent"] = $"00-{fallback.TraceId}-{fallback.SpanId}-{(fallback.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) ? "01" : "00")}";
            if (!string.IsNullOrEmpty(fallback.TraceState))
            {
                headers["tracestate"] = fallback.TraceState;
            }
        }
    }

    public static ActivityContext Extract(IDictionary<string, object?>? headers)
    {
        if (headers is null)
        {
            return default;
        }

        DistributedContextPropagator.Current.ExtractTraceIdAndState(headers, static (object? carrier, string name, out string? value, out IEnumerable<string>? values) =>
        {
            values = null;
            value = ((IDictionary<string, object?>)carrier!).TryGetValue(name, out var raw) ? AsString(raw) : null;
        }, out var traceParent, out var traceState);
        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    /// <summary>AMQP delivers string header values as UTF-8 bytes.</summary>
    public static string? AsString(object? raw) => raw switch
    {
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string s => s,
        null => null,
        _ => raw.ToString(),
    };
}
