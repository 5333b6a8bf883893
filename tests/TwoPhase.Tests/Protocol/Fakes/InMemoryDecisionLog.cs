using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>
/// An in-memory <see cref="IDecisionLog"/> with the same contract as the SQL one: begin is idempotent on
/// id and idempotency key, decide is conditional on still preparing, a commit is refused once the transaction
/// is abandoned (judged by the injected clock, this log's clock). Every write lands in the journal.
/// </summary>
/// <remarks>
/// It also models what a crash of the log's database keeps: each write is forced or not, as the SQL log would
/// write it, and <see cref="Crash"/> drops every unforced write since the last forced one. A forced write keeps
/// everything written before it, as a forced commit flushes the whole write-ahead log up to itself on both stores.
/// </remarks>
public sealed class InMemoryDecisionLog(TimeProvider time, Journal journal) : IDecisionLog
{
    private readonly Lock _gate = new();
    private Dictionary<string, Stored> _records = [];

    // What survives a crash: the records as of the last forced write.
    private Dictionary<string, Stored> _durable = [];

    /// <summary>Every <see cref="ScheduleRetryAsync"/> call: which transaction, when it was asked, for when.</summary>
    public List<(string Id, DateTimeOffset At, DateTimeOffset NextAttemptAt)> Retries { get; } = [];

    /// <summary>Every write, as its journal entry, and whether it was forced.</summary>
    public List<(string Entry, bool Forced)> Writes { get; } = [];

    /// <summary>The log's database crashes and restarts: unforced writes not yet covered by a forced one are gone.</summary>
    public void Crash()
    {
        lock (_gate)
        {
            _records = new Dictionary<string, Stored>(_durable);
            journal.Add("crash");
        }
    }

    /// <summary>Another transaction's forced write flushes the log: everything written so far survives a crash.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            _durable = new Dictionary<string, Stored>(_records);
            journal.Add("flush");
        }
    }

    public Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, DateTimeOffset abandonAt, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var existing = _records.Values.FirstOrDefault(r => request.IdempotencyKey is not null && r.Record.IdempotencyKey == request.IdempotencyKey)?.Record
                ?? _records.GetValueOrDefault(request.Id)?.Record;
            if (existing is not null)
            {
                journal.Add($"begin-duplicate:{request.Id}");
                return Task.FromResult((existing, false));
            }

            var record = new TransactionRecord(
                request.Id, TransactionState.Preparing, request.Participants.Select(p => p.Name).ToArray(), [], [], null, request.Payloads,
                request.IdempotencyKey, request.RequestHash, time.GetUtcNow(), deadline, null, null, 0, null);
            Write(new Stored(record, abandonAt), $"begin:{request.Id}", forced: false);
            return Task.FromResult((record, true));
        }
    }

    public Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, Durability abortDurability, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_records.TryGetValue(id, out var stored))
            {
                throw new InvalidOperationException($"Transaction {id} is not in the decision log.");
            }

            var record = stored.Record;
            if (record.State != TransactionState.Preparing)
            {
                journal.Add($"decide-lost:{id}:{decision.ToString().ToLowerInvariant()}");
                return Task.FromResult(record);
            }

            if (decision == Decision.Commit && time.GetUtcNow() >= stored.AbandonAt)
            {
                journal.Add($"decide-refused:{id}:commit");
                return Task.FromResult(record);
            }

            record = record with
            {
                State = decision == Decision.Commit ? TransactionState.Committed : TransactionState.Aborted,
                Reason = reason,
                Votes = [.. votes],
                DecidedAt = time.GetUtcNow(),
                NextAttemptAt = nextAttemptAt,
            };
            Write(stored with { Record = record }, $"decide:{id}:{decision.ToString().ToLowerInvariant()}", forced: decision == Decision.Commit || abortDurability == Durability.Forced);
            return Task.FromResult(record);
        }
    }

    public Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var stored = _records[id];
            var record = stored.Record;
            if (record.CompletedAt is null)
            {
                record = complete
                    ? record with { Acknowledged = record.Participants, CompletedAt = time.GetUtcNow() }
                    : record with { Acknowledged = [.. record.Acknowledged.Union(acknowledged)] };
                Write(stored with { Record = record }, complete ? $"completed:{id}" : $"acknowledged:{id}:{string.Join(',', record.Acknowledged)}", forced: false);
            }

            return Task.CompletedTask;
        }
    }

    public Task RecordConflictsAsync(string id, IReadOnlyCollection<string> acknowledged, IReadOnlyCollection<string> conflicts, bool settled, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var stored = _records[id];
            var record = stored.Record;
            if (record.CompletedAt is null)
            {
                record = record with
                {
                    Acknowledged = [.. record.Acknowledged.Union(acknowledged)],
                    Conflicts = [.. record.Conflicts.Union(conflicts)],
                    SettledAt = record.SettledAt ?? (settled ? time.GetUtcNow() : null),
                };
                Write(stored with { Record = record }, $"conflicts:{id}:{string.Join(',', record.Conflicts)}{(settled ? ":settled" : "")}", forced: true);
            }

            return Task.CompletedTask;
        }
    }

    public Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var stored = _records[id];
            if (stored.Record.CompletedAt is null)
            {
                Write(stored with { Record = stored.Record with { Attempts = stored.Record.Attempts + 1, NextAttemptAt = nextAttemptAt } }, $"retry:{id}", forced: false);
            }
            else
            {
                journal.Add($"retry:{id}");
            }

            Retries.Add((id, time.GetUtcNow(), nextAttemptAt));
            return Task.CompletedTask;
        }
    }

    public Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_records.GetValueOrDefault(id)?.Record);
        }
    }

    public Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_records.Values.FirstOrDefault(r => r.Record.IdempotencyKey == key)?.Record);
        }
    }

    public Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return Select(s => s.Record.State == TransactionState.Preparing && s.AbandonAt <= now, limit);
    }

    /// <summary>
    /// The due transactions, claimed: their next attempt moves <paramref name="lease"/> past this log's clock. Not
    /// journaled and not forced (a claim the SQL log would lose in a crash is lost here too).
    /// </summary>
    public async Task<IReadOnlyList<TransactionRecord>> ClaimDueAsync(TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var due = await Select(s => s.Record is { CompletedAt: null, SettledAt: null } && s.Record.State != TransactionState.Preparing && (s.Record.NextAttemptAt is null || s.Record.NextAttemptAt <= now), limit);
        lock (_gate)
        {
            foreach (var record in due)
            {
                _records[record.Id] = _records[record.Id] with { Record = _records[record.Id].Record with { NextAttemptAt = now + lease } };
            }
        }

        return due;
    }

    public Task<IReadOnlyList<TransactionRecord>> ListUnfinishedAsync(int limit, CancellationToken cancellationToken) =>
        Select(s => s.Record.CompletedAt is null, limit);

    public Task<IReadOnlyList<TransactionRecord>> ListAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<TransactionRecord> page = _records.Values
                .Select(s => s.Record)
                .Where(r => string.CompareOrdinal(r.Id, after ?? string.Empty) > 0)
                .OrderBy(r => r.Id, StringComparer.Ordinal)
                .Take(limit)
                .ToList();
            return Task.FromResult(page);
        }
    }

    /// <summary>Store one record; a forced write makes everything written so far survive a crash.</summary>
    private void Write(Stored stored, string entry, bool forced)
    {
        _records[stored.Record.Id] = stored;
        Writes.Add((entry, forced));
        journal.Add(entry);
        if (forced)
        {
            _durable = new Dictionary<string, Stored>(_records);
        }
    }

    private Task<IReadOnlyList<TransactionRecord>> Select(Func<Stored, bool> filter, int limit)
    {
        lock (_gate)
        {
            IReadOnlyList<TransactionRecord> found = _records.Values.Where(filter).Select(s => s.Record).OrderBy(r => r.CreatedAt).Take(limit).ToList();
            return Task.FromResult(found);
        }
    }

    /// <summary>A record and its abandon moment on this log's clock, which the record does not carry.</summary>
    private sealed record Stored(TransactionRecord Record, DateTimeOffset AbandonAt);
}
