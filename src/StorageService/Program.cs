using StorageService.Products;
using TwoPhase.AspNetCore;
using TwoPhase.Reference;

// Where it listens, Kestrel, JSON and error pages are the service's own (ReferenceHost); TwoPhase sets none of them.
var builder = ReferenceHost.CreateBuilder(args, defaultUrl: "http://127.0.0.1:8002");
builder.AddTwoPhase();
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase storage service (participant)", "Products and stock; a two-phase-commit participant.");
builder.AddTwoPhaseParticipant<StockReservations, OrderLinesRules>();
builder.AddProducts();

// The schema and the seed run from AddTwoPhase's hosted service, before the server listens.
var app = builder.Build();
app.UseReferenceHost();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapTwoPhaseParticipant();
app.MapTwoPhaseLegacyParticipant();
app.MapProducts();
await app.RunAsync();
