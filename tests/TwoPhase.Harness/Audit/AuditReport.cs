namespace TwoPhase.Harness.Audit;

/// <summary>
/// The result of checking one invariant: a short name, what it demands in one sentence, the exact
/// number of violations found and a bounded list of them.
/// </summary>
public sealed record InvariantResult(string Name, string Description, int ViolationCount, IReadOnlyList<string> Violations)
{
    public bool Passed => ViolationCount == 0;
}

/// <summary>All invariants checked against one snapshot.</summary>
public sealed record AuditReport(IReadOnlyList<InvariantResult> Results, bool WasQuiet, int OrdersChecked, int AnswersChecked)
{
    public bool Passed => Results.All(r => r.Passed);
}

/// <summary>Collects violations for one invariant, keeping the count exact and the list bounded.</summary>
internal sealed class ViolationList(string name, string description, int maxListed)
{
    private readonly List<string> _listed = [];
    private int _count;

    public void Add(string violation)
    {
        _count++;
        if (_listed.Count < maxListed)
        {
            _listed.Add(violation);
        }
    }

    public InvariantResult ToResult() => new(name, description, _count, _listed);
}
