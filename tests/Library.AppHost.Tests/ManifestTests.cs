using System.Diagnostics;
using System.Text.Json;

namespace Library.AppHost.Tests;

/// <summary>
/// What azd reads: the AppHost's publish manifest (`--publisher manifest`), and azure.yaml that
/// points azd at the AppHost. azd makes Container Apps from the manifest's project and container
/// entries and asks for (or generates) the parameters, so the resource set, the secrets and the
/// one public endpoint are checked exactly.
/// </summary>
public sealed class ManifestTests
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(2);

    internal static readonly string[] Projects = ["userservice", "bookservice", "lendingservice", "gateway"];
    internal static readonly Dictionary<string, string> Servers = new()
    {
        ["postgres"] = "postgres",
        ["cache"] = "redis",
        ["messaging"] = "rabbitmq",
        ["mail"] = "maildev",
    };
    internal static readonly string[] Databases = ["userdb", "bookdb", "lendingdb"];
    internal static readonly string[] SecretParameters = ["admin-password", "lending-client-secret", "postgres-password", "cache-password", "messaging-password"];
    internal static readonly string[] PlainParameters = ["admin-email"];

    [Fact]
    public async Task The_manifest_declares_the_four_projects_four_servers_three_databases_the_secrets_and_one_public_endpoint()
    {
        var ct = TestContext.Current.CancellationToken;
        var folder = Directory.CreateTempSubdirectory("library-manifest-").FullName;
        try
        {
            var path = Path.Combine(folder, "manifest.json");
            var took = await PublishManifestAsync(path, ct);
            TestContext.Current.SendDiagnosticMessage($"manifest published in {took.TotalSeconds:F1} s");
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(path, ct));
            var problems = Check(manifest.RootElement, folder);
            Assert.True(problems.Count == 0, "The manifest azd reads is not what the Library needs:\n- " + string.Join("\n- ", problems));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Azure_yaml_points_azd_at_the_AppHost_as_a_dotnet_container_app()
    {
        var yaml = File.ReadAllLines(Path.Combine(Repository.Root, "azure.yaml"));
        var values = FlattenYaml(yaml);
        Assert.Equal("dotnet", values.GetValueOrDefault("services.app.language"));
        Assert.Equal("containerapp", values.GetValueOrDefault("services.app.host"));
        var project = values.GetValueOrDefault("services.app.project");
        Assert.NotNull(project);
        var full = Path.GetFullPath(Path.Combine(Repository.Root, project));
        Assert.Equal(Path.Combine(Repository.Root, "Library.AppHost", "Library.AppHost.csproj"), full);
        Assert.True(File.Exists(full), $"{project} does not exist");
        // One service only: azd deploys the whole topology from the AppHost's manifest.
        Assert.Equal(new[] { "app" }, values.Keys.Where(k => k.StartsWith("services.", StringComparison.Ordinal)).Select(k => k.Split('.')[1]).Distinct());
    }

    /// <summary>Every way the manifest falls short; empty when azd gets what the Library needs.</summary>
    internal static List<string> Check(JsonElement root, string manifestFolder)
    {
        var problems = new List<string>();
        if (!root.TryGetProperty("resources", out var resources) || resources.ValueKind != JsonValueKind.Object)
        {
            return ["no \"resources\" object"];
        }
        var all = resources.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        string TypeOf(string name) => all.TryGetValue(name, out var r) && r.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";

        // Exactly these resources (Aspire's own helpers aside: uri-encoded passwords and the
        // redis TLS condition it derives from the servers).
        var expected = Projects.Concat(Servers.Keys).Concat(Databases).Concat(SecretParameters).Concat(PlainParameters).ToHashSet();
        var actual = all.Keys.Where(n => TypeOf(n) != "annotated.string" && !n.StartsWith("cond-", StringComparison.Ordinal)).ToHashSet();
        // Built with LibraryPublishTargets=true (where Aspire.Hosting.Azure.AppContainers restores),
        // the AppHost also declares its Container Apps environment, "aca" (not buildable here).
        if (TypeOf("aca").StartsWith("azure.", StringComparison.Ordinal))
        {
            actual.Remove("aca");
        }
        if (actual.Except(expected).Order().ToList() is { Count: > 0 } extra)
        {
            problems.Add($"unexpected resources: {string.Join(", ", extra.Select(n => $"{n} ({TypeOf(n)})"))}");
        }
        if (expected.Except(actual).Order().ToList() is { Count: > 0 } missing)
        {
            problems.Add($"missing resources: {string.Join(", ", missing)}");
        }
        // Process mode (the distribution's servers) must never reach a deployment.
        foreach (var name in all.Keys.Where(n => TypeOf(n).StartsWith("executable.", StringComparison.Ordinal)))
        {
            problems.Add($"{name} is an executable ({TypeOf(name)}): azd cannot deploy it");
        }

        foreach (var name in Projects.Where(all.ContainsKey))
        {
            var project = all[name];
            if (TypeOf(name) is not ("project.v0" or "project.v1"))
            {
                problems.Add($"{name} is {TypeOf(name)}, not project.v0/v1");
            }
            if (!project.TryGetProperty("path", out var p) || p.GetString() is not { Length: > 0 } relative
                || !File.Exists(Path.GetFullPath(Path.Combine(manifestFolder, relative)))
                || !relative.EndsWith($"{PascalProject(name)}.csproj", StringComparison.Ordinal))
            {
                problems.Add($"{name}'s path does not lead to its project file ({(project.TryGetProperty("path", out var q) ? q.GetString() : "none")})");
            }
        }

        foreach (var (name, image) in Servers.Where(s => all.ContainsKey(s.Key)))
        {
            var server = all[name];
            if (TypeOf(name) is not ("container.v0" or "container.v1"))
            {
                problems.Add($"{name} is {TypeOf(name)}, not container.v0/v1");
            }
            var imageName = server.TryGetProperty("image", out var i) ? i.GetString() : null;
            if (imageName is null && server.TryGetProperty("build", out _))
            {
                problems.Add($"{name} is built from a Dockerfile, not Aspire's {image} image");
            }
            else if (imageName is null || !imageName.Contains(image, StringComparison.Ordinal) || !imageName.Contains(':', StringComparison.Ordinal))
            {
                problems.Add($"{name}'s image is '{imageName}', not a tagged {image} image");
            }
            if (!server.TryGetProperty("connectionString", out _))
            {
                problems.Add($"{name} has no connection string for the services");
            }
            if (Bindings(server).Any(b => b.External))
            {
                problems.Add($"{name} is reachable from outside (a binding has external: true)");
            }
        }

        foreach (var name in Databases.Where(all.ContainsKey))
        {
            if (TypeOf(name) is not ("postgres.database.v0" or "value.v0"))
            {
                problems.Add($"{name} is {TypeOf(name)}, not postgres.database.v0/value.v0");
            }
            var cs = all[name].TryGetProperty("connectionString", out var c) ? c.GetString() ?? "" : "";
            if (TypeOf(name) == "value.v0" && !(cs.Contains("{postgres.", StringComparison.Ordinal) && cs.Contains($"Database={name}", StringComparison.Ordinal)))
            {
                problems.Add($"{name}'s connection string '{cs}' is not database {name} on postgres");
            }
            if (TypeOf(name) == "postgres.database.v0" && !(all[name].TryGetProperty("parent", out var parent) && parent.GetString() == "postgres"))
            {
                problems.Add($"{name}'s parent is not postgres");
            }
        }

        foreach (var name in SecretParameters.Concat(PlainParameters).Where(all.ContainsKey))
        {
            var secret = all[name].TryGetProperty("inputs", out var inputs) && inputs.TryGetProperty("value", out var v)
                && v.TryGetProperty("secret", out var s) && s.ValueKind == JsonValueKind.True;
            if (TypeOf(name) != "parameter.v0")
            {
                problems.Add($"{name} is {TypeOf(name)}, not parameter.v0");
            }
            if (secret != SecretParameters.Contains(name))
            {
                problems.Add(secret ? $"{name} is marked secret" : $"{name} is not marked secret");
            }
        }

        // The gateway is the one public entry point: its http binding, and nothing else, is external.
        var external = all.Where(r => Bindings(r.Value).Any(b => b.External)).Select(r => r.Key).ToList();
        if (external is not ["gateway"])
        {
            problems.Add($"external endpoints on [{string.Join(", ", external)}], not on the gateway alone");
        }
        if (all.TryGetValue("gateway", out var gateway) && !Bindings(gateway).Any(b => b.Name == "http" && b.External && b.Scheme == "http"))
        {
            problems.Add("the gateway has no external http binding");
        }

        // Secrets reach the services only as parameter references, never as values.
        foreach (var name in Projects.Where(all.ContainsKey))
        {
            if (all[name].TryGetProperty("env", out var env))
            {
                foreach (var variable in env.EnumerateObject())
                {
                    var value = variable.Value.GetString() ?? "";
                    if ((variable.Name.EndsWith("PASSWORD", StringComparison.OrdinalIgnoreCase) || variable.Name.EndsWith("Secret", StringComparison.OrdinalIgnoreCase))
                        && !value.StartsWith('{'))
                    {
                        problems.Add($"{name}'s {variable.Name} is a literal, not a parameter reference");
                    }
                }
            }
        }
        RequireEnv("userservice", "Library__Admin__Password", "{admin-password.value}");
        RequireEnv("userservice", "Auth__Clients__lendingservice__Secret", "{lending-client-secret.value}");
        RequireEnv("lendingservice", "Auth__Client__Secret", "{lending-client-secret.value}");
        foreach (var (service, db) in new[] { ("userservice", "userdb"), ("bookservice", "bookdb"), ("lendingservice", "lendingdb") })
        {
            RequireEnv(service, $"ConnectionStrings__{db}", $"{{{db}.connectionString}}");
        }
        RequireEnv("lendingservice", "ConnectionStrings__mail", "{mail.connectionString}");
        // Runtime settings that only the environment carries reach the containers as well.
        foreach (var name in Projects)
        {
            RequireEnv(name, "DOTNET_GCgen0size", "0x1000000");
            RequireEnv(name, "MALLOC_ARENA_MAX", "2");
        }
        // The server settings the services' pools and searches are sized for (PostgresTuning), on
        // the container's command line: PostgreSQL's default of 100 connections is fewer than the
        // pools may open (3 services x 2 replicas x 32).
        var args = all.TryGetValue("postgres", out var pg) && pg.TryGetProperty("args", out var a) && a.ValueKind == JsonValueKind.Array
            ? a.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [];
        foreach (var setting in new[] { "max_connections=300", "shared_buffers=256MB", "random_page_cost=1.1", "work_mem=16MB" })
        {
            if (args.IndexOf(setting) is var at && (at < 1 || args[at - 1] != "-c"))
            {
                problems.Add($"postgres's args [{string.Join(' ', args)}] do not set -c {setting}");
            }
        }
        return problems;

        void RequireEnv(string resource, string variable, string value)
        {
            if (!all.TryGetValue(resource, out var r) || !r.TryGetProperty("env", out var env)
                || !env.TryGetProperty(variable, out var v) || v.GetString() != value)
            {
                problems.Add($"{resource}'s {variable} is not {value}");
            }
        }
    }

    private static string PascalProject(string resource) => resource switch
    {
        "userservice" => "Library.UserService",
        "bookservice" => "Library.BookService",
        "lendingservice" => "Library.LendingService",
        "gateway" => "Library.Gateway",
        _ => resource,
    };

    private static IEnumerable<(string Name, string? Scheme, bool External)> Bindings(JsonElement resource) =>
        resource.TryGetProperty("bindings", out var bindings) && bindings.ValueKind == JsonValueKind.Object
            ? bindings.EnumerateObject().Select(b => (
                b.Name,
                b.Value.TryGetProperty("scheme", out var s) ? s.GetString() : null,
                b.Value.TryGetProperty("external", out var e) && e.ValueKind == JsonValueKind.True))
            : [];

    /// <summary>Runs the built AppHost as azd does: publish mode, manifest publisher.</summary>
    private static async Task<TimeSpan> PublishManifestAsync(string output, CancellationToken ct)
    {
        var appHostFolder = Path.Combine(Repository.Root, "Library.AppHost");
        var dll = Path.Combine(appHostFolder, "bin", Repository.Configuration, "net10.0", "Library.AppHost.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built (this project's build builds it)");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet, [dll, "--publisher", "manifest", "--output-path", output])
        {
            WorkingDirectory = appHostFolder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Not this test run's settings: secrets given to the fixture's AppHost must not matter here.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Parameters__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("Library__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(PublishTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        Assert.True(process.ExitCode == 0 && File.Exists(output),
            $"publishing the manifest exited with {process.ExitCode}:\n{await stdout}\n{await stderr}");
        return watch.Elapsed;
    }

    /// <summary>Nested mappings of scalars (azure.yaml's shape) as dotted keys: services.app.host.</summary>
    internal static Dictionary<string, string> FlattenYaml(IEnumerable<string> lines)
    {
        var values = new Dictionary<string, string>();
        var path = new List<(int Indent, string Key)>();
        foreach (var raw in lines)
        {
            var line = raw.Split(" #")[0].TrimEnd();
            if (line.TrimStart().Length == 0 || line.TrimStart().StartsWith('#'))
            {
                continue;
            }
            var indent = line.Length - line.TrimStart().Length;
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim().Trim('"', '\'');
            path.RemoveAll(p => p.Indent >= indent);
            path.Add((indent, key));
            if (value.Length > 0)
            {
                values[string.Join('.', path.Select(p => p.Key))] = value;
            }
        }
        return values;
    }
}
