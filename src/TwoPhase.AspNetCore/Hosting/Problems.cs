using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace TwoPhase.AspNetCore;

/// <summary>Problem details for bad input, and the input rules every endpoint shares.</summary>
public static partial class Problems
{
    /// <summary>Longest id accepted anywhere (transaction, participant, idempotency key).</summary>
    public const int MaxIdLength = 64;

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,64}$")]
    private static partial Regex IdPattern();

    /// <summary>True for ids we accept: 1-64 characters of letters, digits and <c>._:-</c>.</summary>
    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    /// <summary>A 400 validation problem naming the field at fault.</summary>
    public static ProblemHttpResult Invalid(string field, string message) =>
        TypedResults.Problem(new Microsoft.AspNetCore.Mvc.ValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = StatusCodes.Status400BadRequest,
            Title = "The request is not valid.",
            Detail = $"{field}: {message}",
        });

    /// <summary>A problem with any status, for answers the other helpers do not cover.</summary>
    public static ProblemHttpResult Status(int status, string title, string? detail = null) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: status);

    /// <summary>A 404 naming what was not found.</summary>
    public static ProblemHttpResult NotFound(string what) => Status(StatusCodes.Status404NotFound, $"{what} not found.");

    /// <summary>A 409: the request contradicts a state already durable.</summary>
    public static ProblemHttpResult Conflict(string detail) => Status(StatusCodes.Status409Conflict, "Conflict.", detail);

    /// <summary>Check an id taken from a route; null when fine.</summary>
    public static ProblemHttpResult? CheckId(string field, string? id) =>
        IsValidId(id) ? null : Invalid(field, $"must be 1-{MaxIdLength} characters of letters, digits and . _ : -");

    /// <summary>
    /// Read a JSON body into <typeparamref name="T"/>: 415 for another content type (or none, unless
    /// <paramref name="allowMissingContentType"/>), 413 when too large, 400 naming the path for malformed JSON,
    /// wrong types or, with <see cref="StrictJson"/>, unknown members.
    /// </summary>
    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadJsonAsync<T>(HttpRequest request, int maxBytes, JsonSerializerOptions options, bool allowMissingContentType = false)
    {
        if (!request.HasJsonContentType() && !(allowMissingContentType && string.IsNullOrEmpty(request.ContentType)))
        {
            return (default, Status(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type.", "Send the body as application/json."));
        }

        if (request.ContentLength > maxBytes)
        {
            request.HttpContext.Response.Headers.Connection = "close";
            return (default, TooLarge(maxBytes));
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, options, request.HttpContext.RequestAborted);
            return value is null or JsonElement { ValueKind: not JsonValueKind.Object }
                ? (default, Invalid("body", "a JSON object is required"))
                : (value, null);
        }
        catch (JsonException e)
        {
            return (default, Invalid(FieldOf(e), e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "unknown field" : "malformed JSON or a value of the wrong type"));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // The rest of the body stays unread: tell the client this connection is done.
            request.HttpContext.Response.Headers.Connection = "close";
            return (default, TooLarge(maxBytes));
        }
        catch (BadHttpRequestException e)
        {
            return (default, Status(e.StatusCode, "Bad request.", "The request body could not be read."));
        }
    }

    private static ProblemHttpResult TooLarge(int maxBytes) =>
        Status(StatusCodes.Status413PayloadTooLarge, "Request body too large.", $"The limit is {maxBytes} bytes.");

    /// <summary>The JSON path of the offending field, without the leading <c>$.</c>; <c>body</c> for the whole.</summary>
    private static string FieldOf(JsonException e)
    {
        var path = e.Path;
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return "body";
        }

        // Bound what we echo back: the path comes from the caller.
        path = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        return path.Length > 200 ? path[..200] : path;
    }
}
