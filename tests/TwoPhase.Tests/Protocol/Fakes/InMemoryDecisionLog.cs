using TwoPhase.Protocol;

namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>
/// An in-memory <see cref="IDecisionLog"/> with the same contract as the SQL one: begin is idempotent on
/// id and idempotency key, decide is conditional on still preparing. Every write lands in the journal.
/// </summary>
public sealed class InMemoryDecisionLog(TimeProvider time, Journal journal) : IDecisionLog
{
    private readonly Dictionary<string, TransactionRecord> _records = [];
    private readonly Lock _gate = new();

    /// <summary>Every <see cref="ScheduleRetryAsync"/> call: which transaction, when it was asked, for when.</summary>
    public List<(string Id, DateTimeOffset At, DateTimeOffset NextAttemptAt)> Retries { get; } = [];

    public Task<(TransactionRecord Record, bool Created)> BeginAsync(TransactionRequest request, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var existing = _records.Values.FirstOrDefault(r => request.IdempotencyKey is not null && r.IdempotencyKey == request.IdempotencyKey)
                ?? _records.GetValueOrDefault(request.Id);
            if (existing is not null)
            {
                journal.Add($"begin-duplicate:{request.Id}");
                return Task.FromResult((existing, false));
            }

            var record = new TransactionRecord(
                request.Id, TransactionState.Preparing, request.Participants.Select(p => p.Name).ToArray(), [], [], null, request.Payload,
                request.IdempotencyKey, request.RequestHash, time.GetUtcNow(), deadline, null, null, 0, null);
            _records[request.Id] = record;
            journal.Add($"begin:{request.Id}");
            return Task.FromResult((record, true));
        }
    }

    public Task<TransactionRecord> DecideAsync(string id, Decision decision, string? reason, IReadOnlyList<Vote> votes, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var record = _records[id];
            if (record.State != TransactionState.Preparing)
            {
                journal.Add($"decide-lost:{id}:{decision.ToString().ToLowerInvariant()}");
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
            _records[id] = record;
            journal.Add($"decide:{id}:{decision.ToString().ToLowerInvariant()}");
            return Task.FromResult(record);
        }
    }

    public Task AcknowledgeAsync(string id, IReadOnlyCollection<string> acknowledged, bool complete, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var record = _records[id];
            _records[id] = record with { Acknowledged = [.. acknowledged], CompletedAt = complete ? time.GetUtcNow() : record.CompletedAt };
            journal.Add(complete ? $"completed:{id}" : $"acknowledged:{id}:{string.Join(',', acknowledged)}");
            return Task.CompletedTask;
        }
    }

    public Task ScheduleRetryAsync(string id, DateTimeOffset nextAttemptAt, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var record = _records[id];
            if (record.CompletedAt is null)
            {
                _records[id] = record with { Attempts = record.Attempts + 1, NextAttemptAt = nextAttemptAt };
            }

            Retries.Add((id, time.GetUtcNow(), nextAttemptAt));
            journal.Add($"retry:{id}");
            return Task.CompletedTask;
        }
    }

    public Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_records.GetValueOrDefault(id));
        }
    }

    public Task<TransactionRecord?> FindByIdempotencyKeyAsync(string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_records.Values.FirstOrDefault(r => r.IdempotencyKey == key));
        }
    }

    public Task<IReadOnlyList<TransactionRecord>> FindAbandonedAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        Select(r => r.State == TransactionState.Preparing && r.Deadline <= now, limit);

    public Task<IReadOnlyList<TransactionRecord>> FindUnfinishedDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        Select(r => r.CompletedAt is null && r.State != TransactionState.Preparing && (r.NextAttemptAt is null || r.NextAttemptAt <= now), limit);

    public Task<IReadOnlyList<TransactionRecord>> ListUnfinishedAsync(int limit, CancellationToken cancellationToken) =>
        Select(r => r.CompletedAt is null, limit);

    public Task<IReadOnlyList<TransactionRecord>> ListAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<TransactionRecord> page = _records.Values
                .Where(r => string.CompareOrdinal(r.Id, after ?? string.Empty) > 0)
                .OrderBy(r => r.Id, StringComparer.Ordinal)
                .Take(limit)
                .ToList();
            return Task.FromResult(page);
        }
    }

    private Task<IReadOnlyList<TransactionRecord>> Select(Func<TransactionRecord, bool> filter, int limit)
    {
        lock (_gate)
        {
            IReadOnlyList<TransactionRecord> found = _records.Values.Where(filter).OrderBy(r => r.CreatedAt).Take(limit).ToList();
            return Task.FromResult(found);
        }
    }
}
