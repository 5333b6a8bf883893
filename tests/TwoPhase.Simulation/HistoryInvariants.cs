using TwoPhase.Protocol;

namespace TwoPhase.Simulation;

/// <summary>
/// The invariants of DESIGN §2, checked at every change of durable state or of what a client was told (between two
/// changes nothing they read can change, so this is every step that matters), and liveness at the end of a history.
/// The first violation stops the history; <see cref="World"/> prints it with the trace up to it.
/// </summary>
public sealed class HistoryInvariants(World world)
{
    private readonly Dictionary<string, Decision> _decided = [];
    private readonly Dictionary<string, HashSet<string>> _yes = [];
    private readonly Dictionary<string, Dictionary<string, LedgerState>> _ledgers = [];
    private readonly HashSet<(string Participant, string Id)> _abortAcknowledged = [];
    private readonly Dictionary<string, TransactionState> _told = [];
    private readonly Dictionary<string, string> _committedByKey = [];

    public string? Violation { get; private set; }

    public void Fail(string what)
    {
        if (Violation is null)
        {
            Violation = what;
            world.Note($"VIOLATION: {what}");
        }
    }

    /// <summary>A write of the decision log landed.</summary>
    public void OnLogWrite(TransactionRecord record)
    {
        if (record.State == TransactionState.Preparing)
        {
            return;
        }

        var decision = record.State == TransactionState.Committed ? Decision.Commit : Decision.Abort;
        if (_decided.TryGetValue(record.Id, out var earlier) && earlier != decision)
        {
            Fail($"stable decisions: {record.Id} was decided {earlier}, the log now says {decision}");
        }

        _decided[record.Id] = decision;
        if (decision == Decision.Commit)
        {
            // Validity: commit only on all-yes.
            var yes = _yes.GetValueOrDefault(record.Id);
            foreach (var p in record.Participants.Where(p => yes?.Contains(p) != true))
            {
                Fail($"validity: {record.Id} committed without a yes vote from {p}");
            }

            if (record.IdempotencyKey is { } key)
            {
                if (_committedByKey.TryGetValue(key, out var other) && other != record.Id)
                {
                    Fail($"exactly once: key {key} committed twice, as {other} and {record.Id}");
                }

                _committedByKey[key] = record.Id;
            }

            CheckParticipantsAgree(record.Id);
        }

        CheckTold(record.Id);
    }

    /// <summary>The log's database crashed: no commit may be lost, and no abort anyone was told of or acted on.</summary>
    public void OnLogCrash()
    {
        foreach (var (id, decision) in _decided)
        {
            var state = world.Log.Get(id)?.Record.State;
            if (decision == Decision.Commit && state != TransactionState.Committed)
            {
                Fail($"stable decisions: the commit of {id} was lost in a crash of the log's database (now {state?.ToWire() ?? "missing"})");
            }
            else if (decision == Decision.Abort && state == TransactionState.Committed)
            {
                Fail($"stable decisions: {id} was aborted and is committed after the crash");
            }
        }
    }

    public void OnVote(string participant, string id, VoteKind vote)
    {
        if (vote == VoteKind.Yes)
        {
            (_yes.TryGetValue(id, out var set) ? set : _yes[id] = []).Add(participant);
        }
    }

    public void OnAcknowledged(string participant, string id, Decision decision)
    {
        if (decision == Decision.Abort)
        {
            _abortAcknowledged.Add((participant, id));
        }
    }

    public void OnLedgerWrite(string participant, string id, LedgerState? before, LedgerState after)
    {
        if (before is LedgerState.Committed or LedgerState.Aborted or LedgerState.Refused)
        {
            Fail($"exactly once: {participant} changed {id} from final {before} to {after}");
        }

        if (after is LedgerState.Prepared or LedgerState.Committed && _abortAcknowledged.Contains((participant, id)))
        {
            Fail($"exactly once: {participant} acknowledged ABORT of {id}, then made it {after}");
        }

        var decided = _decided.TryGetValue(id, out var d) ? d : (Decision?)null;
        if (after == LedgerState.Committed && decided != Decision.Commit)
        {
            Fail($"validity: {participant} committed {id}, which the coordinator did not decide to commit");
        }

        if (after == LedgerState.Aborted && decided == Decision.Commit)
        {
            Fail($"atomic outcome: {participant} aborted {id}, which the coordinator committed");
        }

        (_ledgers.TryGetValue(id, out var states) ? states : _ledgers[id] = [])[participant] = after;
        CheckParticipantsAgree(id);
    }

    /// <summary>A participant crashed: every yes it sent must still stand in its ledger.</summary>
    public void OnLedgerCrash(SimParticipant participant)
    {
        foreach (var (id, voters) in _yes)
        {
            if (voters.Contains(participant.Name) && participant.Ledger.Get(id) is not { State: not LedgerState.Refused })
            {
                Fail($"validity: {participant.Name} voted yes on {id} and lost its prepared row in a crash");
            }
        }

        foreach (var (id, states) in _ledgers)
        {
            if (states.TryGetValue(participant.Name, out var was) && was is LedgerState.Committed or LedgerState.Aborted &&
                participant.Ledger.Get(id)?.State != was)
            {
                Fail($"stable decisions: {participant.Name} lost its {was} row of {id} in a crash");
            }
        }
    }

    /// <summary>A client was told <paramref name="state"/> for <paramref name="id"/>.</summary>
    public void OnTold(string id, TransactionState state)
    {
        if (_told.TryGetValue(id, out var earlier) && earlier != state)
        {
            Fail($"stable decisions: a client was told {earlier} for {id}, another {state}");
        }

        _told[id] = state;
        CheckTold(id);
    }

    /// <summary>Once faults have stopped and time has passed: everything completed, nothing left prepared.</summary>
    public string? Unfinished()
    {
        foreach (var row in world.Log.Rows.Values)
        {
            if (!row.Record.IsCompleted)
            {
                return $"liveness: {row.Record.Id} is {row.Record.State.ToWire()} and not completed{(row.Record.IsConflicted ? $", conflicts {string.Join(',', row.Record.Conflicts)}" : "")}";
            }
        }

        foreach (var participant in world.Participants)
        {
            foreach (var (id, row) in participant.Ledger.Rows)
            {
                if (row.State == LedgerState.Prepared)
                {
                    return $"liveness: {participant.Name} still holds {id} prepared";
                }
            }
        }

        return null;
    }

    private void CheckTold(string id)
    {
        if (!_told.TryGetValue(id, out var told) || !_decided.TryGetValue(id, out var decided))
        {
            return;
        }

        if ((told == TransactionState.Committed) != (decided == Decision.Commit))
        {
            Fail($"client told the truth: a client was told {told.ToWire()} for {id}, the coordinator decided {decided}");
        }
    }

    private void CheckParticipantsAgree(string id)
    {
        if (!_ledgers.TryGetValue(id, out var states))
        {
            return;
        }

        var committed = states.Where(s => s.Value == LedgerState.Committed).Select(s => s.Key).FirstOrDefault();
        var aborted = states.Where(s => s.Value == LedgerState.Aborted).Select(s => s.Key).FirstOrDefault();
        if (committed is not null && aborted is not null)
        {
            Fail($"atomic outcome: {id} committed at {committed}, aborted at {aborted}");
        }
    }
}
