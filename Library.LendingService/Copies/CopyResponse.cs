using Library.LendingService.Data;

namespace Library.LendingService.Copies;

/// <summary>A copy as the API shows it; the current loan's <c>loanId</c> and <c>userId</c> only to librarians.</summary>
public sealed record CopyResponse(Guid Id, Guid BookId, string Barcode, string? CallNumber, string? Location, string LoanType, string Status,
    DateTimeOffset? DueAt, Guid? LoanId, Guid? UserId, bool WithdrawOnCheckIn, Loans.LoanResponse? Loan = null, Holds.HoldResponse? Hold = null)
{
    public static CopyResponse From(Copy copy, Loan? openLoan, bool includeBorrower) =>
        new(copy.Id, copy.BookId, copy.Barcode, copy.CallNumber, copy.Location, copy.LoanType, copy.Status, openLoan?.DueAt,
            includeBorrower ? openLoan?.Id : null, includeBorrower ? openLoan?.UserId : null, copy.WithdrawOnCheckIn);
}
