using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// <c>--strategy brute-force</c>: every interleaving and every spontaneous cache move between any two operations, on one
/// concrete state per line (<see cref="BruteForceExplorer"/>): small and naive, exponential in the lines touched, on
/// one thread and unreduced. A cross-check of <see cref="ExhaustiveStrategy"/> for small scenarios; it keeps no witnesses.
/// </summary>
public sealed class BruteForceStrategy : IExplorationStrategy
{
    public const string StrategyName = BruteForceExplorer.Name;

    public const string Summary = "every interleaving and cache move on concrete line states, one thread, no reduction, no witnesses: a slow cross-check for small scenarios";

    public static StrategyEntry Entry { get; } = new(StrategyName, Summary, StrategyTakes.Nothing, KeepsWitnesses: false, _ => new BruteForceStrategy());

    public string Name => StrategyName;

    public string Description => Summary;

    public LineSetExplorer? Witnesses => null;

    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits) => new BruteForceExplorer().Explore(model, limits);
}
