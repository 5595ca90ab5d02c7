using Library.TestSupport.Contract;

namespace Library.BookService.Tests;

/// <summary>The book service's published document follows the rules of every public document (<see cref="OpenApiLint"/>).</summary>
public class OpenApiDocumentTests(CatalogFixture fixture, ITestOutputHelper output) : IClassFixture<CatalogFixture>
{
    [Fact]
    public async Task The_document_follows_the_rules_every_public_document_follows()
    {
        using var client = fixture.Client();
        var json = await client.GetStringAsync("/openapi/v1.json", TestContext.Current.CancellationToken);

        OpenApiLint.AssertFollowsTheRules(OpenApiLint.Check("bookservice", json), output);
    }
}
