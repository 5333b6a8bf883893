using System.Collections;
using System.Reflection;

namespace TwoPhase.Deployment.Tests;

/// <summary>
/// The configuration keys the services read, found in their code: every options class's <c>SectionName</c> constant
/// and the settable properties below it. A variable in a manifest that no service reads would be ignored without a
/// word (configuration binding does not complain about unknown keys), so the tests refuse it instead.
/// </summary>
internal static class ConfigurationKeys
{
    /// <summary>Variables read by ASP.NET Core's host itself or by the OpenTelemetry SDK, not by an options class.</summary>
    public static readonly IReadOnlySet<string> HostVariables = new HashSet<string>(StringComparer.Ordinal)
    {
        "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_URLS", "ASPNETCORE_ENVIRONMENT", TwoPhase.AspNetCore.TwoPhaseTelemetryExtensions.OtlpEndpointVariable,
    };

    // The assemblies whose options the three services bind: their own and the library's.
    private static readonly Lazy<IReadOnlyList<(string[] Section, Type Options)>> Sections = new(FindSections);

    /// <summary>Null when a service reads <paramref name="variable"/> (<c>Section__Key__0__Name</c> form); else why not.</summary>
    public static string? WhyUnread(string variable)
    {
        if (HostVariables.Contains(variable))
        {
            return null;
        }

        var path = variable.Split("__");
        var reasons = new List<string>();
        // Longest section first: TwoPhase:Database before TwoPhase. Several classes may bind one section.
        foreach (var (section, options) in Sections.Value.OrderByDescending(s => s.Section.Length))
        {
            if (section.Length > path.Length || !section.SequenceEqual(path[..section.Length], StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }

            if (Walk(options, path[section.Length..]) is not { } why)
            {
                return null;
            }

            reasons.Add($"{options.Name} ({string.Join(':', section)}): {why}");
        }

        return reasons.Count == 0
            ? $"no options class binds a section that {variable} starts with (sections: {string.Join(", ", Sections.Value.Select(s => string.Join(':', s.Section)).Distinct())})"
            : string.Join("; ", reasons);
    }

    private static string? Walk(Type type, string[] rest)
    {
        foreach (var segment in rest)
        {
            if (ElementType(type) is { } element)
            {
                if (!int.TryParse(segment, out _))
                {
                    return $"'{segment}' is not an index into {type.Name}";
                }

                type = element;
                continue;
            }

            var property = type.GetProperty(segment, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || (property.SetMethod?.IsPublic != true && ElementType(property.PropertyType) is null))
            {
                return $"{type.Name} has no settable property '{segment}'";
            }

            type = property.PropertyType;
        }

        return IsScalar(type) ? null : $"{type.Name} is a section, not a value";
    }

    private static Type? ElementType(Type type) =>
        type == typeof(string) ? null
        : type.IsArray ? type.GetElementType()
        : type.IsGenericType && typeof(IEnumerable).IsAssignableFrom(type) && type.GetGenericArguments() is [var element] ? element
        : null;

    private static bool IsScalar(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri);
    }

    private static List<(string[] Section, Type Options)> FindSections()
    {
        var names = new[] { "OrderService", "StorageService", "DeliveryService" };
        var assemblies = names.Select(Assembly.Load)
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "TwoPhase.*.dll").Select(f => Assembly.Load(AssemblyName.GetAssemblyName(f))))
            .Distinct();
        var sections = new List<(string[], Type)>();
        foreach (var assembly in assemblies)
        {
            foreach (var type in LoadableTypes(assembly))
            {
                if (type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && field.GetRawConstantValue() is string section)
                {
                    sections.Add((section.Split(':'), type));
                }
            }
        }

        // The protocol's coordinator settings carry no SectionName (the pure core knows no configuration); the runtime
        // binds them to the coordinator's section (CoordinatorRuntime).
        var coordinator = sections.FirstOrDefault(s => s.Item2 == typeof(TwoPhase.AspNetCore.CoordinatorOptions));
        if (coordinator.Item1 is { } coordinatorSection)
        {
            sections.Add((coordinatorSection, typeof(TwoPhase.Protocol.CoordinatorSettings)));
        }

        return sections;
    }

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            return e.Types.OfType<Type>();
        }
    }
}
