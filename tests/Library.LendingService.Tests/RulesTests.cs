using Library.LendingService.Rules;

namespace Library.LendingService.Tests;

public sealed class RulesTests
{
    private static readonly Guid Students = Guid.Parse("11111111-1111-1111-1111-111111111111");
    private static readonly Guid Staff = Guid.Parse("22222222-2222-2222-2222-222222222222");
    private static readonly Guid Unknown = Guid.Parse("99999999-9999-9999-9999-999999999999");

    private static readonly CirculationRule CatchAll = new(
        PatronGroupId: null, LoanType: null, Loanable: true, LoanDays: 14, MaxLoanDays: 30, MaxActiveLoans: 5,
        MaxRenewals: 2, RenewalDays: 14, HoldPickupDays: 3, GracePeriodDays: 0, FinePerDay: 0, MaxFinePerLoan: 0, LostFee: 0);

    private static bool Known(Guid id) => id == Students || id == Staff;

    private static IDictionary<string, string[]> Validate(params CirculationRule?[] rules) => RuleSet.Validate(rules, Known);

    [Fact]
    public void The_first_matching_rule_wins()
    {
        var rules = new RuleSet(3, [
            CatchAll with { LoanType = LoanTypes.ShortLoan, LoanDays = 7 },
            CatchAll with { PatronGroupId = Students, LoanDays = 21 },
            CatchAll with { LoanDays = 28 },
        ]);
        // A student borrowing a short loan: rule 0 comes first, though rule 1 matches too.
        var match = rules.Resolve(Students, LoanTypes.ShortLoan);
        Assert.Equal(0, match.Index);
        Assert.Equal(7, match.Rule.LoanDays);
        Assert.Equal(3, match.Version);
        Assert.Equal(1, rules.Resolve(Students, LoanTypes.Standard).Index);
        Assert.Equal(2, rules.Resolve(Staff, LoanTypes.Standard).Index);
        Assert.Equal(2, rules.Resolve(null, LoanTypes.Standard).Index);
        Assert.Equal(0, rules.Resolve(null, "SHORT-LOAN").Index); // loan types compare case-insensitively
    }

    [Fact]
    public void A_group_rule_beats_the_catch_all_and_a_loan_type_rule_applies_to_its_type()
    {
        var rules = new RuleSet(1, [
            CatchAll with { PatronGroupId = Staff, MaxActiveLoans = 50 },
            CatchAll with { LoanType = LoanTypes.ShortLoan, LoanDays = 3, MaxLoanDays = 3 },
            CatchAll,
        ]);
        Assert.Equal(50, rules.Resolve(Staff, LoanTypes.Standard).Rule.MaxActiveLoans);
        Assert.Equal(5, rules.Resolve(Students, LoanTypes.Standard).Rule.MaxActiveLoans);
        Assert.Equal(3, rules.Resolve(Students, LoanTypes.ShortLoan).Rule.LoanDays);
        Assert.Empty(RuleSet.Validate(rules.Rules, Known));
    }

    [Fact]
    public void The_explanation_names_the_rule_and_why_the_earlier_ones_did_not_match()
    {
        var rules = new RuleSet(1, [
            CatchAll with { LoanType = LoanTypes.ShortLoan },
            CatchAll with { PatronGroupId = Staff, LoanType = LoanTypes.Standard },
            CatchAll with { PatronGroupId = Students },
            CatchAll,
        ]);
        var match = rules.Resolve(Students, LoanTypes.Standard);
        Assert.Equal(2, match.Index);
        Assert.Equal(
            $"rule 2 matches patron group {Students} and any loan type; rules 0-1 did not match: "
            + $"rule 0 needs loan type short-loan, rule 1 needs patron group {Staff}",
            match.Explanation);
        Assert.Equal("rule 0 matches any patron group and loan type short-loan", rules.Resolve(Staff, LoanTypes.ShortLoan).Explanation);
        Assert.StartsWith("rule 3 matches any patron group and any loan type; rules 0-2 did not match:", rules.Resolve(null, LoanTypes.Reference).Explanation, StringComparison.Ordinal);
        Assert.Contains($"rule 1 needs patron group {Staff} and loan type standard", rules.Resolve(null, LoanTypes.Reference).Explanation, StringComparison.Ordinal);
        Assert.Equal(
            "rule 1 matches any patron group and any loan type; rule 0 did not match: rule 0 needs loan type short-loan",
            new RuleSet(1, [rules.Rules[0], CatchAll]).Resolve(null, LoanTypes.Standard).Explanation);
    }

    [Fact]
    public void Resolve_without_a_matching_rule_throws()
    {
        Assert.Throws<InvalidOperationException>(() => new RuleSet(0, []).Resolve(Students, LoanTypes.Standard));
        Assert.Throws<InvalidOperationException>(() => new RuleSet(0, [CatchAll with { PatronGroupId = Staff }]).Resolve(Students, LoanTypes.Standard));
    }

    [Fact]
    public void A_reference_copy_is_never_loanable_whatever_the_rules_say()
    {
        var rules = new RuleSet(1, [CatchAll with { LoanType = LoanTypes.Reference, Loanable = true }, CatchAll]);
        Assert.True(rules.Resolve(Students, LoanTypes.Reference).Rule.Loanable);
        Assert.False(rules.IsLoanable(Students, LoanTypes.Reference));
        Assert.True(rules.IsLoanable(Students, LoanTypes.Standard));
        Assert.False(rules.IsLoanable(Students, "rare-book")); // not a loan type at all

        var staffOnly = new RuleSet(1, [CatchAll with { PatronGroupId = Staff }, CatchAll with { Loanable = false }]);
        Assert.True(staffOnly.IsLoanable(Staff, LoanTypes.ShortLoan));
        Assert.False(staffOnly.IsLoanable(Students, LoanTypes.ShortLoan));
    }

    [Fact]
    public void Loan_types_are_known_by_name()
    {
        Assert.Equal(["standard", "short-loan", "reference"], LoanTypes.All.Select(t => t.Name));
        Assert.True(LoanTypes.IsKnown("short-loan"));
        Assert.True(LoanTypes.IsKnown("Reference"));
        Assert.False(LoanTypes.IsKnown("rare-book"));
        Assert.False(LoanTypes.IsKnown(""));
        Assert.False(LoanTypes.Find(LoanTypes.Reference)!.Loanable);
    }

    [Theory]
    [InlineData("loanDays", "rule 0: loanDays must be between 1 and maxLoanDays (30).")]
    [InlineData("maxLoanDays", "rule 0: maxLoanDays must be between 1 and 366.")]
    [InlineData("maxActiveLoans", "rule 0: maxActiveLoans must be between 0 and 1000.")]
    [InlineData("maxRenewals", "rule 0: maxRenewals must be between 0 and 100.")]
    [InlineData("renewalDays", "rule 0: renewalDays must be between 1 and 366.")]
    [InlineData("holdPickupDays", "rule 0: holdPickupDays must be between 1 and 60.")]
    [InlineData("gracePeriodDays", "rule 0: gracePeriodDays must be between 0 and 60.")]
    [InlineData("finePerDay", "rule 0: finePerDay must be between 0 and 100000000.")]
    [InlineData("maxFinePerLoan", "rule 0: maxFinePerLoan must be between 0 and 100000000.")]
    [InlineData("lostFee", "rule 0: lostFee must be between 0 and 100000000.")]
    public void Each_field_out_of_range_is_an_error_naming_the_rule(string field, string message)
    {
        CirculationRule Bad(bool low) => field switch
        {
            "loanDays" => CatchAll with { LoanDays = low ? 0 : 31 },
            "maxLoanDays" => CatchAll with { MaxLoanDays = low ? 0 : 367, LoanDays = 1 },
            "maxActiveLoans" => CatchAll with { MaxActiveLoans = low ? -1 : 1001 },
            "maxRenewals" => CatchAll with { MaxRenewals = low ? -1 : 101 },
            "renewalDays" => CatchAll with { RenewalDays = low ? 0 : 367 },
            "holdPickupDays" => CatchAll with { HoldPickupDays = low ? 0 : 61 },
            "gracePeriodDays" => CatchAll with { GracePeriodDays = low ? -1 : 61 },
            "finePerDay" => CatchAll with { FinePerDay = low ? -1 : 100_000_001 },
            "maxFinePerLoan" => CatchAll with { MaxFinePerLoan = low ? -1 : 100_000_001 },
            "lostFee" => CatchAll with { LostFee = low ? -1 : 100_000_001 },
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        foreach (var low in new[] { true, false })
        {
            var errors = Validate(Bad(low));
            Assert.Equal($"rules[0].{field}", Assert.Single(errors).Key);
            Assert.Equal(message, Assert.Single(errors[$"rules[0].{field}"]));
        }
    }

    [Fact]
    public void The_bounds_themselves_are_valid()
    {
        Assert.Empty(Validate(CatchAll with
        {
            LoanDays = 366, MaxLoanDays = 366, MaxActiveLoans = 0, MaxRenewals = 100, RenewalDays = 1, HoldPickupDays = 60,
            GracePeriodDays = 60, FinePerDay = 100_000_000, MaxFinePerLoan = 0, LostFee = 100_000_000,
        }));
        Assert.Empty(Validate(CatchAll with { LoanDays = 1, MaxLoanDays = 1, MaxActiveLoans = 1000, RenewalDays = 366, HoldPickupDays = 1 }));
    }

    [Fact]
    public void Unknown_groups_and_loan_types_are_errors()
    {
        var errors = Validate(CatchAll with { PatronGroupId = Unknown }, CatchAll with { LoanType = "rare-book" }, CatchAll with { PatronGroupId = Guid.Empty }, CatchAll);
        Assert.Equal($"rule 0: patronGroupId {Unknown} is not a patron group.", Assert.Single(errors["rules[0].patronGroupId"]));
        Assert.Equal("rule 1: loanType must be one of: standard, short-loan, reference (or none, for any).", Assert.Single(errors["rules[1].loanType"]));
        Assert.Contains("rule 2: patronGroupId", Assert.Single(errors["rules[2].patronGroupId"]), StringComparison.Ordinal);
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void The_last_rule_must_be_a_catch_all()
    {
        var errors = Validate(CatchAll with { LoanType = LoanTypes.ShortLoan }, CatchAll with { PatronGroupId = Students });
        Assert.Equal("the last rule must match every reader and loan type (a catch-all): no patronGroupId, no loanType.", Assert.Single(errors["rules"]));
        Assert.Single(errors);
        Assert.Equal("rules must hold at least one rule: a catch-all last.", Assert.Single(RuleSet.Validate([], Known)["rules"]));
        Assert.Contains("rules", RuleSet.Validate(null, Known).Keys);
        Assert.Equal("rules must hold at most 200 rules.", Assert.Single(RuleSet.Validate([.. Enumerable.Repeat(CatchAll, 201)], Known)["rules"]));
    }

    [Fact]
    public void A_null_rule_is_an_error()
    {
        var errors = Validate(null, CatchAll);
        Assert.Equal("rule 0 is missing (null).", Assert.Single(errors["rules[0]"]));
        Assert.Single(errors);
        Assert.Contains("rules", Validate(CatchAll, null).Keys);
    }

    [Fact]
    public void A_rule_hidden_by_an_earlier_one_is_an_error()
    {
        var errors = Validate(
            CatchAll with { PatronGroupId = Students, LoanType = LoanTypes.ShortLoan },
            CatchAll with { PatronGroupId = Students, LoanType = "Short-Loan", LoanDays = 3 }, // same readers and type as rule 0
            CatchAll with { LoanType = LoanTypes.Standard },
            CatchAll with { PatronGroupId = Staff, LoanType = LoanTypes.Standard },           // rule 2 takes every standard loan
            CatchAll,
            CatchAll with { LoanDays = 7 });                                                  // after a catch-all
        Assert.Equal("rule 1 can never match: rule 0 matches the same readers and loan types first.", Assert.Single(errors["rules[1]"]));
        Assert.Equal("rule 3 can never match: rule 2 matches the same readers and loan types first.", Assert.Single(errors["rules[3]"]));
        Assert.Equal("rule 5 can never match: rule 4 matches the same readers and loan types first.", Assert.Single(errors["rules[5]"]));
        Assert.Equal(3, errors.Count);

        // More specific rules before broader ones are fine.
        Assert.Empty(Validate(
            CatchAll with { PatronGroupId = Students, LoanType = LoanTypes.ShortLoan },
            CatchAll with { PatronGroupId = Students },
            CatchAll with { LoanType = LoanTypes.ShortLoan },
            CatchAll));
    }

    [Fact]
    public void The_seed_is_valid_and_gives_short_loans_their_own_rule()
    {
        var seed = RuleSet.Seed(maxLoanDays: 30, maxActiveLoans: 5, maxRenewals: 2, holdPickupDays: 3);
        Assert.Equal(0, seed.Version);
        Assert.Empty(RuleSet.Validate(seed.Rules, Known));

        var shortLoan = seed.Resolve(Students, LoanTypes.ShortLoan);
        Assert.Equal(0, shortLoan.Index);
        Assert.Equal((7, 7, 7, 1, 5, 3), (shortLoan.Rule.LoanDays, shortLoan.Rule.MaxLoanDays, shortLoan.Rule.RenewalDays, shortLoan.Rule.MaxRenewals, shortLoan.Rule.MaxActiveLoans, shortLoan.Rule.HoldPickupDays));

        var standard = seed.Resolve(null, LoanTypes.Standard);
        Assert.Equal(1, standard.Index);
        Assert.Equal(CatchAll, standard.Rule);
        Assert.False(seed.IsLoanable(null, LoanTypes.Reference));

        // A configuration stricter than the defaults is not loosened by them.
        var strict = RuleSet.Seed(maxLoanDays: 5, maxActiveLoans: 1, maxRenewals: 0, holdPickupDays: 1);
        Assert.Empty(RuleSet.Validate(strict.Rules, Known));
        Assert.All(strict.Rules, r => Assert.True(r.LoanDays <= 5 && r.MaxRenewals == 0));
    }
}
