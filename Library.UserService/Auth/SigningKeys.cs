using System.Security.Cryptography;
using Library.ServiceDefaults;
using Library.UserService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Library.UserService.Auth;

/// <summary>
/// The ES256 key pairs in userdb. Every replica reads them (cached for a minute), so all sign
/// with the newest and publish the same JWKS. When the newest is older than the rotation period a
/// replica creates the next one under an advisory lock (one new key, however many replicas); the
/// previous key stays published for a day after it retires, long after its 15-minute tokens.
/// </summary>
public sealed class SigningKeys(IServiceScopeFactory scopes, IOptions<IssuerOptions> options, TimeProvider time, ILogger<SigningKeys> logger) : IDisposable
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan PublishAfterRetirement = TimeSpan.FromDays(1);
    private const long RotationLockKey = 0x4C49425241525931; // "LIBRARY1"

    private readonly SemaphoreSlim _gate = new(1, 1);
    private (DateTimeOffset LoadedAt, IReadOnlyList<LoadedKey> Keys)? _cache;

    public sealed record LoadedKey(string Id, ECDsaSecurityKey Key, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);

    /// <summary>The key that signs now.</summary>
    public async Task<SigningCredentials> CurrentAsync(CancellationToken ct)
    {
        var keys = await LoadAsync(ct);
        return new SigningCredentials(keys[0].Key, AuthOptions.Algorithm);
    }

    /// <summary>Every key a valid token may have been signed with.</summary>
    public async Task<IReadOnlyList<LoadedKey>> PublishedAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return (await LoadAsync(ct)).Where(k => k.RetiredAt is null || k.RetiredAt + PublishAfterRetirement > now).ToList();
    }

    private async Task<IReadOnlyList<LoadedKey>> LoadAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (_cache is { } cached && now - cached.LoadedAt < CacheFor)
        {
            return cached.Keys;
        }

        await _gate.WaitAsync(ct);
        try
        {
            if (_cache is { } again && now - again.LoadedAt < CacheFor)
            {
                return again.Keys;
            }
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<UserDbContext>();
            var rows = await EnsureCurrentAsync(db, ct);
            var keys = rows.Select(Load).ToList();
            _cache = (now, keys);
            return keys;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The keys newest first, after creating a new one when the newest is due.</summary>
    public async Task<List<SigningKey>> EnsureCurrentAsync(UserDbContext db, CancellationToken ct)
    {
        var rows = await db.SigningKeys.AsNoTracking().OrderByDescending(k => k.CreatedAt).ToListAsync(ct);
        if (rows.Count > 0 && time.GetUtcNow() - rows[0].CreatedAt < options.Value.KeyRotation)
        {
            return rows;
        }

        await db.Database.CreateExecutionStrategy().ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(token);
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({RotationLockKey})", token);
            var newest = await db.SigningKeys.OrderByDescending(k => k.CreatedAt).FirstOrDefaultAsync(token);
            var now = time.GetUtcNow();
            if (newest is not null && now - newest.CreatedAt < options.Value.KeyRotation)
            {
                return; // another replica rotated meanwhile
            }

            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            db.SigningKeys.Add(new SigningKey
            {
                Id = $"{now:yyyyMMdd}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}",
                Algorithm = AuthOptions.Algorithm,
                PrivateKey = ecdsa.ExportPkcs8PrivateKey(),
                CreatedAt = now,
            });
            if (newest is not null)
            {
                newest.RetiredAt = now;
            }
            await db.SaveChangesAsync(token);
            await transaction.CommitAsync(token);
            logger.LogInformation("Created a new token-signing key{Retired}", newest is null ? "" : $"; {newest.Id} retires");
        }, ct);

        return await db.SigningKeys.AsNoTracking().OrderByDescending(k => k.CreatedAt).ToListAsync(ct);
    }

    private static LoadedKey Load(SigningKey row)
    {
        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(row.PrivateKey, out _);
        return new LoadedKey(row.Id, new ECDsaSecurityKey(ecdsa) { KeyId = row.Id }, row.CreatedAt, row.RetiredAt);
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>Forgets the cache (after a rotation in this process, and in tests).</summary>
    public void Invalidate() => _cache = null;
}
