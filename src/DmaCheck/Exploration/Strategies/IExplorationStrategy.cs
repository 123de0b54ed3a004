using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// One way to explore a model (after Coyote's scheduling strategies: one per file, each naming and describing itself):
/// which runs of the model it visits, and what it can say about them. Every strategy judges final states the same
/// way, so where two strategies cover the same runs they give the same verdicts and findings. Strategies are listed
/// in <see cref="ExplorationStrategies"/>, where the command line picks one by name (<c>--strategy NAME</c>).
/// </summary>
/// <remarks>An instance explores once: afterwards <see cref="Witnesses"/> holds what that exploration kept.</remarks>
public interface IExplorationStrategy
{
    /// <summary>The name <c>--strategy</c> takes.</summary>
    string Name { get; }

    /// <summary>One line saying which runs the strategy visits and what its verdicts mean.</summary>
    string Description { get; }

    /// <summary>Explores <paramref name="model"/> within <paramref name="limits"/>.</summary>
    ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits);

    /// <summary>
    /// After <see cref="Explore"/>: the explorer whose failure points rebuild each failing expectation's and each
    /// crash's witness (<see cref="WitnessBuilder"/>), or null when the strategy keeps none.
    /// </summary>
    LineSetExplorer? Witnesses { get; }
}
