using TwoPhase.Protocol;

namespace TwoPhase.Simulation;

/// <summary>A decision-log row and its abandon moment on the log's own clock, which the record does not carry.</summary>
public sealed record LogRow(TransactionRecord Record, DateTimeOffset AbandonAt);

/// <summary>
/// The decision log one coordinator life sees: the shared database (<see cref="World.Log"/>), with the contract of
/// <see cref="IDecisionLog"/> as the SQL logs keep it. Begin is idempotent on id and key, a decision is conditional
/// on still preparing, a commit is refused from the abandon moment on, judged by the database's clock (the
/// history's clock, not the coordinator's skewed one). Every write says whether it is forced; a crash of the
/// database keeps what <see cref="DurableStore{TValue}"/> keeps. A dead coordinator's calls fail before they write.
/// </summary>
public sealed class SimDecisionLog(World world, Incarnation life, TimeProvider callerClock) : IDecisionLog
{
    private DurableStore<LogRow> Store => world.Log;

    private DateTimeOffset Now => world.Clock.GetUtcNow();

    public async Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, DateTimeOffset abandonAt, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        var existing = (request.IdempotencyKey is null ? null : FindByKey(request.IdempotencyKey)) ?? Store.Get(request.Id)?.Record;
        if (existing is not null)
        {
            world.Note($"{life} log begin {request.Id}: exists as {existing.Id} {existing.State.ToWire()}");
            return (existing, false);
        }

        var record = new TransactionRecord(
            request.Id, TransactionState.Preparing, [.. request.Participants.Select(p => p.Name)], [], [], null, request.Payloads,
            request.IdempotencyKey, request.RequestHash, Now, deadline, null, null, 0, null) { Owner = life.ToString() };
        // The same distance from the database's now as the caller gave from its own.
        var row = new LogRow(record, Now + (abandonAt - callerClock.GetUtcNow()));
        Write(row, $"begin {request.Id}{(request.IdempotencyKey is null ? "" : $" key {request.IdempotencyKey}")}", forced: false);
        return (record, true);
    }

    public async Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, Durability abortDurability, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        var stored = Store.Get(id) ?? throw new InvalidOperationException($"Transaction {id} is not in the decision log.");
        var record = stored.Record;
        var variant = world.Variant;
        var blindCommit = variant == BrokenVariant.RecoveryAbortsLiveCommit && decision == Decision.Commit;
        if (record.State != TransactionState.Preparing && !blindCommit)
        {
            world.Note($"{life} log decide {id} {Name(decision)}: lost to {record.State.ToWire()}");
            return record;
        }

        var refuseLate = variant is not (BrokenVariant.RecoveryAbortsLiveCommit or BrokenVariant.LostAbort);
        if (decision == Decision.Commit && refuseLate && Now >= stored.AbandonAt)
        {
            world.Note($"{life} log decide {id} commit: refused, abandoned");
            return record;
        }

        record = record with
        {
            State = decision == Decision.Commit ? TransactionState.Committed : TransactionState.Aborted,
            Reason = reason,
            Votes = [.. votes],
            DecidedAt = Now,
            NextAttemptAt = OnLogClock(nextAttemptAt),
            Owner = life.ToString(),
        };
        var forced = decision == Decision.Commit
            ? variant != BrokenVariant.CommitNotForced
            : abortDurability == Durability.Forced && variant != BrokenVariant.LostAbort;
        Write(stored with { Record = record }, $"decide {id} {Name(decision)}", forced);
        return record;
    }

    public async Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        if (Store.Get(id) is not { Record.CompletedAt: null } stored)
        {
            return;
        }

        var record = complete
            ? stored.Record with { Acknowledged = stored.Record.Participants, CompletedAt = Now }
            : stored.Record with { Acknowledged = [.. stored.Record.Acknowledged.Union(acknowledged)] };
        Write(stored with { Record = record }, complete ? $"completed {id}" : $"acknowledged {id} {string.Join(',', record.Acknowledged)}", forced: false);
    }

    public async Task RecordConflictsAsync(string id, IReadOnlyCollection<string> acknowledged, IReadOnlyCollection<string> conflicts, bool settled, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        if (Store.Get(id) is not { Record.CompletedAt: null } stored)
        {
            return;
        }

        var record = stored.Record with
        {
            Acknowledged = [.. stored.Record.Acknowledged.Union(acknowledged)],
            Conflicts = [.. stored.Record.Conflicts.Union(conflicts)],
            SettledAt = stored.Record.SettledAt ?? (settled ? Now : null),
        };
        Write(stored with { Record = record }, $"conflicts {id} {string.Join(',', record.Conflicts)}{(settled ? " settled" : "")}", forced: true);
    }

    public async Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        // Only the owner's: a replica whose lease was taken over must not cut the new owner's lease short.
        if (Store.Get(id) is { Record.CompletedAt: null } stored && (stored.Record.Owner is null || stored.Record.Owner == life.ToString()))
        {
            var record = stored.Record with { Attempts = stored.Record.Attempts + 1, NextAttemptAt = OnLogClock(nextAttemptAt) };
            Write(stored with { Record = record }, $"retry {id} at {world.Ms(nextAttemptAt)}", forced: false);
        }
    }

    public async Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        return Store.Get(id)?.Record;
    }

    public async Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        return FindByKey(key);
    }

    public async Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(int limit, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        var now = Now;
        return Select(s => s.Record.State == TransactionState.Preparing && s.AbandonAt <= now, limit);
    }

    /// <summary>Due by the database's clock, claimed for this replica in one step (the SQL logs' one statement): owner and lease.</summary>
    public async Task<IReadOnlyList<TransactionRecord>> ClaimDueAsync(TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        var now = Now;
        var due = Select(s => s.Record is { CompletedAt: null, SettledAt: null, State: not TransactionState.Preparing } && (s.Record.NextAttemptAt is null || s.Record.NextAttemptAt <= now), limit);
        var claimed = new List<TransactionRecord>(due.Count);
        foreach (var record in due)
        {
            var stored = Store.Get(record.Id)!;
            var taken = record with { Owner = life.ToString(), NextAttemptAt = now + lease };
            Write(stored with { Record = taken }, $"claim {record.Id} until {world.Ms(now + lease)}", forced: false);
            claimed.Add(taken);
        }

        return claimed;
    }

    // A moment the caller gave on its (maybe skewed) clock, as the same distance from the database's now.
    private DateTimeOffset OnLogClock(DateTimeOffset callerMoment) => Now + (callerMoment - callerClock.GetUtcNow());

    public async Task<IReadOnlyList<TransactionRecord>> ListUnfinishedAsync(int limit, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        return Select(s => s.Record.CompletedAt is null, limit);
    }

    public async Task<IReadOnlyList<TransactionRecord>> ListAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        await world.DiskAsync(life, cancellationToken);
        return [.. Store.Rows.Values.Select(s => s.Record)
            .Where(r => string.CompareOrdinal(r.Id, after ?? string.Empty) > 0)
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .Take(limit)];
    }

    private static string Name(Decision decision) => decision == Decision.Commit ? "commit" : "abort";

    private TransactionRecord? FindByKey(string key) =>
        Store.Rows.Values.FirstOrDefault(r => r.Record.IdempotencyKey == key)?.Record;

    private void Write(LogRow row, string what, bool forced)
    {
        // The process may have died while the write was on its way to the disk; a dead one writes nothing.
        life.ThrowIfDead();
        Store.Write(row.Record.Id, row, forced);
        world.Note($"{life} log {what}{(forced ? " (forced)" : "")}");
        world.Invariants.OnLogWrite(row.Record);
    }

    private List<TransactionRecord> Select(Func<LogRow, bool> filter, int limit) =>
        [.. Store.Rows.Values.Where(filter).Select(s => s.Record).OrderBy(r => r.CreatedAt).Take(limit)];
}
