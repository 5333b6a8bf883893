using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using TwoPhase.Harness.Audit;
using TwoPhase.Harness.Client;

namespace TwoPhase.Cli.Commands;

/// <summary><c>audit</c>: read the three services' state and check the invariants of DESIGN §2.</summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var orderUrl = CommandSupport.UrlOption("--order-url", "http://127.0.0.1:8000", "order service (coordinator)");
        var storageUrl = CommandSupport.UrlOption("--storage-url", "http://127.0.0.1:8002", "storage service");
        var deliveryUrl = CommandSupport.UrlOption("--delivery-url", "http://127.0.0.1:8001", "delivery service");
        var answers = new Option<FileInfo?>("--answers") { Description = "Answers written by `simulate --out`: hold the system to what clients were told." };
        var secret = CommandSupport.SecretOption();
        var quietTimeout = CommandSupport.QuietTimeoutOption();

        var command = new Command("audit", "Check atomicity, validity, conservation, no double booking and settlement across the three services.")
        {
            orderUrl, storageUrl, deliveryUrl, answers, secret, quietTimeout,
        };
        command.SetAction(async (parse, ct) =>
        {
            var console = AnsiConsole.Console;
            try
            {
                IReadOnlyList<ClientAnswer>? clientAnswers = null;
                if (parse.GetValue(answers) is { } file)
                {
                    await using var stream = file.OpenRead();
                    clientAnswers = await JsonSerializer.DeserializeAsync<List<ClientAnswer>>(stream, Json.Options, ct) ?? [];
                }

                using var http = HttpClients.Create(16);
                var reader = new ServiceSnapshotReader(
                    http,
                    new ServiceEndpoints(parse.GetValue(orderUrl)!, parse.GetValue(storageUrl)!, parse.GetValue(deliveryUrl)!),
                    CommandSupport.Secret(parse, secret));
                var report = await CommandSupport.RunAuditAsync(console, reader, clientAnswers, TimeSpan.FromSeconds(parse.GetValue(quietTimeout)), ct);
                return report.Passed ? ExitCodes.Ok : ExitCodes.Failed;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                console.MarkupLine("[yellow]Interrupted.[/]");
                return ExitCodes.Interrupted;
            }
            catch (Exception ex) when (ex is ApiException or HttpRequestException or IOException or JsonException)
            {
                console.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
                return ExitCodes.SetupFailed;
            }
        });
        return command;
    }
}
