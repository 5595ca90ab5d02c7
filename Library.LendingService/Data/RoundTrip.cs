using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Library.LendingService.Data;

/// <summary>
/// Several statements sent to PostgreSQL in one round trip (an <see cref="NpgsqlBatch"/> on the
/// context's connection, in its transaction), their results read back in order. Under READ
/// COMMITTED each statement of a batch takes its own snapshot when it starts, exactly as when they
/// were sent one by one: a read placed after a <c>FOR UPDATE</c> that waited for another
/// transaction sees what that transaction committed. What the batch saves is the wait on the
/// network and the thread hop of each statement, and the time the transaction's locks are held
/// while the service is between statements (on a busy machine, most of a borrow's time).
/// Parameters are positional (<c>$1</c>, <c>$2</c>, ... within each statement).
/// </summary>
public sealed partial class RoundTrip(DbContext db)
{
    private readonly List<NpgsqlBatchCommand> _commands = [];

    /// <summary>
    /// SQL written with EF's raw placeholders (<c>{0}</c>, <c>{1}</c>, ...) in Npgsql's positional form
    /// (<c>$1</c>, <c>$2</c>, ...), so one text serves both. Converted once, into a static field
    /// beside the text: not on every request.
    /// </summary>
    public static string Positional(string sql) =>
        Placeholder().Replace(sql, m => "$" + (int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));

    [System.Text.RegularExpressions.GeneratedRegex(@"\{(\d+)\}")]
    private static partial System.Text.RegularExpressions.Regex Placeholder();

    public RoundTrip Add(string sql, params object[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }
        _commands.Add(command);
        return this;
    }

    /// <summary>Sends every statement added; read their results in the order they were added.</summary>
    public async Task<RoundTripResults> RunAsync(CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var batch = new NpgsqlBatch((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction());
            foreach (var command in _commands)
            {
                batch.BatchCommands.Add(command);
            }
            try
            {
                return new RoundTripResults(db, batch, await batch.ExecuteReaderAsync(ct));
            }
            catch
            {
                await batch.DisposeAsync();
                throw;
            }
        }
        catch
        {
            await db.Database.CloseConnectionAsync();
            throw;
        }
    }
}

/// <summary>The results of a <see cref="RoundTrip"/>, one statement's at a time, in order.</summary>
public sealed class RoundTripResults : IAsyncDisposable
{
    private readonly DbContext _db;
    private readonly NpgsqlBatch _batch;
    private readonly NpgsqlDataReader _reader;
    private bool _started;
    private bool _disposed;

    internal RoundTripResults(DbContext db, NpgsqlBatch batch, NpgsqlDataReader reader) => (_db, _batch, _reader) = (db, batch, reader);

    /// <summary>The next statement's rows, each mapped by <paramref name="map"/>.</summary>
    public async Task<List<T>> RowsAsync<T>(Func<DbDataReader, T> map, CancellationToken ct)
    {
        if (_started && !await _reader.NextResultAsync(ct))
        {
            throw new InvalidOperationException("The round trip has no more results than that.");
        }
        _started = true;
        var rows = new List<T>();
        while (await _reader.ReadAsync(ct))
        {
            rows.Add(map(_reader));
        }
        return rows;
    }

    /// <summary>The next statement's one row, if any (more is a bug in the statement).</summary>
    public async Task<T?> RowAsync<T>(Func<DbDataReader, T> map, CancellationToken ct) =>
        (await RowsAsync(map, ct)).SingleOrDefault();

    /// <summary>The next statement's rows as entities of the context's model (columns by their mapped names; not tracked).</summary>
    public Task<List<T>> EntitiesAsync<T>(CancellationToken ct) where T : class => RowsAsync(EntityMap<T>(), ct);

    /// <summary>A row as an entity of the context's model, for a map of <see cref="RowsAsync{T}"/> that reads more than the entity.</summary>
    public Func<DbDataReader, T> EntityMap<T>() where T : class => EntityRows.For<T>(_db);

    /// <summary>The next statement's one row as an entity, if any.</summary>
    public async Task<T?> EntityAsync<T>(CancellationToken ct) where T : class => (await EntitiesAsync<T>(ct)).SingleOrDefault();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _reader.DisposeAsync();
        await _batch.DisposeAsync();
        await _db.Database.CloseConnectionAsync();
    }
}

/// <summary>
/// Entities read from a data reader by the column names of the context's model (EF's own mapping,
/// so a renamed column is renamed here too): for the statements of a <see cref="RoundTrip"/>,
/// which EF does not materialise. Columns the model does not know are ignored; a mapped property
/// the statement did not select keeps its default.
/// </summary>
internal static class EntityRows
{
    private static readonly ConcurrentDictionary<Type, Dictionary<string, Action<object, DbDataReader, int>>> Setters = new();

    public static Func<DbDataReader, T> For<T>(DbContext db) where T : class
    {
        var setters = Setters.GetOrAdd(typeof(T), _ => Build(db, typeof(T)));
        return reader =>
        {
            var entity = Activator.CreateInstance<T>();
            for (var i = 0; i < reader.FieldCount; i++)
            {
                if (setters.TryGetValue(reader.GetName(i), out var set))
                {
                    set(entity, reader, i);
                }
            }
            return entity;
        };
    }

    private static Dictionary<string, Action<object, DbDataReader, int>> Build(DbContext db, Type type)
    {
        var entityType = db.Model.FindEntityType(type) ?? throw new InvalidOperationException($"{type.Name} is not an entity of {db.GetType().Name}.");
        var table = Microsoft.EntityFrameworkCore.Metadata.StoreObjectIdentifier.Table(entityType.GetTableName()!, entityType.GetSchema());
        var setters = new Dictionary<string, Action<object, DbDataReader, int>>(StringComparer.Ordinal);
        foreach (var property in entityType.GetProperties())
        {
            if (property.PropertyInfo is not PropertyInfo info || property.GetColumnName(table) is not string column)
            {
                continue;
            }
            var converter = property.GetValueConverter();
            var clrType = Nullable.GetUnderlyingType(info.PropertyType) ?? info.PropertyType;
            setters[column] = (entity, reader, i) =>
            {
                object? value;
                if (reader.IsDBNull(i))
                {
                    value = null;
                }
                else if (converter is not null)
                {
                    value = converter.ConvertFromProvider(reader.GetValue(i));
                }
                else if (clrType == typeof(DateTimeOffset))
                {
                    value = reader.GetFieldValue<DateTimeOffset>(i);
                }
                else
                {
                    value = reader.GetValue(i);
                }
                info.SetValue(entity, value);
            };
        }
        return setters;
    }
}
