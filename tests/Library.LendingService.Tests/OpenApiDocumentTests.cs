using Library.TestSupport.Contract;

namespace Library.LendingService.Tests;

/// <summary>The lending service's published document follows the rules of every public document (<see cref="OpenApiLint"/>).</summary>
public class OpenApiDocumentTests(LendingFixture fixture, ITestOutputHelper output) : IClassFixture<LendingFixture>
{
    [Fact]
    public async Task The_document_follows_the_rules_every_public_document_follows()
    {
        using var client = fixture.Client();
        var json = await client.GetStringAsync("/openapi/v1.json", TestContext.Current.CancellationToken);

        OpenApiLint.AssertFollowsTheRules(OpenApiLint.Check("lendingservice", json), output);
    }
}
