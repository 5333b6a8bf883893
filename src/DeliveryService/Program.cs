using DeliveryService.Couriers;
using TwoPhase.AspNetCore;

// Content root = the binary folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddTwoPhaseService(defaultUrl: "http://127.0.0.1:8001", defaultSqliteFile: "data/delivery.db");
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase delivery service (participant)", "Couriers and deliveries; a two-phase-commit participant.");
builder.AddTwoPhaseParticipant<CourierReservations, DeliveryPrepareRules>();
builder.AddCouriers();

var app = builder.Build();
await app.InitializeTwoPhaseAsync();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapTwoPhaseParticipant();
app.MapTwoPhaseLegacyParticipant();
app.MapCouriers();
await app.RunAsync();
