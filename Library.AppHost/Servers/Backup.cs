using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Library.AppHost.Servers;

/// <summary>
/// The dashboard's "Back up the databases" command on the PostgreSQL process resource: the same
/// backup as <c>eng/run.sh backup</c> (eng/lib/backup.sh: one consistent pg_dump per service
/// database and a manifest, into <c>&lt;repository&gt;/backups/&lt;UTC time&gt;/</c>), run as a child
/// process with a clean environment (none of the AppHost's secret parameters). Its progress goes
/// to the resource's console log; the result names the folder.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class PostgresBackup
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(30);

    public static IResourceBuilder<PostgresProcessResource> WithBackupCommand(
        this IResourceBuilder<PostgresProcessResource> postgres, string dataRoot)
    {
        var script = Path.GetFullPath(Path.Combine(postgres.ApplicationBuilder.AppHostDirectory, "..", "eng", "run.sh"));
        return postgres.WithCommand("backup", "Back up the databases",
            context => RunAsync(script, dataRoot, context.Logger, context.CancellationToken),
            new CommandOptions
            {
                Description = "pg_dump of every service database at one point in time, with a manifest, into backups/<UTC time>/ (eng/run.sh backup)",
                IconName = "Save",
                UpdateState = c => c.ResourceSnapshot.HealthStatus == HealthStatus.Healthy
                    ? ResourceCommandState.Enabled
                    : ResourceCommandState.Disabled,
            });
    }

    private static async Task<ExecuteCommandResult> RunAsync(string script, string dataRoot, ILogger logger, CancellationToken ct)
    {
        var info = new ProcessStartInfo("/bin/bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(script)!,
        };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add("backup");
        info.Environment.Clear();
        info.Environment["PATH"] = Os.Path["PATH=".Length..];
        info.Environment["LANG"] = "C.UTF-8";
        info.Environment["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        info.Environment["LIBRARY_DATA_DIR"] = dataRoot;

        using var process = Process.Start(info) ?? throw new InvalidOperationException("cannot start bash");
        var lastError = "";
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                logger.LogInformation("{Line}", line);
                lastError = line;
            }
        };
        process.BeginErrorReadLine();
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(Timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return CommandResults.Failure($"the backup did not finish within {Timeout.TotalMinutes} minutes");
        }
        process.WaitForExit(); // the last lines of stderr
        var folder = (await stdout).Trim();
        if (process.ExitCode != 0 || folder.Length == 0)
        {
            return CommandResults.Failure($"the backup failed: {lastError}");
        }
        return CommandResults.Success($"Backup written to {folder}");
    }
}
