namespace TwoPhase.Cli.Hosting;

/// <summary>The three services of the reference application.</summary>
public enum ServiceKind
{
    /// <summary>The coordinator (OrderService), :8000 by default.</summary>
    Order,

    /// <summary>The courier participant (DeliveryService), :8001 by default.</summary>
    Delivery,

    /// <summary>The stock participant (StorageService), :8002 by default.</summary>
    Storage,
}

/// <summary>Names and readiness fallbacks per service.</summary>
public static class ServiceKinds
{
    public static IReadOnlyList<ServiceKind> All { get; } = [ServiceKind.Order, ServiceKind.Delivery, ServiceKind.Storage];

    /// <summary>The project folder under src/ and the assembly name.</summary>
    public static string ProjectName(this ServiceKind kind) => kind switch
    {
        ServiceKind.Order => "OrderService",
        ServiceKind.Delivery => "DeliveryService",
        ServiceKind.Storage => "StorageService",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The name the coordinator knows a participant by, and the log file name.</summary>
    public static string ShortName(this ServiceKind kind) => kind switch
    {
        ServiceKind.Order => "order",
        ServiceKind.Delivery => "delivery",
        ServiceKind.Storage => "storage",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>A cheap read that answers 200 once the service serves its API; used if /health/ready is missing.</summary>
    public static string FallbackReadyPath(this ServiceKind kind) => kind switch
    {
        ServiceKind.Order => "/v1/orders?limit=1",
        ServiceKind.Delivery => "/v1/couriers",
        ServiceKind.Storage => "/v1/products",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>The port of each service.</summary>
public sealed record ServicePorts(int Order, int Delivery, int Storage)
{
    public static ServicePorts Default { get; } = new(8000, 8001, 8002);

    /// <summary>Order on the base port, delivery on base + 1, storage on base + 2, as the defaults are laid out.</summary>
    public static ServicePorts FromBase(int basePort) => new(basePort, basePort + 1, basePort + 2);

    public int For(ServiceKind kind) => kind switch
    {
        ServiceKind.Order => Order,
        ServiceKind.Delivery => Delivery,
        ServiceKind.Storage => Storage,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public IEnumerable<int> All() => [Order, Delivery, Storage];
}

/// <summary>A service's store: <c>Database__Provider</c> and <c>Database__ConnectionString</c>.</summary>
public sealed record DatabaseSetup(string Provider, string ConnectionString)
{
    public const string SqliteProvider = "sqlite";
    public const string PostgresProvider = "postgres";

    /// <summary>A SQLite file named after the service in <paramref name="folder"/>.</summary>
    public static DatabaseSetup Sqlite(string folder, ServiceKind kind) =>
        new(SqliteProvider, $"Data Source={Path.Combine(folder, kind.ShortName() + ".db")}");

    public static DatabaseSetup Postgres(string connectionString) => new(PostgresProvider, connectionString);
}
