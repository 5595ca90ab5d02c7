using System.Reflection;

namespace Library.AppHost;

internal static class ProjectLaunch
{
    /// <summary>
    /// Runs a project resource as its build output's executable (<c>bin/{Configuration}/{tfm}/{name}</c>,
    /// built with the AppHost: every project is a ProjectReference of it) in the project's folder,
    /// instead of <c>dotnet run --project ... --no-build</c>. Aspire honours an
    /// <see cref="ExecutableAnnotation"/> on a project resource as its command (ProjectExecutableLaunchRecipe);
    /// where the executable is not there (another configuration, not built yet) it keeps its default.
    /// </summary>
    public static IResourceBuilder<ProjectResource> FromBuildOutput(IResourceBuilder<ProjectResource> project)
    {
        var projectPath = project.Resource.GetProjectMetadata().ProjectPath;
        var folder = Path.GetDirectoryName(projectPath)!;
        var name = Path.GetFileNameWithoutExtension(projectPath);
        // The AppHost's own configuration and target framework are the projects' (one build).
        var configuration = typeof(ProjectLaunch).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var framework = Path.GetFileName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var executable = Path.Combine(folder, "bin", configuration, framework, OperatingSystem.IsWindows() ? name + ".exe" : name);
        if (File.Exists(executable))
        {
            project.WithAnnotation(new ExecutableAnnotation { Command = executable, WorkingDirectory = folder });
        }
        return project;
    }
}
