using System.Collections.Immutable;
using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// How every state was first reached: its parent's number and the agent that stepped. Paths are rebuilt by replaying
/// those steps from the initial state, so the search keeps no chain of full states behind it (docs/internals-state-storage.md).
/// </summary>
internal sealed class PathStore(ScenarioModel model)
{
    private readonly List<int> parents = [-1];
    private readonly List<int> agents = [-1];

    public int Add(int parent, int agent)
    {
        parents.Add(parent);
        agents.Add(agent);
        return parents.Count - 1;
    }

    /// <summary>The steps from the initial state to state <paramref name="id"/>, re-executed.</summary>
    public IReadOnlyList<StepResult> Path(int id)
    {
        var chain = new List<int>();
        for (var n = id; parents[n] >= 0; n = parents[n])
        {
            chain.Add(agents[n]);
        }

        chain.Reverse();
        var steps = new List<StepResult>(chain.Count);
        var ctrl = model.Initial;
        foreach (var agent in chain)
        {
            var step = model.Step(ctrl, agent);
            steps.Add(step);
            ctrl = step.Next;
        }

        return steps;
    }
}

/// <summary>
/// A point of the search: a control state plus, for every line touched so far, the set of its possible states.
/// Only the frontier holds these; the visited set keeps a 128-bit fingerprint per state.
/// </summary>
public sealed class SearchNode
{
    private readonly PathStore? paths;

    internal SearchNode(ControlState ctrl, ImmutableSortedDictionary<ulong, LineSet> lines, StepResult? step, int depth, UInt128 fingerprint, PathStore? paths)
    {
        Ctrl = ctrl;
        Lines = lines;
        Step = step;
        Depth = depth;
        Fingerprint = fingerprint;
        this.paths = paths;
    }

    public ControlState Ctrl { get; }

    public ImmutableSortedDictionary<ulong, LineSet> Lines { get; }

    /// <summary>The agent step that led here.</summary>
    public StepResult? Step { get; }

    public int Depth { get; }

    /// <summary>
    /// XxHash128 of the control state's canonical key and of every touched line's address and line-set fingerprint:
    /// the same on every run and build. Two states are taken as equal when their fingerprints are (hash compaction;
    /// the chance of any collision among 10^9 states is below 10^-20).
    /// </summary>
    public UInt128 Fingerprint { get; }

    /// <summary>This state's number in the path store, once it is recorded as visited.</summary>
    internal int Id { get; set; } = -1;

    /// <summary>The steps from the initial state to here (replayed from the path store).</summary>
    public IReadOnlyList<StepResult> Path() => paths is null || Id < 0 ? [] : paths.Path(Id);

    internal static UInt128 Fingerprinted(ControlState ctrl, ImmutableSortedDictionary<ulong, LineSet> lines)
    {
        var hasher = new System.IO.Hashing.XxHash128();
        hasher.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ctrl.Key.AsSpan()));
        Span<byte> buffer = stackalloc byte[16];
        foreach (var (pa, set) in lines)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buffer, pa);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buffer[8..], set.Fingerprint);
            hasher.Append(buffer);
        }

        return hasher.GetCurrentHashAsUInt128();
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
public sealed partial class LineSetExplorer
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(LineSet, LineAccess, bool), LineSet> applyMemo = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<LineSet, LineSet> intern = [];

    /// <summary>
    /// How many threads expand the states of one breadth-first level. The expansions are merged in the order a
    /// single thread would make them, so verdicts, minimum events, witnesses, findings and state counts are the
    /// same for every value.
    /// </summary>
    public int Threads { get; init; } = 1;

    public const string Name = "line-set";

    private PathStore? paths;

    /// <summary>The cheapest failing run found per expectation, for witnesses.</summary>
    public Dictionary<string, FailurePoint> Failures { get; } = new(StringComparer.Ordinal);

    public ExplorationResult Explore(ScenarioModel model, ExplorationLimits limits)
    {
        if (limits.Random is { } sampling)
        {
            return ExploreRandomly(model, limits, sampling);
        }

        var watch = Stopwatch.StartNew();
        var scenario = model.Scenario;
        var accumulators = scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        paths = new PathStore(model);
        var noLines = ImmutableSortedDictionary<ulong, LineSet>.Empty;
        var root = new SearchNode(model.Initial, noLines, null, 0, SearchNode.Fingerprinted(model.Initial, noLines), paths) { Id = 0 };
        var visited = new HashSet<UInt128> { root.Fingerprint };
        var level = new List<SearchNode> { root };
        long finals = 0, transitions = 0, blocked = 0;
        string? inconclusive = null;
        var findings = new FindingCollector();
        var memoryChecks = 0L;
        var lastProgress = 0L;
        while (level.Count > 0 && inconclusive is null)
        {
            // Expand the whole level (in parallel when asked), then merge in order: the same sequence of visits,
            // duplicates and finals as a one-thread queue.
            var expansions = new Expansion[level.Count];
            var states = visited.Count;
            if (Threads > 1 && level.Count > 1)
            {
                Parallel.For(0, level.Count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, i => expansions[i] = Expand(model, level[i], limits, watch, states));
            }
            else
            {
                for (var i = 0; i < level.Count; i++)
                {
                    expansions[i] = Expand(model, level[i], limits, watch, states);
                    if (expansions[i].Error is LimitReachedException)
                    {
                        break;
                    }
                }
            }

            var next = new List<SearchNode>();
            if (limits.Progress is { } progress && watch.ElapsedMilliseconds - lastProgress >= 250)
            {
                lastProgress = watch.ElapsedMilliseconds;
                progress(new ExplorationProgress(visited.Count, level[0].Depth, watch.Elapsed));
            }

            for (var i = 0; i < level.Count && inconclusive is null; i++)
            {
                var node = level[i];
                if ((inconclusive = limits.Exceeded(watch, visited.Count, (++memoryChecks & 255) == 1)) is not null)
                {
                    break;
                }

                var expansion = expansions[i];
                if (expansion.Error is LimitReachedException limit)
                {
                    inconclusive = limit.Message;
                    break;
                }

                if (expansion.Error is not null)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(expansion.Error).Throw();
                }

                foreach (var child in expansion.Children!)
                {
                    transitions++;
                    var id = -1;
                    if (visited.Add(child.Fingerprint))
                    {
                        id = child.Id = paths.Add(node.Id, child.Step!.Agent);
                        next.Add(child);
                    }

                    // Breadth-first: the first run to reach a finding is a shortest one.
                    findings.Add(child.Step!, () => id >= 0 ? paths.Path(id) : [.. paths.Path(node.Id), child.Step!]);
                }

                if (expansion.Children!.Count == 0)
                {
                    finals++;
                    blocked += model.IsFinished(node.Ctrl) ? 0 : 1;
                    Evaluate(model, node, accumulators);
                }
            }

            level = next;
        }

        return new ExplorationResult(scenario, Name, accumulators.Select(a => a.Verdict(inconclusive is not null)).ToList(),
            new ExplorationStats(visited.Count, finals, transitions, watch.Elapsed, blocked), inconclusive, findings.Results());
    }

    /// <summary>The children of one node, one per enabled agent, or the exception its expansion threw.</summary>
    private readonly record struct Expansion(List<SearchNode>? Children, Exception? Error);

    private Expansion Expand(ScenarioModel model, SearchNode node, ExplorationLimits limits, Stopwatch watch, long states)
    {
        try
        {
            var children = new List<SearchNode>();
            foreach (var agent in model.Enabled(node.Ctrl))
            {
                var step = model.Step(node.Ctrl, agent);
                var lines = ApplyOps(model, node.Ctrl.Mmu, node.Lines, step.Ops, limits, watch, states);
                children.Add(new SearchNode(step.Next, lines, step, node.Depth + 1, SearchNode.Fingerprinted(step.Next, lines), paths));
            }

            return new Expansion(children, null);
        }
        catch (Exception e) // rethrown at the merge, in the order one thread would have met it
        {
            return new Expansion(null, e);
        }
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

    private LineSet Intern(LineSet set) => intern.GetOrAdd(set, set);
}
