using System.Net.Http.Json;
using System.Text.Json;

namespace Library.TestSupport;

/// <summary>One mail as MailDev's REST API shows it (GET /api/email); <see cref="MailDev.SourceAsync"/> gives its raw source.</summary>
public sealed record ReceivedMail(string Id, string To, string Subject, string Text, string Html);

/// <summary>
/// Reads the test mail server (MailDev, started by eng/test.sh) through its REST API. Tests share
/// it, so each reads only the mail to its own readers' addresses.
/// </summary>
public static class MailDev
{
    private static readonly HttpClient Http = new() { BaseAddress = new Uri(TestServers.MailApi), Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The SMTP host and port of <see cref="TestServers.Mail"/>.</summary>
    public static (string Host, int Port) SmtpEndpoint()
    {
        var uri = new Uri(TestServers.Mail["Endpoint=".Length..]);
        return (uri.Host, uri.Port);
    }

    public static async Task<List<ReceivedMail>> ToAsync(string address)
    {
        var all = await Http.GetFromJsonAsync<JsonElement>("/api/email");
        var mails = new List<ReceivedMail>();
        foreach (var mail in all.EnumerateArray())
        {
            var to = mail.GetProperty("to").EnumerateArray().Select(t => t.GetProperty("address").GetString()).FirstOrDefault() ?? "";
            if (!to.Equals(address, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            mails.Add(new ReceivedMail(mail.GetProperty("id").GetString()!, to, mail.GetProperty("subject").GetString() ?? "",
                Text(mail, "text"), Text(mail, "html")));
        }
        return mails;
    }

    /// <summary>The raw message as the server received it (headers and MIME parts).</summary>
    public static Task<string> SourceAsync(string id) => Http.GetStringAsync($"/api/email/{id}/source");

    private static string Text(JsonElement mail, string name) =>
        mail.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
}
