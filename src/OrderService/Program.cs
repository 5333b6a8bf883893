using OrderService.Dashboard;
using OrderService.Orders;
using TwoPhase.AspNetCore;
using TwoPhase.Reference;

// Where it listens, Kestrel, JSON and error pages are the service's own (ReferenceHost); TwoPhase sets none of them.
var builder = ReferenceHost.CreateBuilder(args, defaultUrl: "http://127.0.0.1:8000");
builder.AddTwoPhase();
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase order service (coordinator)", "Places orders as two-phase-commit transactions across the storage and delivery participants.");
builder.AddTwoPhaseCoordinator();
builder.AddOrders();
builder.AddDashboard();

// The schema and the other start-up tasks run from AddTwoPhase's hosted service, before the server listens.
var app = builder.Build();
app.UseReferenceHost();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapDashboard();
app.MapOrders();
app.MapTwoPhaseCoordinator();
app.MapLegacyOrders();
await app.RunAsync();
