namespace Library.AppHost.Tests;

/// <summary>Paths in the repository this test runs from (the folder that holds Library.sln).</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>artifacts/screenshots/apphost/ at the repository root (created).</summary>
    public static string Screenshots
    {
        get
        {
            var folder = Path.Combine(Root, "artifacts", "screenshots", "apphost");
            Directory.CreateDirectory(folder);
            return folder;
        }
    }

    /// <summary>The build configuration this test was built in (bin/{Configuration}/net10.0/).</summary>
    public static string Configuration =>
        new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Library.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Library.sln above {AppContext.BaseDirectory}");
    }
}
