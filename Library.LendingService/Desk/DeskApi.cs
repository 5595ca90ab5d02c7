using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Replicas;
using Library.LendingService.Validation;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Library.LendingService.Desk;

/// <summary>A check-out of the copy scanned to a reader; <c>days</c> as for a borrow (the rule's loanDays when left out).</summary>
public sealed record CheckOutRequest(
    [property: Required(ErrorMessage = CopiesApi.BarcodeRule), StringLength(InputLimits.BarcodeLength, ErrorMessage = CopiesApi.BarcodeRule),
        RegularExpression(InputLimits.BarcodePattern, ErrorMessage = CopiesApi.BarcodeRule)] string? Barcode,
    [property: RequiredId(ErrorMessage = "userId is required: the reader the copy is lent to.")] Guid? UserId,
    [property: Range(1, LoansApi.MaxDaysEver, ErrorMessage = LoansApi.DaysRule)] int? Days);

public sealed record CheckInRequest(
    [property: Required(ErrorMessage = CopiesApi.BarcodeRule), StringLength(InputLimits.BarcodeLength, ErrorMessage = CopiesApi.BarcodeRule),
        RegularExpression(InputLimits.BarcodePattern, ErrorMessage = CopiesApi.BarcodeRule)] string? Barcode);

/// <summary>The librarian's desk: check-out and check-in by barcode (a scanner types the barcode and Enter).</summary>
public static class DeskApi
{
    public static IEndpointRouteBuilder MapDesk(this IEndpointRouteBuilder app)
    {
        var desk = app.MapGroup("/api/circulation").WithTags("Desk").RequireAuthorization(Policies.Librarian);
        desk.MapPost("/check-out", CheckOut).WithName("CheckOutCopy")
            .WithSummary("Check a copy out to a reader")
            .WithDescription("Librarians: lends the exact copy scanned. The same refusals as a borrow: 403 a blocked reader (the blocks are listed), "
                + "404 unknown barcode or reader, 409 the copy not on the shelf or held for another reader, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        desk.MapPost("/check-in", CheckIn).WithName("CheckInCopy")
            .WithSummary("Check a copy in")
            .WithDescription("Librarians: ends the copy's loan (charging any overdue fine) and says where the copy goes: shelf, hold-shelf or withdrawn. "
                + "Refuses: 404 unknown barcode, 409 the copy is not checked out, 422 an Idempotency-Key used for another request.")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return app;
    }

    private static async Task<Results<Created<LoanResponse>, ValidationProblem, ProblemHttpResult>> CheckOut(
        CheckOutRequest request, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, ReplicaLookup replicas,
        CirculationDesk desk, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        if (!await replicas.EnsureReaderAsync(request.UserId!.Value, ct))
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        return (await idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, "check-out",
            token => desk.CheckOutAsync(request.Barcode!, request.UserId.Value, request.Days, time.DatabaseNow(), token), ct)).ToCreated<LoanResponse>();
    }

    private static async Task<Results<Ok<CheckInResponse>, ValidationProblem, ProblemHttpResult>> CheckIn(
        CheckInRequest request, [FromHeader(Name = Idempotency.Header), IdempotencyKey] string? idempotencyKey, ClaimsPrincipal caller, CirculationDesk desk,
        Idempotency idempotency, TimeProvider time, CancellationToken ct) =>
        (await idempotency.RunAsync(caller.UserId()!.Value, idempotencyKey, "check-in",
            token => desk.CheckInAsync(request.Barcode!, time.DatabaseNow(), token), ct)).ToOk<CheckInResponse>();
}
