using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Library.BookService.Validation;

/// <summary>
/// The endpoint validation (AddValidation, .NET 10.0) keys a body field's errors by its C# name
/// (<c>Isbn</c>, <c>AuthorIds[0]</c>); the API's 400s always named the JSON field (<c>isbn</c>), and
/// clients rely on that. This rewrites the keys of every validation problem to camelCase, after the
/// shared customisation (trace ID) has run. Query parameters are named in camelCase already.
/// </summary>
public static class ValidationErrorKeys
{
    public static IServiceCollection AddJsonNamedValidationErrors(this IServiceCollection services) =>
        services.PostConfigure<ProblemDetailsOptions>(options =>
        {
            var shared = options.CustomizeProblemDetails;
            options.CustomizeProblemDetails = context =>
            {
                shared?.Invoke(context);
                if (context.ProblemDetails is HttpValidationProblemDetails validation && validation.Errors.Keys.Any(k => k != JsonName(k)))
                {
                    var errors = validation.Errors.ToList();
                    validation.Errors.Clear();
                    foreach (var (key, messages) in errors)
                    {
                        var name = JsonName(key);
                        validation.Errors[name] = validation.Errors.TryGetValue(name, out var earlier) ? [.. earlier, .. messages] : messages;
                    }
                }
            };
        });

    /// <summary><c>Authors[0].Name</c> -> <c>authors[0].name</c>: each segment as System.Text.Json's web defaults name it.</summary>
    public static string JsonName(string key) =>
        string.Join('.', key.Split('.').Select(JsonNamingPolicy.CamelCase.ConvertName));
}
