using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Rules;

public sealed record LoanTypeResponse(string Name, bool Loanable);

/// <summary>Why a rule applies: the rule, its place in the list, the version, and the explanation in words.</summary>
public sealed record RuleResolution(CirculationRule Rule, int RuleIndex, long Version, Guid? PatronGroupId, string LoanType, bool Loanable, string Explanation);

/// <summary>The circulation rules (an ordered list, the first match wins, the last a catch-all) and the loan types.</summary>
public static class RulesApi
{
    public const string VersionHeader = "Rules-Version";
    public const string RulesMaxRule = "rules must hold at most 200 rules.";

    public static IEndpointRouteBuilder MapCirculationRules(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/loan-types").WithTags("Rules").AllowAnonymous()
            .MapGet("/", () => TypedResults.Ok(LoanTypes.All.Select(t => new LoanTypeResponse(t.Name, t.Loanable)).ToList())).WithName("ListLoanTypes")
            .WithSummary("List the loan types")
            .WithDescription("Anyone: the loan types a copy may have, and whether each is ever lent.");
        var read = app.MapGroup("/api/circulation-rules").WithTags("Rules").RequireAuthorization(Policies.Librarian);
        read.MapGet("/", Get).WithName("GetCirculationRules")
            .WithSummary("Get the circulation rules")
            .WithDescription("Librarians: the ordered rules (the first match wins, the last matches everything); the Rules-Version header names the version.");
        read.MapGet("/resolve", Resolve).WithName("ResolveCirculationRule")
            .WithSummary("Which rule applies to a reader and a copy")
            .WithDescription("Librarians: the rule that applies to the reader borrowing the copy, its place in the list and why, in words. 404 for an unknown reader or copy.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        app.MapGroup("/api/circulation-rules").WithTags("Rules").RequireAuthorization(Policies.Admin)
            .MapPut("/", Put).WithName("ReplaceCirculationRules")
            .WithSummary("Replace the circulation rules")
            .WithDescription("Admins: the whole ordered list at once, a new version. Refuses (400, each error naming its rule): a value out of its range, "
                + "an unknown patron group or loan type, a rule an earlier one hides, a last rule that is not a catch-all.");
        return app;
    }

    private static async Task<Ok<IReadOnlyList<CirculationRule>>> Get(HttpResponse response, CirculationSettings settings, CancellationToken ct)
    {
        var current = (await settings.CurrentAsync(ct)).Rules;
        response.Headers[VersionHeader] = current.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Ok(current.Rules);
    }

    /// <summary>
    /// The list's length is annotated; each rule is checked by <see cref="RuleSet.Validate"/>, by hand:
    /// its messages name the rule's place ("rule 2: ..."), and whether a rule hides a later one, the
    /// catch-all and the patron groups (the database) are rules over the whole list. The body is
    /// required (no body, or null, is refused by binding: a 400 too).
    /// </summary>
    private static async Task<Results<Ok<List<CirculationRule?>>, ValidationProblem>> Put(
        [MaxLength(RuleSet.MaxRules, ErrorMessage = RulesMaxRule)] List<CirculationRule?> rules, ClaimsPrincipal caller, HttpResponse response, LendingDbContext db,
        CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        long version = 0;
        IDictionary<string, string[]>? errors = null;
        await idempotency.RunAsync(caller.UserId()!.Value, null, "rules", async token =>
        {
            // The patron groups are read under the rules' lock, the one a group's deletion takes to
            // drop the group's lines from the newest list: read before it, a group deleted while
            // this save waited for the lock was saved into the rules in force.
            await settings.LockRulesAsync(token);
            var groups = (await db.PatronGroups.Where(g => !g.Deleted).Select(g => g.Id).ToListAsync(token)).ToHashSet();
            errors = RuleSet.Validate(rules, groups.Contains);
            if (errors.Count > 0)
            {
                return Outcome.Problem(StatusCodes.Status400BadRequest, "Invalid rules", "The rules are not valid."); // rolled back: nothing saved
            }
            version = await settings.SaveRulesAsync(rules.Select(r => r!).ToList(), caller.UserId()!.Value, time.DatabaseNow(), token);
            return Outcome.NoContent();
        }, ct);
        if (errors is { Count: > 0 })
        {
            return TypedResults.ValidationProblem(errors);
        }
        response.Headers[VersionHeader] = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Ok(rules);
    }

    private static async Task<Results<Ok<RuleResolution>, ValidationProblem, ProblemHttpResult>> Resolve(
        [Required(ErrorMessage = "userId is required.")] Guid? userId, [Required(ErrorMessage = "copyId is required.")] Guid? copyId,
        LendingDbContext db, CirculationSettings settings, CancellationToken ct)
    {
        // [Required] marks them required in the document; AddValidation does not check it on a
        // Guid? query parameter (a missing one reached the handler), so it is checked here too.
        if (userId is null || copyId is null)
        {
            var errors = new Dictionary<string, string[]>();
            if (userId is null)
            {
                errors["userId"] = ["userId is required."];
            }
            if (copyId is null)
            {
                errors["copyId"] = ["copyId is required."];
            }
            return TypedResults.ValidationProblem(errors);
        }
        var reader = await db.Readers.AsNoTracking().SingleOrDefaultAsync(r => r.Id == userId, ct);
        if (reader is null)
        {
            return Outcome.NotFound("reader").ToProblem();
        }
        var copy = await db.Copies.AsNoTracking().SingleOrDefaultAsync(c => c.Id == copyId, ct);
        if (copy is null)
        {
            return Outcome.NotFound("copy").ToProblem();
        }
        var rules = (await settings.CurrentAsync(ct)).Rules;
        var match = rules.Resolve(reader.PatronGroupId, copy.LoanType);
        return TypedResults.Ok(new RuleResolution(match.Rule, match.Index, match.Version, reader.PatronGroupId, copy.LoanType,
            rules.IsLoanable(reader.PatronGroupId, copy.LoanType), match.Explanation));
    }
}
