using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

namespace Library.LendingService.Rules;

public sealed record LoanTypeResponse(string Name, bool Loanable);

/// <summary>Why a rule applies: the rule, its place in the list, the version, and the explanation in words.</summary>
public sealed record RuleResolution(CirculationRule Rule, int RuleIndex, long Version, Guid? PatronGroupId, string LoanType, bool Loanable, string Explanation);

/// <summary>The circulation rules (an ordered list, the first match wins, the last a catch-all) and the loan types.</summary>
public static class RulesApi
{
    public const string VersionHeader = "Rules-Version";

    public static IEndpointRouteBuilder MapCirculationRules(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/loan-types", () => LoanTypes.All.Select(t => new LoanTypeResponse(t.Name, t.Loanable)).ToList()).WithTags("Rules").AllowAnonymous();
        var rules = app.MapGroup("/api/circulation-rules").WithTags("Rules");
        rules.MapGet("/", Get).RequireAuthorization(Policies.Librarian);
        rules.MapPut("/", Put).RequireAuthorization(Policies.Admin);
        rules.MapGet("/resolve", Resolve).RequireAuthorization(Policies.Librarian);
        return app;
    }

    private static async Task<IResult> Get(HttpResponse response, CirculationSettings settings, CancellationToken ct)
    {
        var current = (await settings.CurrentAsync(ct)).Rules;
        response.Headers[VersionHeader] = current.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Ok(current.Rules);
    }

    private static async Task<IResult> Put(List<CirculationRule?>? rules, ClaimsPrincipal caller, HttpResponse response, LendingDbContext db,
        CirculationSettings settings, Idempotency idempotency, TimeProvider time, CancellationToken ct)
    {
        var groups = (await db.PatronGroups.Where(g => !g.Deleted).Select(g => g.Id).ToListAsync(ct)).ToHashSet();
        var errors = RuleSet.Validate(rules, groups.Contains);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        long version = 0;
        await idempotency.RunAsync(caller.UserId()!.Value, null, "rules", async token =>
        {
            version = await settings.SaveRulesAsync(rules!.Select(r => r!).ToList(), caller.UserId()!.Value, time.DatabaseNow(), token);
            return Outcome.NoContent();
        }, ct);
        response.Headers[VersionHeader] = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Ok(rules);
    }

    private static async Task<IResult> Resolve(Guid? userId, Guid? copyId, LendingDbContext db, CirculationSettings settings, CancellationToken ct)
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
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var reader = await db.Readers.AsNoTracking().SingleOrDefaultAsync(r => r.Id == userId, ct);
        if (reader is null)
        {
            return Outcome.NotFound("reader").ToResult();
        }
        var copy = await db.Copies.AsNoTracking().SingleOrDefaultAsync(c => c.Id == copyId, ct);
        if (copy is null)
        {
            return Outcome.NotFound("copy").ToResult();
        }
        var rules = (await settings.CurrentAsync(ct)).Rules;
        var match = rules.Resolve(reader.PatronGroupId, copy.LoanType);
        return Results.Ok(new RuleResolution(match.Rule, match.Index, match.Version, reader.PatronGroupId, copy.LoanType,
            rules.IsLoanable(reader.PatronGroupId, copy.LoanType), match.Explanation));
    }
}
