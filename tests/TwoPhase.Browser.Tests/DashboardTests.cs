using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace TwoPhase.Browser.Tests;

/// <summary>The dashboard in a real browser (Debian's Chromium, headless) while orders run.</summary>
public sealed class DashboardTests(ITestOutputHelper output)
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private static readonly string[] ChromiumArgs =
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    [Fact]
    public async Task DashboardUnderLoad_CommittedCounterMovesAndATimelineAppears()
    {
        Assert.True(File.Exists(ChromiumPath), $"Chromium is not installed at {ChromiumPath}: run 'apt-get install -y chromium' (.ci/run does). This test never skips.");

        await using var system = await BrowserSystem.StartAsync();
        await using var load = new OrderLoad(system, workers: 4);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ChromiumArgs,
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1500 } });
        page.SetDefaultTimeout(30_000);

        // The page must work offline: any request that leaves the order service is refused and counted.
        var outside = new List<string>();
        await page.RouteAsync("**/*", async route =>
        {
            var url = new Uri(route.Request.Url);
            if (url.Authority == system.Order.Url.Authority)
            {
                await route.ContinueAsync();
            }
            else
            {
                lock (outside)
                {
                    outside.Add(route.Request.Url);
                }

                await route.AbortAsync();
            }
        });

        await page.GotoAsync(system.Order.Url.ToString());
        await page.WaitForFunctionAsync("() => +document.getElementById('committed-total').textContent > 0");
        var first = long.Parse(await page.InnerTextAsync("#committed-total"), System.Globalization.CultureInfo.InvariantCulture);
        await page.WaitForFunctionAsync("n => +document.getElementById('committed-total').textContent > n", first);
        var second = long.Parse(await page.InnerTextAsync("#committed-total"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(second > first, $"committed went from {first} to {second}");

        // A transaction's phase timeline: the coordinator's lane and one lane per participant, with their votes.
        await page.WaitForSelectorAsync("svg.timeline circle");
        var timelines = await page.Locator("svg.timeline").CountAsync();
        Assert.True(timelines > 0);
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#products tbody td.id').length > 0 && document.querySelectorAll('#couriers tbody tr').length > 0");

        // Let the charts fill a little, then keep a picture of it: as a test artifact and for the README.
        await page.WaitForTimeoutAsync(3000);
        var artifact = Path.Combine(AppContext.BaseDirectory, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = artifact, FullPage = true });
        var docs = Path.Combine(system.RepoRoot, "docs", "dashboard.png");
        File.Copy(artifact, docs, overwrite: true);
        output.WriteLine($"committed {first} -> {second}; {timelines} timelines; simulator saw {load.Committed} committed, {load.Aborted} not; screenshot: {artifact} and {docs}");

        Assert.Empty(outside);
    }
}
