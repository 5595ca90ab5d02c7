extern alias UserService;

using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using UserServiceProgram = UserService::Program;

namespace Library.BookService.Tests;

/// <summary>
/// The book service against real PostgreSQL, Redis (through a cuttable proxy, so a test can take
/// Redis away from this service alone) and RabbitMQ, checking tokens the real user service issues.
/// </summary>
public class CatalogFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;
    public RealUserService<UserServiceProgram> Users { get; private set; } = null!;
    public ServiceHost<Program> Host { get; private set; } = null!;
    public TcpProxy Redis { get; private set; } = null!;
    public string LibrarianToken { get; private set; } = null!;
    public string MemberToken { get; private set; } = null!;
    public Guid MemberId { get; private set; }

    public async ValueTask InitializeAsync()
    {
        Users = await RealUserService<UserServiceProgram>.StartAsync();
        Database = await TestDatabase.CreateAsync("bookdb");
        Redis = TcpProxy.ToTestRedis(out var redis);
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:bookdb"] = Database.ConnectionString,
            ["ConnectionStrings:cache"] = redis,
            ["Auth:MetadataAddress"] = Users.MetadataAddress,
            ["Catalog:MaxImportBytes"] = "1048576", // 1 MiB: the import's size limit within a test's reach
        };
        Configure(settings);
        Host = new ServiceHost<Program>(settings);
        LibrarianToken = (await Users.NewUserAsync("librarian")).Token;
        (MemberId, MemberToken) = await Users.NewUserAsync("member");
    }

    private readonly SemaphoreSlim _seeding = new(1, 1);
    private bool _seeded;

    /// <summary>
    /// A fixture's data, made once for its class whichever test asks first (xUnit's order of
    /// tests differs from one checkout's folder to another's); the others wait for it. A seeding
    /// that fails is tried again by the next test.
    /// </summary>
    protected async Task SeedOnceAsync(Func<Task> seed)
    {
        await _seeding.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!_seeded)
            {
                await seed();
                _seeded = true;
            }
        }
        finally
        {
            _seeding.Release();
        }
    }

    /// <summary>A fixture's own settings for the service, over the common ones.</summary>
    protected virtual void Configure(Dictionary<string, string?> settings)
    {
    }

    public HttpClient Client(string? token = null)
    {
        var client = Host.CreateClient();
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    public HttpClient Librarian() => Client(LibrarianToken);

    public async Task<Guid> AuthorAsync(string name)
    {
        using var response = await Librarian().PostAsJsonAsync("/api/authors", new { name });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public async Task<Guid> CategoryAsync(string name)
    {
        using var response = await Librarian().PostAsJsonAsync("/api/categories", new { name });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public async Task<JsonElement> BookAsync(string title, string isbn, Guid[] authors, Guid[] categories, string publisher = "Ace",
        string language = "en", int year = 1969, int copies = 2, string? description = null)
    {
        using var response = await Librarian().PostAsJsonAsync("/api/books", new
        {
            isbn, title, description, publisher, publishedYear = year, language, authorIds = authors, categoryIds = categories, totalCopies = copies,
        });
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Redis.DisposeAsync();
        await Database.DisposeAsync();
        await Users.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
