using OrderService.Dashboard;
using OrderService.Orders;
using TwoPhase.AspNetCore;

// Content root = the binary folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddTwoPhaseService(defaultUrl: "http://127.0.0.1:8000", defaultSqliteFile: "data/order.db");
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase order service (coordinator)", "Places orders as two-phase-commit transactions across the storage and delivery participants.");
builder.AddTwoPhaseCoordinator();
builder.AddOrders();
builder.AddDashboard();

var app = builder.Build();
await app.InitializeTwoPhaseAsync();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapDashboard();
app.MapOrders();
app.MapTwoPhaseCoordinator();
app.MapLegacyOrders();
await app.RunAsync();
