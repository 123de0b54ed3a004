using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// <c>--strategy exhaustive</c>, the default: every interleaving of the agents' statements, breadth first, each line's
/// cache kept as the set of states it can reach (<see cref="LineSetExplorer"/>, docs/internals-line-sets.md), with
/// interleavings that only reorder commuting steps skipped (docs/internals-reduction.md). Its verdicts are proofs
/// within the model; the first run to reach a failure is a shortest one, and is kept as the witness.
/// </summary>
public sealed class ExhaustiveStrategy : IExplorationStrategy
{
    public const string StrategyName = "exhaustive";

    public const string Summary = "every interleaving, breadth first, with every cache behaviour of each; verdicts are proofs (the default)";

    public static StrategyEntry Entry { get; } = new(StrategyName, Summary, StrategyTakes.Threads | StrategyTakes.Reduction, KeepsWitnesses: true, _ => new ExhaustiveStrategy());

    public string Name => StrategyName;

    public string Description => Summary;

    public LineSetExplorer? Witnesses { get; private set; }

    /// <summary>Searches with <see cref="ExplorationLimits.Threads"/> threads, reduced unless <see cref="ExplorationLimits.Reduction"/> is off.</summary>
    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits)
    {
        Witnesses = new LineSetExplorer { Threads = limits.Threads };
        return Witnesses.Explore(model, limits);
    }
}
