using System.Text.Json;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;
using TwoPhase.Persistence;

namespace StorageService.Products;

/// <summary>
/// What a PREPARE must carry for storage (<see cref="StockPrepare"/>): <c>{"items":[{"sku","quantity"}]}</c>, and optionally
/// the <c>orderId</c> it is for. An unknown field is refused, as in every body the services own (docs/security.md): storage
/// receives only its own payload, so anything else is a caller's mistake, not another participant's data.
/// </summary>
public sealed class OrderLinesRules(IOptions<StorageOptions> options) : IPrepareRules
{
    private static readonly string[] Fields = ["orderId", "items"];
    private static readonly string[] LineFields = ["sku", "quantity"];

    public (string Field, string Message)? Validate(JsonElement body)
    {
        if (Unknown(body, Fields) is { } unknown)
        {
            return (unknown, "unknown field");
        }

        if (body.TryGetProperty("orderId", out var orderId) && !IsOrderId(orderId))
        {
            return ("orderId", "must be an id or a whole number");
        }

        if (!body.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
        {
            return ("items", "an array of {sku, quantity} is required");
        }

        var count = items.GetArrayLength();
        if (count == 0 || count > options.Value.MaxLines)
        {
            return ("items", $"must hold 1 to {options.Value.MaxLines} lines");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Object && Unknown(item, LineFields) is { } unknownInLine)
            {
                return ($"items[{index}].{unknownInLine}", "unknown field");
            }

            if (item.ValueKind != JsonValueKind.Object
                || !item.TryGetProperty("sku", out var sku) || sku.ValueKind != JsonValueKind.String || !Problems.IsValidId(sku.GetString()))
            {
                return ($"items[{index}].sku", "must be a SKU: 1-64 characters of letters, digits and . _ : -");
            }

            if (!item.TryGetProperty("quantity", out var quantity) || quantity.ValueKind != JsonValueKind.Number || !quantity.TryGetInt64(out var q) || q < 1 || q > options.Value.MaxQuantity)
            {
                return ($"items[{index}].quantity", $"must be a whole number from 1 to {options.Value.MaxQuantity}");
            }

            if (!seen.Add(sku.GetString()!))
            {
                return ($"items[{index}].sku", "appears twice in one order");
            }

            index++;
        }

        return null;
    }

    /// <summary>
    /// The lines of a validated body, in SKU order so that concurrent reservations lock rows in one order. A body that is
    /// not one (no rules ran: the participant was registered without them) is refused as invalid before anything is
    /// reserved, so it fails its own PREPARE, not the group commit it shares.
    /// </summary>
    public static IReadOnlyList<OrderLine> Parse(string payload)
    {
        try
        {
            using var doc = JsonDocument.Parse(payload);
            return doc.RootElement.GetProperty("items").EnumerateArray()
                .Select(i => new OrderLine(i.GetProperty("sku").GetString()!, i.GetProperty("quantity").GetInt64()))
                .OrderBy(l => l.Sku, StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidPayloadException("items", "an array of {sku, quantity} is required");
        }
    }

    /// <summary>The first member of <paramref name="body"/> not among <paramref name="known"/>, if any (bounded: it is echoed back).</summary>
    private static string? Unknown(JsonElement body, string[] known) =>
        body.EnumerateObject().Select(p => p.Name).FirstOrDefault(name => !known.Contains(name, StringComparer.Ordinal)) is { } name
            ? name.Length > 64 ? name[..64] : name
            : null;

    private static bool IsOrderId(JsonElement id) => id.ValueKind switch
    {
        JsonValueKind.Null => true,
        JsonValueKind.Number => id.TryGetInt64(out _),
        JsonValueKind.String => Problems.IsValidId(id.GetString()),
        _ => false,
    };
}

/// <summary>The old protocol's PREPARE for storage: one unit of the default product (DESIGN §3).</summary>
public sealed class LegacyOrderLines(IOptions<StorageOptions> options) : ILegacyPrepareRules
{
    public string FromLegacy(string transactionId, JsonElement orderId) =>
        JsonSerializer.Serialize(new StockPrepare(orderId.ValueKind switch
        {
            JsonValueKind.String => orderId.GetString(),
            JsonValueKind.Number => orderId.GetRawText(),
            _ => null,
        }, [new OrderLine(options.Value.DefaultSku, 1)]), JsonSerializerOptions.Web);
}
