using Library.LendingService.Loans;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Library.LendingService.Tests;

/// <summary>
/// A client that closes its connection once its use case has decided (wrk ending a run, a reader's
/// phone losing the network) does not cancel the save and the commit: the answer is kept, so a
/// retry with the same key gets it, and nothing half-done is thrown away.
/// </summary>
public sealed class ClientGoneTests(LendingFixture fixture) : IClassFixture<LendingFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<bool, int> Cases => new()
    {
        { false, StatusCodes.Status200OK },  // no key: the request's own record is saved with the success
        { true, StatusCodes.Status200OK },   // a key: its row gets the answer
        { true, StatusCodes.Status409Conflict }, // a refusal under a key: its row keeps the refusal
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_use_case_decided_before_the_client_left_is_saved_and_committed(bool withKey, int status)
    {
        var userId = Guid.NewGuid();
        var operation = $"client-gone-{Guid.NewGuid():N}";
        var key = withKey ? $"key-{Guid.NewGuid():N}" : null;
        using var client = new CancellationTokenSource();
        await using var scope = fixture.Lending.Services.CreateAsyncScope();
        var runner = scope.ServiceProvider.GetRequiredService<Idempotency>();

        var outcome = await runner.RunAsync(userId, key, operation, token =>
        {
            Assert.False(token.IsCancellationRequested); // the use case itself runs under the client's token
            client.Cancel(); // the client leaves once the use case has decided
            return Task.FromResult(status == StatusCodes.Status200OK
                ? Outcome.Ok(new { decided = true })
                : Outcome.Conflict("No copy left", "Every copy is on loan."));
        }, client.Token);

        Assert.Equal(status, outcome.Status);
        var kept = await fixture.InLendingAsync(db => db.IdempotentRequests.AsNoTracking()
            .SingleAsync(r => r.UserId == userId && r.Operation == operation, Ct));
        Assert.Equal(status, kept.StatusCode);
        Assert.Contains(status == StatusCodes.Status200OK ? "decided" : "No copy left", kept.Response);
    }

    [Fact]
    public async Task A_client_gone_before_the_use_case_decides_cancels_it_and_nothing_is_kept()
    {
        var userId = Guid.NewGuid();
        var operation = $"client-gone-early-{Guid.NewGuid():N}";
        using var client = new CancellationTokenSource();
        await client.CancelAsync();
        await using var scope = fixture.Lending.Services.CreateAsyncScope();
        var runner = scope.ServiceProvider.GetRequiredService<Idempotency>();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.RunAsync(userId, null, operation,
            token => Task.FromResult(Outcome.Ok(new { decided = true })), client.Token));

        Assert.False(await fixture.InLendingAsync(db => db.IdempotentRequests.AnyAsync(r => r.UserId == userId, Ct)));
    }
}
