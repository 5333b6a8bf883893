using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace TwoPhase.AspNetCore;

/// <summary>Problem details for bad input, and the input rules every endpoint shares.</summary>
public static partial class Problems
{
    public const int MaxIdLength = 64;

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,64}$")]
    private static partial Regex IdPattern();

    /// <summary>True for ids we accept: 1-64 characters of letters, digits and <c>._:-</c>.</summary>
    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    public static ProblemHttpResult Invalid(string field, string message) =>
        TypedResults.Problem(new Microsoft.AspNetCore.Mvc.ValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = StatusCodes.Status400BadRequest,
            Title = "The request is not valid.",
            Detail = $"{field}: {message}",
        });

    public static ProblemHttpResult Status(int status, string title, string? detail = null) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: status);

    public static ProblemHttpResult NotFound(string what) => Status(StatusCodes.Status404NotFound, $"{what} not found.");

    public static ProblemHttpResult Conflict(string detail) => Status(StatusCodes.Status409Conflict, "Conflict.", detail);

    /// <summary>Check an id taken from a route; null when fine.</summary>
    public static ProblemHttpResult? CheckId(string field, string? id) =>
        IsValidId(id) ? null : Invalid(field, $"must be 1-{MaxIdLength} characters of letters, digits and . _ : -");

    /// <summary>
    /// Read a JSON body into <typeparamref name="T"/>: 415 for another content type, 413 when too large,
    /// 400 naming the path for malformed JSON or wrong types.
    /// </summary>
    public static async Task<(T? Value, ProblemHttpResult? Problem)> ReadJsonAsync<T>(HttpRequest request, int maxBytes, JsonSerializerOptions options)
    {
        if (request.ContentLength is > 0 && !(request.HasJsonContentType()))
        {
            return (default, Status(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type.", "Send the body as application/json."));
        }

        if (request.ContentLength > maxBytes)
        {
            return (default, Status(StatusCodes.Status413PayloadTooLarge, "Request body too large.", $"The limit is {maxBytes} bytes."));
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
            return (default, Invalid(string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.'), "malformed JSON or a value of the wrong type"));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (default, Status(StatusCodes.Status413PayloadTooLarge, "Request body too large.", $"The limit is {maxBytes} bytes."));
        }
    }
}
