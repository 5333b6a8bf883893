using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol;

/// <summary>Whom an in-doubt row asks, and what "not this group" means (docs/protocol.md, "Coordinator groups").</summary>
public sealed class InDoubtGroupRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private const string Configured = "http://orders-a:8000";

    private static LedgerEntry Row(string? group, string? url) =>
        new LedgerEntry("tx-1", LedgerState.Prepared, null, null, Now, Now, 0, null) { CoordinatorGroup = group, CoordinatorUrl = url };

    [Fact]
    public void RowWithGroupAndUrl_AsksThatGroupThere() =>
        Assert.Equal(("http://orders-b:8000", "b"), InDoubtRules.QueryTarget(Row("b", "http://orders-b:8000"), Configured));

    [Fact]
    public void RowWithGroupOnly_AsksThatGroupAtTheConfiguredUrl() =>
        Assert.Equal((Configured, "b"), InDoubtRules.QueryTarget(Row("b", null), Configured));

    [Fact]
    public void RowWithoutGroup_AsksTheConfiguredCoordinatorWithoutAGroup_AsBefore() =>
        Assert.Equal((Configured, (string?)null), InDoubtRules.QueryTarget(Row(null, null), Configured));

    [Fact]
    public void NotThisGroup_IsNoDecision_AskAgain() =>
        Assert.Equal(InDoubtAction.AskAgain, InDoubtRules.OnAnswer(DecisionQueryAnswer.NotThisGroup));

    [Fact]
    public void NotThisGroup_HasItsOwnName_NeverReadAsAborted()
    {
        Assert.Equal("not-this-group", DecisionQueryAnswer.NotThisGroup.ToWire());
        Assert.Null(StateNames.TryParseDecisionQueryAnswer("not-this-group"));
    }
}
