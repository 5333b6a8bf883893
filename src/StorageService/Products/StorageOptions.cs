using System.ComponentModel.DataAnnotations;

namespace StorageService.Products;

public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>The product an old-protocol order (one unit, no lines) takes.</summary>
    [Required]
    public string DefaultSku { get; set; } = "widget";

    /// <summary>Most units one order line may ask for.</summary>
    [Range(1, 1_000_000_000)]
    public int MaxQuantity { get; set; } = 1000;

    /// <summary>Most lines in one order.</summary>
    [Range(1, 10_000)]
    public int MaxLines { get; set; } = 100;
}

/// <summary>What an empty database starts with, so the system works out of the box.</summary>
public sealed class ProductSeedOptions
{
    public const string SectionName = "Seed";

    public bool Enabled { get; set; } = true;

    public List<SeedProduct> Products { get; set; } = [];

    public static IReadOnlyList<SeedProduct> Defaults { get; } =
    [
        new() { Sku = "widget", Name = "Widget", Stock = 1000 },
        new() { Sku = "gadget", Name = "Gadget", Stock = 100 },
    ];
}

public sealed class SeedProduct
{
    [Required]
    [StringLength(200)]
    public string Sku { get; set; } = "";

    [Required]
    [StringLength(200)]
    public string Name { get; set; } = "";

    [Range(0, 1_000_000_000)]
    public long Stock { get; set; }
}
