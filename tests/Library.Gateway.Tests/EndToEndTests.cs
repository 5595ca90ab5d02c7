extern alias BookService;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using BookServiceProgram = BookService::Program;

namespace Library.Gateway.Tests;

public sealed class EndToEndTests
{
    [Fact]
    public async Task A_catalog_request_travels_gateway_to_the_real_book_service_and_back()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var database = await TestDatabase.CreateAsync("bookdb");
        await using var books = new ServiceHost<BookServiceProgram>(new Dictionary<string, string?>
        {
            ["ConnectionStrings:bookdb"] = database.ConnectionString,
        });
        books.OnPort(0);
        books.StartServer();
        var bookAddress = books.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

        await using var gateway = new ServiceHost<Program>(new Dictionary<string, string?>
        {
            ["services:bookservice:http:0"] = bookAddress,
        });
        using var client = gateway.CreateClient();

        using var response = await client.GetAsync("/api/books?pageSize=5", ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var page = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.Equal(0, page.GetProperty("totalCount").GetInt64());
        Assert.Equal(5, page.GetProperty("pageSize").GetInt32());

        // The service's own problem details come back through the gateway untouched.
        using var bad = await client.GetAsync("/api/books?pageSize=500", ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
    }
}
