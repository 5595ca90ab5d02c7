using System.Globalization;
using Library.LendingService.Calendar;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Library.LendingService.Rules;

/// <summary>
/// The limits of the two documents checked by hand (<see cref="RuleSet.Validate"/>,
/// <see cref="CalendarDocument.Validate"/>: their messages name the rule or entry, which an
/// annotation cannot), written into the OpenAPI schemas from the same constants those checks use.
/// </summary>
public static class HandCheckedLimits
{
    /// <summary>Each number of a rule: its range, as <see cref="RuleSet"/> checks it (loanDays' upper bound is the rule's own maxLoanDays).</summary>
    public static IReadOnlyDictionary<string, (long Minimum, long Maximum)> RuleRanges { get; } = new Dictionary<string, (long, long)>(StringComparer.Ordinal)
    {
        ["loanDays"] = (1, RuleSet.MaxDays),
        ["maxLoanDays"] = (1, RuleSet.MaxDays),
        ["maxActiveLoans"] = (0, RuleSet.MaxActiveLoansLimit),
        ["maxRenewals"] = (0, RuleSet.MaxRenewalsLimit),
        ["renewalDays"] = (1, RuleSet.MaxDays),
        ["holdPickupDays"] = (1, RuleSet.MaxHoldPickupDays),
        ["gracePeriodDays"] = (0, RuleSet.MaxGracePeriodDays),
        ["finePerDay"] = (0, RuleSet.MaxMoney),
        ["maxFinePerLoan"] = (0, RuleSet.MaxMoney),
        ["lostFee"] = (0, RuleSet.MaxMoney),
    };

    /// <summary>The longest IANA zone name is 32 characters (America/Argentina/ComodRivadavia): anything longer is no zone.</summary>
    public const int TimeZoneLength = 64;

    public static Task TransformAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        var property = context.JsonPropertyInfo;
        if (property is null && context.JsonTypeInfo.Type == typeof(List<CirculationRule>))
        {
            schema.MaxItems = RuleSet.MaxRules;
        }
        else if (property?.DeclaringType == typeof(CirculationRule))
        {
            if (RuleRanges.TryGetValue(property.Name, out var range))
            {
                schema.Minimum = range.Minimum.ToString(CultureInfo.InvariantCulture);
                schema.Maximum = range.Maximum.ToString(CultureInfo.InvariantCulture);
            }
            else if (property.Name == "loanType")
            {
                // No enum: a loan type is matched whatever its case, and null means any.
                schema.MaxLength = Validation.InputLimits.LoanTypeLength;
            }
        }
        else if (property?.DeclaringType == typeof(CalendarDocument))
        {
            switch (property.Name)
            {
                case "timeZone":
                    schema.MaxLength = TimeZoneLength;
                    break;
                case "weeklyClosed":
                    // Eight or more always repeat a day: refused.
                    schema.MaxItems = 7;
                    if (schema.Items is OpenApiSchema day)
                    {
                        day.MaxLength = Weekdays.Names.Max(n => n.Length);
                    }
                    break;
                case "closedDates":
                    schema.MaxItems = CalendarDocument.MaxClosedDates;
                    break;
            }
        }
        else if (property?.DeclaringType == typeof(ClosedDateDocument))
        {
            switch (property.Name)
            {
                case "date":
                    schema.MaxLength = 10;
                    schema.Pattern = Validation.InputLimits.DatePattern;
                    break;
                case "reason":
                    schema.MaxLength = CalendarDocument.MaxReasonLength;
                    break;
            }
        }
        return Task.CompletedTask;
    }
}
