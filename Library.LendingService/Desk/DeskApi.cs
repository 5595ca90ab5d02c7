using System.Security.Claims;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.ServiceDefaults;

namespace Library.LendingService.Desk;

public sealed record CheckOutRequest(string? Barcode, Guid? UserId, int? Days);
public sealed record CheckInRequest(string? Barcode);

/// <summary>The librarian's desk: check-out and check-in by barcode (a scanner types the barcode and Enter).</summary>
public static class DeskApi
{
    public static IEndpointRouteBuilder MapDesk(this IEndpointRouteBuilder app)
    {
        var desk = app.MapGroup("/api/circulation").WithTags("Desk").RequireAuthorization(Policies.Librarian);
        desk.MapPost("/check-out", CheckOut);
        desk.MapPost("/check-in", CheckIn);
        return app;
    }

    private static async Task<IResult> CheckOut(CheckOutRequest request, ClaimsPrincipal caller, HttpRequest http, ReplicaLookup replicas,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!CopiesApi.IsBarcode(request.Barcode))
        {
            errors["barcode"] = [CopiesApi.BarcodeRule];
        }
        if (request.UserId is null || request.UserId == Guid.Empty)
        {
            errors["userId"] = ["userId is required: the reader the copy is lent to."];
        }
        if (request.Days is < 1 or > LoansApi.MaxDaysEver)
        {
            errors["days"] = [$"days must be between 1 and the rule's maxLoanDays (at most {LoansApi.MaxDaysEver})."];
        }
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        if (!await replicas.EnsureReaderAsync(request.UserId!.Value, ct))
        {
            return Outcome.NotFound("reader").ToResult();
        }
        return (await idempotency.RunAsync(caller.UserId()!.Value, key, "check-out",
            token => desk.CheckOutAsync(request.Barcode!, request.UserId.Value, request.Days, time.DatabaseNow(), token), ct)).ToResult();
    }

    private static async Task<IResult> CheckIn(CheckInRequest request, ClaimsPrincipal caller, HttpRequest http, CirculationDesk desk,
        Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        if (!CopiesApi.IsBarcode(request.Barcode))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["barcode"] = [CopiesApi.BarcodeRule] });
        }
        var key = http.Headers[Idempotency.Header].FirstOrDefault();
        if (Idempotency.InvalidKey(key) is { } badKey)
        {
            return badKey;
        }
        return (await idempotency.RunAsync(caller.UserId()!.Value, key, "check-in",
            token => desk.CheckInAsync(request.Barcode!, time.DatabaseNow(), token), ct)).ToResult();
    }
}
