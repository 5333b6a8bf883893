using System.Globalization;
using Microsoft.Extensions.Options;
using TwoPhase.AspNetCore;

namespace OrderService.Orders;

/// <summary>
/// The old system's <c>POST /order?order_id=N</c>, answered with the same JSON, so its client scripts run
/// unchanged. One unit of the default product and one courier; a repeated order id is the same order.
/// </summary>
public static class LegacyOrdersApi
{
    public static IEndpointRouteBuilder MapLegacyOrders(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/order", async Task<IResult> (HttpRequest request, OrderPlacement placement, IOptions<OrderOptions> options, CancellationToken ct) =>
        {
            var raw = request.Query["order_id"];
            if (raw.Count != 1 || !long.TryParse(raw[0], NumberStyles.None, CultureInfo.InvariantCulture, out var orderId))
            {
                return Problems.Invalid("order_id", "a non-negative whole number is required");
            }

            var payload = new OrderPayload(Guid.CreateVersion7().ToString("N"), [new OrderLine(options.Value.DefaultSku, 1)], null, orderId);
            var placed = await placement.PlaceAsync(payload, $"legacy-order:{orderId}", ct);
            if (placed.Problem is not null)
            {
                return placed.Problem;
            }

            var order = placed.Order!;
            return order.Status == "committed"
                ? TypedResults.Ok(new { status = "order committed", orderId })
                : TypedResults.Ok(new
                {
                    status = "order rolled back",
                    orderId,
                    votes = order.Votes.ToDictionary(v => v.Key, v => v.Value.Vote == "yes" ? "yes" : "no"),
                });
        }).WithTags("Old protocol").RequireTransactionAdmission();
        return endpoints;
    }
}
