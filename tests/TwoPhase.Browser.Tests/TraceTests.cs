using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Xunit;

namespace TwoPhase.Browser.Tests;

/// <summary>One order, one trace: W3C trace context carries the order's trace through both participants.</summary>
public sealed class TraceTests
{
    [Fact]
    public async Task OneOrder_TraceHasSpansFromAllThreeServices()
    {
        // Every span goes to standard output too, where the test can find it by trace id.
        await using var system = await BrowserSystem.StartAsync(new Dictionary<string, string> { ["TwoPhase__Telemetry__ConsoleExporter"] = "true" });
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(system.Order.Url, "/v1/orders"))
        {
            Content = JsonContent.Create(new { items = new[] { new { sku = "widget", quantity = 1 } } }),
        };
        // The client starts the trace; every service must continue it.
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var response = await http.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"the order did not commit: {await response.Content.ReadAsStringAsync()}");

        var expected = new Dictionary<ServiceKind, string>
        {
            [ServiceKind.Order] = "twophase prepare",
            [ServiceKind.Storage] = "twophase participant prepare",
            [ServiceKind.Delivery] = "twophase participant commit",
        };
        var waited = Stopwatch.StartNew();
        while (expected.Any(e => !HasSpan(system[e.Key].ReadLog(), traceId, e.Value)) && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(100);
        }

        foreach (var (service, span) in expected)
        {
            Assert.True(HasSpan(system[service].ReadLog(), traceId, span), $"{service} printed no '{span}' span of trace {traceId}:\n{system[service].ReadLog()}");
        }
    }

    /// <summary>The console exporter prints each span as a block: its trace id line, then its display name line.</summary>
    private static bool HasSpan(string output, string traceId, string displayName)
    {
        var lines = output.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Contains("Activity.TraceId", StringComparison.Ordinal) && lines[i].Contains(traceId, StringComparison.Ordinal))
            {
                for (var j = i + 1; j < Math.Min(lines.Length, i + 8); j++)
                {
                    if (lines[j].Contains("Activity.DisplayName", StringComparison.Ordinal) && lines[j].Contains(displayName, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }
}
