using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Library.ServiceDefaults;

/// <summary>
/// Every error leaves a service as RFC 9457 problem details carrying the trace ID that the logs
/// carry too. Bad input the framework itself rejects (malformed JSON, wrong types, a body over the
/// limit) keeps its 4xx status and says why; only a real fault is a 500, and its details stay in
/// the log.
/// </summary>
public static class ProblemDetailsDefaults
{
    public static IServiceCollection AddLibraryProblemDetails(this IServiceCollection services)
    {
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ctx =>
        {
            var traceId = Activity.Current?.TraceId.ToString() ?? ctx.HttpContext.TraceIdentifier;
            ctx.ProblemDetails.Extensions["traceId"] = traceId;
            ctx.ProblemDetails.Instance ??= ctx.HttpContext.Request.Path;
            if (ctx.Exception is BadHttpRequestException bad)
            {
                ctx.ProblemDetails.Detail ??= bad.Message;
            }
            if (ctx.Exception is DbUpdateConcurrencyException)
            {
                ctx.ProblemDetails.Title = "Changed concurrently";
                ctx.ProblemDetails.Detail ??= "Other requests kept changing the same record while this one was applied; read it again and retry.";
            }
            if (DatabaseUnavailable(ctx.Exception))
            {
                Unavailable(ctx, DatabaseRetryAfterSeconds, $"The database did not answer (a failover or a restart); try again in {DatabaseRetryAfterSeconds} s. "
                    + "A write may have been applied before the answer was lost: repeat it with the same Idempotency-Key, or read before repeating it.");
            }
            if (ctx.Exception is DependencyUnavailableException unavailable)
            {
                Unavailable(ctx, DependencyUnavailableException.RetryAfterSeconds,
                    unavailable.Detail ?? $"The {unavailable.Service} did not answer; nothing was changed. Try again in {DependencyUnavailableException.RetryAfterSeconds} s.");
            }
            if (ctx.ProblemDetails is HttpValidationProblemDetails validation)
            {
                CamelCaseKeys(validation.Errors);
            }
        });

        // After the default writer, which declines when the Accept header names no JSON type: a
        // refusal is problem details whatever the client says it accepts (API.md, Conventions).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IProblemDetailsWriter, AnyAcceptProblemDetailsWriter>());

        // Binding failures throw (instead of an empty 400) so the handler below can say what was wrong.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddTransient<IStartupFilter, ErrorHandlingStartupFilter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDeveloperPageExceptionFilter, SameAnswerInDevelopment>());
        return services;
    }

    /// <summary>
    /// The status of an exception that reached the pipeline (<see cref="ErrorHandlingStartupFilter"/>),
    /// as the exception handler and <see cref="SameAnswerInDevelopment"/> answer it.
    /// </summary>
    public static int StatusFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        // A write that lost its race every time it was tried (optimistic concurrency):
        // the client can retry; nothing was changed.
        DbUpdateConcurrencyException => StatusCodes.Status409Conflict,
        // Another service a look-up needed did not answer (its caller logged why).
        DependencyUnavailableException => StatusCodes.Status503ServiceUnavailable,
        // The database kept failing the way a failover or a restart does, after every
        // retry of the execution strategy: logged as the error it is, answered as one
        // the client can retry.
        _ when DatabaseUnavailable(exception) => StatusCodes.Status503ServiceUnavailable,
        OperationCanceledException => 499,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>
    /// In Development (as the AppHost runs the services) ASP.NET Core puts its developer exception
    /// page inside the pipeline, before the exception handler: it answered every exception 500,
    /// with the stack trace and the request's headers, bearer token included, through the public
    /// gateway. This filter of that page answers as the exception handler does (status, problem
    /// details with the trace ID, Retry-After) and shows nothing more; the page has logged the
    /// exception already.
    /// </summary>
    private sealed class SameAnswerInDevelopment(IProblemDetailsService problems) : IDeveloperPageExceptionFilter
    {
        public async Task HandleExceptionAsync(ErrorContext errorContext, Func<ErrorContext, Task> next)
        {
            var http = errorContext.HttpContext;
            http.Response.StatusCode = StatusFor(errorContext.Exception);
            await problems.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = http,
                Exception = errorContext.Exception,
                ProblemDetails = { Status = http.Response.StatusCode },
            });
        }
    }

    /// <summary>A 503's problem details and its Retry-After.</summary>
    private static void Unavailable(ProblemDetailsContext ctx, int retryAfterSeconds, string detail)
    {
        ctx.ProblemDetails.Title = "Service unavailable";
        ctx.ProblemDetails.Detail ??= detail;
        ctx.HttpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The seconds a client is told to wait when the database did not answer: about a failover's time.</summary>
    public const int DatabaseRetryAfterSeconds = 5;

    /// <summary>
    /// The database failed the way a failover or a restart does (<see cref="PostgresExtensions.IsTransientForFailover"/>),
    /// after the execution strategy's retries (<see cref="RetryLimitExceededException"/>) or where none applies.
    /// </summary>
    public static bool DatabaseUnavailable(Exception? exception) => exception switch
    {
        RetryLimitExceededException { InnerException: { } inner } => DatabaseUnavailable(inner),
        DbUpdateException { InnerException: { } inner } => DatabaseUnavailable(inner),
        Npgsql.NpgsqlException npgsql => PostgresExtensions.IsTransientForFailover(npgsql),
        _ => false,
    };

    /// <summary>
    /// The framework's validation (AddValidation) keys errors by the C# member
    /// (<c>PatronGroupId</c>, <c>Items[0].Name</c>); the contract keys them by the JSON field
    /// (<c>patronGroupId</c>), as the handlers' own errors are.
    /// </summary>
    private static void CamelCaseKeys(IDictionary<string, string[]> errors)
    {
        if (!errors.Keys.Any(k => k.Length > 0 && char.IsUpper(k[0]) || k.Contains('.', StringComparison.Ordinal)))
        {
            return;
        }
        var entries = errors.ToList();
        errors.Clear();
        foreach (var (key, messages) in entries)
        {
            var camel = string.Join('.', key.Split('.').Select(part => part.Length > 0 ? char.ToLowerInvariant(part[0]) + part[1..] : part));
            errors[camel] = errors.TryGetValue(camel, out var known) ? [.. known, .. messages] : messages;
        }
    }

    /// <summary>
    /// The last writer tried: without it, an answer the framework writes (401, 403, 404, 405) to a
    /// client sending <c>Accept: text/html</c> or <c>application/xml</c> would be a plain-text
    /// "Status Code: 401; Unauthorized" instead of problem details.
    /// </summary>
    private sealed class AnyAcceptProblemDetailsWriter(IOptions<ProblemDetailsOptions> options, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IProblemDetailsWriter
    {
        public bool CanWrite(ProblemDetailsContext context) => true;

        public ValueTask WriteAsync(ProblemDetailsContext context)
        {
            var http = context.HttpContext;
            var problem = context.ProblemDetails;
            problem.Status ??= http.Response.StatusCode;
            problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
            options.Value.CustomizeProblemDetails?.Invoke(context);
            return new ValueTask(http.Response.WriteAsJsonAsync(problem, problem.GetType(), json.Value.SerializerOptions, "application/problem+json", http.RequestAborted));
        }
    }

    /// <summary>Puts the exception handler and status-code pages first in every pipeline.</summary>
    private sealed class ErrorHandlingStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseExceptionHandler(new ExceptionHandlerOptions
            {
                StatusCodeSelector = StatusFor,
                SuppressDiagnosticsCallback = ctx => ctx.Exception is BadHttpRequestException or OperationCanceledException or DependencyUnavailableException,
            });
            app.UseStatusCodePages();
            app.Use(async (context, nextMiddleware) =>
            {
                try
                {
                    await nextMiddleware(context);
                }
                catch (BadHttpRequestException ex)
                {
                    // Client errors are logged at information level, with the trace ID from the scope.
                    context.RequestServices.GetRequiredService<ILoggerFactory>()
                        .CreateLogger("Library.BadRequest")
                        .LogInformation("Rejected {Method} {Path}: {Reason}", context.Request.Method, context.Request.Path, ex.Message);
                    throw;
                }
            });
            next(app);
        };
    }
}
