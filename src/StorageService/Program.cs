using StorageService.Products;
using TwoPhase.AspNetCore;

// Content root = the binary folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddTwoPhaseService(defaultUrl: "http://127.0.0.1:8002", defaultSqliteFile: "data/storage.db");
builder.AddTwoPhaseTelemetry();
builder.AddTwoPhaseApiDocs("TwoPhase storage service (participant)", "Products and stock; a two-phase-commit participant.");
builder.AddTwoPhaseParticipant<StockReservations, OrderLinesRules>();
builder.AddProducts();

var app = builder.Build();
await app.InitializeTwoPhaseAsync();
app.MapTwoPhaseHealth();
app.MapTwoPhaseTelemetry();
app.MapTwoPhaseApiDocs();
app.MapTwoPhaseParticipant();
app.MapTwoPhaseLegacyParticipant();
app.MapProducts();
await app.RunAsync();
