using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Library.TestSupport;

namespace Library.FaultTests;

/// <summary>A reader of the load: its account, token and what it believes it has on loan.</summary>
public sealed class Reader(Guid id, string email, string password)
{
    public Guid Id { get; } = id;
    public string Email { get; } = email;
    public string Password { get; } = password;
    public string Token { get; set; } = "";

    /// <summary>Loans answered 201 and not returned (as far as this reader knows).</summary>
    public List<Guid> Active { get; } = [];

    /// <summary>A borrow sent but not answered definitely yet: retried with the same key until it is.</summary>
    public (string Key, Guid BookId)? PendingBorrow { get; set; }

    /// <summary>A return sent but not answered definitely yet: retried with the same key until it is.</summary>
    public Guid? PendingReturn { get; set; }

    /// <summary>The Idempotency-Key of <see cref="PendingReturn"/>.</summary>
    public string PendingReturnKey { get; set; } = "";
}

/// <summary>
/// Readers borrowing and returning over many titles through the gateway, at a fixed pace, the
/// way a careful client (and the web page) does it: every write (borrow, return) carries an
/// Idempotency-Key and an answer that is not definite (a transport error, 5xx, 429) is retried with
/// the same key, so the reader always learns what happened. Everything answered is recorded: 201 loans, returns, errors, and when
/// borrows succeeded (for the recovery time).
/// </summary>
public sealed class Load(Uri gateway)
{
    public HttpClient Http { get; } = new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromSeconds(30),
        ConnectTimeout = TimeSpan.FromSeconds(3),
        MaxConnectionsPerServer = 256,
    })
    {
        BaseAddress = gateway,
        Timeout = TimeSpan.FromSeconds(60),
    };

    public List<Reader> Readers { get; } = [];
    public List<(Guid Id, int Copies)> Titles { get; } = [];
    public string AdminToken { get; private set; } = "";

    /// <summary>Every loan answered 201: id -> (reader, book).</summary>
    public ConcurrentDictionary<Guid, (Guid UserId, Guid BookId)> Borrowed { get; } = new();

    /// <summary>Loans whose return was answered 200 (or 409 "already returned" after a retry).</summary>
    public ConcurrentDictionary<Guid, bool> Returned { get; } = new();

    /// <summary>Borrows answered 201: when they were sent and answered (since <see cref="Clock"/> started).</summary>
    public ConcurrentQueue<(TimeSpan Sent, TimeSpan Done)> BorrowSuccesses { get; } = new();

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    /// <summary>When the fault was done (set by the scenario at the moment of the kill or stop).</summary>
    public TimeSpan? FaultAt { get; private set; }

    public void MarkFault() => FaultAt = Clock.Elapsed;

    private long _requests;
    private long _errors;
    private long _conflicts;

    public long Requests => Interlocked.Read(ref _requests);
    public long Errors => Interlocked.Read(ref _errors);
    public long Conflicts => Interlocked.Read(ref _conflicts);

    private long _failedReads;
    private long _failedKeyedWrites;

    /// <summary>Catalog reads (GET) that got no answer or an error answer.</summary>
    public long FailedReads => Interlocked.Read(ref _failedReads);

    /// <summary>Writes with an Idempotency-Key that got no answer or an error answer (before the client's own retry).</summary>
    public long FailedKeyedWrites => Interlocked.Read(ref _failedKeyedWrites);
    public ConcurrentDictionary<string, int> ErrorKinds { get; } = new();

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    // ------------------------------------------------------------------------------ set-up

    /// <summary>
    /// The titles and the readers (each registered, then logged in), a few requests at a time: one
    /// after the other they were the fixed cost of every fault (a reader's registration and log-in
    /// are a password hash each), with a core idle. The lists keep the order of their numbers.
    /// </summary>
    public async Task SetUpAsync(int titles, int copies, int readers, CancellationToken ct)
    {
        AdminToken = await LoginAsync(RealLibrary.AdminEmail, RealLibrary.AdminPassword, ct);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct };
        var created = new (Guid Id, int Copies)[titles];
        await Parallel.ForEachAsync(Enumerable.Range(0, titles), parallel, async (i, token) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/books")
            {
                Content = JsonContent.Create(new { isbn = TestIsbn.Next(), title = $"Fault title {i}", publisher = "Chaos Press", publishedYear = 2024, language = "en", totalCopies = copies }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
            using var response = await Http.SendAsync(request, token);
            Ensure(response, HttpStatusCode.Created, "create a title");
            created[i] = ((await response.Content.ReadFromJsonAsync<JsonElement>(token)).GetProperty("id").GetGuid(), copies);
        });
        Titles.AddRange(created);

        var registered = new Reader[readers];
        await Parallel.ForEachAsync(Enumerable.Range(0, readers), parallel, async (i, token) =>
        {
            var email = $"reader-{i}-{Guid.NewGuid():N}@fault.test";
            var password = "Reader-password-" + i;
            using var response = await Http.PostAsJsonAsync("/api/auth/register", new { email, firstName = "Reader", lastName = $"No{i}", password }, token);
            Ensure(response, HttpStatusCode.Created, "register a reader");
            var id = (await response.Content.ReadFromJsonAsync<JsonElement>(token)).GetProperty("id").GetGuid();
            registered[i] = new Reader(id, email, password) { Token = await LoginAsync(email, password, token) };
        });
        Readers.AddRange(registered);
    }

    private async Task<string> LoginAsync(string email, string password, CancellationToken ct)
    {
        using var response = await Http.PostAsJsonAsync("/api/auth/login", new { email, password }, ct);
        Ensure(response, HttpStatusCode.OK, "log in");
        return (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("accessToken").GetString()!;
    }

    private static void Ensure(HttpResponseMessage response, HttpStatusCode expected, string what)
    {
        if (response.StatusCode != expected)
        {
            throw new InvalidOperationException($"Could not {what}: {(int)response.StatusCode} {response.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
        }
    }

    // ------------------------------------------------------------------------------ running

    /// <summary>Every reader acts every <paramref name="pace"/> until <paramref name="stop"/> is cancelled.</summary>
    public Task RunAsync(TimeSpan pace, CancellationToken stop) =>
        Task.WhenAll(Readers.Select((reader, i) => Task.Run(() => ReaderLoopAsync(reader, pace, new Random(i * 7919 + Environment.TickCount), stop), CancellationToken.None)));

    private async Task ReaderLoopAsync(Reader reader, TimeSpan pace, Random random, CancellationToken stop)
    {
        // Readers start spread over one pace, so the load is even.
        await Task.Delay(TimeSpan.FromMilliseconds(random.Next((int)pace.TotalMilliseconds)), CancellationToken.None);
        using var ticks = new PeriodicTimer(pace);
        while (!stop.IsCancellationRequested)
        {
            await StepAsync(reader, random);
            try
            {
                await ticks.WaitForNextTickAsync(stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// One action: finish what is pending, else borrow (up to 3 loans) or return; and every
    /// other step a catalog read of a title (the book service and its Redis cache).
    /// </summary>
    private async Task StepAsync(Reader reader, Random random)
    {
        if (random.Next(2) == 0)
        {
            await ReadTitleAsync(reader, Titles[random.Next(Titles.Count)].Id);
        }
        if (reader.PendingReturn is { } loanId)
        {
            await ReturnAsync(reader, loanId);
        }
        else if (reader.PendingBorrow is { } pending)
        {
            await BorrowAsync(reader, pending.Key, pending.BookId);
        }
        else if (reader.Active.Count < 3 && (reader.Active.Count == 0 || random.Next(2) == 0))
        {
            var book = Titles[random.Next(Titles.Count)].Id;
            await BorrowAsync(reader, Guid.NewGuid().ToString("N"), book);
        }
        else
        {
            await ReturnAsync(reader, reader.Active[random.Next(reader.Active.Count)]);
        }
    }

    /// <summary>Until each reader's pending borrow and return have a definite answer (or the deadline).</summary>
    public async Task SettleAsync(TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < deadline && Readers.Any(r => r.PendingBorrow is not null || r.PendingReturn is not null))
        {
            await Task.WhenAll(Readers.Where(r => r.PendingBorrow is not null || r.PendingReturn is not null).Select(async r =>
            {
                if (r.PendingReturn is { } loanId)
                {
                    await ReturnAsync(r, loanId);
                }
                else if (r.PendingBorrow is { } pending)
                {
                    await BorrowAsync(r, pending.Key, pending.BookId);
                }
            }));
        }
    }

    public int Unsettled => Readers.Count(r => r.PendingBorrow is not null || r.PendingReturn is not null);

    private async Task BorrowAsync(Reader reader, string key, Guid bookId)
    {
        var sentAt = Clock.Elapsed;
        reader.PendingBorrow = (key, bookId);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/loans") { Content = JsonContent.Create(new { bookId, days = 14 }) };
        request.Headers.Add("Idempotency-Key", key);
        var (status, body) = await SendAsync(reader, request);
        switch (status)
        {
            case HttpStatusCode.Created:
                var loan = JsonSerializer.Deserialize<JsonElement>(body!, Json);
                var loanId = loan.GetProperty("id").GetGuid();
                Borrowed[loanId] = (reader.Id, bookId);
                reader.Active.Add(loanId);
                reader.PendingBorrow = null;
                BorrowSuccesses.Enqueue((sentAt, Clock.Elapsed));
                break;
            case HttpStatusCode.Conflict or HttpStatusCode.Forbidden:
                // A definite refusal (no copy left; at the loan limit): nothing was lent.
                Interlocked.Increment(ref _conflicts);
                reader.PendingBorrow = null;
                break;
            default:
                break; // not definite: the same key again next time
        }
    }

    private async Task ReadTitleAsync(Reader reader, Guid bookId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/books/{bookId}");
        await SendAsync(reader, request);
    }

    private async Task ReturnAsync(Reader reader, Guid loanId)
    {
        var retry = reader.PendingReturn == loanId;
        if (!retry)
        {
            reader.PendingReturnKey = Guid.NewGuid().ToString("N");
        }
        reader.PendingReturn = loanId;
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/loans/{loanId}/return");
        request.Headers.Add("Idempotency-Key", reader.PendingReturnKey);
        var (status, _) = await SendAsync(reader, request);
        if (status == HttpStatusCode.OK || (status == HttpStatusCode.Conflict && retry))
        {
            // A 409 after a retry: the first attempt did return it (its answer was lost).
            Returned[loanId] = true;
            reader.Active.Remove(loanId);
            reader.PendingReturn = null;
        }
        else if (status == HttpStatusCode.Conflict)
        {
            ErrorKinds.AddOrUpdate("return 409 on a first attempt", 1, (_, n) => n + 1);
            Interlocked.Increment(ref _errors);
            Returned[loanId] = true;
            reader.Active.Remove(loanId);
            reader.PendingReturn = null;
        }
    }

    /// <summary>Sends with the reader's token; null status for a transport failure. Counts requests and errors.</summary>
    private async Task<(HttpStatusCode? Status, string? Body)> SendAsync(Reader reader, HttpRequestMessage request)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", reader.Token);
        Interlocked.Increment(ref _requests);
        void Failed()
        {
            Interlocked.Increment(ref _errors);
            if (request.Method == HttpMethod.Get)
            {
                Interlocked.Increment(ref _failedReads);
            }
            else if (request.Headers.Contains("Idempotency-Key"))
            {
                Interlocked.Increment(ref _failedKeyedWrites);
            }
        }

        try
        {
            using var response = await Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            var status = response.StatusCode;
            if ((int)status >= 500 || status is HttpStatusCode.TooManyRequests or HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest or HttpStatusCode.NotFound)
            {
                Failed();
                ErrorKinds.AddOrUpdate($"{Kind(request)} {(int)status}", 1, (_, n) => n + 1);
                if (status == HttpStatusCode.Unauthorized)
                {
                    try
                    {
                        reader.Token = await LoginAsync(reader.Email, reader.Password, CancellationToken.None);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or TaskCanceledException)
                    {
                        // Next step tries again.
                    }
                }
                return (null, null);
            }
            return (status, body);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
        {
            Failed();
            ErrorKinds.AddOrUpdate($"{Kind(request)} transport: {ex.GetType().Name}", 1, (_, n) => n + 1);
            return (null, null);
        }
    }

    private static string Kind(HttpRequestMessage request) =>
        request.Method == HttpMethod.Get ? "catalog read"
        : request.RequestUri!.OriginalString.EndsWith("/return", StringComparison.Ordinal) ? "return" : "borrow";

    /// <summary>When the first borrow sent at or after <paramref name="since"/> was answered 201.</summary>
    public TimeSpan? FirstBorrowSince(TimeSpan since)
    {
        var done = BorrowSuccesses.Where(b => b.Sent >= since).Select(b => b.Done).ToList();
        return done.Count == 0 ? null : done.Min();
    }

    /// <summary>The longest a borrow answered 201 at or after <paramref name="since"/> took.</summary>
    public TimeSpan SlowestBorrowSince(TimeSpan since) =>
        BorrowSuccesses.Where(b => b.Done >= since).Select(b => b.Done - b.Sent).DefaultIfEmpty(TimeSpan.Zero).Max();

    /// <summary>Borrows sent at or after <paramref name="since"/> and answered 201.</summary>
    public int BorrowsDoneSince(TimeSpan since) => BorrowSuccesses.Count(b => b.Sent >= since);
}
