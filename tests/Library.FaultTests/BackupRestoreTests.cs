using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace Library.FaultTests;

/// <summary>
/// Backup and restore for real (eng/run.sh backup / restore, eng/lib/backup.sh): the Library as
/// `eng/run.sh start` runs it (the AppHost, process mode) on a data folder of its own, with a
/// title, a loan, a hold and readers made through the gateway; a backup; a change after it (lost
/// by design: the recovery point); the Library stopped; the restore refused onto a folder that
/// holds data; the restore onto a new empty folder; the Library started there, serving every loan,
/// hold, user and title as at the backup, with the inboxes restored and no event applied twice
/// (the restore sends recent outbox events again; the inboxes drop them); --replace.
/// Ports (own, beside a default run's; environment, defaults): gateway LIBRARY_BACKUP_TEST_GATEWAY_PORT
/// (8185), dashboard LIBRARY_BACKUP_TEST_DASHBOARD_PORT (15185), OTLP LIBRARY_BACKUP_TEST_OTLP_PORT
/// (19185), resource service LIBRARY_BACKUP_TEST_RESOURCES_PORT (20185). LIBRARY_FAULT_BUILD=1 builds first.
/// </summary>
public sealed class BackupRestoreTests : IDisposable
{
    private static readonly string Root = FindRepoRoot();
    private static readonly int GatewayPort = Port("LIBRARY_BACKUP_TEST_GATEWAY_PORT", 8185);
    private static readonly int DashboardPort = Port("LIBRARY_BACKUP_TEST_DASHBOARD_PORT", 15185);
    private static readonly int OtlpPort = Port("LIBRARY_BACKUP_TEST_OTLP_PORT", 19185);
    private static readonly int ResourcesPort = Port("LIBRARY_BACKUP_TEST_RESOURCES_PORT", 20185);
    private static readonly TimeSpan EventDeadline = TimeSpan.FromSeconds(60);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _work = Directory.CreateTempSubdirectory("library-backup-test.").FullName;
    private readonly string _adminPassword = "Backup-admin-" + Guid.NewGuid().ToString("N")[..12];
    private readonly HttpClient _http = new() { BaseAddress = new Uri($"http://127.0.0.1:{GatewayPort}"), Timeout = TimeSpan.FromSeconds(30) };
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private string? _running;

    private string Original => Path.Combine(_work, "original");
    private string Restored => Path.Combine(_work, "restored");
    private string Backup => Path.Combine(_work, "backup");

    [Fact]
    public async Task A_backup_restored_onto_an_empty_folder_serves_every_loan_hold_and_user_as_before_and_applies_no_event_twice()
    {
        try
        {
            // Marked running before the start: a start that fails (the gateway not healthy in time)
            // leaves its AppHost up for a look, and the finally below must still stop it.
            _running = Original;
            await RunAsync(Original, "start", TimeSpan.FromMinutes(6));

            // Real data through the gateway: two titles, a reader with a loan of each, a second
            // reader holding the title that has no copy left.
            var admin = await LogInAsync("admin@library.local", _adminPassword);
            var twoCopies = await CreateBookAsync(admin, "Backup Orchard", 2);
            var oneCopy = await CreateBookAsync(admin, "Restore Harbour", 1);
            var (ada, adaToken) = await RegisterAsync("Ada");
            var (bob, bobToken) = await RegisterAsync("Bob");
            var loan = await PostAsync(adaToken, "/api/loans", new { bookId = twoCopies, days = 7 });
            await PostAsync(adaToken, "/api/loans", new { bookId = oneCopy, days = 7 });
            await PostAsync(bobToken, "/api/holds", new { bookId = oneCopy });
            await WaitForAvailableAsync(twoCopies, 1);
            await WaitForAvailableAsync(oneCopy, 0);
            var before = await ServedAsync(admin, adaToken, bobToken, twoCopies, oneCopy);
            var inboxBefore = await SettledInboxCountsAsync(Original);
            Assert.True(inboxBefore["bookdb"] > 0, "the catalog's inbox has the loans' events");
            Note($"data made: users {ada}, {bob}; loan {loan}; inbox rows {Show(inboxBefore)}");

            var backup = await RunAsync(Original, $"backup {Backup}", TimeSpan.FromMinutes(3));
            Assert.Contains("writes paused", backup, StringComparison.Ordinal);
            using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Backup, "manifest.json"), Ct)))
            {
                var names = manifest.RootElement.GetProperty("databases").EnumerateArray().Select(d => d.GetProperty("name").GetString()!).Order().ToArray();
                Assert.Equal<string[]>(["bookdb", "lendingdb", "userdb"], names);
                Assert.StartsWith("15.", manifest.RootElement.GetProperty("serverVersion").GetString(), StringComparison.Ordinal);
            }

            // After the recovery point: this return is not in the backup, so a restore loses it.
            await PostAsync(adaToken, $"/api/loans/{loan}/return", new { });
            await WaitForAvailableAsync(twoCopies, 2);

            var (code, output) = await TryRunAsync(Original, $"restore {Backup}", TimeSpan.FromMinutes(1));
            Assert.Equal(3, code);
            Assert.Contains("eng/run.sh stop first", output, StringComparison.Ordinal);
            await RunAsync(Original, "stop", TimeSpan.FromMinutes(3));
            _running = null;
            (code, output) = await TryRunAsync(Original, $"restore {Backup}", TimeSpan.FromMinutes(1));
            Assert.Equal(3, code);
            Assert.Contains("refusing to restore onto", output, StringComparison.Ordinal);
            Note("restore refused onto the running and onto the stopped, non-empty folder (exit 3)");

            // Services stopped: the restore onto a new, empty folder, then the Library started on it.
            var restore = await RunAsync(Restored, $"restore {Backup}", TimeSpan.FromMinutes(3));
            Assert.Matches(@"lendingdb restored \(owner lendingservice\); [1-9][0-9]* outbox events to send again", restore);
            _running = Restored;
            await RunAsync(Restored, "start", TimeSpan.FromMinutes(6));

            admin = await LogInAsync("admin@library.local", _adminPassword);
            adaToken = await LogInAsync(EmailOf("Ada"), ReaderPassword);
            bobToken = await LogInAsync(EmailOf("Bob"), ReaderPassword);
            // The relays send the recent events again; the consumers' inboxes drop every one of them.
            var inboxAfter = await SettledInboxCountsAsync(Restored);
            var after = await ServedAsync(admin, adaToken, bobToken, twoCopies, oneCopy);
            Assert.Equal(before, after);
            Assert.Equal(inboxBefore, inboxAfter);
            // Watched a while longer: a second application would take another copy off.
            for (var i = 0; i < 10; i++)
            {
                Assert.Equal(1, await AvailableAsync(twoCopies));
                await Task.Delay(500, Ct);
            }
            Note("restored Library serves the same loans, holds, users and titles; inboxes equal; no event applied twice");

            await RunAsync(Restored, "stop", TimeSpan.FromMinutes(3));
            _running = null;
            await RunAsync(Original, $"restore {Backup} --replace", TimeSpan.FromMinutes(3));
            Assert.False(Directory.Exists(Path.Combine(Original, "rabbitmq")), "--replace deletes the old broker's data");
            Note("restore --replace onto the stopped original folder");
        }
        finally
        {
            if (_running is not null)
            {
                await TryRunAsync(_running, "stop", TimeSpan.FromMinutes(3));
            }
            TestContext.Current.TestOutputHelper?.WriteLine(_log.ToString());
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        if (Environment.GetEnvironmentVariable("LIBRARY_FAULT_KEEP_DATA") != "1")
        {
            try
            {
                Directory.Delete(_work, recursive: true);
            }
            catch (IOException)
            {
                // A server still closing its log: the folder stays in /tmp.
            }
        }
    }

    // ------------------------------------------------------------------------------ the API

    private const string ReaderPassword = "Reader-password-1";
    private readonly string _tag = Guid.NewGuid().ToString("N")[..8];
    private readonly Dictionary<string, string> _readers = [];

    private string EmailOf(string name) => $"{name.ToLowerInvariant()}-{_tag}@library.test";

    private async Task<string> LogInAsync(string email, string password)
    {
        using var login = await _http.PostAsJsonAsync("/api/auth/login", new { email, password }, Ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        return (await login.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("accessToken").GetString()!;
    }

    private async Task<(string Id, string Token)> RegisterAsync(string name)
    {
        using var register = await _http.PostAsJsonAsync("/api/auth/register",
            new { email = EmailOf(name), firstName = name, lastName = "Reader", password = ReaderPassword }, Ct);
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);
        var id = (await register.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
        _readers[name] = id;
        return (id, await LogInAsync(EmailOf(name), ReaderPassword));
    }

    private async Task<string> CreateBookAsync(string admin, string title, int copies) =>
        await PostAsync(admin, "/api/books", new
        {
            isbn = TestIsbn(), title = $"{title} {_tag}", publisher = "Backup Press",
            authorIds = Array.Empty<Guid>(), categoryIds = Array.Empty<Guid>(), totalCopies = copies,
        });

    /// <summary>POST with a bearer token and an Idempotency-Key; asserts success; returns the id (if any).</summary>
    private async Task<string> PostAsync(string token, string path, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var response = await _http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {text}");
        using var json = JsonDocument.Parse(text.Length == 0 ? "{}" : text);
        return json.RootElement.TryGetProperty("id", out var id) ? id.GetString()! : "";
    }

    private async Task<string> GetAsync(string token, string path)
    {
        // Right after a first start a validator may not know the brand-new signing key yet (it
        // re-reads the JWKS at most every 30 s): a 401 then is retried, for 40 s at most.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await _http.SendAsync(request, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            if (response.StatusCode == HttpStatusCode.Unauthorized && DateTime.UtcNow < deadline)
            {
                Note($"GET {path}: 401, again in 1 s");
                await Task.Delay(1000, Ct);
                continue;
            }
            Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
            return text;
        }
    }

    /// <summary>What the Library serves about this test's data, as comparable text.</summary>
    private async Task<string> ServedAsync(string admin, string ada, string bob, params string[] books)
    {
        var ids = _readers;
        var served = new StringBuilder();
        foreach (var (who, token) in new[] { ("Ada", ada), ("Bob", bob) })
        {
            // The user service's authenticated endpoints are not used here (under the AppHost it
            // cannot reach its own OpenID metadata: no service-discovery entry for itself); the
            // login is: the same account, password and ID as before.
            var again = await LogInAsync(EmailOf(who), ReaderPassword);
            Assert.Equal(ids[who], SubjectOf(again));
            served.AppendLine(CultureInfo.InvariantCulture, $"{who}: {SubjectOf(token)} {EmailOf(who)}");
            foreach (var list in new[] { "/api/loans", "/api/holds" })
            {
                using var items = JsonDocument.Parse(await GetAsync(token, list));
                foreach (var item in items.RootElement.GetProperty("items").EnumerateArray())
                {
                    served.AppendLine(CultureInfo.InvariantCulture, $"  {list} {item}");
                }
            }
        }
        served.AppendLine(CultureInfo.InvariantCulture, $"admin: {SubjectOf(admin)}");
        foreach (var book in books)
        {
            using var json = JsonDocument.Parse(await GetAsync(admin, $"/api/books/{book}"));
            var b = json.RootElement;
            served.AppendLine(CultureInfo.InvariantCulture, $"book {book}: {b.GetProperty("title")} total {b.GetProperty("totalCopies")} available {b.GetProperty("availableCopies")}");
        }
        return served.ToString();
    }

    /// <summary>The <c>sub</c> claim of an access token (its payload, not verified: the services do that).</summary>
    private static string SubjectOf(string token)
    {
        var payload = token.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        using var json = JsonDocument.Parse(Convert.FromBase64String(payload));
        return json.RootElement.GetProperty("sub").GetString()!;
    }

    private async Task<int> AvailableAsync(string bookId) =>
        (await _http.GetFromJsonAsync<JsonElement>($"/api/books/{bookId}", Ct)).GetProperty("availableCopies").GetInt32();

    private async Task WaitForAvailableAsync(string bookId, int expected)
    {
        var deadline = DateTime.UtcNow + EventDeadline;
        int available;
        while ((available = await AvailableAsync(bookId)) != expected)
        {
            Assert.True(DateTime.UtcNow < deadline, $"availableCopies of {bookId} is {available}, not {expected}, after {EventDeadline.TotalSeconds} s");
            await Task.Delay(200, Ct);
        }
    }

    private static string TestIsbn()
    {
        var digits = "978" + Random.Shared.NextInt64(0, 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture);
        var sum = digits.Select((c, i) => (c - '0') * (i % 2 == 0 ? 1 : 3)).Sum();
        return digits + ((10 - sum % 10) % 10).ToString(CultureInfo.InvariantCulture);
    }

    // ------------------------------------------------------------------------------ the databases

    /// <summary>The superuser over the AppHost's private socket of <paramref name="data"/> (root reaches it).</summary>
    private static string Superuser(string data, string database)
    {
        var root = Path.Combine(data, "postgres");
        var port = File.ReadLines(Path.Combine(root, "data", "postmaster.pid")).ElementAt(3).Trim();
        return $"Host={Path.Combine(root, "run")};Port={port};Username=postgres;Database={database};Pooling=false;Timeout=10";
    }

    private static async Task<long> ScalarAsync(string data, string database, string sql)
    {
        await using var connection = new NpgsqlConnection(Superuser(data, database));
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(Ct), CultureInfo.InvariantCulture);
    }

    private static async Task<Dictionary<string, long>> InboxCountsAsync(string data)
    {
        var counts = new Dictionary<string, long>();
        foreach (var db in new[] { "userdb", "bookdb", "lendingdb" })
        {
            counts[db] = await ScalarAsync(data, db, "SELECT count(*) FROM inbox_messages");
        }
        return counts;
    }

    /// <summary>Once every outbox is sent and the inboxes have not grown for a second (events are asynchronous).</summary>
    private static async Task<Dictionary<string, long>> SettledInboxCountsAsync(string data)
    {
        var deadline = DateTime.UtcNow + EventDeadline;
        while (true)
        {
            await WaitForOutboxesSentAsync(data);
            var first = await InboxCountsAsync(data);
            await Task.Delay(1000, Ct);
            var second = await InboxCountsAsync(data);
            if (first.SequenceEqual(second))
            {
                return second;
            }
            Assert.True(DateTime.UtcNow < deadline, $"the inboxes still grow after {EventDeadline.TotalSeconds} s");
        }
    }

    private static async Task WaitForOutboxesSentAsync(string data)
    {
        var deadline = DateTime.UtcNow + EventDeadline;
        foreach (var db in new[] { "userdb", "bookdb", "lendingdb" })
        {
            long pending;
            while ((pending = await ScalarAsync(data, db, "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL")) > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{db}: {pending} outbox events still unsent after {EventDeadline.TotalSeconds} s");
                await Task.Delay(200, Ct);
            }
        }
    }

    private static string Show(Dictionary<string, long> counts) => string.Join(", ", counts.Select(c => $"{c.Key} {c.Value}"));

    // ------------------------------------------------------------------------------ eng/run.sh

    private void Note(string what) => _log.AppendLine(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:F1} s] {what}");

    private async Task<string> RunAsync(string data, string verb, TimeSpan timeout)
    {
        var (code, output) = await TryRunAsync(data, verb, timeout);
        Assert.True(code == 0, $"eng/run.sh {verb} exited {code}:\n{RealLibrary.Tail(output, 40)}");
        return output;
    }

    private async Task<(int Code, string Output)> TryRunAsync(string data, string verb, TimeSpan timeout)
    {
        var started = _clock.Elapsed;
        var info = new ProcessStartInfo("bash", ["-c", $"exec eng/run.sh {verb}"])
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["LIBRARY_DATA_DIR"] = data;
        info.Environment["LIBRARY_SERVERS"] = "process";
        info.Environment["LIBRARY_GATEWAY_PORT"] = GatewayPort.ToString(CultureInfo.InvariantCulture);
        info.Environment["LIBRARY_DASHBOARD_URL"] = $"http://localhost:{DashboardPort}";
        info.Environment["LIBRARY_DASHBOARD_OTLP_URL"] = $"http://localhost:{OtlpPort}";
        info.Environment["LIBRARY_DASHBOARD_RESOURCES_URL"] = $"http://localhost:{ResourcesPort}";
        info.Environment["LIBRARY_CATALOG"] = "none";
        // One process of each service and of the gateway: what is under test is the data's round
        // trip (databases, inboxes, outboxes), which replicas share; with two of each, each of
        // the two starts ran twice the processes on the same two cores (49-60 s a start).
        info.Environment["LIBRARY_REPLICAS"] = "1";
        info.Environment["LIBRARY_GATEWAY_REPLICAS"] = "1";
        info.Environment["LIBRARY_START_TIMEOUT"] = "300";
        // eng/test.sh has just built Release; LIBRARY_FAULT_BUILD=1 builds first (a run on its own).
        info.Environment["LIBRARY_NO_BUILD"] = Environment.GetEnvironmentVariable("LIBRARY_FAULT_BUILD") == "1" ? "0" : "1";
        info.Environment["Parameters__admin-password"] = _adminPassword;
        var (code, text) = await RealLibrary.RunProcessAsync(info, timeout);
        Note($"eng/run.sh {verb} ({Path.GetFileName(data)}) -> {code} in {(_clock.Elapsed - started).TotalSeconds:F1} s");
        foreach (var line in text.Split('\n').Where(l => l.StartsWith("[backup]", StringComparison.Ordinal) || l.Contains("ERROR", StringComparison.Ordinal)))
        {
            _log.AppendLine(CultureInfo.InvariantCulture, $"           {line.TrimEnd()}");
        }
        return (code, text);
    }

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out var port) ? port : fallback;

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Library.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Library.sln above {AppContext.BaseDirectory}");
    }
}
