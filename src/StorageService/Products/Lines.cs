using System.Text.Json;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;

namespace StorageService.Products;

/// <summary>What a PREPARE must carry for storage: <c>{"items":[{"sku","quantity"}]}</c>; the rest is ignored.</summary>
public sealed class OrderLinesRules(IOptions<StorageOptions> options) : IPrepareRules
{
    public (string Field, string Message)? Validate(JsonElement body)
    {
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

    public string FromLegacy(string transactionId, JsonElement orderId) =>
        JsonSerializer.Serialize(new { orderId = orderId.ValueKind == JsonValueKind.Undefined ? (JsonElement?)null : orderId, items = new[] { new OrderLine(options.Value.DefaultSku, 1) } }, JsonSerializerOptions.Web);

    /// <summary>The lines of a validated body, in SKU order so that concurrent reservations lock rows in one order.</summary>
    public static IReadOnlyList<OrderLine> Parse(string payload)
    {
        using var doc = JsonDocument.Parse(payload);
        return doc.RootElement.GetProperty("items").EnumerateArray()
            .Select(i => new OrderLine(i.GetProperty("sku").GetString()!, i.GetProperty("quantity").GetInt64()))
            .OrderBy(l => l.Sku, StringComparer.Ordinal)
            .ToList();
    }
}
