using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// Polls (<c>poll ADDR[lo..hi] == WRITER [, max N]</c>): the one statement whose control flow depends on a value read.
/// The run is split as a copy's is (docs/internals-line-sets.md): each branch of <see cref="PollOp.Branches"/> filters
/// the polled lines to the states whose load falls in its classes, the least cost left is moved to the run's
/// <see cref="SearchNode.BaseCost"/>, and the branch says whether the agent moves on (a hit) or stays (a miss).
/// </summary>
public sealed partial class LineSetExplorer
{
    /// <summary>
    /// One outcome per branch of the poll that some state of the lines allows, each continuing with the step's
    /// remaining operations; the poll is resolved to the branch's filters, which say which branch was taken.
    /// </summary>
    private void ApplyPoll(IScenarioModel model, Mmu mmu, LineMap before, IReadOnlyList<HwOp> ops, int index, PollOp poll, int cost,
        List<HwOp> resolved, List<Outcome> into, ExplorationLimits limits, Stopwatch watch, long states, ref int tick)
    {
        var config = model.Hardware;
        var lines = poll.Load.Lines(config.LineSize).Select(l => l.LinePa).ToList();
        foreach (var (_, filters) in poll.Branches(config.LineSize))
        {
            var branch = before.ToBuilder();
            foreach (var filter in filters)
            {
                ApplyMemory(config, mmu, branch, filter, limits, watch, states, ref tick);
            }

            // Lines are independent: the branch is possible when every line keeps a state, and its fewest events are
            // the sum over lines of the cheapest state kept.
            var extra = 0;
            var possible = true;
            foreach (var pa in lines)
            {
                branch.TryGetValue(pa, out var kept);
                if (kept.Entries.Count == 0)
                {
                    possible = false;
                    break;
                }

                branch.SetLine(pa, config.LineSize, Intern(kept.Normalised(out var least)));
                extra += least;
            }

            if (possible)
            {
                ApplyFrom(model, mmu, branch.ToImmutable(), ops, index + 1, cost + extra, [.. resolved, .. filters], into, limits, watch, states, ref tick);
            }
        }
    }

    /// <summary>
    /// Adds a child, or, when it is the node itself (a poll without <c>max</c> that missed and changed no line), keeps
    /// it aside: it is no new state, and a node whose every step is such a loop is a final state where the poll hangs.
    /// </summary>
    private static void AddChild(List<Candidate> children, ref List<Candidate>? loops, SearchNode node, Candidate child)
    {
        if (child.Fingerprint == node.Fingerprint && child.Step.Statement is PollStmt)
        {
            (loops ??= []).Add(child);
            return;
        }

        children.Add(child);
    }

    /// <summary>Whether the scenario has a poll anywhere (the random strategy does not sample them).</summary>
    internal static bool HasPolls(Scenario scenario) => scenario.Programs.Any(p => p.Body.Any(s => s is PollStmt));
}
