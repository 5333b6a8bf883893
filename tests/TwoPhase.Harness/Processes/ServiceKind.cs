namespace TwoPhase.Harness;

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

/// <summary>Names per service.</summary>
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

/// <summary>The database every service of a reference system runs on.</summary>
public enum Store
{
    /// <summary>A SQLite file per service in the system's folder: nothing to install.</summary>
    Sqlite,

    /// <summary>A fresh PostgreSQL database per service, dropped after the run.</summary>
    Postgres,
}
