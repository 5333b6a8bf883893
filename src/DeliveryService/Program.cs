using DeliveryService.Couriers;
using TwoPhase.AspNetCore;
using TwoPhase.Reference;

// Where it listens, Kestrel, JSON and error pages are the service's own (ReferenceHost); TwoPhase sets none of them.
var builder = ReferenceHost.CreateBuilder(args, defaultUrl: "http://127.0.0.1:8001");
builder.AddTwoPhase();
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase delivery service (participant)", "Couriers and deliveries; a two-phase-commit participant.");
builder.AddTwoPhaseParticipant<CourierReservations, DeliveryPrepareRules>();
builder.AddCouriers();

// The schema and the seed run from AddTwoPhase's hosted service, before the server listens.
var app = builder.Build();
app.UseReferenceHost();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapTwoPhaseParticipant();
app.MapTwoPhaseLegacyParticipant();
app.MapCouriers();
await app.RunAsync();
