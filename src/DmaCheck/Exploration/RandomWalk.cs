using System.Diagnostics;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>The line-set explorer's walk for <see cref="RandomStrategy"/>: sampled interleavings, each with exact hardware.</summary>
public sealed partial class LineSetExplorer
{
    /// <summary>
    /// <paramref name="sampling"/>'s runs, each from the initial state to a final one, the next agent drawn at random
    /// among the enabled ones; every cache behaviour of each run is kept, as in the exhaustive search.
    /// </summary>
    public ExplorationResult ExploreRandomly(IScenarioModel model, ExplorationLimits limits, RandomSampling sampling)
    {
        var watch = Stopwatch.StartNew();
        var accumulators = model.Scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        var findings = new FindingCollector();
        if (HasPolls(model.Scenario))
        {
            // A walk would have to choose how often a poll misses, and a poll that never sees its value would walk forever.
            return new ExplorationResult(model.Scenario, Name + " (random)", accumulators.Select(a => a.Verdict(true)).ToList(),
                new ExplorationStats(0, 0, 0, watch.Elapsed), "not modelled: the random strategy does not sample runs with a poll (a poll's misses are not a choice of interleaving); explore them all (the default strategy)",
                findings.Results(), sampling);
        }

        paths = new PathStore(model);
        var random = new Random(sampling.Seed);
        using var seen = new FingerprintSet();
        long states = 0, finals = 0, transitions = 0, blocked = 0;
        var crashes = new KernelBugAccumulator();
        string? inconclusive = null;
        var noLines = LineMap.Empty;
        for (var run = 0; run < sampling.Runs && inconclusive is null; run++)
        {
            var node = new SearchNode(model.Initial, noLines, null, 0, SearchNode.Fingerprinted(model.Initial, noLines), paths) { Id = 0 };
            while (true)
            {
                if ((inconclusive = limits.Exceeded(watch, states, (states & 255) == 0)) is not null)
                {
                    break;
                }

                var enabled = model.Enabled(node.Ctrl).ToList();
                if (enabled.Count == 0)
                {
                    finals++;
                    long hung = 0;
                    Final(model, node, accumulators, crashes, ref blocked, ref hung);
                    break;
                }

                var agent = enabled[random.Next(enabled.Count)];
                var step = model.Step(node.Ctrl, agent);
                transitions++;
                List<Outcome> outcomes;
                try
                {
                    outcomes = ApplyOps(model, node.Ctrl.Mmu, node.Lines, step.Ops, limits, watch, states);
                }
                catch (LimitReachedException e)
                {
                    inconclusive = e.Message;
                    break;
                }

                // A copy that could have read several values: the walk takes one of the runs.
                var child = Child(node, step, outcomes[outcomes.Count == 1 ? 0 : random.Next(outcomes.Count)]);
                child.Id = paths.Add(node.Id, agent, child.Resolved);
                if (seen.Add(child.Fingerprint))
                {
                    states++;
                }

                var id = child.Id;
                findings.Add(step, () => paths.Path(id));
                node = child;
            }
        }

        inconclusive ??= crashes.NotModelled?.Message; // some run reached what the model does not have
        return new ExplorationResult(model.Scenario, Name + " (random)", crashes.Expectations(accumulators, inconclusive is not null),
            new ExplorationStats(states, finals, transitions, watch.Elapsed, blocked), inconclusive, findings.Results(), sampling)
        { KernelBugs = crashes.Verdicts(inconclusive: true), NotModelled = crashes.NotModelled };
    }
}
