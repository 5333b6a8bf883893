namespace TwoPhase.Simulation;

/// <summary>
/// Deliberately broken versions of the protocol, switched on only inside the simulator's fakes, to prove that the
/// invariants catch each one (docs/simulation.md lists the seed that catches each). <see cref="None"/> is the real thing.
/// </summary>
public enum BrokenVariant
{
    /// <summary>The protocol as it is.</summary>
    None,

    /// <summary>The decision log does not force a commit decision: a crash of its database can lose the commit point.</summary>
    CommitNotForced,

    /// <summary>A participant votes yes before its prepared row is durable: a crash can lose what it promised to hold.</summary>
    VoteBeforePrepareDurable,

    /// <summary>An ABORT that arrives before its PREPARE leaves no tombstone: the late PREPARE reserves and votes yes.</summary>
    NoTombstoneForEarlyAbort,

    /// <summary>An in-doubt participant aborts on its own instead of asking the coordinator.</summary>
    InDoubtDecidesAlone,

    /// <summary>
    /// The decision write is not conditional and the log takes a late commit: recovery aborts a transaction whose
    /// live coordinator then writes its commit over the abort.
    /// </summary>
    RecoveryAbortsLiveCommit,

    /// <summary>
    /// The lost-abort sequence of the hardening issue (docs/recovery.md): recovery's abort is not forced and the log
    /// does not refuse a commit past the abandon moment, so a crash loses the abort that ABORTs already announced
    /// and the stalled coordinator then commits.
    /// </summary>
    LostAbort,
}

/// <summary>One running life of a node, between a start and a crash: a crash kills it and everything it was doing.</summary>
public sealed class Incarnation(string node, int number)
{
    private readonly CancellationTokenSource _life = new();

    public string Node => node;

    public int Number => number;

    public bool Alive => !_life.IsCancellationRequested;

    /// <summary>Cancelled at the crash: every await of this life ends, as with <c>kill -9</c>.</summary>
    public CancellationToken Token => _life.Token;

    public void Kill() => _life.Cancel();

    /// <summary>A dead process writes nothing and sends nothing.</summary>
    public void ThrowIfDead() => _life.Token.ThrowIfCancellationRequested();

    public override string ToString() => $"{node}#{number}";
}
