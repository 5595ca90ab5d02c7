using System.Data.Common;
using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Library.LendingService.Tests;

/// <summary>
/// What a failover does to a borrow at the worst moment: the transaction that inserted a loan
/// commits, and then its connection fails before the answer arrives (the primary killed, the
/// standby promoted). The interceptor lets the COMMIT happen, then throws the transient error
/// Npgsql would throw, once, so the execution strategy runs the borrow again.
/// </summary>
public sealed class CommitLoss : DbTransactionInterceptor, IDbCommandInterceptor
{
    private readonly HashSet<DbTransaction> _lending = [];
    private readonly Lock _gate = new();

    public bool Armed { get; set; }
    public int Lost { get; private set; }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Note(command);
        return ValueTask.FromResult(result);
    }

    public ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
    {
        Note(command);
        return ValueTask.FromResult(result);
    }

    private void Note(DbCommand command)
    {
        if (command.Transaction is { } transaction && command.CommandText.Contains("INSERT INTO loans", StringComparison.Ordinal))
        {
            lock (_gate)
            {
                _lending.Add(transaction);
            }
        }
    }

    public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_lending.Remove(transaction) || !Armed)
            {
                return Task.CompletedTask;
            }
            Armed = false;
            Lost++;
        }
        throw new NpgsqlException("Exception while reading from stream (the answer to COMMIT was lost)", new TimeoutException());
    }
}

public sealed class LostCommitFixture : LendingFixture
{
    public CommitLoss Loss { get; } = new();

    protected override void ConfigureLendingServices(IServiceCollection services) => services.AddSingleton<IInterceptor>(Loss);
}

public sealed class LostCommitTests(LostCommitFixture fixture) : IClassFixture<LostCommitFixture>
{
    [Theory]
    [InlineData(null)]
    [InlineData("lost-commit-key")]
    public async Task A_borrow_whose_commit_answer_is_lost_is_answered_once_and_lends_one_copy(string? idempotencyKey)
    {
        var book = await fixture.TitleAsync(3, "Lost Commit");
        var (reader, token) = await fixture.ReaderAsync();

        fixture.Loss.Armed = true;
        using var response = await fixture.BorrowAsync(book, token: token, days: 7, idempotencyKey: idempotencyKey);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.False(fixture.Loss.Armed); // the commit's answer was lost, and the server retried
        var loans = await fixture.InLendingAsync(db => db.Loans.Where(l => l.UserId == reader && l.BookId == book).CountAsync());
        var onLoan = (await fixture.CopyCountsAsync(book)).OnLoan;
        Assert.Equal(1, loans);
        Assert.Equal(1, onLoan);
    }
}
