using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>What a strategy takes besides the model and the limits (so a caller can refuse an option it would ignore).</summary>
[Flags]
public enum StrategyTakes
{
    Nothing = 0,

    /// <summary>It honours <see cref="ExplorationLimits.Threads"/> (<c>--threads</c>).</summary>
    Threads = 1,

    /// <summary>It honours <see cref="ExplorationLimits.Reduction"/> (<c>--no-reduction</c>).</summary>
    Reduction = 2,

    /// <summary>It draws its runs at random: <see cref="StrategyArguments.Sampling"/> (<c>--seed</c>, <c>--runs</c>).</summary>
    Sampling = 4,

    /// <summary>It follows a recorded schedule, <see cref="StrategyArguments.Schedule"/>, which it cannot do without.</summary>
    Schedule = 8,
}

/// <summary>The arguments a strategy may take (<see cref="StrategyTakes"/>); each strategy reads only its own.</summary>
/// <param name="Sampling">For <see cref="StrategyTakes.Sampling"/>: the seed and the number of runs (default <see cref="RandomSampling.Default"/>).</param>
/// <param name="Schedule">For <see cref="StrategyTakes.Schedule"/>: the saved run to follow.</param>
public sealed record StrategyArguments(RandomSampling? Sampling = null, ReplayFile? Schedule = null)
{
    public static StrategyArguments None { get; } = new();
}

/// <summary>A strategy in the registry: its name and description, what it takes and keeps, and how to make one.</summary>
/// <param name="KeepsWitnesses">Whether its <see cref="IExplorationStrategy.Witnesses"/> are kept (for <c>explain</c> and the HTML report).</param>
/// <param name="Create">A new instance, for one exploration, from the arguments it takes.</param>
public sealed record StrategyEntry(string Name, string Description, StrategyTakes Takes, bool KeepsWitnesses, Func<StrategyArguments, IExplorationStrategy> Create);

/// <summary>Every exploration strategy, by name: the one list the command line chooses from.</summary>
public static class ExplorationStrategies
{
    /// <summary>The strategies, the default first.</summary>
    public static IReadOnlyList<StrategyEntry> All { get; } =
    [
        ExhaustiveStrategy.Entry,
        RandomStrategy.Entry,
        BruteForceStrategy.Entry,
        ReplayStrategy.Entry,
    ];

    /// <summary>The strategy used when none is named: <see cref="ExhaustiveStrategy"/>.</summary>
    public static StrategyEntry Default => All[0];

    public static IEnumerable<string> Names => All.Select(s => s.Name);

    /// <summary>The strategy named <paramref name="name"/> (exactly), or null.</summary>
    public static StrategyEntry? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    /// <summary>The strategy named <paramref name="name"/>, or an error naming the known ones, with "did you mean" on a near miss.</summary>
    public static StrategyEntry Get(string name) => Find(name)
        ?? throw new ArgumentException($"unknown strategy '{name}' ({(Suggestions.DidYouMean(name, [.. Names]) is { } hint ? hint + " " : string.Empty)}known: {string.Join(", ", Names)})", nameof(name));
}
