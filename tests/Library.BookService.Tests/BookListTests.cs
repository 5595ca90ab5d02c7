using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.BookService.Data;
using Library.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Library.BookService.Tests;

public sealed class CatalogFixture : IAsyncLifetime
{
    public TestDatabase Database { get; private set; } = null!;
    public ServiceHost<Program> Host { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync("bookdb");
        Host = new ServiceHost<Program>(new Dictionary<string, string?> { ["ConnectionStrings:bookdb"] = Database.ConnectionString });
        Client = Host.CreateClient();
    }

    public async Task SeedAsync(params Book[] books)
    {
        await using var scope = Host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        db.Books.AddRange(books);
        await db.SaveChangesAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        await Database.DisposeAsync();
    }
}

public sealed class BookListTests(CatalogFixture fixture) : IClassFixture<CatalogFixture>
{
    private static Book NewBook(string title, string isbn) => new()
    {
        Isbn = isbn,
        Title = title,
        Publisher = "Ace",
        TotalCopies = 2,
        AvailableCopies = 2,
        Authors = [new Author { Name = "Ursula K. Le Guin" }],
    };

    [Fact]
    public async Task Books_are_listed_in_pages_ordered_by_title_with_the_total_count()
    {
        await fixture.SeedAsync(
            NewBook("The Left Hand of Darkness", "9780441478125"),
            NewBook("A Wizard of Earthsea", "9780553383041"),
            NewBook("The Dispossessed", "9780061054884"));
        var ct = TestContext.Current.CancellationToken;

        var first = await fixture.Client.GetFromJsonAsync<JsonElement>("/api/books?page=1&pageSize=2", ct);
        var second = await fixture.Client.GetFromJsonAsync<JsonElement>("/api/books?page=2&pageSize=2", ct);

        Assert.Equal(3, first.GetProperty("totalCount").GetInt64());
        Assert.Equal(2, first.GetProperty("pageSize").GetInt32());
        var titles = first.GetProperty("items").EnumerateArray()
            .Concat(second.GetProperty("items").EnumerateArray())
            .Select(b => b.GetProperty("title").GetString())
            .ToList();
        Assert.Equal(["A Wizard of Earthsea", "The Dispossessed", "The Left Hand of Darkness"], titles);
        var book = first.GetProperty("items")[0];
        Assert.Equal("Ursula K. Le Guin", book.GetProperty("authors")[0].GetProperty("name").GetString());
        Assert.Equal(2, book.GetProperty("availableCopies").GetInt32());
    }

    [Theory]
    [InlineData("pageSize=0", "pageSize")]
    [InlineData("pageSize=101", "pageSize")]
    [InlineData("page=0", "page")]
    public async Task Out_of_range_paging_is_a_400_problem_naming_the_field(string query, string field)
    {
        using var response = await fixture.Client.GetAsync($"/api/books?{query}", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _));
        Assert.Matches("^[0-9a-f]{32}$", problem.GetProperty("traceId").GetString());
    }

    [Fact]
    public async Task A_page_number_that_is_not_a_number_is_a_400_problem_not_a_500()
    {
        using var response = await fixture.Client.GetAsync("/api/books?page=abc", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Contains("page", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(problem.TryGetProperty("traceId", out _));
    }

    [Fact]
    public async Task An_unknown_book_is_a_404_problem()
    {
        using var response = await fixture.Client.GetAsync($"/api/books/{Guid.CreateVersion7()}", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
