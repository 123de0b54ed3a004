using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// <c>--strategy random --seed S --runs N</c>: N runs, the next agent drawn at random at each step
/// (<see cref="RandomSampling"/>), each run's cache behaviours all kept (<see cref="LineSetExplorer.ExploreRandomly"/>).
/// For scenarios too big to exhaust: a failure it finds is real and has a witness, but a verdict is only what the
/// sampled runs show (<see cref="ExplorationResult.Sampled"/>). Runs with a poll are not sampled.
/// </summary>
public sealed class RandomStrategy(RandomSampling sampling) : IExplorationStrategy
{
    public const string StrategyName = "random";

    public const string Summary = "sampled interleavings (--seed S, --runs N), every cache behaviour of each; verdicts are only what the sampled runs show";

    public static StrategyEntry Entry { get; } = new(StrategyName, Summary, StrategyTakes.Sampling, KeepsWitnesses: true,
        args => new RandomStrategy(args.Sampling ?? RandomSampling.Default));

    public RandomSampling Sampling => sampling;

    public string Name => StrategyName;

    public string Description => Summary;

    public LineSetExplorer? Witnesses { get; private set; }

    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits)
    {
        Witnesses = new LineSetExplorer();
        return Witnesses.ExploreRandomly(model, limits, sampling);
    }
}
