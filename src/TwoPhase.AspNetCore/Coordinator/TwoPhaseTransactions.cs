using System.Text.Json;
using Microsoft.Extensions.Hosting;
using TwoPhase.Protocol;

namespace TwoPhase.AspNetCore;

/// <summary>
/// A transaction to run from the host's own code: its id, and each participant's payload. Participants are named as in
/// <c>TwoPhase:Coordinator:Participants</c>; each receives only its own payload with PREPARE.
/// </summary>
public sealed class TwoPhaseTransaction
{
    private readonly List<KeyValuePair<string, string>> _payloads = [];

    /// <param name="id">The transaction's id, unique: 1-64 characters of letters, digits and <c>. _ : -</c>.</param>
    public TwoPhaseTransaction(string id)
    {
        if (!Problems.IsValidId(id))
        {
            throw new ArgumentException($"A transaction id must be 1-{Problems.MaxIdLength} characters of letters, digits and . _ : - (got '{id}').", nameof(id));
        }

        Id = id;
    }

    /// <summary>The transaction's id.</summary>
    public string Id { get; }

    /// <summary>A retry key: a second run under the same key runs nothing and reports the first one's outcome.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// What identifies the request behind the key, to tell a retry from a different request that reuses it (then
    /// <see cref="TwoPhaseTransactions.RunAsync"/> throws <see cref="IdempotencyKeyReusedException"/>). Unset: not checked.
    /// </summary>
    public string? RequestHash { get; init; }

    /// <summary>The caller's own JSON, kept with the transaction in the decision log and sent to no participant.</summary>
    public string? Metadata { get; init; }

    /// <summary>The participants in the order they were added, each with its payload.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Payloads => _payloads;

    /// <summary>Add <paramref name="participant"/> with <paramref name="payload"/>, serialized as JSON (camelCase, the wire's convention).</summary>
    public TwoPhaseTransaction With(string participant, object payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return WithJson(participant, JsonSerializer.Serialize(payload, JsonSerializerOptions.Web));
    }

    /// <summary>Add <paramref name="participant"/> with a payload already serialized: a JSON object.</summary>
    public TwoPhaseTransaction WithJson(string participant, string json)
    {
        ArgumentException.ThrowIfNullOrEmpty(participant);
        ArgumentNullException.ThrowIfNull(json);
        if (_payloads.Any(p => p.Key == participant))
        {
            throw new ArgumentException($"Participant '{participant}' is already in transaction {Id}.", nameof(participant));
        }

        if (!IsJsonObject(json))
        {
            throw new ArgumentException($"The payload for '{participant}' must be a JSON object.", nameof(json));
        }

        _payloads.Add(new(participant, json));
        return this;
    }

    private static bool IsJsonObject(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>An idempotency key was used before for a different request (another <see cref="TwoPhaseTransaction.RequestHash"/>).</summary>
public sealed class IdempotencyKeyReusedException(string key, string transactionId)
    : InvalidOperationException($"The idempotency key '{key}' was used for a different request (transaction {transactionId}).")
{
    /// <summary>The key.</summary>
    public string Key => key;

    /// <summary>The transaction that holds it.</summary>
    public string TransactionId => transactionId;
}

/// <summary>
/// Runs transactions from the host's own code (the coordinator's typed API): begin with participants and each one's
/// payload, get the outcome once the decision is durable. Registered by <c>AddTwoPhaseCoordinator</c>.
/// </summary>
public sealed class TwoPhaseTransactions(
    TwoPhaseCoordinator coordinator,
    IDecisionLog log,
    IReadOnlyDictionary<string, ParticipantRef> participants,
    IHostApplicationLifetime lifetime)
{
    /// <summary>
    /// Run <paramref name="transaction"/> to a durable decision and one round of phase 2. Under a key already used for the
    /// same request nothing runs, and the first one's outcome comes back with <see cref="TransactionOutcome.Replayed"/>.
    /// </summary>
    /// <param name="transaction">What to run.</param>
    /// <param name="cancellationToken">
    /// Stops waiting for the outcome, not the transaction: once begun it runs on to its decision (only the host's
    /// stopping cuts it, and recovery finishes it), so a caller that gives up never leaves it half driven.
    /// </param>
    /// <exception cref="ArgumentException">No participants, or one not configured (named).</exception>
    /// <exception cref="IdempotencyKeyReusedException">The key was used for a different request.</exception>
    public async Task<TransactionOutcome> RunAsync(TwoPhaseTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (transaction.Payloads.Count == 0)
        {
            throw new ArgumentException($"Transaction {transaction.Id} has no participants: add them with With or WithJson.", nameof(transaction));
        }

        var members = transaction.Payloads
            .Select(p => participants.TryGetValue(p.Key, out var member)
                ? member
                : throw new ArgumentException($"Participant '{p.Key}' is not configured (TwoPhase:Coordinator:Participants).", nameof(transaction)))
            .ToList();
        var request = new TransactionRequest(
            transaction.Id,
            members,
            transaction.Payloads.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            transaction.IdempotencyKey,
            transaction.RequestHash,
            transaction.Metadata);
        var (outcome, created) = await coordinator.ExecuteAsync(request, lifetime.ApplicationStopping).WaitAsync(cancellationToken);
        if (!created && transaction.RequestHash is not null
            && (await log.FindAsync(outcome.Id, cancellationToken))?.RequestHash is { } first && first != transaction.RequestHash)
        {
            throw new IdempotencyKeyReusedException(transaction.IdempotencyKey ?? transaction.Id, outcome.Id);
        }

        return outcome with { Replayed = !created };
    }

    /// <summary>A transaction as the decision log holds it; null when unknown.</summary>
    public Task<TransactionRecord?> FindAsync(string id, CancellationToken cancellationToken = default) => log.FindAsync(id, cancellationToken);
}
