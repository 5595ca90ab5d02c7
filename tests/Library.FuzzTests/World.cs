extern alias UserService;

using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using SigningKeys = UserService::Library.UserService.Auth.SigningKeys;

namespace Library.FuzzTests;

public sealed record Person(Guid Id, string Email, string Access, string Refresh);

/// <summary>
/// What the fuzz run acts on, arranged through the gateway with requests that must succeed: staff
/// and readers with tokens, authors, categories, titles, and loans and holds of two readers on
/// each other's titles (so "a reader acting on another reader's loan or hold" has real targets).
/// </summary>
public sealed class World
{
    public required Person Admin { get; init; }
    public required Person Librarian { get; init; }

    /// <summary>The reader who fuzzes ("reader" in the counts).</summary>
    public required Person ReaderA { get; init; }

    /// <summary>The other reader, whose loans, holds and profile reader A must not touch.</summary>
    public required Person ReaderB { get; init; }

    /// <summary>Deactivated after log-in: the access token is still valid for a while.</summary>
    public required Person Deactivated { get; init; }

    public required string ServiceToken { get; init; }
    public required IReadOnlyList<Guid> AuthorIds { get; init; }
    public required IReadOnlyList<Guid> CategoryIds { get; init; }
    public required IReadOnlyList<Guid> BookIds { get; init; }

    /// <summary>Three copies, none on loan: what a valid borrow names.</summary>
    public required Guid FreeBook { get; init; }

    public required Guid LoanOfA { get; init; }
    public required Guid LoanOfB { get; init; }
    public required Guid HoldOfA { get; init; }
    public required Guid HoldOfB { get; init; }

    /// <summary>A lost-copy fee each reader owes (small: under the block threshold), and a renewals-only block on reader B.</summary>
    public required Guid FineOfA { get; init; }
    public required Guid FineOfB { get; init; }
    public required Guid BlockOfB { get; init; }

    /// <summary>Forged, expired or otherwise invalid bearer tokens, by kind.</summary>
    public required IReadOnlyList<(string Kind, string Header)> BadAuthorizations { get; init; }

    public static async Task<World> ArrangeAsync(FullLibrary stack, CancellationToken ct)
    {
        var (adminAccess, adminRefresh) = await stack.LoginAsync(FullLibrary.AdminEmail, FullLibrary.AdminPassword);
        using var admin = stack.Client(adminAccess);
        var adminId = (await admin.GetFromJsonAsync<JsonElement>("/api/users/me", ct)).GetProperty("id").GetGuid();
        var adminPerson = new Person(adminId, FullLibrary.AdminEmail, adminAccess, adminRefresh);

        var librarian = await EnrolAsync(stack, admin, "librarian", ct);
        var readerA = await RegisterAsync(stack, "a", ct);
        var readerB = await RegisterAsync(stack, "b", ct);
        var deactivated = await RegisterAsync(stack, "c", ct);

        using var desk = stack.Client(librarian.Access);
        var authors = new List<Guid>();
        var categories = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            authors.Add(await CreateAsync(desk, "/api/authors", new { name = $"Fuzz Author {i}", bio = "Writes.", birthYear = 1950 + i }, ct));
            categories.Add(await CreateAsync(desk, "/api/categories", new { name = $"Fuzz Category {i}-{Guid.NewGuid():N}", description = "Shelf." }, ct));
        }
        Task<Guid> Book(string title, int copies) => CreateAsync(desk, "/api/books", new
        {
            isbn = TestIsbn.Next(), title, publisher = "Fuzz Press", publishedYear = 2020, language = "en", pageCount = 200,
            authorIds = authors, categoryIds = categories, totalCopies = copies,
        }, ct);
        var free = await Book("The Free Title", 3);
        var outToA = await Book("A Title Reader A Has", 1);
        var outToB = await Book("A Title Reader B Has", 1);
        var spare = await Book("A Spare Title", 2);

        // Loans: the lending service learns of new titles by events, or asks the catalog once.
        using var asA = stack.Client(readerA.Access);
        using var asB = stack.Client(readerB.Access);
        var loanOfA = await CreateAsync(asA, "/api/loans", new { bookId = outToA, days = 14 }, ct);
        var loanOfB = await CreateAsync(asB, "/api/loans", new { bookId = outToB, days = 14 }, ct);
        var holdOfA = await CreateAsync(asA, "/api/holds", new { bookId = outToB }, ct);
        var holdOfB = await CreateAsync(asB, "/api/holds", new { bookId = outToA }, ct);

        // Fines: the same rules with a lost fee of 1.00; each reader loses a copy; B gets a manual block.
        var rules = JsonNode.Parse(await desk.GetStringAsync("/api/circulation-rules", ct))!.AsArray();
        foreach (var rule in rules)
        {
            rule!["lostFee"] = 100;
        }
        using (var saved = await admin.PutAsync("/api/circulation-rules", new StringContent(rules.ToJsonString(), Encoding.UTF8, "application/json"), ct))
        {
            saved.EnsureSuccessStatusCode();
        }
        async Task<Guid> LostFineAsync(HttpClient reader, Person who, string title)
        {
            var loan = await CreateAsync(reader, "/api/loans", new { bookId = await Book(title, 1), days = 14 }, ct);
            var copy = (await reader.GetFromJsonAsync<JsonElement>($"/api/loans/{loan}", ct)).GetProperty("copyId").GetGuid();
            using (var lost = await desk.PatchAsJsonAsync($"/api/copies/{copy}", new { status = "lost" }, ct))
            {
                lost.EnsureSuccessStatusCode();
            }
            return (await desk.GetFromJsonAsync<JsonElement>($"/api/fines?userId={who.Id}", ct)).GetProperty("items")[0].GetProperty("id").GetGuid();
        }
        var fineOfA = await LostFineAsync(asA, readerA, "A Title Reader A Lost");
        var fineOfB = await LostFineAsync(asB, readerB, "A Title Reader B Lost");
        var blockOfB = await CreateAsync(desk, $"/api/users/{readerB.Id}/blocks", new { reason = "Fuzz: renewals stopped", renewals = true }, ct);

        using (var response = await admin.PostAsync($"/api/users/{deactivated.Id}/deactivate", null, ct))
        {
            response.EnsureSuccessStatusCode();
        }

        using var seeded = stack.Client();
        var page = await seeded.GetFromJsonAsync<JsonElement>("/api/books?pageSize=5&sort=title", ct);
        var books = new List<Guid> { free, outToA, outToB, spare };
        books.AddRange(page.GetProperty("items").EnumerateArray().Select(b => b.GetProperty("id").GetGuid()));

        return new World
        {
            Admin = adminPerson,
            Librarian = librarian,
            ReaderA = readerA,
            ReaderB = readerB,
            Deactivated = deactivated,
            ServiceToken = await stack.Users.ServiceTokenAsync(),
            AuthorIds = authors,
            CategoryIds = categories,
            BookIds = books,
            FreeBook = free,
            LoanOfA = loanOfA,
            LoanOfB = loanOfB,
            HoldOfA = holdOfA,
            HoldOfB = holdOfB,
            FineOfA = fineOfA,
            FineOfB = fineOfB,
            BlockOfB = blockOfB,
            BadAuthorizations = await BadAuthorizationsAsync(stack, readerA.Access),
        };
    }

    private static async Task<Person> RegisterAsync(FullLibrary stack, string tag, CancellationToken ct)
    {
        var email = $"fuzz-reader-{tag}-{Guid.NewGuid():N}@library.test";
        using var client = stack.Client();
        using var response = await client.PostAsJsonAsync("/api/auth/register", new { email, firstName = "Reader", lastName = tag.ToUpperInvariant(), password = "Reader-password-1" }, ct);
        response.EnsureSuccessStatusCode();
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetGuid();
        var (access, refresh) = await stack.LoginAsync(email, "Reader-password-1");
        return new Person(id, email, access, refresh);
    }

    private static async Task<Person> EnrolAsync(FullLibrary stack, HttpClient admin, string role, CancellationToken ct)
    {
        var email = $"fuzz-{role}-{Guid.NewGuid():N}@library.test";
        using var response = await admin.PostAsJsonAsync("/api/users", new { email, firstName = "Staff", lastName = role, password = "Staff-password-1", role }, ct);
        response.EnsureSuccessStatusCode();
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetGuid();
        var (access, refresh) = await stack.LoginAsync(email, "Staff-password-1");
        return new Person(id, email, access, refresh);
    }

    private static async Task<Guid> CreateAsync(HttpClient client, string path, object body, CancellationToken ct)
    {
        using var response = await client.PostAsJsonAsync(path, body, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Arranging the world: POST {path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }
        return (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetGuid();
    }

    private static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    /// <summary>Every way a bearer token can be wrong that the gateway must refuse with 401.</summary>
    private static async Task<IReadOnlyList<(string Kind, string Header)>> BadAuthorizationsAsync(FullLibrary stack, string readerToken)
    {
        var parts = readerToken.Split('.');
        var claims = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1]));
        var keys = stack.Users.Host.Services.GetRequiredService<SigningKeys>();
        var realKey = await keys.CurrentAsync(CancellationToken.None);
        string Signed(string issuer, string audience, DateTime expires, string role = "librarian") =>
            new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer,
                Audience = audience,
                IssuedAt = expires.AddMinutes(-15),
                NotBefore = expires.AddMinutes(-15),
                Expires = expires,
                Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = role },
                SigningCredentials = realKey,
            });

        using var jwks = new HttpClient { BaseAddress = stack.Users.Host.Address };
        var jwk = (await jwks.GetFromJsonAsync<JsonElement>("/.well-known/jwks.json")).GetProperty("keys")[0].GetRawText();
        var hsHeader = B64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        string hs256;
        using (var hmac = new HMACSHA256(Encoding.UTF8.GetBytes(jwk)))
        {
            hs256 = $"{hsHeader}.{parts[1]}.{Base64UrlEncoder.Encode(hmac.ComputeHash(Encoding.ASCII.GetBytes($"{hsHeader}.{parts[1]}")))}";
        }
        string stranger;
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            stranger = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = "library",
                Audience = "library-api",
                Expires = DateTime.UtcNow.AddMinutes(10),
                Claims = new Dictionary<string, object> { ["sub"] = Guid.NewGuid().ToString(), ["role"] = "admin" },
                SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = "stranger" }, "ES256"),
            });
        }

        return
        [
            ("tampered-role", $"Bearer {parts[0]}.{B64(claims.Replace("\"member\"", "\"admin\"", StringComparison.Ordinal))}.{parts[2]}"),
            ("alg-none", $"Bearer {B64("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{parts[1]}."),
            ("hs256-with-public-key", $"Bearer {hs256}"),
            ("expired", $"Bearer {Signed("library", "library-api", DateTime.UtcNow.AddMinutes(-5))}"),
            ("wrong-issuer", $"Bearer {Signed("https://evil.example", "library-api", DateTime.UtcNow.AddMinutes(10))}"),
            ("wrong-audience", $"Bearer {Signed("library", "somebody-else", DateTime.UtcNow.AddMinutes(10))}"),
            ("unknown-key", $"Bearer {stranger}"),
            ("signature-stripped", $"Bearer {parts[0]}.{parts[1]}."),
            ("garbage", "Bearer not-a-jwt"),
            ("empty-bearer", "Bearer "),
            ("basic", "Basic YWRtaW46YWRtaW4="),
            ("sql-in-token", "Bearer ' OR 1=1 --"),
        ];
    }
}
