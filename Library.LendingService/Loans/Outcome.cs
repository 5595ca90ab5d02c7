using System.Text.Json;

namespace Library.LendingService.Loans;

/// <summary>
/// The answer of a lending use case, as data: it is both sent and, for a request with an
/// Idempotency-Key, stored to be sent again to a retry.
/// </summary>
public sealed record Outcome(int Status, object? Body, string? Location = null, string? Title = null, string? Detail = null)
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

    public IResult ToResult() => Succeeded
        ? Status switch
        {
            StatusCodes.Status201Created => Results.Created(Location, Body),
            StatusCodes.Status204NoContent => Results.NoContent(),
            _ => Results.Json(Body, Json, statusCode: Status),
        }
        : Results.Problem(statusCode: Status, title: Title, detail: Detail);

    public string Serialize() => JsonSerializer.Serialize(this, Json);

    public static Outcome Deserialize(string json) => JsonSerializer.Deserialize<StoredOutcome>(json, Json)!.ToOutcome();

    /// <summary>The stored form: the body as raw JSON (its type is gone once stored).</summary>
    private sealed record StoredOutcome(int Status, JsonElement? Body, string? Location, string? Title, string? Detail)
    {
        public Outcome ToOutcome() => new(Status, Body, Location, Title, Detail);
    }
}
