namespace TwoPhase.Simulation;

/// <summary>
/// Rows of one simulated database and what a crash of it keeps. Writes reach the disk in the order they were made
/// (a write-ahead log): a forced write flushes itself and everything before it; unforced writes since the last
/// flush are lost in a crash from a point the seed picks onwards, as with PostgreSQL's <c>synchronous_commit = off</c>
/// or SQLite's <c>synchronous = NORMAL</c>.
/// </summary>
public sealed class DurableStore<TValue>
    where TValue : class
{
    private readonly Dictionary<string, TValue> _rows = [];
    private readonly Dictionary<string, TValue> _durable = [];

    // Writes not yet on disk, oldest first.
    private readonly List<(string Key, TValue Value)> _pending = [];

    public IReadOnlyDictionary<string, TValue> Rows => _rows;

    public int Count => _rows.Count;

    public TValue? Get(string key) => _rows.GetValueOrDefault(key);

    public void Write(string key, TValue value, bool forced)
    {
        _rows[key] = value;
        _pending.Add((key, value));
        if (forced)
        {
            Flush();
        }
    }

    /// <summary>Everything written so far is on disk (another transaction's forced write flushed the log).</summary>
    public void Flush()
    {
        foreach (var (key, value) in _pending)
        {
            _durable[key] = value;
        }

        _pending.Clear();
    }

    /// <summary>The database crashes and restarts: a prefix of the unflushed writes survives. Returns how many were lost.</summary>
    public int Crash(Random random)
    {
        var kept = random.Next(_pending.Count + 1);
        for (var i = 0; i < kept; i++)
        {
            _durable[_pending[i].Key] = _pending[i].Value;
        }

        var lost = _pending.Count - kept;
        _pending.Clear();
        _rows.Clear();
        foreach (var (key, value) in _durable)
        {
            _rows[key] = value;
        }

        return lost;
    }
}
