using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Library.AppHost.Tests;

/// <summary>The Library as the AppHost runs it, driven through the gateway like a reader would.</summary>
public sealed class AppHostTests(LibraryAppHost library)
{
    private static readonly TimeSpan EventDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Every_resource_is_healthy_and_every_service_runs_two_replicas()
    {
        var ct = TestContext.Current.CancellationToken;
        foreach (var name in LibraryAppHost.Resources)
        {
            var state = await library.App.ResourceNotifications.WaitForResourceHealthyAsync(name, ct).WaitAsync(LibraryAppHost.StartTimeout, ct);
            Assert.Equal(KnownResourceStates.Running, state.Snapshot.State?.Text);
        }
        var model = library.App.Services.GetRequiredService<DistributedApplicationModel>();
        foreach (var service in new[] { "userservice", "bookservice", "lendingservice" })
        {
            var project = model.Resources.OfType<ProjectResource>().Single(r => r.Name == service);
            Assert.True(project.TryGetLastAnnotation<ReplicaAnnotation>(out var replicas));
            Assert.Equal(2, replicas.Replicas);
        }

        // Each book-service and lending replica was started with its share of the local
        // PostgreSQL's cores for the work that takes turns: 2 per core over the 2 replicas, at
        // least 2 (ConcurrencyGate).
        var expected = Math.Max(2, 2 * Environment.ProcessorCount / 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var gated = new Dictionary<IResource, string>
        {
            [model.Resources.OfType<ProjectResource>().Single(r => r.Name == "bookservice")] = "Catalog__QueryConcurrency",
            [model.Resources.OfType<ProjectResource>().Single(r => r.Name == "lendingservice")] = "Lending__RequestConcurrency",
        };
        var started = new Dictionary<string, string?>(StringComparer.Ordinal);
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            deadline.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await foreach (var e in library.App.ResourceNotifications.WatchAsync(deadline.Token))
                {
                    if (gated.TryGetValue(e.Resource, out var name) && e.Snapshot.EnvironmentVariables.FirstOrDefault(v => v.Name == name) is { } setting)
                    {
                        started[e.ResourceId] = setting.Value;
                        if (started.Count == 4)
                        {
                            break;
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // The deadline: the count below says what was seen.
            }
        }
        Assert.Equal(4, started.Count);
        Assert.All(started.Values, value => Assert.Equal(expected, value));
        TestContext.Current.SendDiagnosticMessage($"AppHost start to every resource healthy: {library.StartDuration.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task The_mail_server_answers_SMTP_and_its_web_API()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await library.App.GetConnectionStringAsync("mail", ct);
        Assert.NotNull(cs);
        Assert.StartsWith("Endpoint=smtp://", cs, StringComparison.Ordinal);
        var endpoint = new Uri(cs["Endpoint=".Length..]);
        using (var smtp = new System.Net.Sockets.TcpClient())
        {
            await smtp.ConnectAsync(endpoint.Host, endpoint.Port, ct);
            var buffer = new byte[256];
            var read = await smtp.GetStream().ReadAsync(buffer, ct);
            Assert.StartsWith("220", System.Text.Encoding.ASCII.GetString(buffer, 0, read), StringComparison.Ordinal);
        }
        using var web = library.App.CreateHttpClient("mail", "http");
        Assert.Equal(HttpStatusCode.OK, (await web.GetAsync("/api/email", ct)).StatusCode);
        // The lending service's ConnectionStrings__mail reference is checked in the manifest (ManifestTests).
    }

    [Fact]
    public async Task Each_service_database_has_its_own_login_and_no_superuser()
    {
        var ct = TestContext.Current.CancellationToken;
        foreach (var db in new[] { "userdb", "bookdb", "lendingdb" })
        {
            var cs = await library.App.GetConnectionStringAsync(db, ct);
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(cs);
            Assert.Equal(db, builder.Database);
            Assert.NotEqual("postgres", builder.Username);
            await using var connection = new Npgsql.NpgsqlConnection(cs);
            await connection.OpenAsync(ct);
            await using var command = new Npgsql.NpgsqlCommand("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user", connection);
            Assert.False((bool)(await command.ExecuteScalarAsync(ct))!);
            // Another service's database is closed to this login.
            var other = db == "userdb" ? "bookdb" : "userdb";
            builder.Database = other;
            await using var foreign = new Npgsql.NpgsqlConnection(builder.ConnectionString);
            var refused = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => foreign.OpenAsync(ct));
            Assert.Equal("42501", refused.SqlState); // insufficient privilege: CONNECT revoked from PUBLIC
        }
    }

    [Fact]
    public async Task A_reader_registers_logs_in_searches_borrows_sees_the_catalog_follow_and_returns()
    {
        var ct = TestContext.Current.CancellationToken;
        using var http = library.Gateway();

        using var health = await http.GetAsync("/health", ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        // A librarian's title with two copies (the admin is seeded from the secret parameters).
        var admin = await LogInAsync(http, LibraryAppHost.AdminEmail, LibraryAppHost.AdminPassword, ct);
        var title = $"Aspire Orchard {Guid.NewGuid():N}"[..30];
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/books")
        {
            Content = JsonContent.Create(new { isbn = TestIsbn(), title, publisher = "Aspire Press", authorIds = Array.Empty<Guid>(), categoryIds = Array.Empty<Guid>(), totalCopies = 2 }),
        };
        create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        using var created = await http.SendAsync(create, ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var bookId = (await created.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetString()!;

        // A reader registers and logs in.
        var email = $"reader-{Guid.NewGuid():N}@library.test";
        using var register = await http.PostAsJsonAsync("/api/auth/register",
            new { email, firstName = "Ada", lastName = "Reader", password = "Reader-password-1" }, ct);
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);
        var token = await LogInAsync(http, email, "Reader-password-1", ct);
        // The user service checks the token as every service does (its own OpenID metadata).
        using var me = new HttpRequestMessage(HttpMethod.Get, "/api/users/me");
        me.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var meAnswer = await http.SendAsync(me, ct);
        Assert.Equal(HttpStatusCode.OK, meAnswer.StatusCode);
        Assert.Equal(email, (await meAnswer.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("email").GetString());

        // Search finds the title (the catalog indexes it by its words).
        var search = await http.GetFromJsonAsync<JsonElement>($"/api/books?search={Uri.EscapeDataString(title)}", ct);
        Assert.Contains(search.GetProperty("items").EnumerateArray(), b => b.GetProperty("id").GetString() == bookId);

        // Borrow with an Idempotency-Key; the same key again answers the same loan.
        var key = Guid.NewGuid().ToString();
        var loan = await BorrowAsync(http, token, bookId, key, ct);
        var again = await BorrowAsync(http, token, bookId, key, ct);
        Assert.Equal(loan.GetProperty("id").GetString(), again.GetProperty("id").GetString());

        // The catalog learns of it by an event (outbox -> RabbitMQ -> book service).
        await WaitForAvailableAsync(http, bookId, 1, ct);

        using var ret = new HttpRequestMessage(HttpMethod.Post, $"/api/loans/{loan.GetProperty("id").GetString()}/return");
        ret.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var returned = await http.SendAsync(ret, ct);
        Assert.Equal(HttpStatusCode.OK, returned.StatusCode);
        Assert.NotEqual(JsonValueKind.Null, (await returned.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("returnedAt").ValueKind);
        await WaitForAvailableAsync(http, bookId, 2, ct);
    }

    internal static async Task<string> LogInAsync(HttpClient http, string email, string password, CancellationToken ct)
    {
        using var login = await http.PostAsJsonAsync("/api/auth/login", new { email, password }, ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        return (await login.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("accessToken").GetString()!;
    }

    internal static async Task<JsonElement> BorrowAsync(HttpClient http, string token, string bookId, string key, CancellationToken ct)
    {
        using var borrow = new HttpRequestMessage(HttpMethod.Post, "/api/loans") { Content = JsonContent.Create(new { bookId, days = 7 }) };
        borrow.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        borrow.Headers.Add("Idempotency-Key", key);
        using var borrowed = await http.SendAsync(borrow, ct);
        Assert.Equal(HttpStatusCode.Created, borrowed.StatusCode);
        return await borrowed.Content.ReadFromJsonAsync<JsonElement>(ct);
    }

    internal static async Task WaitForAvailableAsync(HttpClient http, string bookId, int expected, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + EventDeadline;
        int available;
        do
        {
            var book = await http.GetFromJsonAsync<JsonElement>($"/api/books/{bookId}", ct);
            available = book.GetProperty("availableCopies").GetInt32();
            if (available == expected)
            {
                return;
            }
            await Task.Delay(100, ct);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"availableCopies of {bookId} is {available}, not {expected}, {EventDeadline.TotalSeconds} s after the loan changed");
    }

    /// <summary>A random valid ISBN-13 (978 prefix, checksum computed).</summary>
    internal static string TestIsbn()
    {
        var digits = "978" + Random.Shared.NextInt64(0, 1_000_000_000).ToString("D9", System.Globalization.CultureInfo.InvariantCulture);
        var sum = digits.Select((c, i) => (c - '0') * (i % 2 == 0 ? 1 : 3)).Sum();
        return digits + ((10 - sum % 10) % 10).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
