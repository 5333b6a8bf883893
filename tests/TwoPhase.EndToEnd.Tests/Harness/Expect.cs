namespace TwoPhase.EndToEnd.Tests.Harness;

// The wire types are the services' own records (Reference.Contracts, TwoPhase.AspNetCore) and the harness's
// client (TwoPhase.Harness.Client); only the tests' assertions on them live here.

/// <summary>Assertions on an order answer that show the whole answer when they fail.</summary>
public static class Expect
{
    public static OrderView Order(OrderResult placed, string status, int? httpStatus = null)
    {
        Xunit.Assert.True(
            placed.Order is not null && placed.Order.Status == status && (httpStatus is null || placed.Status == httpStatus),
            $"expected an order {status}{(httpStatus is null ? "" : $" with HTTP {httpStatus}")}, got HTTP {placed.Status}: {placed.Body}");
        return placed.Order!;
    }
}
