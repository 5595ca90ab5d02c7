using System.ComponentModel.DataAnnotations;
using Library.ServiceDefaults;

namespace Library.LendingService.Validation;

/// <summary>
/// A required ID: present and not the empty GUID (which no row has, so naming it is a mistake the
/// client made, a 400 like a missing one). A <see cref="RequiredAttribute"/>, so the document marks it required.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter | AttributeTargets.Field)]
public sealed class RequiredIdAttribute : RequiredAttribute
{
    public override bool IsValid(object? value) => base.IsValid(value) && (value is not Guid id || id != Guid.Empty);
}

/// <summary>
/// Text a client may send: at most <c>maximumLength</c> characters and no control characters
/// (PostgreSQL's <c>text</c> cannot store NUL; see <see cref="TextInput"/>); line breaks and tabs
/// only when <see cref="Multiline"/>. A <see cref="StringLengthAttribute"/>, so the document
/// shows its maxLength (and minLength), with one message for either failure as before.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter | AttributeTargets.Field)]
public sealed class PrintableTextAttribute(int maximumLength) : StringLengthAttribute(maximumLength)
{
    public bool Multiline { get; init; }

    public override bool IsValid(object? value) => value switch
    {
        null => true,
        string s => base.IsValid(s) && !TextInput.HasControlCharacters(s, Multiline),
        _ => false,
    };
}

/// <summary>
/// The <c>Idempotency-Key</c> header: 1 to 100 printable characters (<c>idempotent_requests.key varchar(100)</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class IdempotencyKeyAttribute : StringLengthAttribute
{
    public IdempotencyKeyAttribute() : base(Loans.Idempotency.MaxKeyLength)
    {
        MinimumLength = 1;
        ErrorMessage = Loans.LoansApi.IdempotencyKeyRule;
    }

    public override bool IsValid(object? value) => value is null || value is string s && base.IsValid(s) && !TextInput.HasControlCharacters(s);
}

/// <summary>Limits shared by the lending endpoints' inputs, matching the columns that store them (LendingDbContext).</summary>
public static class InputLimits
{
    /// <summary><c>copies.barcode varchar(32)</c>: what a scanner reads.</summary>
    public const string BarcodePattern = "^[A-Za-z0-9-]{1,32}$";
    public const int BarcodeLength = 32;

    /// <summary><c>fine_transactions.reason</c> and <c>blocks.reason</c> (varchar(500)).</summary>
    public const int ReasonLength = Fines.FinesApi.MaxReasonLength;

    /// <summary><c>copies.call_number</c> and <c>copies.location</c> (varchar(100)).</summary>
    public const int CopyTextLength = 100;

    /// <summary><c>copies.loan_type</c> and the loan types' names (varchar(32)).</summary>
    public const int LoanTypeLength = 32;

    /// <summary>A report's <c>yyyy-MM-dd</c> (whether it is a real date the handler says).</summary>
    public const string DatePattern = @"^\d{4}-\d{2}-\d{2}$";

    /// <summary>A list filter's status name (loans, fines): the longest is nine letters.</summary>
    public const int StatusLength = 16;
}
