using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;

namespace TwoPhase.Tests.Hosting;

/// <summary>The coordinator group's options (<c>Group</c>, <c>AdvertisedUrl</c>): a bad value is refused at start naming the key.</summary>
public sealed class CoordinatorGroupOptionsTests
{
    private static WebApplication Build(params (string Key, string Value)[] settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new (string Key, string Value)[]
            {
                ("TwoPhase:Secret", "options-test-secret"),
                ("TwoPhase:Database:SqliteFile", Path.Combine(Path.GetTempPath(), "twophase-group-options-test.db")),
                ("TwoPhase:Coordinator:Participants:0:Name", "storage"),
                ("TwoPhase:Coordinator:Participants:0:Url", "http://127.0.0.1:8002"),
            }
            .Concat(settings)
            .Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));
        builder.AddTwoPhase();
        builder.AddTwoPhaseCoordinator();
        return builder.Build();
    }

    [Theory]
    [InlineData("Group", "")]
    [InlineData("Group", "-leading-dash")]
    [InlineData("Group", "has space")]
    [InlineData("Group", "slash/no")]
    [InlineData("Group", "g12345678901234567890123456789012345678901234567890123456789012345")]
    [InlineData("AdvertisedUrl", "not a url")]
    [InlineData("AdvertisedUrl", "ftp://orders.internal")]
    [InlineData("AdvertisedUrl", "/relative")]
    [InlineData("AdvertisedUrl", "http://user:secret@orders.internal")]
    public async Task BadGroupSetting_RefusedAtStart_NamingTheKey(string key, string value)
    {
        await using var app = Build(($"TwoPhase:Coordinator:{key}", value));

        var refused = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value);

        Assert.Contains($"TwoPhase:Coordinator:{key}", string.Join("; ", refused.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Defaults_GroupDefault_NoAdvertisedUrl()
    {
        await using var app = Build();

        var options = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;

        Assert.Equal("default", options.Group);
        Assert.Null(options.AdvertisedUrl);
    }

    [Theory]
    [InlineData("orders", "http://orders-lb:8000")]
    [InlineData("orders.eu-west_1", "https://orders.example.org/base/")]
    [InlineData("A", "http://10.211.0.5:8000")]
    public async Task GoodGroupSettings_Accepted(string group, string url)
    {
        await using var app = Build(("TwoPhase:Coordinator:Group", group), ("TwoPhase:Coordinator:AdvertisedUrl", url));

        var options = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;

        Assert.Equal((group, url), (options.Group, options.AdvertisedUrl));
    }
}
