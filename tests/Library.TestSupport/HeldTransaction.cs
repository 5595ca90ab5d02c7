using Npgsql;
using Xunit;

namespace Library.TestSupport;

/// <summary>
/// A transaction of the test's own on a service's database, holding row locks as a use case in
/// flight would (a return holding its title, a hold being placed), so a test can make a request
/// wait for it, look at what the waiting request holds, then let it go.
/// </summary>
public sealed class HeldTransaction : IAsyncDisposable
{
    private readonly TestDatabase _database;
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;

    private HeldTransaction(TestDatabase database, NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        _database = database;
        _connection = connection;
        _transaction = transaction;
    }

    /// <summary>Opens the transaction and runs <paramref name="sql"/> in it (its locks are held until the end).</summary>
    public static async Task<HeldTransaction> BeginAsync(TestDatabase database, string sql, params (string Name, object Value)[] parameters)
    {
        var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        var held = new HeldTransaction(database, connection, await connection.BeginTransactionAsync(TestContext.Current.CancellationToken));
        await held.ExecuteAsync(sql, parameters);
        return held;
    }

    /// <summary>Runs <paramref name="sql"/> in the transaction; its first value (null without rows).</summary>
    public async Task<object?> ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, _connection, _transaction);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return await command.ExecuteScalarAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Until another session of the database waits for a lock this transaction holds.</summary>
    public Task WaitUntilSomeoneWaitsAsync(string what) =>
        Eventually.WaitUntilAsync(async () => await _database.SessionsBlockedByAsync(_connection.ProcessID) > 0, what);

    /// <summary>The PostgreSQL backend of the transaction (for pg_blocking_pids).</summary>
    public int ProcessId => _connection.ProcessID;

    public Task CommitAsync() => _transaction.CommitAsync(TestContext.Current.CancellationToken);

    public Task RollbackAsync() => _transaction.RollbackAsync(TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
