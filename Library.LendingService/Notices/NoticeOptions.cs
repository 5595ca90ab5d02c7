using System.Data.Common;

namespace Library.LendingService.Notices;

/// <summary><c>Circulation:DueSoonDays</c>: how many days before the due date the due-soon notice goes.</summary>
public sealed class DueSoonOptions
{
    public const string SectionName = "Circulation";

    public int DueSoonDays { get; set; } = 2;
}

/// <summary>The mail sender's settings (section <c>Notices</c>).</summary>
public sealed class NoticeOptions
{
    public const string SectionName = "Notices";

    /// <summary>The sender's address and name on every notice.</summary>
    public string From { get; set; } = "library@library.local";
    public string FromName { get; set; } = "The Library";

    /// <summary>How often the sender looks for unsent notices when nothing woke it (real time).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Notices claimed and sent over one SMTP connection.</summary>
    public int BatchSize { get; set; } = 50;

    /// <summary>The first retry after a failed send; it doubles per attempt up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Attempts at a notice the server refuses for good (5xx) or that has no address, before giving up.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>One SMTP exchange's timeout (connect, send).</summary>
    public TimeSpan SmtpTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryAfter(int attempts) =>
        TimeSpan.FromTicks(Math.Min(MaxRetryDelay.Ticks, RetryDelay.Ticks * (1L << Math.Clamp(attempts - 1, 0, 20))));
}

/// <summary>
/// The mail server from <c>ConnectionStrings:mail</c>, in the format of Aspire's MailDev/Mailpit
/// integrations: <c>Endpoint=smtp://host:port</c> (<c>smtps://</c> for TLS on connect), with
/// optional <c>Username=</c> and <c>Password=</c>.
/// </summary>
public sealed record MailServer(string Host, int Port, bool Tls, string? UserName, string? Password)
{
    public const string ConnectionName = "mail";

    /// <summary>Null when not configured; an unreadable string is a configuration error, said at start-up.</summary>
    public static MailServer? FromConfiguration(IConfiguration configuration)
    {
        var text = configuration.GetConnectionString(ConnectionName);
        return string.IsNullOrWhiteSpace(text) ? null : Parse(text);
    }

    public static MailServer Parse(string connectionString)
    {
        // A bare URL is taken as the endpoint.
        var builder = new DbConnectionStringBuilder();
        if (connectionString.Contains('=', StringComparison.Ordinal))
        {
            try
            {
                builder.ConnectionString = connectionString;
            }
            catch (ArgumentException ex)
            {
                throw new InvalidOperationException($"ConnectionStrings:{ConnectionName} is not a connection string (Endpoint=smtp://host:port).", ex);
            }
        }
        string? Get(string key) => builder.TryGetValue(key, out var value) ? value?.ToString() : null;
        var endpoint = Get("Endpoint") ?? connectionString;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("smtp" or "smtps") || string.IsNullOrEmpty(uri.Host))
        {
            throw new InvalidOperationException($"ConnectionStrings:{ConnectionName} must be Endpoint=smtp://host:port (or smtps://); got an endpoint that is not.");
        }
        var tls = uri.Scheme == "smtps";
        return new MailServer(uri.Host, uri.IsDefaultPort || uri.Port <= 0 ? (tls ? 465 : 25) : uri.Port, tls, Get("Username"), Get("Password"));
    }
}
