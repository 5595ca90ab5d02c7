using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Npgsql;
using Shouldly;

using Library.TestSupport.Contract;

namespace Library.FuzzTests;

/// <summary>
/// "Bad input at scale": well over a thousand malformed or hostile requests, made by a seeded
/// generator from the table of the contract's endpoints, sent one at a time through the gateway
/// of the whole stack as anonymous, reader, librarian (and admin where only an admin may), and
/// with forged tokens. Checks: no 5xx at all; every 4xx is problem details
/// (application/problem+json with status and title); every request the contract says must be
/// refused is; and no refused request changed anything in the database of the service it
/// addressed (snapshots before and after each request).
/// </summary>
public sealed class BadInputAtScaleTests(FullLibrary stack) : IClassFixture<FullLibrary>
{
    /// <summary>Same seed, same requests. Override with LIBRARY_FUZZ_SEED to explore.</summary>
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("LIBRARY_FUZZ_SEED"), out var seed) ? seed : 20_261_124;

    /// <param name="ProtocolLevel">
    /// Refused by the gateway's HTTP server itself while parsing the request (a request line over
    /// its limit, NUL in the path): Kestrel answers and closes the connection before any middleware
    /// runs, so no problem details (and none of the gateway's headers) can be on it.
    /// </param>
    private sealed record Result(FuzzCase Case, int Status, string? MediaType, string Body, IReadOnlyList<string> Changes, bool ProtocolLevel);

    [Fact]
    public async Task A_thousand_hostile_requests_get_no_5xx_only_problem_details_and_change_nothing_when_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var world = await World.ArrangeAsync(stack, ct);
        var cases = new Generator(world, Seed).Generate();
        cases.Count.ShouldBeGreaterThanOrEqualTo(1000);

        // Everything the arrangement set off (events, replicas) has landed before the first snapshot.
        await SettleAsync(ct);
        await WaitForDeactivationToReachLendingAsync(world, ct);

        // Every answer is also checked against the gateway's merged public document: a refusal
        // must be one the document promises for that operation, in the shape it promises.
        var contract = ContractCheck.Handler(ContractDocument, async token =>
        {
            using var plain = new HttpClient { BaseAddress = stack.BaseAddress };
            return await plain.GetStringAsync("/openapi/library.json", token);
        }, ContractMode.Report);
        contract.InnerHandler = new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false };
        using var client = new HttpClient(contract)
        {
            BaseAddress = stack.BaseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };
        var results = new List<Result>(cases.Count);
        var clock = Stopwatch.StartNew();
        foreach (var fuzz in cases)
        {
            results.Add(await SendAsync(client, fuzz, ct));
        }
        var elapsed = clock.Elapsed;

        var report = Report(results, elapsed);
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        foreach (var line in report.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            TestContext.Current.SendDiagnosticMessage(line.TrimEnd());
        }
        var folder = Path.Combine(FullLibrary.RepoRoot, "artifacts", "fuzz");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "report.txt"), report, ct);
        await File.WriteAllLinesAsync(Path.Combine(folder, "requests.tsv"), results.Select(r => string.Join('\t',
            r.Case.Number, r.Case.Family, r.Case.Caller, r.Case.Method, Clip(r.Case.PathAndQuery, 200), r.Status,
            r.ProtocolLevel ? "protocol-level" : "", string.Join(" ", r.Changes), Clip(r.Case.Note, 120))), ct);

        // The state check can fail: a change a librarian is allowed to make is seen by it.
        var before = await SnapshotAsync(Contract.Books, ct);
        using (var desk = stack.Client(world.Librarian.Access))
        using (var response = await desk.PostAsJsonAsync("/api/categories", new { name = $"Seen by the snapshot {Guid.NewGuid():N}" }, ct))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Created);
        }
        (await SnapshotAsync(Contract.Books, ct)).ChangesSince(before).ShouldNotBeEmpty("the snapshot must see a real change");

        var failures = Failures(results).ToList();
        failures.Count.ShouldBe(0, $"{failures.Count} of {results.Count} requests failed a check:\n{string.Join("\n", failures.Take(60))}");
        var undocumented = ContractCheck.AllViolations.Where(v => v.StartsWith($"[contract {ContractDocument}]", StringComparison.Ordinal)).Distinct().ToList();
        if (ContractCheck.Mode == ContractMode.Enforce)
        {
            undocumented.Count.ShouldBe(0, $"answers the public document does not promise:\n{string.Join("\n", undocumented.Take(60))}");
        }
    }

    private const string ContractDocument = "library (merged, fuzz)";

    private async Task<Result> SendAsync(HttpClient client, FuzzCase fuzz, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(new HttpMethod(fuzz.Method), new Uri(stack.BaseAddress, fuzz.PathAndQuery));
        if (fuzz.Body is not null)
        {
            request.Content = new ByteArrayContent(fuzz.Body);
            if (!string.IsNullOrEmpty(fuzz.ContentType))
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", fuzz.ContentType).ShouldBeTrue(fuzz.ToString());
            }
        }
        if (fuzz.Authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", fuzz.Authorization);
        }
        foreach (var (name, value) in fuzz.Headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        if (fuzz.Headers?.ContainsKey("Accept") != true)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        }
        if (fuzz.Chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }
        else if (fuzz.Body is { Length: > 64 * 1024 })
        {
            // As a careful client sends a big body: the gateway's 413 comes before a byte of it,
            // rather than racing the client still sending it into a connection being closed.
            request.Headers.ExpectContinue = true;
        }

        var service = fuzz.Endpoint.Service;
        var before = await SnapshotAsync(service, ct);
        int status;
        string? mediaType;
        string body;
        var protocolLevel = false;
        try
        {
            using var response = await client.SendAsync(request, ct);
            status = (int)response.StatusCode;
            mediaType = response.Content.Headers.ContentType?.MediaType;
            body = await response.Content.ReadAsStringAsync(ct);
            protocolLevel = status is 400 or 414 or 431 && body.Length == 0 && response.Headers.ConnectionClose == true
                && !response.Headers.Contains("X-Request-Id");
        }
        catch (HttpRequestException ex)
        {
            // The connection was dropped without an answer: as bad as a 5xx for a client.
            status = 0;
            mediaType = null;
            body = ex.Message;
        }

        IReadOnlyList<string> changes = [];
        if (status is >= 400 and < 500 || fuzz.MustNotChange)
        {
            changes = (await SnapshotAsync(service, ct)).ChangesSince(before);
        }
        else if (status is >= 200 and < 300 && fuzz.Method != "GET")
        {
            // An accepted change sets off events; they land before the next request is judged.
            await SettleAsync(ct);
        }
        return new Result(fuzz, status, mediaType, body, changes, protocolLevel);
    }

    private static IEnumerable<string> Failures(IEnumerable<Result> results)
    {
        foreach (var r in results)
        {
            var c = r.Case;
            var excerpt = r.Body.Length > 300 ? r.Body[..300] + "…" : r.Body;
            if (r.Status is 0 or >= 500)
            {
                yield return $"{c} -> {(r.Status == 0 ? "no answer" : r.Status.ToString(CultureInfo.InvariantCulture))}: {excerpt}";
                continue;
            }
            if (r.Status >= 400 && !r.ProtocolLevel && !IsProblem(r))
            {
                yield return $"{c} -> {r.Status} without problem details ({r.MediaType ?? "no content type"}): {excerpt}";
            }
            if (c.Expect == Expect.Refused && r.Status < 400)
            {
                yield return $"{c} -> {r.Status}, but it must be refused: {excerpt}";
            }
            if (c.Expect == Expect.Exactly && !c.Statuses.Contains(r.Status))
            {
                yield return $"{c} -> {r.Status}, expected {string.Join(" or ", c.Statuses)}: {excerpt}";
            }
            if (r.Changes.Count > 0)
            {
                yield return $"{c} -> {r.Status} and changed: {string.Join(", ", r.Changes.Take(5))}";
            }
            if (r.Status is 200 or 201 && c.SentText is not null && NotStoredVerbatim(c, r.Body) is { } mismatch)
            {
                yield return $"{c} -> {r.Status} but {mismatch}";
            }
        }
    }

    private static string Clip(string text, int max) =>
        (text.Length > max ? text[..max] + "…" : text).Replace('\t', ' ').Replace('\n', ' ').Replace("\0", "\\0", StringComparison.Ordinal);

    private static bool IsProblem(Result r)
    {
        if (r.MediaType != "application/problem+json")
        {
            return false;
        }
        try
        {
            using var document = JsonDocument.Parse(r.Body);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("status", out var status) && status.ValueKind == JsonValueKind.Number && status.GetInt32() == r.Status
                && root.TryGetProperty("title", out var title) && title.ValueKind == JsonValueKind.String && title.GetString()!.Length > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Free text a service accepted comes back as sent (trimmed), SQL and script included.</summary>
    private static string? NotStoredVerbatim(FuzzCase c, string body)
    {
        string[] freeText = ["name", "bio", "description", "title", "subtitle", "publisher", "firstName", "lastName"];
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            foreach (var field in freeText)
            {
                if (c.SentText!.TryGetValue(field, out var sent) && sent.Trim().Length > 0
                    && document.RootElement.TryGetProperty(field, out var stored) && stored.ValueKind == JsonValueKind.String
                    && stored.GetString() != sent.Trim())
                {
                    return $"{field} came back as {JsonSerializer.Serialize(stored.GetString())}, sent {JsonSerializer.Serialize(sent)}";
                }
            }
        }
        catch (JsonException)
        {
            return "the answer is not JSON";
        }
        return null;
    }

    private string ConnectionString(string service) => service switch
    {
        Contract.Users => stack.Users.Database.ConnectionString,
        Contract.Books => stack.BookDb.ConnectionString,
        _ => stack.LendingDb.ConnectionString,
    };

    private Task<StateSnapshot> SnapshotAsync(string service, CancellationToken ct) => StateSnapshot.TakeAsync(service, ConnectionString(service), ct);

    /// <summary>Until every outbox is sent and no database changes for a moment.</summary>
    private async Task SettleAsync(CancellationToken ct)
    {
        string[] services = [Contract.Users, Contract.Books, Contract.Lending];
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var unsent = 0L;
            var state = new StringBuilder();
            foreach (var service in services)
            {
                await using var connection = new NpgsqlConnection(ConnectionString(service));
                await connection.OpenAsync(ct);
                await using var command = new NpgsqlCommand(
                    "SELECT (SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL), (SELECT count(*) FROM inbox_messages), (SELECT count(*) FROM outbox_messages)", connection);
                await using var reader = await command.ExecuteReaderAsync(ct);
                await reader.ReadAsync(ct);
                unsent += reader.GetInt64(0);
                state.Append(CultureInfo.InvariantCulture, $"{reader.GetInt64(1)}/{reader.GetInt64(2)};");
            }
            if (unsent == 0 && state.ToString() == last)
            {
                return;
            }
            last = state.ToString();
            await Task.Delay(150, ct);
        }
    }

    private async Task WaitForDeactivationToReachLendingAsync(World world, CancellationToken ct)
    {
        for (var i = 0; i < 100; i++)
        {
            await using var connection = new NpgsqlConnection(stack.LendingDb.ConnectionString);
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("SELECT count(*) FROM readers WHERE id = @id AND NOT active", connection);
            command.Parameters.AddWithValue("id", world.Deactivated.Id);
            if ((long)(await command.ExecuteScalarAsync(ct))! > 0)
            {
                return;
            }
            await Task.Delay(100, ct);
        }
    }

    private static string Report(IReadOnlyList<Result> results, TimeSpan elapsed)
    {
        var text = new StringBuilder();
        string Row(string name, IEnumerable<Result> rs)
        {
            var list = rs.ToList();
            return string.Create(CultureInfo.InvariantCulture,
                $"{name,-22} {list.Count,6} {list.Count(r => r.Status is >= 200 and < 300),6} {list.Count(r => r.Status is >= 400 and < 500),6} {list.Count(r => r.Status == 429),5} {list.Count(r => r.Status is 0 or >= 500),5} {list.Count(r => r.Changes.Count > 0),8}");
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"Fuzz run (seed {Seed}): {results.Count} requests through the gateway in {elapsed.TotalSeconds:F1} s");
        text.AppendLine($"{"family",-22} {"sent",6} {"2xx",6} {"4xx",6} {"429",5} {"5xx",5} {"changed",8}");
        foreach (var family in Payloads.Families)
        {
            text.AppendLine(Row(family, results.Where(r => r.Case.Family == family)));
        }
        text.AppendLine(Row("TOTAL", results));
        text.AppendLine();
        text.AppendLine($"{"caller",-22} {"sent",6} {"2xx",6} {"4xx",6} {"429",5} {"5xx",5} {"changed",8}");
        foreach (var caller in results.Select(r => r.Case.Caller).Distinct())
        {
            text.AppendLine(Row(caller, results.Where(r => r.Case.Caller == caller)));
        }
        text.AppendLine();
        text.AppendLine("status codes: " + string.Join(", ", results.GroupBy(r => r.Status).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Count()}")));
        text.AppendLine(CultureInfo.InvariantCulture, $"endpoints fuzzed: {results.Select(r => r.Case.Endpoint.Name).Distinct().Count()} of {Contract.Endpoints.Count}");
        text.AppendLine(CultureInfo.InvariantCulture, $"refused by the HTTP server before any middleware (no problem details possible): {results.Count(r => r.ProtocolLevel)} ({string.Join(", ", results.Where(r => r.ProtocolLevel).GroupBy(r => r.Status).Select(g => $"{g.Key} x{g.Count()}"))})");
        text.AppendLine(CultureInfo.InvariantCulture, $"refused requests state-checked: {results.Count(r => r.Status is >= 400 and < 500)}, of which changed something: {results.Count(r => r.Changes.Count > 0)}");
        return text.ToString();
    }
}
