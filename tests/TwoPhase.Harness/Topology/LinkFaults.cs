namespace TwoPhase.Harness.Topology;

/// <summary>Per-link faults between nodes by name ("harness" names the root namespace, 10.211.0.1).</summary>
public sealed class LinkFaults
{
    /// <summary>The name of the root namespace's side (the harness: load, audit) in link faults.</summary>
    public const string Harness = "harness";

    internal LinkFaults()
    {
    }

    /// <summary>Whether tc netem works in this kernel (tried once in a scratch namespace).</summary>
    public static bool DelaySupported => throw new NotImplementedException();

    public IReadOnlyList<string> Active => throw new NotImplementedException();

    public Task CutAsync(string from, string to, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task CutBothAsync(string a, string b, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task LossAsync(string a, string b, int percent, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task SlowAsync(string node, int kilobitsPerSecond, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task DelayAsync(string a, string b, TimeSpan delay, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    public Task HealAsync(CancellationToken cancellationToken = default) => throw new NotImplementedException();
}
