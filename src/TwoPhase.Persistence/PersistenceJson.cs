using System.Text.Json.Serialization;
using TwoPhase.Protocol;

namespace TwoPhase.Persistence;

/// <summary>Source-generated JSON for the few JSON columns (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(string[]), TypeInfoPropertyName = "StringArray")]
[JsonSerializable(typeof(Vote[]), TypeInfoPropertyName = "VoteArray")]
[JsonSerializable(typeof(Dictionary<string, string>), TypeInfoPropertyName = "Payloads")]
internal sealed partial class PersistenceJson : JsonSerializerContext;
