using Payments.Funds;
using TwoPhase.AspNetCore;

// A minimal TwoPhase participant: a payments service holding funds in one table (docs/participant-guide.md).
var builder = WebApplication.CreateBuilder(args);
builder.AddTwoPhase();                                                   // section "TwoPhase": database, secret, limits
builder.AddTwoPhaseParticipant<FundsReservations, PaymentRules>();       // "TwoPhase:Participant": the coordinator's URL

var app = builder.Build();
app.MapTwoPhaseParticipant();                                            // /v1/transactions/{id}/prepare|commit|abort, /batch
app.MapTwoPhaseHealth();                                                 // /health/live, /health/ready
app.MapAccounts();                                                       // this service's own API
app.Run();
