using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Library.ServiceDefaults;

namespace Library.LendingService.Calendar;

/// <summary>The library's calendar: its time zone, the weekdays it is closed and its closed dates.</summary>
public static class CalendarApi
{
    public static IEndpointRouteBuilder MapCalendar(this IEndpointRouteBuilder app)
    {
        var calendar = app.MapGroup("/api/calendar").WithTags("Calendar");
        calendar.MapGet("/", async (CirculationSettings settings, CancellationToken ct) => Results.Ok((await settings.CurrentAsync(ct)).Calendar.ToDocument())).AllowAnonymous();
        calendar.MapPut("/", Put).RequireAuthorization(Policies.Admin);
        return app;
    }

    private static async Task<IResult> Put(CalendarDocument? calendar, ClaimsPrincipal caller, CirculationSettings settings, Idempotency idempotency,
        TimeProvider time, CancellationToken ct)
    {
        var errors = CalendarDocument.Validate(calendar);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors);
        }
        var normalised = LibraryCalendar.From(calendar!).ToDocument();
        await idempotency.RunAsync(caller.UserId()!.Value, null, "calendar", async token =>
        {
            await settings.SaveCalendarAsync(normalised, caller.UserId()!.Value, time.DatabaseNow(), token);
            return Outcome.NoContent();
        }, ct);
        return Results.Ok(normalised);
    }
}
