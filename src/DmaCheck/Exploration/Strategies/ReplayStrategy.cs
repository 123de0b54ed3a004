using System.Diagnostics;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// <c>dmacheck replay FILE.replay</c>: one run, the one a saved witness recorded (<see cref="ReplayFile"/>): its agent
/// steps, and on the witness line each access's outcome and each spontaneous event, every choice checked to be legal
/// as it is made. The run rebuilt is <see cref="Witness"/>. One run proves nothing about the others: the recorded
/// expectation is <see cref="Verdict.Sometimes"/> when it fails at the end, as when saved, and every other verdict is
/// inconclusive.
/// </summary>
public sealed class ReplayStrategy(ReplayFile schedule) : IExplorationStrategy
{
    public const string StrategyName = "replay";

    public const string Summary = "one recorded schedule (a witness saved by 'explain --save-replay'), each choice checked as it is followed: 'dmacheck replay FILE.replay'";

    public static StrategyEntry Entry { get; } = new(StrategyName, Summary, StrategyTakes.Schedule, KeepsWitnesses: false,
        args => new ReplayStrategy(args.Schedule ?? throw new ArgumentException("the replay strategy follows a saved schedule, and none was given", nameof(args))));

    public ReplayFile Schedule => schedule;

    public string Name => StrategyName;

    public string Description => Summary;

    /// <summary>Null: the run followed is <see cref="Witness"/>, already built.</summary>
    public LineSetExplorer? Witnesses => null;

    /// <summary>After <see cref="Explore"/>: the run followed.</summary>
    public Witness? Witness { get; private set; }

    /// <summary>After <see cref="Explore"/>: whether the recorded expectation fails at the end of the run, as it did when saved.</summary>
    public bool Reproduces { get; private set; }

    /// <summary>Follows the schedule; a choice that is not legal on this model is a <see cref="ReplayException"/>.</summary>
    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits)
    {
        var watch = Stopwatch.StartNew();
        var witness = schedule.Replay(model, out var reproduces);
        (Witness, Reproduces) = (witness, reproduces);
        var verdicts = model.Scenario.Expectations.Select(e => e.Name != witness.Expectation.Name
            ? new ExpectationVerdict(e, Verdict.Inconclusive, null, 0, 0)
            : reproduces ? new ExpectationVerdict(e, Verdict.Sometimes, witness.Events, 0, 1)
            : new ExpectationVerdict(e, Verdict.Inconclusive, null, 1, 0)).ToList();
        var end = witness.End ?? model.Initial;
        var findings = new FindingCollector();
        foreach (var step in witness.Items.OfType<StepItem>())
        {
            findings.Add(step.Step);
        }

        return new ExplorationResult(model.Scenario, StrategyName, verdicts,
            new ExplorationStats(witness.Items.OfType<StepItem>().Count() + 1, 1, witness.Items.OfType<StepItem>().Count(), watch.Elapsed, model.IsFinished(end) ? 0 : 1),
            null, findings.Results());
    }
}
