using System.Collections.Concurrent;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Library.ServiceDefaults;

/// <summary>
/// The JWT handler of the bearer scheme, with a bounded memory of the tokens it has validated.
/// A request's token is checked at the gateway and again by the service behind it, and a reader
/// sends the same token with every request for its whole lifetime: the ES256 verification and the
/// token's parsing were 8.7% of the gateway's CPU samples and 2.3% of a service's under the borrow
/// load (bench/README.md, "The write path, fourth pass"). IdentityModel caches signature providers,
/// not results, so this keeps the results.
/// </summary>
/// <remarks>
/// Only successes are kept, until the token's <c>exp</c> plus the clock skew. A hit repeats what
/// can change for the same token string: its lifetime (<c>nbf</c>/<c>exp</c> against the
/// parameters' clock skew, as <c>Validators.ValidateLifetime</c> does) and whether the key that
/// signed it is still among the signing keys the scheme has now (a rotation that drops a key drops
/// its tokens). Signature, issuer, audience and algorithm are functions of the token's bytes and of
/// the scheme's parameters; the handler belongs to one scheme, so those do not change between hits.
/// Each hit gets its own copy of the identity, as a fresh validation would.
/// </remarks>
public sealed class CachingJsonWebTokenHandler(int capacity = CachingJsonWebTokenHandler.DefaultCapacity, TimeProvider? time = null) : JsonWebTokenHandler
{
    /// <summary>Tokens kept at most: a few MiB of token strings, far more than the readers active at once.</summary>
    public const int DefaultCapacity = 4096;

    private readonly ConcurrentDictionary<string, Validated> _validated = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private int _count;
    private long _hits;

    /// <summary>Successful validations answered from memory (for tests).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        ArgumentNullException.ThrowIfNull(validationParameters);
        if (token is not null && _validated.TryGetValue(token, out var kept))
        {
            if (kept.StillValid(_time.GetUtcNow().UtcDateTime, validationParameters))
            {
                Interlocked.Increment(ref _hits);
                return kept.Answer();
            }
            // Expired, or its key is gone: the full validation below says why, in its own words.
            if (_validated.TryRemove(token, out _))
            {
                Interlocked.Decrement(ref _count);
            }
        }
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is JsonWebToken jwt && jwt.SigningKey?.KeyId is { Length: > 0 } keyId && token is not null)
        {
            Remember(token, new Validated(jwt, keyId, result.ClaimsIdentity.Clone(), result.Issuer, result.TokenType));
        }
        return result;
    }

    private void Remember(string token, Validated validated)
    {
        if (Volatile.Read(ref _count) >= capacity)
        {
            Sweep();
            if (Volatile.Read(ref _count) >= capacity)
            {
                return; // full of live tokens: validate the newcomer each time rather than grow
            }
        }
        if (_validated.TryAdd(token, validated))
        {
            Interlocked.Increment(ref _count);
        }
    }

    /// <summary>Drops the tokens past their lifetime (with the longest skew a caller could allow: 5 minutes).</summary>
    private void Sweep()
    {
        var cutoff = _time.GetUtcNow().UtcDateTime - TimeSpan.FromMinutes(5);
        foreach (var (token, validated) in _validated)
        {
            if (validated.Token.ValidTo < cutoff && _validated.TryRemove(token, out _))
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }

    private sealed record Validated(JsonWebToken Token, string KeyId, System.Security.Claims.ClaimsIdentity Identity, string Issuer, string TokenType)
    {
        public bool StillValid(DateTime now, TokenValidationParameters parameters)
        {
            if (parameters.ValidateLifetime)
            {
                var skew = parameters.ClockSkew;
                if (Token.ValidFrom != DateTime.MinValue && Token.ValidFrom > now + skew)
                {
                    return false;
                }
                if (Token.ValidTo == DateTime.MinValue || Token.ValidTo < now - skew)
                {
                    return false;
                }
            }
            return KeyStillSigns(parameters.IssuerSigningKeys) || KeyStillSigns(parameters.IssuerSigningKey is null ? null : [parameters.IssuerSigningKey]);
        }

        private bool KeyStillSigns(IEnumerable<SecurityKey>? keys)
        {
            if (keys is null)
            {
                return false;
            }
            foreach (var key in keys)
            {
                if (string.Equals(key.KeyId, KeyId, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            return false;
        }

        public TokenValidationResult Answer() => new()
        {
            IsValid = true,
            SecurityToken = Token,
            ClaimsIdentity = Identity.Clone(),
            Issuer = Issuer,
            TokenType = TokenType,
        };
    }
}
