extern alias BookService;
extern alias UserService;

using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.LendingService.Data;
using Library.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using BookServiceProgram = BookService::Program;
using UserServiceProgram = UserService::Program;

namespace Library.LendingService.Tests;

/// <summary>
/// The lending service with the real user service and catalog beside it, all on loopback ports,
/// sharing one exchange (events flow between them as in production) and found by service
/// discovery; the lending service's clock is a fake the tests move.
/// </summary>
public sealed record CopyCounts(int Total, int OnLoan, int Held, int OnShelf);

public class LendingFixture : IAsyncLifetime
{
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public TestDatabase BookDb { get; private set; } = null!;
    public TestDatabase LendingDb { get; private set; } = null!;
    public ServiceHost<BookServiceProgram> Catalog { get; private set; } = null!;
    public ServiceHost<Program> Lending { get; private set; } = null!;
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    public string LibrarianToken { get; private set; } = null!;

    /// <summary>The test's own exchange (events published there reach the services as from a relay).</summary>
    public string Exchange { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var isolation = Guid.NewGuid().ToString("N")[..12];
        Exchange = $"test-{isolation}.library.events";
        Users = await RealUserService<UserServiceProgram>.StartAsync(new Dictionary<string, string?>
        {
            ["EventBus:Exchange"] = $"test-{isolation}.library.events",
            ["EventBus:QueuePrefix"] = $"test-{isolation}.",
        });
        BookDb = await TestDatabase.CreateAsync("bookdb");
        LendingDb = await TestDatabase.CreateAsync("lendingdb");
        var catalogPort = Ports.FreePort();
        var shared = new Dictionary<string, string?>
        {
            ["EventBus:Exchange"] = $"test-{isolation}.library.events",
            ["EventBus:QueuePrefix"] = $"test-{isolation}.",
            ["EventBus:RetryDelay"] = "00:00:00.200",
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["services:userservice:http:0"] = Users.Host.Address.ToString().TrimEnd('/'),
            ["services:bookservice:http:0"] = $"http://127.0.0.1:{catalogPort}",
        };
        Catalog = new ServiceHost<BookServiceProgram>(new Dictionary<string, string?>(shared) { ["ConnectionStrings:bookdb"] = BookDb.ConnectionString }).OnPort(catalogPort);
        Catalog.StartServer();
        Lending = new ServiceHost<Program>(
            new Dictionary<string, string?>(shared)
            {
                ["ConnectionStrings:lendingdb"] = LendingDb.ConnectionString,
                ["Auth:Client:Id"] = RealUserService<UserServiceProgram>.ClientId,
                ["Auth:Client:Secret"] = RealUserService<UserServiceProgram>.ClientSecret,
            }.With(ConfigureLending),
            services =>
            {
                services.AddSingleton<TimeProvider>(Clock);
                ConfigureLendingServices(services);
            });
        Lending.StartServer();
        LibrarianToken = (await Users.NewUserAsync("librarian")).Token;
    }

    /// <summary>More settings for the lending host (a derived fixture's mail server). Without any, no mail server is configured.</summary>
    protected virtual void ConfigureLending(IDictionary<string, string?> settings)
    {
    }

    /// <summary>More services for the lending host (a derived fixture's interceptors).</summary>
    protected virtual void ConfigureLendingServices(IServiceCollection services)
    {
    }

    public HttpClient Client(string? token = null)
    {
        var client = Lending.CreateClient();
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    public HttpClient Librarian() => Client(LibrarianToken);

    /// <summary>A title created in the real catalog (the lending service learns it by event or gRPC).</summary>
    public async Task<Guid> TitleAsync(int copies, string title = "A Title")
    {
        using var client = Catalog.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", LibrarianToken);
        using var response = await client.PostAsJsonAsync("/api/books", new { isbn = TestIsbn.Next(), title, publisher = "Test Press", totalCopies = copies });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>A real reader (registered at the user service) and their token.</summary>
    public Task<(Guid Id, string Token)> ReaderAsync() => Users.NewUserAsync("member");

    /// <summary>Readers known to lending only (as their UserRegistered events would leave them), for crowds.</summary>
    public async Task<List<Guid>> ReplicaReadersAsync(int count)
    {
        var ids = Enumerable.Range(0, count).Select(_ => Guid.CreateVersion7()).ToList();
        await InLendingAsync(async db =>
        {
            db.Readers.AddRange(ids.Select((id, i) => new Reader { Id = id, Email = $"crowd-{id:N}@library.test", FirstName = "Crowd", LastName = $"Reader {i}", Version = 1 }));
            return await db.SaveChangesAsync();
        });
        return ids;
    }

    /// <summary>A title's copies as lending counts them: owned (loanable, in stock), checked out, set aside for a hold, on the shelf.</summary>
    /// <summary>
    /// The title's copies counted one by one, checked against the counts its row keeps (the copies'
    /// trigger): every test that reads counts this way also checks that the two agree.
    /// </summary>
    public async Task<CopyCounts> CopyCountsAsync(Guid bookId)
    {
        var row = await InLendingAsync(db => db.Database.SqlQuery<CountsAndKept>($"""
            SELECT count(*) FILTER (WHERE status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in AND loan_type <> 'reference')::int AS total,
                   count(*) FILTER (WHERE status = 'checked-out')::int AS on_loan,
                   count(*) FILTER (WHERE status = 'awaiting-pickup')::int AS held,
                   count(*) FILTER (WHERE status = 'available' AND loan_type <> 'reference')::int AS on_shelf,
                   (SELECT loanable_copies FROM titles WHERE id = {bookId}) AS kept_total,
                   (SELECT copies_on_shelf FROM titles WHERE id = {bookId}) AS kept_on_shelf
            FROM copies WHERE book_id = {bookId}
            """).SingleAsync());
        Assert.True(row.KeptTotal is null || (row.KeptTotal, row.KeptOnShelf) == (row.Total, row.OnShelf),
            $"Title {bookId}: its row keeps {row.KeptTotal} loanable / {row.KeptOnShelf} on the shelf, its copies count {row.Total} / {row.OnShelf}.");
        return new CopyCounts(row.Total, row.OnLoan, row.Held, row.OnShelf);
    }

    private sealed record CountsAndKept(int Total, int OnLoan, int Held, int OnShelf, int? KeptTotal, int? KeptOnShelf);

    /// <summary>Titles whose kept counts differ from a count of their copies (each as "id: kept / counted"), none if all agree.</summary>
    public Task<List<string>> TitlesCountedWrongAsync() => InLendingAsync(db => db.Database.SqlQuery<string>($"""
        SELECT t.id::text || ': ' || t.loanable_copies || '/' || t.copies_on_shelf || ' kept, ' || coalesce(c.total, 0) || '/' || coalesce(c.on_shelf, 0) || ' counted' AS "Value"
        FROM titles t LEFT JOIN (
            SELECT book_id, count(*) FILTER (WHERE status NOT IN ('withdrawn', 'lost') AND NOT withdraw_on_check_in)::int AS total,
                   count(*) FILTER (WHERE status = 'available')::int AS on_shelf
            FROM copies WHERE loan_type <> 'reference' GROUP BY book_id) c ON c.book_id = t.id
        WHERE (t.loanable_copies, t.copies_on_shelf) IS DISTINCT FROM (coalesce(c.total, 0), coalesce(c.on_shelf, 0))
        """).ToListAsync());

    public async Task<T> InLendingAsync<T>(Func<LendingDbContext, Task<T>> work)
    {
        await using var scope = Lending.Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<LendingDbContext>());
    }

    public async Task<HttpResponseMessage> BorrowAsync(Guid bookId, Guid? userId = null, int days = 14, string? token = null, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans") { Content = JsonContent.Create(new { bookId, days, userId }) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        using var client = Client(token ?? LibrarianToken);
        return await client.SendAsync(request);
    }

    public async Task<HttpResponseMessage> PlaceHoldAsync(Guid bookId, Guid? userId = null, string? token = null)
    {
        using var client = Client(token ?? LibrarianToken);
        return await client.PostAsJsonAsync("/api/holds", new { bookId, userId });
    }

    public static Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 30) => Eventually.WaitUntilAsync(condition, what, seconds);

    public virtual async ValueTask DisposeAsync()
    {
        await Lending.DisposeAsync();
        await Catalog.DisposeAsync();
        await LendingDb.DisposeAsync();
        await BookDb.DisposeAsync();
        await Users.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

internal static class SettingsExtensions
{
    public static Dictionary<string, string?> With(this Dictionary<string, string?> settings, Action<IDictionary<string, string?>> configure)
    {
        configure(settings);
        return settings;
    }
}
