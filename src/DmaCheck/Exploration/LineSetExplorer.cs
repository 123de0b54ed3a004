using System.Collections.Immutable;
using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>A point of the search: a control state plus, for every line touched so far, the set of its possible states.</summary>
public sealed class SearchNode
{
    private readonly int hash;

    internal SearchNode(ControlState ctrl, ImmutableSortedDictionary<ulong, LineSet> lines, SearchNode? parent, StepResult? step)
    {
        Ctrl = ctrl;
        Lines = lines;
        Parent = parent;
        Step = step;
        Depth = parent is null ? 0 : parent.Depth + 1;
        var h = ctrl.GetHashCode();
        foreach (var (pa, set) in lines)
        {
            h ^= HashCode.Combine(pa, set);
        }

        hash = h;
    }

    public ControlState Ctrl { get; }

    public ImmutableSortedDictionary<ulong, LineSet> Lines { get; }

    public SearchNode? Parent { get; }

    /// <summary>The agent step that led here from <see cref="Parent"/>.</summary>
    public StepResult? Step { get; }

    public int Depth { get; }

    /// <summary>The steps from the initial state to here.</summary>
    public IReadOnlyList<StepResult> Path()
    {
        var steps = new List<StepResult>();
        for (var n = this; n.Step is not null; n = n.Parent!)
        {
            steps.Add(n.Step);
        }

        steps.Reverse();
        return steps;
    }

    internal bool SameState(SearchNode other) =>
        hash == other.hash && Ctrl.Equals(other.Ctrl) && Lines.Count == other.Lines.Count &&
        Lines.All(p => other.Lines.TryGetValue(p.Key, out var s) && s.Equals(p.Value));

    internal sealed class StateComparer : IEqualityComparer<SearchNode>
    {
        public static StateComparer Instance { get; } = new();

        public bool Equals(SearchNode? x, SearchNode? y) => x is not null && y is not null && x.SameState(y);

        public int GetHashCode(SearchNode obj) => obj.hash;
    }
}

/// <summary>Where the cheapest failure of one expectation was found.</summary>
/// <param name="LinePa">The line whose check fails; null when the run never read a variable the expectation names.</param>
public sealed record FailurePoint(SearchNode Node, ulong? LinePa, int Cost);

/// <summary>
/// The checker of design §5. Agent steps are explored breadth-first over all interleavings; the hardware is kept
/// per line as the set of states that line can reach, closed under spontaneous moves after every operation.
/// Lines are independent and the control flow never depends on data read, so the outcomes of a run are exactly
/// the product of its lines' sets, and the fewest events for a failure is the least over lines. Exact for the
/// expectation language (conjunctions of per-byte equalities).
/// </summary>
public sealed class LineSetExplorer
{
    private readonly Dictionary<(LineSet, LineAccess, bool), LineSet> applyMemo = [];
    private readonly Dictionary<LineSet, LineSet> intern = [];

    public const string Name = "line-set";

    /// <summary>The cheapest failing run found per expectation, for witnesses.</summary>
    public Dictionary<string, FailurePoint> Failures { get; } = new(StringComparer.Ordinal);

    public ExplorationResult Explore(ScenarioModel model, ExplorationLimits limits)
    {
        var watch = Stopwatch.StartNew();
        var scenario = model.Scenario;
        var accumulators = scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        var root = new SearchNode(model.Initial, ImmutableSortedDictionary<ulong, LineSet>.Empty, null, null);
        var visited = new HashSet<SearchNode>(SearchNode.StateComparer.Instance) { root };
        var queue = new Queue<SearchNode>();
        queue.Enqueue(root);
        long finals = 0, transitions = 0, blocked = 0;
        string? inconclusive = null;
        var findings = new FindingCollector();
        while (queue.TryDequeue(out var node))
        {
            if ((inconclusive = limits.Exceeded(watch, visited.Count)) is not null)
            {
                break;
            }

            var any = false;
            try
            {
                foreach (var agent in model.Enabled(node.Ctrl))
                {
                    any = true;
                    transitions++;
                    var step = model.Step(node.Ctrl, agent);
                    findings.Add(step, () => [.. node.Path(), step]); // breadth-first: the first run to reach a finding is a shortest one
                    var child = new SearchNode(step.Next, ApplyOps(model, node.Ctrl.Mmu, node.Lines, step.Ops, limits, watch, visited.Count), node, step);
                    if (visited.Add(child))
                    {
                        queue.Enqueue(child);
                    }
                }
            }
            catch (LimitReachedException e)
            {
                inconclusive = e.Message;
                break;
            }

            if (!any)
            {
                finals++;
                blocked += model.IsFinished(node.Ctrl) ? 0 : 1;
                Evaluate(model, node, accumulators);
            }
        }

        return new ExplorationResult(scenario, Name, accumulators.Select(a => a.Verdict(inconclusive is not null)).ToList(),
            new ExplorationStats(visited.Count, finals, transitions, watch.Elapsed, blocked), inconclusive, findings.Results());
    }

    private void Evaluate(ScenarioModel model, SearchNode node, List<VerdictAccumulator> accumulators)
    {
        foreach (var acc in accumulators)
        {
            var checks = ExpectationChecks.For(acc.Expectation, node.Ctrl, model.Hardware.LineSize);
            if (checks is null)
            {
                if (acc.Record(false, 0))
                {
                    Failures[acc.Expectation.Name] = new FailurePoint(node, null, 0);
                }

                continue;
            }

            var canHold = true;
            int? failCost = null;
            ulong failLine = 0;
            foreach (var check in checks)
            {
                var set = node.Lines[check.LinePa];
                var lineHolds = false;
                foreach (var (state, cost) in set.Entries)
                {
                    if (check.Holds(state))
                    {
                        lineHolds = true;
                    }
                    else if (failCost is null || cost < failCost)
                    {
                        failCost = cost;
                        failLine = check.LinePa;
                    }
                }

                canHold &= lineHolds;
            }

            if (acc.Record(canHold, failCost))
            {
                Failures[acc.Expectation.Name] = new FailurePoint(node, failLine, failCost!.Value);
            }
        }
    }

    /// <summary>Applies one step's operations, in order, to the line sets, closing each touched line after each operation.</summary>
    private ImmutableSortedDictionary<ulong, LineSet> ApplyOps(ScenarioModel model, Mmu mmu, ImmutableSortedDictionary<ulong, LineSet> lines, IReadOnlyList<HwOp> ops,
        ExplorationLimits limits, Stopwatch watch, long states)
    {
        var config = model.Hardware;
        var tick = 0;
        var builder = lines.ToBuilder();
        foreach (var op in ops)
        {
            switch (op)
            {
                case MapOp map:
                    CheckFillabilityUnchanged(mmu, mmu = mmu.Map(map.Alias), map.Alias);
                    break;
                case UnmapOp unmap:
                    CheckFillabilityUnchanged(mmu, mmu = mmu.Unmap(unmap.Alias), unmap.Alias);
                    break;
                case MemoryOp mem:
                    foreach (var (linePa, access) in mem.Lines(config.LineSize))
                    {
                        LimitChecks.Tick(ref tick, limits, watch, states);
                        var fillable = mmu.IsFillable(linePa);
                        if (!builder.TryGetValue(linePa, out var set))
                        {
                            set = Intern(LineSet.Initial(config, linePa, fillable));
                        }

                        var key = (set, access, fillable);
                        if (!applyMemo.TryGetValue(key, out var next))
                        {
                            next = Intern(set.Apply(access, config, fillable));
                            applyMemo[key] = next;
                        }

                        builder[linePa] = next;
                    }

                    break;
            }
        }

        return builder.ToImmutable();
    }

    /// <summary>
    /// Line sets are closed under the fills allowed when they were computed, and untouched lines are assumed to
    /// have been fillable all along. A mapping change that changes whether any line of its range may be filled
    /// would break both, so it is refused rather than mis-modelled. No kernel path of this version does that (the
    /// linear map covers all of DRAM and is never removed).
    /// </summary>
    private static void CheckFillabilityUnchanged(Mmu before, Mmu after, Alias alias)
    {
        if (alias.Type.IsCacheable() && !(before.IsFillable(alias.Pa, alias.Size) && after.IsFillable(alias.Pa, alias.Size)))
        {
            throw new NotModelledException($"{alias.Name} changes whether PA 0x{alias.Pa:x}..0x{alias.Pa + alias.Size:x} can be speculatively filled (memory without a cacheable linear map)");
        }
    }

    private LineSet Intern(LineSet set)
    {
        if (intern.TryGetValue(set, out var existing))
        {
            return existing;
        }

        intern[set] = set;
        return set;
    }
}
