using System.Text.Json;
using System.Text.Json.Serialization;

namespace TwoPhase.Harness.Client;

/// <summary>The one set of JSON options the CLI uses for the wire and for its own files.</summary>
public static class Json
{
    /// <summary>Web defaults (camelCase, case-insensitive), enums as camelCase strings, ids read leniently.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            WriteIndented = false,
            TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.Converters.Add(new LenientStringConverter());
        options.MakeReadOnly();
        return options;
    }

    /// <summary>
    /// Reads a JSON number or boolean into a string property. The API says ids are strings, but a
    /// service keying couriers by an integer column is an easy slip; the auditor only compares ids,
    /// so reading both keeps it useful instead of failing the whole snapshot on a type detail.
    /// </summary>
    private sealed class LenientStringConverter : JsonConverter<string>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType switch
            {
                JsonTokenType.String => reader.GetString(),
                JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                JsonTokenType.Null => null,
                _ => throw new JsonException($"Expected a string, got {reader.TokenType}."),
            };

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value);
    }
}
