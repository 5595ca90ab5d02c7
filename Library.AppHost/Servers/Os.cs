using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Library.AppHost.Servers;

/// <summary>
/// What the process-mode servers need from the operating system: the distribution's binaries,
/// the servers' own users (PostgreSQL refuses to run as root; RabbitMQ and Redis should not),
/// and a clean environment for every server process.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class Os
{
    public const string Env = "/usr/bin/env";
    public const string SetPriv = "/usr/bin/setpriv";
    public const string Path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public static bool IsRoot { get; } = OperatingSystem.IsLinux() && Environment.UserName == "root";

    /// <summary>
    /// The arguments of <see cref="Env"/> (every server resource's command) that start
    /// <paramref name="program"/> as <paramref name="user"/> (when the AppHost runs as root) with
    /// nothing of the AppHost's environment: DCP hands every executable the AppHost's whole
    /// environment (secret <c>Parameters__*</c> included), so the command is <c>env -i</c>, which
    /// execs <c>setpriv</c>, which execs the program: the process DCP watches and stops is the
    /// program itself.
    /// </summary>
    public static List<object> CleanArguments(
        string? user, string program, IEnumerable<KeyValuePair<string, object>> environment)
    {
        var args = new List<object> { "-i", Path, "LANG=C.UTF-8", "LC_ALL=C.UTF-8" };
        foreach (var (key, value) in environment)
        {
            args.Add(value is string s
                ? $"{key}={s}"
                : ReferenceExpression.Create($"{key}={(ReferenceExpression)value}"));
        }
        if (IsRoot && user is not null)
        {
            args.AddRange([SetPriv, $"--reuid={user}", $"--regid={user}", "--init-groups", "--"]);
        }
        args.Add(program);
        return args;
    }

    /// <summary>Runs a short command (initdb, chown), as <paramref name="user"/> when root; throws with its output when it fails.</summary>
    public static async Task RunAsync(string? user, string workingDirectory, string program, IEnumerable<string> arguments, CancellationToken ct)
    {
        var info = new ProcessStartInfo
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (IsRoot && user is not null)
        {
            info.FileName = SetPriv;
            foreach (var a in new[] { $"--reuid={user}", $"--regid={user}", "--init-groups", "--", program })
            {
                info.ArgumentList.Add(a);
            }
        }
        else
        {
            info.FileName = program;
        }
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment.Clear();
        info.Environment["PATH"] = Path["PATH=".Length..];
        info.Environment["LANG"] = "C.UTF-8";

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        output.Append(await stdout).Append(await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                string.Create(CultureInfo.InvariantCulture, $"{program} exited with {process.ExitCode}: {output.ToString().Trim()}"));
        }
    }

    /// <summary>A folder the server's user owns alone (0700); created if missing.</summary>
    public static async Task OwnedFolderAsync(string path, string? user, CancellationToken ct)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (IsRoot && user is not null)
        {
            await RunAsync(null, "/", "chown", ["-R", $"{user}:{user}", path], ct);
        }
    }

    /// <summary>Writes a file only its owner reads (0600), owned by the server's user.</summary>
    public static async Task PrivateFileAsync(string path, string content, string? user, CancellationToken ct)
    {
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, content, ct);
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (IsRoot && user is not null)
        {
            await RunAsync(null, "/", "chown", [$"{user}:{user}", temp], ct);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Every parent of <paramref name="path"/> must be traversable by the servers' users.</summary>
    public static void MakeTraversable(string path)
    {
        if (!IsRoot)
        {
            return;
        }
        for (var dir = new DirectoryInfo(path); dir is not null && dir.FullName != "/"; dir = dir.Parent)
        {
            if (dir.Exists && (dir.UnixFileMode & UnixFileMode.OtherExecute) == 0)
            {
                dir.UnixFileMode |= UnixFileMode.OtherExecute;
            }
        }
    }

    public static string? FindPostgresBin()
    {
        var configured = Environment.GetEnvironmentVariable("LIBRARY_PG_BINDIR");
        if (!string.IsNullOrEmpty(configured))
        {
            return configured;
        }
        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root))
        {
            return null;
        }
        return Directory.GetDirectories(root)
            .Select(d => (Dir: System.IO.Path.Combine(d, "bin"), Version: int.TryParse(System.IO.Path.GetFileName(d), out var v) ? v : 0))
            .Where(d => File.Exists(System.IO.Path.Combine(d.Dir, "postgres")) && File.Exists(System.IO.Path.Combine(d.Dir, "initdb")))
            .OrderByDescending(d => d.Version)
            .Select(d => d.Dir)
            .FirstOrDefault();
    }

    public static string Require(string? path, string what) =>
        path is not null && (File.Exists(path) || Directory.Exists(path))
            ? path
            : throw new DistributedApplicationException(
                $"{what} is not installed: run eng/run.sh (it installs PostgreSQL, Redis and RabbitMQ from the distribution's packages) or set Library:Servers=container.");
}
