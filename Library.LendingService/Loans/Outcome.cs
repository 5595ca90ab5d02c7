using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Library.LendingService.Loans;

/// <summary>
/// The answer of a lending use case, as data: it is both sent and, for a request with an
/// Idempotency-Key, stored to be sent again to a retry.
/// </summary>
public sealed record Outcome(int Status, object? Body, string? Location = null, string? Title = null, string? Detail = null,
    IDictionary<string, string[]>? Errors = null, IDictionary<string, object?>? Extensions = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public bool Succeeded => Status is >= 200 and < 300;

    public static Outcome Created(string location, object body) => new(StatusCodes.Status201Created, body, location);
    public static Outcome Ok(object body) => new(StatusCodes.Status200OK, body);
    public static Outcome NoContent() => new(StatusCodes.Status204NoContent, null);
    public static Outcome Problem(int status, string title, string detail) => new(status, null, Title: title, Detail: detail);
    public static Outcome NotFound(string what) => Problem(StatusCodes.Status404NotFound, "Not found", $"No {what} with this ID.");
    public static Outcome Conflict(string title, string detail) => Problem(StatusCodes.Status409Conflict, title, detail);
    public static Outcome Forbidden(string detail) => Problem(StatusCodes.Status403Forbidden, "Forbidden", detail);
    public static Outcome Invalid(string field, string message) =>
        new(StatusCodes.Status400BadRequest, null, Title: "One or more validation errors occurred.", Detail: message, Errors: new Dictionary<string, string[]> { [field] = [message] });
    public static Outcome Invalid(IDictionary<string, string[]> errors) =>
        new(StatusCodes.Status400BadRequest, null, Title: "One or more validation errors occurred.", Errors: errors);

    /// <summary>A domain refusal as its answer: 400 for a bad value, 403 for the reader, 409 for the copy's or loan's state.</summary>
    public static Outcome Refused(Refusal refusal) => refusal.Kind switch
    {
        RefusalKind.Invalid => Invalid(refusal.Field ?? "request", refusal.Reason),
        RefusalKind.Forbidden when refusal.Blocks is { } blocks =>
            Problem(StatusCodes.Status403Forbidden, refusal.Title, refusal.Reason) with { Extensions = new Dictionary<string, object?> { ["blocks"] = blocks } },
        RefusalKind.Forbidden => Problem(StatusCodes.Status403Forbidden, refusal.Title, refusal.Reason),
        RefusalKind.NotFound => Problem(StatusCodes.Status404NotFound, refusal.Title, refusal.Reason),
        _ => Conflict(refusal.Title, refusal.Reason),
    };

    public IResult ToResult() => Succeeded
        ? Status switch
        {
            StatusCodes.Status201Created => Results.Created(Location, Body),
            StatusCodes.Status204NoContent => Results.NoContent(),
            _ => Results.Json(Body, Json, statusCode: Status),
        }
        : Errors is not null
            ? Results.ValidationProblem(Errors, detail: Detail, statusCode: Status, title: Title)
            : Results.Problem(statusCode: Status, title: Title, detail: Detail, extensions: Extensions);

    /// <summary>
    /// The answer typed for the endpoint's document: its success (200 with <typeparamref name="T"/>),
    /// a 400 with <c>errors</c>, or any other refusal as problem details (extension members, such
    /// as a block refusal's <c>blocks</c>, kept). A replayed answer's body is JSON again, read back as <typeparamref name="T"/>.
    /// </summary>
    public Results<Ok<T>, ValidationProblem, ProblemHttpResult> ToOk<T>() =>
        Succeeded ? TypedResults.Ok(BodyAs<T>(StatusCodes.Status200OK)) : Errors is not null ? ToValidationProblem() : ToProblem();

    /// <summary>
    /// As <see cref="ToOk{T}"/>, for a use case that validates nothing (a read by ID): its
    /// document then declares no 400 it cannot give. A validation outcome would still answer as
    /// problem details, with its status.
    /// </summary>
    public Results<Ok<T>, ProblemHttpResult> ToOkOrProblem<T>() =>
        Succeeded ? TypedResults.Ok(BodyAs<T>(StatusCodes.Status200OK)) : ToProblem();

    /// <summary>As <see cref="ToOk{T}"/>, for a use case that creates (201 with its <c>Location</c>).</summary>
    public Results<Created<T>, ValidationProblem, ProblemHttpResult> ToCreated<T>() =>
        Succeeded ? TypedResults.Created(Location, BodyAs<T>(StatusCodes.Status201Created)) : Errors is not null ? ToValidationProblem() : ToProblem();

    /// <summary>As <see cref="ToOk{T}"/>, for a use case that answers nothing (204).</summary>
    public Results<NoContent, ValidationProblem, ProblemHttpResult> ToNoContent() =>
        Succeeded ? NoContentOf() : Errors is not null ? ToValidationProblem() : ToProblem();

    /// <summary>A refusal (never a success) as problem details; use <see cref="IsValidationProblem"/> to pick between this and <see cref="ToValidationProblem"/>.</summary>
    public ProblemHttpResult ToProblem() => TypedResults.Problem(Detail, statusCode: Status, title: Title, extensions: Extensions);

    public bool IsValidationProblem => Errors is not null;

    public ValidationProblem ToValidationProblem() => TypedResults.ValidationProblem(Errors!, Detail, title: Title);

    private T BodyAs<T>(int expected)
    {
        if (Status != expected)
        {
            // A use case answers one success status; another one is a programming error, not an input's.
            throw new InvalidOperationException($"The use case answered {Status} where {expected} was expected.");
        }
        return Body switch
        {
            T body => body,
            JsonElement stored => stored.Deserialize<T>(Json)!,
            _ => throw new InvalidOperationException($"The use case answered a {Body?.GetType().Name ?? "null"} where a {typeof(T).Name} was expected."),
        };
    }

    private NoContent NoContentOf() => Status == StatusCodes.Status204NoContent
        ? TypedResults.NoContent()
        : throw new InvalidOperationException($"The use case answered {Status} where 204 was expected.");

    public string Serialize() => JsonSerializer.Serialize(this, Json);

    public static Outcome Deserialize(string json) => JsonSerializer.Deserialize<StoredOutcome>(json, Json)!.ToOutcome();

    /// <summary>The stored form: the body as raw JSON (its type is gone once stored).</summary>
    private sealed record StoredOutcome(int Status, JsonElement? Body, string? Location, string? Title, string? Detail, Dictionary<string, string[]>? Errors,
        Dictionary<string, JsonElement>? Extensions)
    {
        public Outcome ToOutcome() => new(Status, Body, Location, Title, Detail, Errors, Extensions?.ToDictionary(e => e.Key, e => (object?)e.Value));
    }
}
