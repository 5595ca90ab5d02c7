using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;
using Xunit;

namespace Library.TestSupport.Contract;

public enum ContractMode
{
    /// <summary>Nothing checked.</summary>
    Off,

    /// <summary>Violations are written to the test's output and to artifacts/contract, and fail nothing.</summary>
    Report,

    /// <summary>A violation fails the request (and so the test) that received it.</summary>
    Enforce,
}

/// <summary>Thrown (mode enforce) at the test's own call, naming the operation, the status and what is wrong.</summary>
public sealed class ContractViolationException(string message) : Exception(message);

/// <summary>
/// The contract check: every answer a test receives from a service (or the gateway) is checked
/// against the OpenAPI document that service publishes (<see cref="OpenApiContract"/>); only
/// <c>/api/</c> paths are (health, discovery, token and OpenAPI endpoints are not part of the
/// public contract). An <c>/api/</c> request no operation matches is a violation unless routing
/// itself refused it (404, 405). <c>LIBRARY_CONTRACT_CHECK=off|report|enforce</c>, default enforce.
/// Every (operation, status) pair seen, and every pair promised, goes to
/// <c>artifacts/contract/{test project}.json</c> when the test process ends, for
/// eng/contract-coverage.py to list what no test produced.
/// </summary>
public static class ContractCheck
{
    public const string ModeVariable = "LIBRARY_CONTRACT_CHECK";

    private static readonly ConcurrentDictionary<string, OpenApiContract> Documents = new();
    private static readonly ConcurrentDictionary<(string Document, string Operation, string Status), int> Seen = new();
    private static readonly ConcurrentQueue<string> Violations = new();
    private static int _hooked;
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static ContractMode Mode => (Environment.GetEnvironmentVariable(ModeVariable) ?? "").Trim().ToLowerInvariant() switch
    {
        "off" or "0" or "false" => ContractMode.Off,
        "report" => ContractMode.Report,
        _ => ContractMode.Enforce,
    };

    /// <summary>Violations seen so far in this test process (mode report or enforce).</summary>
    public static IReadOnlyCollection<string> AllViolations => Violations;

    /// <summary>A handler that checks every answer against the document <paramref name="load"/> fetches (once).</summary>
    /// <param name="record">False: what it sees stays out of the process's report (a test of the check itself).</param>
    public static DelegatingHandler Handler(string documentName, Func<CancellationToken, Task<string>> load, ContractMode? mode = null, bool record = true) =>
        new ContractCheckingHandler(documentName, load, mode ?? Mode, record);

    internal static async Task<OpenApiContract> DocumentAsync(string name, Func<CancellationToken, Task<string>> load, bool record, CancellationToken ct)
    {
        if (!record)
        {
            return new OpenApiContract(name, await load(ct));
        }
        if (Documents.TryGetValue(name, out var known))
        {
            return known;
        }
        var contract = new OpenApiContract(name, await load(ct));
        HookProcessExit();
        return Documents.GetOrAdd(name, contract);
    }

    internal static void Record(string document, string operation, string status) => Seen.AddOrUpdate((document, operation, status), 1, (_, n) => n + 1);

    internal static void Violation(string document, string message, ContractMode mode, bool record = true)
    {
        var text = $"[contract {document}] {message}";
        if (record)
        {
            Violations.Enqueue(text);
        }
        try
        {
            TestContext.Current.TestOutputHelper?.WriteLine(text);
        }
        catch (InvalidOperationException)
        {
            // Outside a test (a fixture's set-up): the artifacts file still has it.
        }
        if (mode == ContractMode.Enforce)
        {
            throw new ContractViolationException(text);
        }
    }

    private static void HookProcessExit()
    {
        if (Interlocked.Exchange(ref _hooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => WriteArtifact();
        }
    }

    /// <summary>artifacts/contract/{assembly}.json: the pairs promised, the pairs seen, the violations.</summary>
    public static string? WriteArtifact()
    {
        var root = RepositoryRoot.Root;
        if (root is null || Documents.IsEmpty)
        {
            return null;
        }
        var name = Assembly.GetEntryAssembly()?.GetName().Name ?? "tests";
        var folder = Path.Combine(root, "artifacts", "contract");
        Directory.CreateDirectory(folder);
        var file = Path.Combine(folder, name + ".json");
        var report = new
        {
            project = name,
            mode = Mode.ToString().ToLowerInvariant(),
            promised = Documents.Values.SelectMany(d => d.Promised.Select(p => new { document = d.Name, operation = p.Operation, status = p.Status }))
                .OrderBy(p => p.document).ThenBy(p => p.operation).ThenBy(p => p.status).ToList(),
            seen = Seen.Select(s => new { document = s.Key.Document, operation = s.Key.Operation, status = s.Key.Status, count = s.Value })
                .OrderBy(p => p.document).ThenBy(p => p.operation).ThenBy(p => p.status).ToList(),
            violations = Violations.Distinct().ToList(),
        };
        File.WriteAllText(file, JsonSerializer.Serialize(report, Indented));
        return file;
    }

    private sealed class ContractCheckingHandler(string documentName, Func<CancellationToken, Task<string>> load, ContractMode mode, bool record) : DelegatingHandler
    {
        private OpenApiContract? _contract;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            var path = request.RequestUri?.AbsolutePath ?? "";
            if (mode == ContractMode.Off || !path.StartsWith("/api/", StringComparison.OrdinalIgnoreCase))
            {
                return response;
            }

            OpenApiContract contract;
            try
            {
                contract = _contract ??= await DocumentAsync(documentName, load, record, cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException)
            {
                Violation(documentName, $"the document could not be read: {ex.Message}", mode, record);
                return response;
            }

            var status = (int)response.StatusCode;
            if (IsProtocolLevel(response))
            {
                // Not the application's answer: the HTTP server refused the request while parsing it.
                return response;
            }
            var operation = contract.Find(request.Method.Method, path, out var pathKnown);
            if (operation is null)
            {
                if (status is 404 or 405 && !(pathKnown && status == 404))
                {
                    // Routing's own answer to a path (or verb) no endpoint has.
                    return response;
                }
                Violation(documentName, $"{request.Method} {path} answered {status}, but the document has no such operation", mode, record);
                return response;
            }

            // Read the body once and put it back, so the test reads it as if nothing happened.
            var body = "";
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (request.Method != HttpMethod.Head && IsJson(mediaType))
            {
                var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                body = System.Text.Encoding.UTF8.GetString(bytes);
                var replaced = new ByteArrayContent(bytes);
                foreach (var header in response.Content.Headers)
                {
                    replaced.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
                response.Content = replaced;
            }

            if (record)
            {
                Record(documentName, operation.Key, status.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            if (contract.Check(operation, response.StatusCode, mediaType, body) is { } problem)
            {
                Violation(documentName, problem, mode, record);
            }
            return response;
        }

        /// <summary>
        /// Kestrel's own refusal of a request it could not parse (a request line over its limit, NUL
        /// in the path: 400, 414, 431): it answers before any middleware runs, with an empty body,
        /// <c>Connection: close</c> and none of the gateway's headers (<c>X-Request-Id</c>), so no
        /// document can describe it; the fuzz test's <c>protocolLevel</c> is the same rule. An
        /// application's refusal always has a problem-details body.
        /// </summary>
        internal static bool IsProtocolLevel(HttpResponseMessage response) =>
            (int)response.StatusCode is 400 or 414 or 431
            && response.Content.Headers.ContentLength == 0
            && response.Headers.ConnectionClose == true
            && !response.Headers.Contains("X-Request-Id");

        private static bool IsJson(string? mediaType) =>
            mediaType is not null && (mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>The repository's root (where Library.sln is), found from the test binaries upwards.</summary>
public static class RepositoryRoot
{
    public static string? Root { get; } = Find();

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Library.sln")))
            {
                return dir.FullName;
            }
        }
        return null;
    }
}
