namespace TwoPhase.Browser.Tests;

/// <summary>The browser tests' reference system: SQLite, the services' own seed with couriers to spare, quiet logs.</summary>
public static class BrowserSystem
{
    /// <summary>Starts all three and waits until each is ready. <paramref name="extra"/> goes to every service.</summary>
    public static Task<ReferenceSystem> StartAsync(IReadOnlyDictionary<string, string>? extra = null) =>
        ReferenceSystem.StartAsync(new SystemOptions
        {
            SeedEnabled = true,
            LogLevel = "Warning",
            ExtraEnvironment = new Dictionary<string, string>(extra ?? new Dictionary<string, string>()) { ["Seed__Couriers"] = "25" },
        });
}
