using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeliveryService.Couriers;
using TwoPhase.Persistence;
using TwoPhase.Protocol;
// Only storage's reservations are needed here.
using StockReservations = StorageService.Products.StockReservations;

namespace TwoPhase.Cli.Bench;

/// <summary>
/// The bound: per order, the same local transactions the three services run, against three databases of the
/// same server, from this one process with no HTTP in between. Same classes (decision log, ledger participant,
/// the services' own <see cref="StockReservations"/> and <see cref="CourierReservations"/>), same group commit,
/// same pool sizes; what is missing is Kestrel, HttpClient, JSON on the wire, and three processes sharing two
/// cores. Real throughput divided by this one says how much of the cost is the database.
/// </summary>
public sealed class DirectBound : IAsyncDisposable
{
    private static readonly TimeSpan PrepareDeadline = TimeSpan.FromSeconds(2);
    private static readonly string[] ParticipantNames = ["storage", "delivery"];

    // The coordinator's directory; the URLs are never called, only their names are recorded.
    private static readonly IReadOnlyList<ParticipantRef> Participants =
        [new("storage", new Uri("http://storage.invalid")), new("delivery", new Uri("http://delivery.invalid"))];

    private readonly Database _order;
    private readonly Database _storage;
    private readonly Database _delivery;
    private readonly SqlDecisionLog _log;
    private readonly LedgerParticipant _stock;
    private readonly LedgerParticipant _couriers;

    private DirectBound(Database order, Database storage, Database delivery)
    {
        _order = order;
        _storage = storage;
        _delivery = delivery;
        _log = new SqlDecisionLog(order, TimeProvider.System);
        _stock = new LedgerParticipant(storage, new StockReservations(), TimeProvider.System, NoProtocolHooks.Instance);
        _couriers = new LedgerParticipant(delivery, new CourierReservations(), TimeProvider.System, NoProtocolHooks.Instance);
    }

    /// <summary>Opens the three databases (fresh ones: the schemas are created here) and seeds products and couriers.</summary>
    public static async Task<DirectBound> CreateAsync(
        string orderConnection, string storageConnection, string deliveryConnection, int poolSize, BenchCatalog catalog, int couriers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        Database Open(string connection) =>
            Database.Create(new DatabaseOptions { Provider = "postgres", ConnectionString = connection, MaxPoolSize = poolSize }, "unused.db");

        var bound = new DirectBound(Open(orderConnection), Open(storageConnection), Open(deliveryConnection));
        try
        {
            await bound._log.InitializeAsync(cancellationToken);
            await bound._stock.InitializeAsync(cancellationToken);
            await bound._couriers.InitializeAsync(cancellationToken);
            await BenchRows.InsertProductsAsync(bound._storage, catalog, cancellationToken);
            await BenchRows.InsertCouriersAsync(bound._delivery, couriers, cancellationToken);
            return bound;
        }
        catch
        {
            await bound.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One order, as the coordinator runs it: the preparing row, both PREPAREs at once, the decision, both
    /// COMMITs (or ABORTs) at once, the completed mark.
    /// </summary>
    public async Task<Attempt> PlaceAsync(IReadOnlyList<OrderLine> items, string clientOrderId, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString("N");
        // The order service's payload and request hash, so the rows are the same size as the real ones.
        var payload = JsonSerializer.Serialize(new { orderId = id, items, clientOrderId, legacyOrderId = (long?)null }, JsonSerializerOptions.Web);
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { items, clientOrderId }, JsonSerializerOptions.Web))));
        var (record, created) = await _log.BeginAsync(
            new TransactionRequest(id, Participants, TransactionRequest.SamePayload(Participants, payload), clientOrderId, hash), DateTimeOffset.UtcNow + PrepareDeadline, DateTimeOffset.UtcNow + (PrepareDeadline * 2), cancellationToken);
        if (!created)
        {
            return new Attempt(BenchOutcome.Error, id, $"transaction {record.Id} already existed");
        }

        var storageVote = _stock.PrepareAsync(id, payload, cancellationToken);
        var deliveryVote = _couriers.PrepareAsync(id, payload, cancellationToken);
        var (sv, sr) = await storageVote;
        var (dv, dr) = await deliveryVote;
        var votes = new[] { new Vote("storage", sv, sr), new Vote("delivery", dv, dr) };
        var (decision, reason) = CoordinatorRules.Decide(ParticipantNames, votes);
        // Keyed, as the coordinator's: its abort is forced.
        var decided = await _log.DecideAsync(id, decision, reason, votes, DateTimeOffset.UtcNow + (PrepareDeadline * 2), Durability.Forced, cancellationToken);
        if (decided.State is not (TransactionState.Committed or TransactionState.Aborted))
        {
            return new Attempt(BenchOutcome.Error, id, $"decided {decided.State}");
        }

        var commit = decided.State == TransactionState.Committed;
        var results = await Task.WhenAll(
            commit ? _stock.CommitAsync(id, cancellationToken) : _stock.AbortAsync(id, cancellationToken),
            commit ? _couriers.CommitAsync(id, cancellationToken) : _couriers.AbortAsync(id, cancellationToken));
        if (results.FirstOrDefault(r => r.Conflict) is { } conflict)
        {
            return new Attempt(BenchOutcome.Error, id, $"phase 2 conflict: {conflict.Detail}");
        }

        await _log.AcknowledgeAsync(id, ParticipantNames, complete: true, cancellationToken);
        return new Attempt(commit ? BenchOutcome.Committed : BenchOutcome.Aborted, id);
    }

    /// <summary>The delivery service's <c>POST /v1/deliveries/{id}/complete</c>: the same set write through the same group commit.</summary>
    public async Task<bool> CompleteAsync(Attempt attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return attempt.TransactionId is { } id
            && await _delivery.WriteBatchedAsync(CourierReservations.Completions, id, cancellationToken) is not null;
    }

    public async ValueTask DisposeAsync()
    {
        await _order.DisposeAsync();
        await _storage.DisposeAsync();
        await _delivery.DisposeAsync();
    }
}
