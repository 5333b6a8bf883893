using TwoPhase.Persistence;

namespace TwoPhase.Tests.Storage;

public sealed class SqliteLedgerTests : LedgerComplianceTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}

public sealed class SqliteDecisionLogTests : DecisionLogComplianceTests
{
    private readonly SqliteTarget _target = new();

    protected override Task<Database> CreateDatabaseAsync() => _target.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _target.DisposeAsync();
    }
}
