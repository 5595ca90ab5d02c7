using Library.LendingService.Data;

namespace Library.LendingService.Loans;

public sealed record LoanResponse(Guid Id, Guid BookId, string Title, Guid? UserId, DateTimeOffset BorrowedAt, DateTimeOffset DueAt,
    DateTimeOffset? ReturnedAt, int Renewals, string Status, Guid? CopyId, string? Barcode)
{
    public static LoanResponse From(Loan loan, string title, string? barcode, DateTimeOffset now) =>
        new(loan.Id, loan.BookId, title, loan.UserId, loan.BorrowedAt, loan.DueAt, loan.ReturnedAt, loan.Renewals,
            LoanPolicy.Status(loan.DueAt, loan.ReturnedAt, now), loan.CopyId, barcode);
}
