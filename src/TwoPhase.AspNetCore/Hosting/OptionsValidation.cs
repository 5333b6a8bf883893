using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace TwoPhase.AspNetCore;

/// <summary>Options bound from configuration and checked when the host starts, for TwoPhase's options and a service's own.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The two overloads differ in a required parameter (the configuration to read from) and so are never ambiguous.")]
public static class OptionsRegistration
{
    /// <summary>
    /// Binds <typeparamref name="T"/> from <paramref name="section"/> and refuses a bad value when the host starts, with
    /// a message naming the configuration key (<c>TwoPhase:Coordinator:MaxInFlight: The field MaxInFlight must be ...</c>): the
    /// data annotations of the class and of the items of its lists, and <paramref name="bounds"/> for a class that
    /// cannot carry annotations (one of another project). Every <see cref="TimeSpan"/> property also reads the older
    /// key of the same name ending in <c>Ms</c>, as whole milliseconds (<c>TwoPhase:Coordinator:PrepareDeadlineMs</c>), so
    /// configurations written before the options were durations keep working; setting both is refused.
    /// </summary>
    public static OptionsBuilder<T> AddTwoPhaseOptions<T>(this IServiceCollection services, string section, Func<T, IEnumerable<OptionFailure?>>? bounds = null)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new SectionValidator<T>(section, bounds));
        return services.AddOptions<T>()
            .BindConfiguration(section)
            .Configure<IConfiguration>((options, configuration) => MillisecondKeys.Apply(options, configuration.GetSection(section), section))
            .ValidateOnStart();
    }

    /// <summary>
    /// As <see cref="AddTwoPhaseOptions{T}(IServiceCollection, string, Func{T, IEnumerable{OptionFailure?}}?)"/>, read from
    /// <paramref name="configuration"/> (the one given to an <c>IServiceCollection</c> registration) instead of the host's.
    /// </summary>
    public static OptionsBuilder<T> AddTwoPhaseOptions<T>(this IServiceCollection services, IConfiguration configuration, string section, Func<T, IEnumerable<OptionFailure?>>? bounds = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var keys = configuration.GetSection(section);
        services.AddSingleton<IValidateOptions<T>>(new SectionValidator<T>(section, bounds));
        return services.AddOptions<T>()
            .Bind(keys)
            .Configure(options => MillisecondKeys.Apply(options, keys, section))
            .ValidateOnStart();
    }
}

/// <summary>One refused setting: the key below the options' section, and what is wrong with its value.</summary>
public sealed record OptionFailure(string Key, string Message)
{
    /// <summary>A failure when <paramref name="value"/> lies outside [<paramref name="min"/>, <paramref name="max"/>], else null.</summary>
    public static OptionFailure? Unless<TValue>(string key, TValue value, TValue min, TValue max)
        where TValue : IComparable<TValue> =>
        value.CompareTo(min) >= 0 && value.CompareTo(max) <= 0 ? null : new(key, $"must be between {min} and {max} (is {value})");
}

/// <summary>Data annotations and extra bounds of one options class, reported by configuration key.</summary>
internal sealed class SectionValidator<T>(string section, Func<T, IEnumerable<OptionFailure?>>? bounds) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var failures = new List<string>();
        Annotations(options, section, failures, depth: 0);
        foreach (var failure in bounds?.Invoke(options) ?? [])
        {
            if (failure is not null)
            {
                failures.Add($"{section}:{failure.Key}{MillisecondKeys.AlsoKnownAs(typeof(T), failure.Key)}: {failure.Message}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The class's annotations, then those of every item of its lists (participants, seed rows), with the item's index in the key.</summary>
    private static void Annotations(object target, string prefix, List<string> failures, int depth)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(target, new ValidationContext(target), results, validateAllProperties: true);
        foreach (var result in results)
        {
            var member = result.MemberNames.FirstOrDefault() ?? "";
            failures.Add($"{prefix}:{member}{MillisecondKeys.AlsoKnownAs(target.GetType(), member)}: {result.ErrorMessage}");
        }

        // Options are shallow (a list of plain items at most); the bound keeps a cyclic graph from looping.
        if (depth >= 2)
        {
            return;
        }

        foreach (var property in target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.PropertyType != typeof(string) && property.GetIndexParameters().Length == 0
                && property.GetValue(target) is IEnumerable items and not string)
            {
                var index = 0;
                foreach (var item in items)
                {
                    if (item is not null && item.GetType().IsClass && item is not string)
                    {
                        Annotations(item, $"{prefix}:{property.Name}:{index}", failures, depth + 1);
                    }

                    index++;
                }
            }
        }
    }
}

/// <summary>The older millisecond keys of the options that are now durations.</summary>
internal static class MillisecondKeys
{
    private const string Suffix = "Ms";

    public static void Apply(object options, IConfigurationSection section, string sectionName)
    {
        foreach (var property in Durations(options.GetType()))
        {
            var milliseconds = section[property.Name + Suffix];
            if (milliseconds is null)
            {
                continue;
            }

            if (section[property.Name] is not null)
            {
                throw Refused(options.GetType(), $"{sectionName}:{property.Name} and {sectionName}:{property.Name}{Suffix} are both set; set one.");
            }

            if (!long.TryParse(milliseconds, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < 0 || value > (long)TimeSpan.MaxValue.TotalMilliseconds)
            {
                throw Refused(options.GetType(), $"{sectionName}:{property.Name}{Suffix}: '{milliseconds}' is not a whole number of milliseconds.");
            }

            property.SetValue(options, TimeSpan.FromMilliseconds(value));
        }
    }

    /// <summary>" (or XMs)" after a duration's key in a message, so the user finds the key they actually set.</summary>
    public static string AlsoKnownAs(Type type, string member) =>
        Durations(type).Any(p => p.Name == member) ? $" (or {member}{Suffix}, in milliseconds)" : "";

    private static IEnumerable<PropertyInfo> Durations(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.PropertyType == typeof(TimeSpan) && p.CanWrite);

    private static OptionsValidationException Refused(Type type, string message) => new(Options.DefaultName, type, [message]);
}
