using System.Security.Claims;
using Library.LendingService.Data;
using Library.LendingService.Loans;
using Library.LendingService.Rules;
using Library.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Library.LendingService.Calendar;

/// <summary>The library's calendar: its time zone, the weekdays it is closed and its closed dates.</summary>
public static class CalendarApi
{
    public static IEndpointRouteBuilder MapCalendar(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/calendar").WithTags("Calendar").AllowAnonymous()
            .MapGet("/", async (CirculationSettings settings, CancellationToken ct) => TypedResults.Ok((await settings.CurrentAsync(ct)).Calendar.ToDocument()))
            .WithName("GetCalendar")
            .WithSummary("Get the library's calendar")
            .WithDescription("Anyone: the time zone (IANA), the weekdays the library is closed and its closed dates; due dates never fall on a closed day.");
        app.MapGroup("/api/calendar").WithTags("Calendar").RequireAuthorization(Policies.Admin)
            .MapPut("/", Put).WithName("ReplaceCalendar")
            .WithSummary("Replace the library's calendar")
            .WithDescription("Admins: the whole calendar at once; answers it normalised (sorted, lower case). Refuses (400, naming the entry): an unknown time zone "
                + "or weekday, a date not yyyy-MM-dd, a repeated entry, a reason over 200 characters, more entries than allowed.");
        return app;
    }

    /// <summary>
    /// Checked by <see cref="CalendarDocument.Validate"/>, by hand: its messages name the entry
    /// ("closedDates[3].date repeats closedDates[0].date"), and a time zone is checked against the IANA database.
    /// </summary>
    private static async Task<Results<Ok<CalendarDocument>, ValidationProblem>> Put(CalendarDocument? calendar, ClaimsPrincipal caller, CirculationSettings settings, Idempotency idempotency,
        TimeProvider time, CancellationToken ct)
    {
        var errors = CalendarDocument.Validate(calendar);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        var normalised = LibraryCalendar.From(calendar!).ToDocument();
        await idempotency.RunAsync(caller.UserId()!.Value, null, "calendar", async token =>
        {
            await settings.SaveCalendarAsync(normalised, caller.UserId()!.Value, time.DatabaseNow(), token);
            return Outcome.NoContent();
        }, ct);
        return TypedResults.Ok(normalised);
    }
}
