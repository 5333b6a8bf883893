namespace TwoPhase.AspNetCore;

/// <summary>
/// The runtime's own logging scope. It stays here, not in TwoPhase.AspNetCore.Observability with the exporters, because
/// the participant endpoints open it on every protocol message whether or not anything exports. The class keeps the
/// name it had before the exporters moved out, so the endpoints that use it did not change.
/// </summary>
internal static class TelemetryExtensions
{
    /// <summary>The scope's one field, named as in the log messages, so structured sinks index it the same way.</summary>
    internal sealed class TransactionLogScope(string transactionId) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => 1;

        public KeyValuePair<string, object?> this[int index] =>
            index == 0 ? new("TransactionId", transactionId) : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            yield return this[0];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => $"TransactionId:{transactionId}";
    }
}
