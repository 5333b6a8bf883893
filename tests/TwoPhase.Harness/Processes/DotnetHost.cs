namespace TwoPhase.Harness;

/// <summary>Finds the dotnet executable that runs the service assemblies.</summary>
public static class DotnetHost
{
    /// <summary>
    /// The SDK sets DOTNET_HOST_PATH for processes it starts (dotnet run, dotnet test): the same
    /// host the CLI itself runs on. Otherwise DOTNET_ROOT, otherwise "dotnet" from PATH.
    /// </summary>
    public static string Path { get; } = Find();

    private static string Find()
    {
        var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath))
        {
            return hostPath;
        }

        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        var candidate = string.IsNullOrEmpty(root) ? null : System.IO.Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return candidate is not null && File.Exists(candidate) ? candidate : "dotnet";
    }
}
