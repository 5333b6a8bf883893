namespace TwoPhase.Tests.Protocol.Fakes;

/// <summary>
/// One ordered record of everything the fakes saw, shared by the log and the transport, so a test can
/// assert on the order of durable writes and messages ("decide:commit" before any "commit:storage").
/// </summary>
public sealed class Journal
{
    private readonly List<string> _entries = [];
    private readonly Lock _gate = new();

    public void Add(string entry)
    {
        lock (_gate)
        {
            _entries.Add(entry);
        }
    }

    public IReadOnlyList<string> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    public int IndexOf(string entry) => Entries.ToList().IndexOf(entry);

    public int FirstIndexStartingWith(string prefix) => Entries.ToList().FindIndex(e => e.StartsWith(prefix, StringComparison.Ordinal));

    public int Count(string prefix) => Entries.Count(e => e.StartsWith(prefix, StringComparison.Ordinal));
}
