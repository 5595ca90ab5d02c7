using System.Text.Json;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace Library.AppHost.Tests;

/// <summary>The dashboard's "Back up the databases" command on the postgres resource (process mode).</summary>
public sealed class BackupCommandTests(LibraryAppHost library)
{
    [Fact]
    public async Task The_postgres_resource_command_backs_up_every_service_database_with_a_manifest()
    {
        var ct = TestContext.Current.CancellationToken;
        await library.App.ResourceNotifications.WaitForResourceHealthyAsync("postgres", ct).WaitAsync(LibraryAppHost.StartTimeout, ct);
        var commands = library.App.Services.GetRequiredService<ResourceCommandService>();

        var result = await commands.ExecuteCommandAsync("postgres", "backup", ct).WaitAsync(TimeSpan.FromMinutes(3), ct);

        Assert.True(result.Success, result.Message);
        const string prefix = "Backup written to ";
        Assert.StartsWith(prefix, result.Message, StringComparison.Ordinal);
        var folder = result.Message![prefix.Length..];
        try
        {
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "manifest.json"), ct));
            var databases = manifest.RootElement.GetProperty("databases").EnumerateArray().ToList();
            Assert.Equal<string[]>(["bookdb", "lendingdb", "userdb"], databases.Select(d => d.GetProperty("name").GetString()!).Order().ToArray());
            foreach (var db in databases)
            {
                var file = new FileInfo(Path.Combine(folder, db.GetProperty("file").GetString()!));
                Assert.Equal(db.GetProperty("bytes").GetInt64(), file.Length);
                // pg_dump's custom format starts with "PGDMP".
                using var stream = file.OpenRead();
                var magic = new byte[5];
                stream.ReadExactly(magic);
                Assert.Equal("PGDMP"u8.ToArray(), magic);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
