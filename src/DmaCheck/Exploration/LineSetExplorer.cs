using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// How every state was first reached: its parent's number and the agent that stepped. Paths are rebuilt by replaying
/// those steps from the initial state, so the search keeps no chain of full states behind it (docs/internals-state-storage.md).
/// </summary>
internal sealed class PathStore(IScenarioModel model)
{
    private readonly List<int> parents = [-1];
    private readonly List<byte> agents = [byte.MaxValue];

    /// <summary>The bytes the two lists hold (their capacity), for the memory-per-state figure; the few resolved copies are not counted.</summary>
    public long Bytes => (long)parents.Capacity * sizeof(int) + agents.Capacity;
    private readonly Dictionary<int, IReadOnlyList<HwOp>> resolved = [];

    /// <summary>
    /// Records a state reached from <paramref name="parent"/> by <paramref name="agent"/>'s step; a step that copied keeps
    /// its resolved operations, which say which run it is. Not thread safe: only a search's merge, which is sequential, records.
    /// </summary>
    public int Add(int parent, int agent, IReadOnlyList<HwOp>? resolvedOps = null)
    {
        parents.Add(parent);
        agents.Add(checked((byte)agent)); // ScenarioModel refuses more agents than a byte numbers
        var id = parents.Count - 1;
        if (resolvedOps is not null)
        {
            resolved[id] = resolvedOps;
        }

        return id;
    }

    /// <summary>Makes room for <paramref name="count"/> states, numbered from the one returned, each then recorded by <see cref="Set"/> (on any thread).</summary>
    public int ReserveMany(int count)
    {
        var first = parents.Count;
        System.Runtime.InteropServices.CollectionsMarshal.SetCount(parents, first + count);
        System.Runtime.InteropServices.CollectionsMarshal.SetCount(agents, first + count);
        return first;
    }

    /// <summary>Records reserved state <paramref name="id"/>, as <see cref="Add"/> would.</summary>
    public void Set(int id, int parent, int agent, IReadOnlyList<HwOp>? resolvedOps)
    {
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(parents)[id] = parent;
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(agents)[id] = checked((byte)agent);
        if (resolvedOps is not null)
        {
            lock (resolved)
            {
                resolved[id] = resolvedOps;
            }
        }
    }

    /// <summary>The steps from the initial state to state <paramref name="id"/>, re-executed.</summary>
    public IReadOnlyList<StepResult> Path(int id)
    {
        var chain = new List<int>();
        for (var n = id; parents[n] >= 0; n = parents[n])
        {
            chain.Add(n);
        }

        chain.Reverse();
        var steps = new List<StepResult>(chain.Count);
        var ctrl = model.Initial;
        foreach (var n in chain)
        {
            var step = model.Step(ctrl, agents[n]);
            if (resolved.TryGetValue(n, out var ops))
            {
                step = step.Resolved(ops); // a copy's values, or a poll's branch (a miss stays at the poll)
            }

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

    internal SearchNode(ControlState ctrl, LineMap lines, StepResult? step, int depth, UInt128 fingerprint, PathStore? paths, int baseCost = 0)
    {
        Ctrl = ctrl;
        Lines = lines;
        Step = step;
        Depth = depth;
        Fingerprint = fingerprint;
        BaseCost = baseCost;
        this.paths = paths;
    }

    /// <summary>
    /// Spontaneous events this run needed on lines whose sets no longer show them: a copy's load was resolved to
    /// one value, and the states that give it cost that much (<see cref="LineSet.Normalised"/>). Every line's
    /// cheapest state costs 0 on top of it.
    /// </summary>
    public int BaseCost { get; }

    public ControlState Ctrl { get; }

    public LineMap Lines { get; }

    /// <summary>The agent step that led here.</summary>
    public StepResult? Step { get; }

    public int Depth { get; }

    /// <summary>
    /// The node's fingerprint (<see cref="Fingerprinted(UInt128, UInt128, int)"/>): the same on every run and build.
    /// Two states are taken as equal when their fingerprints are (hash compaction; docs/internals-state-storage.md gives
    /// the odds).
    /// </summary>
    public UInt128 Fingerprint { get; }

    /// <summary>The step's operations with its copies resolved, when it copied; null otherwise.</summary>
    internal IReadOnlyList<HwOp>? Resolved { get; init; }

    /// <summary>This state's number in the path store, once it is recorded as visited.</summary>
    internal int Id { get; set; } = -1;

    /// <summary>
    /// With the interleaving reduction: the agents whose next step need not be taken from here. Narrowed, while the
    /// state waits in the next level, by every other path that reaches it (docs/internals-reduction.md).
    /// </summary>
    internal SleepSet Sleep { get; set; } = SleepSet.Empty;

    /// <summary>The steps from the initial state to here (replayed from the path store).</summary>
    public IReadOnlyList<StepResult> Path() => paths is null || Id < 0 ? [] : paths.Path(Id);

    internal static UInt128 Fingerprinted(ControlState ctrl, LineMap lines, int baseCost = 0) => Fingerprinted(ctrl.Fingerprint, lines, baseCost);

    /// <summary>The fingerprint of a node whose control state has fingerprint <paramref name="ctrl"/>.</summary>
    internal static UInt128 Fingerprinted(UInt128 ctrl, LineMap lines, int baseCost = 0) => Fingerprinted(ctrl, lines.Fingerprint, baseCost);

    /// <summary>
    /// The fingerprint of a node whose control state and lines have fingerprints <paramref name="ctrl"/> (derived from
    /// its types, <see cref="StateHasher"/>) and <paramref name="lines"/> (<see cref="LineMap.Fingerprint"/>): their sum
    /// modulo 2^128 and a term for the base cost. Like its parts, a sum of XxHash128 terms, one per agent, the shared
    /// state, each run of lines and the cost, so a step pays for the terms it changes.
    /// </summary>
    internal static UInt128 Fingerprinted(UInt128 ctrl, UInt128 lines, int baseCost) => ctrl + lines + CostTerm(baseCost);

    private static readonly UInt128[] CostTerms = [.. Enumerable.Range(0, 64).Select(HashCost)];

    /// <summary>The base cost's term: XxHash128 of a 12-byte record (no other term hashes 12 bytes, so none can stand for it).</summary>
    private static UInt128 CostTerm(int cost) => (uint)cost < (uint)CostTerms.Length ? CostTerms[cost] : HashCost(cost);

    private static UInt128 HashCost(int cost)
    {
        Span<byte> bytes = stackalloc byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0x74736f63_65736162); // "basecost"
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], cost);
        return System.IO.Hashing.XxHash128.HashToUInt128(bytes);
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(byte Data, bool Fillable), LineSet> initialMemo = [];

    /// <summary>
    /// How many threads expand the states of one breadth-first level. The expansions are merged in the order a
    /// single thread would make them, so verdicts, minimum events, witnesses, findings and state counts are the
    /// same for every value.
    /// </summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Whether to skip interleavings that only reorder commuting steps (sleep sets, and a step that commutes with
    /// everything the other agents may still do taken alone). Verdicts, minimum events, run counts, findings and the
    /// length of each finding's run are the same either way; fewer states and transitions are explored
    /// (docs/internals-reduction.md). <see cref="ExplorationLimits.Reduction"/> false turns it off too.
    /// </summary>
    public bool Reduction { get; init; } = true;

    /// <summary>With <see cref="Reduction"/>: whether sleep sets are kept (for measuring each half of the reduction).</summary>
    internal bool SleepSets { get; init; } = true;

    /// <summary>With <see cref="Reduction"/>: whether a persistent set is expanded instead of every enabled agent (for measuring each half of the reduction).</summary>
    internal bool PersistentSets { get; init; } = true;

    /// <summary>The last search was reduced, reached a state at two depths and ran again unreduced (for tests).</summary>
    internal bool ReductionAbandoned { get; private set; }

    /// <summary>How many reduced searches the last exploration ran: one more for each round of statements that reported a finding, crashed or failed (for tests).</summary>
    internal int ReducedRounds { get; private set; }

    public const string Name = "line-set";

    private PathStore? paths;

    /// <summary>The cheapest failing run found per expectation, for witnesses.</summary>
    public Dictionary<string, FailurePoint> Failures { get; } = new(StringComparer.Ordinal);

    /// <summary>The cheapest run found to each kernel crash (by <see cref="KernelBugVerdict.Name"/> and message), for witnesses.</summary>
    public Dictionary<(string Name, string Message), FailurePoint> Crashes { get; } = [];

    /// <summary>
    /// Every interleaving, breadth first (the exhaustive strategy). The reduction needs the footprints a
    /// <see cref="ScenarioModel"/> declares; another model is searched unreduced, with the same results.
    /// </summary>
    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits)
    {
        if (Reduction && limits.Reduction && model is ScenarioModel declared)
        {
            if (SearchReduced(declared, limits) is { } reduced)
            {
                return reduced;
            }

            // A state was reached at two depths, which the sleep sets assume never happens (the depth of a state is
            // the number of statements its agents ran): search again without the reduction.
            ReductionAbandoned = true;
            Failures.Clear();
            Crashes.Clear();
        }

        return SearchPacked(model, limits);
    }

    /// <summary>
    /// The reduced search, in rounds (docs/internals-reduction.md): a statement that reports a finding, crashes the
    /// kernel, reaches what is not modelled or fails must keep its place in every run, so that the shortest run to it, its state and its error stay
    /// those of the unreduced search. Those statements are not known before a search meets them: each round marks the
    /// ones it met, and a round that meets a statement not yet marked is run again with it marked. A search stopped by
    /// a limit is not run again. Null when the reduction had to give up.
    /// </summary>
    private ExplorationResult? SearchReduced(ScenarioModel model, ExplorationLimits limits)
    {
        var marked = new HashSet<Statement>(ReferenceEqualityComparer.Instance);
        ReducedRounds = 0;
        while (true)
        {
            ReducedRounds++;
            ExplorationResult? result;
            try
            {
                result = Search(model, limits, new Reducer(model, marked));
            }
            catch (RunException e) when (!marked.Contains(e.Statement))
            {
                marked.Add(e.Statement);
                continue;
            }

            if (result is null || (result.Inconclusive is not null && result.NotModelled is null))
            {
                return result; // a limit: not run again
            }

            var met = result.Findings.Select(f => f.Statement)
                .Concat(result.KernelBugs.Select(k => model.Scenario.StatementAt(k.Crash.Span)).OfType<Statement>())
                .Concat(result.NotModelled is { } stop && model.Scenario.StatementAt(stop.Span) is { } unmodelled ? [unmodelled] : [])
                .Where(stmt => !marked.Contains(stmt)).ToList();
            if (met.Count == 0)
            {
                return result;
            }

            marked.UnionWith(met);
            Failures.Clear();
            Crashes.Clear();
        }
    }

    /// <summary>The reduced breadth-first search; null when the reduction had to give up. The unreduced search is <see cref="SearchPacked"/>.</summary>
    private ExplorationResult? Search(ScenarioModel model, ExplorationLimits limits, Reducer reducer)
    {
        var watch = Stopwatch.StartNew();
        var scenario = model.Scenario;
        var accumulators = scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        paths = new PathStore(model);
        var noLines = LineMap.Empty;

        var root = new SearchNode(model.Initial, noLines, null, 0, SearchNode.Fingerprinted(model.Initial, noLines), paths) { Id = 0 };
        using var visited = new FingerprintSet();
        visited.Add(root.Fingerprint);
        var level = new List<SearchNode> { root };
        long finals = 0, transitions = 0, blocked = 0, hung = 0;
        string? inconclusive = null;
        var findings = new FindingCollector();
        var crashes = new KernelBugAccumulator();
        var memoryChecks = 0L;
        var lastProgress = 0L;
        Dictionary<UInt128, SearchNode> nextByFingerprint = [];
        var abandoned = false;
        List<SearchNode> next = [];

        // Merges one node's expansion: the visits, duplicates and finals a one-thread queue makes, in its order.
        // False when the search must stop (a limit, or the reduction gave up).
        bool Merge(SearchNode node, Expansion expansion, string? stopped)
        {
            if ((inconclusive = limits.Exceeded(watch, visited.Count, (++memoryChecks & 255) == 1)) is not null)
            {
                return false;
            }

            if (expansion.Error is LimitReachedException limit)
            {
                inconclusive = limit.Message;
                return false;
            }

            if (expansion.Children is null && expansion.Error is null)
            {
                // Not expanded: the level stopped at a limit.
                inconclusive = stopped ?? limits.Exceeded(watch, visited.Count) ?? "a limit was reached while a level was expanded";
                return false;
            }

            if (expansion.Error is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(expansion.Error).Throw();
            }

            foreach (var candidate in expansion.Children!)
            {
                transitions++;
                var id = -1;
                if (visited.Add(candidate.Fingerprint))
                {
                    // Only a state the search has not seen is built.
                    var child = Build(node, candidate);
                    id = child.Id = paths.Add(node.Id, candidate.Step.Agent, candidate.Resolved);
                    next.Add(child);
                    nextByFingerprint.Add(child.Fingerprint, child);
                }
                else
                {
                    if (!nextByFingerprint.TryGetValue(candidate.Fingerprint, out var known))
                    {
                        abandoned = true; // reached before, at another depth
                        return false;
                    }

                    known.Sleep = known.Sleep.Intersect(candidate.Sleep);
                }

                // Breadth-first: the first run to reach a finding is a shortest one.
                if (candidate.Step.Findings.Count > 0)
                {
                    findings.Add(candidate.Step, () => id >= 0 ? paths.Path(id) : [.. paths.Path(node.Id), candidate.Step]);
                }
            }

            foreach (var loop in expansion.Loops ?? [])
            {
                // A poll that missed and changed nothing: no new state, but its read happened (and may report).
                transitions++;
                findings.Add(loop.Step, () => [.. paths.Path(node.Id), loop.Step]);
            }

            if (expansion.Final)
            {
                finals++;
                Final(model, node, accumulators, crashes, ref blocked, ref hung);
            }

            return true;
        }

        while (level.Count > 0 && inconclusive is null && !abandoned)
        {
            next = [];
            nextByFingerprint.Clear();
            if (limits.Progress is { } progress && watch.ElapsedMilliseconds - lastProgress >= 250)
            {
                lastProgress = watch.ElapsedMilliseconds;
                progress(new ExplorationProgress(visited.Count, level[0].Depth, watch.Elapsed));
            }

            // The limits are checked while a level expands, every few nodes, not only when it is merged: one level of a
            // large search can take far longer than a limit's margin (issue 17: --timeout 120 returned after 159 s).
            if (Threads > 1 && level.Count > 1)
            {
                // Expand the whole level in parallel, then merge in order.
                var expansions = new Expansion[level.Count];
                var states = visited.Count;
                string? stopped = null;
                Parallel.For(0, level.Count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, (i, loop) =>
                {
                    if ((i & 15) == 0 && limits.Exceeded(watch, states, (i & 1023) == 0) is { } why)
                    {
                        Volatile.Write(ref stopped, why);
                        loop.Stop();
                        return;
                    }

                    expansions[i] = Expand(model, level[i], limits, watch, states, reducer);
                });

                for (var i = 0; i < level.Count && Merge(level[i], expansions[i], stopped); i++)
                {
                }
            }
            else
            {
                // One thread: each node is merged as soon as it is expanded.
                for (var i = 0; i < level.Count; i++)
                {
                    var stopped = (i & 15) == 0 ? limits.Exceeded(watch, visited.Count, (i & 1023) == 0) : null;
                    var expansion = stopped is null ? Expand(model, level[i], limits, watch, visited.Count, reducer) : default;
                    if (!Merge(level[i], expansion, stopped))
                    {
                        break;
                    }
                }
            }

            level = next;
        }

        if (abandoned)
        {
            return null;
        }

        inconclusive ??= crashes.NotModelled?.Message; // some run reached what the model does not have
        return new ExplorationResult(scenario, Name, crashes.Expectations(accumulators, inconclusive is not null),
            new ExplorationStats(visited.Count, finals, transitions, watch.Elapsed, blocked) { StoredBytes = visited.Bytes + paths.Bytes, Hung = hung }, inconclusive, findings.Results())
        { KernelBugs = crashes.Verdicts(inconclusive is not null), NotModelled = crashes.NotModelled };
    }

    /// <summary>A final state: a kernel crash is recorded as one (its run is not judged by the expectations); any other is evaluated.</summary>
    private void Final(IScenarioModel model, SearchNode node, List<VerdictAccumulator> accumulators, KernelBugAccumulator crashes, ref long blocked, ref long hung)
    {
        if (crashes.Record(node.Ctrl, node.BaseCost) && node.Ctrl.Crash is { } crash)
        {
            Crashes[(crash.Name, crash.Message)] = new FailurePoint(node, null, node.BaseCost);
        }

        if (node.Ctrl.Crash is null && node.Ctrl.NotModelled is null)
        {
            blocked += model.IsFinished(node.Ctrl) ? 0 : 1;
            hung += model.IsHung(node.Ctrl) ? 1 : 0;
            Evaluate(model, node, accumulators);
        }
    }

    /// <summary>
    /// The children of one node, one per enabled agent (or fewer, reduced), or the exception its expansion threw.
    /// <paramref name="Final"/>: no agent can step, so the node is a final state. <paramref name="Loops"/>: steps that led
    /// back to the node itself (a poll that missed and changed nothing), kept for their findings.
    /// </summary>
    private readonly record struct Expansion(List<Candidate>? Children, Exception? Error, bool Final = false, List<Candidate>? Loops = null);

    /// <summary>
    /// A child an expansion found, not yet built: its fingerprint, the step (resolved), its lines and its control state
    /// <paramref name="Next"/>. The merge builds it (<see cref="Build"/>) only when the visited set has not seen the
    /// fingerprint.
    /// </summary>
    private readonly record struct Candidate(UInt128 Fingerprint, StepResult Step, LineMap Lines, int Cost, IReadOnlyList<HwOp>? Resolved, SleepSet Sleep,
        ControlState Next);

    private Expansion Expand(IScenarioModel model, SearchNode node, ExplorationLimits limits, Stopwatch watch, long states, Reducer reducer)
    {
        try
        {
            return ExpandReduced(model, node, limits, watch, states, reducer);
        }
        catch (Exception e) // rethrown at the merge, in the order one thread would have met it
        {
            return new Expansion(null, e);
        }
    }

    /// <summary>
    /// The reduced expansion (docs/internals-reduction.md): only the local agent's step when one agent has a step that
    /// commutes with everything the others may still do, else every enabled agent's; in both cases, none of the
    /// agents in the node's sleep set. Each child sleeps on the steps of its sleep set and its earlier siblings that
    /// commute with the step that made it.
    /// </summary>
    private Expansion ExpandReduced(IScenarioModel model, SearchNode node, ExplorationLimits limits, Stopwatch watch, long states, Reducer reducer)
    {
        var enabled = model.Enabled(node.Ctrl).ToList();
        if (enabled.Count == 0)
        {
            return new Expansion([], null, true);
        }

        List<Candidate>? loops = null;
        if (PersistentSets)
        {
            foreach (var agents in reducer.Persistent(node.Ctrl, enabled))
            {
                // A persistent set whose steps all lead back here (polls that miss) would ignore the other agents.
                var some = ExpandAgents(model, node, agents, limits, watch, states, reducer, ref loops);
                if (some.Count > 0)
                {
                    return new Expansion(some, null, false, loops);
                }
            }

            loops = null; // every agent is expanded below, those whose steps only looped included
        }

        var children = ExpandAgents(model, node, enabled, limits, watch, states, reducer, ref loops);

        // Final when every step led back here (polls that can never see their value), unless a step was skipped asleep.
        return new Expansion(children, null, children.Count == 0 && !enabled.Any(node.Sleep.Contains), loops);
    }

    /// <summary>The children by the steps of <paramref name="agents"/> not asleep.</summary>
    private List<Candidate> ExpandAgents(IScenarioModel model, SearchNode node, List<int> agents, ExplorationLimits limits, Stopwatch watch, long states,
        Reducer reducer, ref List<Candidate>? loops)
    {
        var children = new List<Candidate>();
        var taken = new List<(int Agent, StepLabel Label)>();
        foreach (var agent in agents)
        {
            if (node.Sleep.Contains(agent))
            {
                continue;
            }

            var step = model.Step(node.Ctrl, agent);
            var label = reducer.Label(node.Ctrl, step);

            var sleep = SleepSets ? node.Sleep.After(label, taken) : SleepSet.Empty;
            foreach (var outcome in ApplyOps(model, node.Ctrl.Mmu, node.Lines, step.Ops, limits, watch, states))
            {
                var cost = node.BaseCost + outcome.Cost;
                var resolved = outcome.Resolved is { } ops ? step.Resolved(ops) : step;
                AddChild(children, ref loops, node,
                    new Candidate(SearchNode.Fingerprinted(resolved.Next, outcome.Lines, cost), resolved, outcome.Lines, cost, outcome.Resolved, sleep, resolved.Next));
            }

            taken.Add((agent, label));
        }

        return children;
    }

    /// <summary>The node <paramref name="candidate"/> describes, a child of <paramref name="node"/>.</summary>
    private SearchNode Build(SearchNode node, Candidate candidate) =>
        new(candidate.Next, candidate.Lines, candidate.Step, node.Depth + 1, candidate.Fingerprint, paths, candidate.Cost)
        { Resolved = candidate.Resolved, Sleep = candidate.Sleep };

    private SearchNode Child(SearchNode node, StepResult step, Outcome outcome)
    {
        var cost = node.BaseCost + outcome.Cost;
        if (outcome.Resolved is { } ops)
        {
            step = step.Resolved(ops); // a copy's values, or a poll's branch (a miss stays at the poll)
        }

        return new SearchNode(step.Next, outcome.Lines, step, node.Depth + 1,
            SearchNode.Fingerprinted(step.Next, outcome.Lines, cost), paths, cost)
        { Resolved = outcome.Resolved };
    }

    private void Evaluate(IScenarioModel model, SearchNode node, List<VerdictAccumulator> accumulators)
    {
        foreach (var acc in accumulators)
        {
            var checks = ExpectationChecks.For(acc.Expectation, node.Ctrl, model.Hardware.LineSize);
            if (checks is null)
            {
                // A variable never read: the run fails as it is, with the events its copies and polls needed.
                if (acc.Record(false, node.BaseCost, node.BaseCost == 0 ? true : null))
                {
                    Failures[acc.Expectation.Name] = new FailurePoint(node, null, node.BaseCost);
                }

                continue;
            }

            var canHold = true;
            var quietFails = false; // some line whose every event-free state fails: every quiet outcome fails
            int? failCost = null;
            ulong failLine = 0;
            foreach (var check in checks)
            {
                // Each run of equal lines is decided once; its first line stands for it (the lowest failing line wins ties).
                var covered = check.First;
                foreach (var run in node.Lines.Overlapping(check.First, check.End))
                {
                    if (run.Start != covered)
                    {
                        break;
                    }

                    covered = run.End;
                    var lineHolds = false;
                    var quietHolds = false;
                    foreach (var (state, cost) in run.Set.Entries)
                    {
                        if (check.Holds(state))
                        {
                            lineHolds = true;
                            quietHolds |= cost == 0;
                        }
                        else if (failCost is null || cost < failCost)
                        {
                            failCost = cost;
                            failLine = run.Start;
                        }
                    }

                    canHold &= lineHolds;
                    quietFails |= !quietHolds;
                }

                if (covered != check.End)
                {
                    throw new InvalidOperationException($"line PA 0x{covered:x} of an observed variable was never touched on this run");
                }
            }

            failCost += node.BaseCost;
            if (acc.Record(canHold, failCost, node.BaseCost == 0 ? quietFails : null))
            {
                Failures[acc.Expectation.Name] = new FailurePoint(node, failLine, failCost!.Value);
            }
        }
    }

    /// <summary>
    /// One way a step's operations can turn out: the lines after them, the events its copies' loads needed that the
    /// lines no longer show, and the operations with every copy resolved (null when the step made no copy).
    /// </summary>
    private readonly record struct Outcome(LineMap Lines, int Cost, IReadOnlyList<HwOp>? Resolved);

    /// <summary>The most runs one copy may split into before the search gives up as inconclusive.</summary>
    public const int MaxCopyValues = 4096;

    /// <summary>
    /// Applies one step's operations, in order, to the line sets, closing each touched line after each operation.
    /// A copy splits the run: one outcome per combination of the bytes its source lines may hold, each with the
    /// copy resolved to a load that must see those bytes and a store of them (docs/internals-line-sets.md).
    /// </summary>
    private List<Outcome> ApplyOps(IScenarioModel model, Mmu mmu, LineMap lines, IReadOnlyList<HwOp> ops,
        ExplorationLimits limits, Stopwatch watch, long states)
    {
        var into = new List<Outcome>(1);
        var tick = 0;
        var copies = false;
        foreach (var op in ops)
        {
            copies |= op is CopyOp or PollOp;
        }

        ApplyFrom(model, mmu, lines, ops, 0, 0, copies ? [] : null, into, limits, watch, states, ref tick);
        return into;
    }

    private void ApplyFrom(IScenarioModel model, Mmu mmu, LineMap lines, IReadOnlyList<HwOp> ops, int from, int cost,
        List<HwOp>? resolved, List<Outcome> into, ExplorationLimits limits, Stopwatch watch, long states, ref int tick)
    {
        var config = model.Hardware;
        var builder = lines.ToBuilder();
        for (var i = from; i < ops.Count; i++)
        {
            switch (ops[i])
            {
                case MapOp map:
                    CheckFillabilityUnchanged(mmu, mmu = mmu.Map(map.Alias), map.Alias);
                    break;
                case UnmapOp unmap:
                    CheckFillabilityUnchanged(mmu, mmu = mmu.Unmap(unmap.Alias), unmap.Alias);
                    break;
                case MemoryOp mem:
                    ApplyMemory(config, mmu, builder, mem, limits, watch, states, ref tick);
                    break;
                case CopyOp copy:
                    var before = builder.ToImmutable();
                    foreach (var data in CopyValues(config, mmu, before, copy))
                    {
                        var halves = copy.Resolve(data);
                        var branch = before.ToBuilder();
                        var extra = 0;
                        ApplyMemory(config, mmu, branch, (MemoryOp)halves[0], limits, watch, states, ref tick);
                        foreach (var (pa, _) in ((MemoryOp)halves[0]).Lines(config.LineSize))
                        {
                            branch.TryGetValue(pa, out var loaded);
                            branch.SetLine(pa, config.LineSize, Intern(loaded.Normalised(out var least)));
                            extra += least;
                        }

                        ApplyMemory(config, mmu, branch, (MemoryOp)halves[1], limits, watch, states, ref tick);
                        ApplyFrom(model, mmu, branch.ToImmutable(), ops, i + 1, cost + extra, [.. resolved!, .. halves], into, limits, watch, states, ref tick);
                    }

                    return;
                case PollOp poll:
                    ApplyPoll(model, mmu, builder.ToImmutable(), ops, i, poll, cost, resolved!, into, limits, watch, states, ref tick);
                    return;
            }

            resolved?.Add(ops[i]);
        }

        into.Add(new Outcome(builder.ToImmutable(), cost, resolved));
    }

    private void ApplyMemory(HardwareConfig config, Mmu mmu, LineMap.Builder builder, MemoryOp mem,
        ExplorationLimits limits, Stopwatch watch, long states, ref int tick)
    {
        if (mem.Op.Data is not null)
        {
            // A copy's half carries its bytes, indexed by each line's offset in the copy: every line differs.
            foreach (var (linePa, access) in mem.Lines(config.LineSize))
            {
                LimitChecks.Tick(ref tick, limits, watch, states);
                var fillable = mmu.IsFillable(linePa);
                var set = builder.TryGetValue(linePa, out var known) ? known : InitialSet(config, linePa, fillable);
                builder.SetLine(linePa, config.LineSize, Applied(set, access, config, fillable));
            }

            return;
        }

        // Any other operation does the same to every line but its two edge lines, and its effect does not depend on
        // where a line lies in the range (LineAccess.VarOffset): apply it once per run of equal lines.
        var size = (ulong)config.LineSize;
        var first = mem.Pa & ~(size - 1);
        var last = (mem.Pa + mem.Length - 1) & ~(size - 1);
        if (first == last)
        {
            // One line, the common case of small buffers: no pieces to cut.
            LimitChecks.Tick(ref tick, limits, watch, states);
            var fillable = mmu.IsFillable(first);
            var set = builder.TryGetValue(first, out var known) ? known : InitialSet(config, first, fillable);
            builder.SetLine(first, config.LineSize, Applied(set, mem.AccessAt(first, config.LineSize)!.Value with { VarOffset = 0 }, config, fillable));
            return;
        }

        Span<(ulong Start, ulong End)> spans = [(first, first + size), (first + size, last), (last, last + size)];
        var count = last == first ? 1 : 3;
        var pieces = new List<(ulong Start, ulong End, LineSet? Set)>();
        var replaced = new List<LineRange>();
        for (var k = 0; k < count; k++)
        {
            var (start, end) = spans[k];
            if (start >= end)
            {
                continue;
            }

            var access = mem.AccessAt(start, config.LineSize)!.Value with { VarOffset = 0 };
            builder.Pieces(start, end, pieces);
            replaced.Clear();
            foreach (var (ps, pe, known) in pieces)
            {
                foreach (var (fs, fe, fillable) in FillableRuns(mmu, ps, pe, size))
                {
                    LimitChecks.Tick(ref tick, limits, watch, states);
                    if (known is not null)
                    {
                        replaced.Add(new LineRange(fs, fe, Applied(known, access, config, fillable)));
                        continue;
                    }

                    foreach (var (ds, de, data) in InitialDataRuns(config, fs, fe))
                    {
                        replaced.Add(new LineRange(ds, de, Applied(InitialSet(config, data, fillable), access, config, fillable)));
                    }
                }
            }

            builder.Replace(start, end, replaced);
        }
    }

    /// <summary>The callbacks a <see cref="LinePlan"/> applies with (one search's hardware).</summary>
    private Func<ulong, bool, LineSet>? planInitial;
    private Func<LineSet, LineAccess, bool, LineSet>? planApplied;

    private LineSet Applied(LineSet set, in LineAccess access, HardwareConfig config, bool fillable)
    {
        var key = (set, access, fillable);
        if (!applyMemo.TryGetValue(key, out var next))
        {
            next = Intern(set.Apply(access, config, fillable));
            applyMemo[key] = next;
        }

        return next;
    }

    private LineSet InitialSet(HardwareConfig config, ulong linePa, bool fillable) => InitialSet(config, config.InitialDataAt(linePa), fillable);

    /// <summary>A never-touched line's set: it depends only on the data the line held at boot and whether it may be filled.</summary>
    private LineSet InitialSet(HardwareConfig config, byte data, bool fillable) =>
        initialMemo.GetOrAdd((data, fillable), key => Intern(LineSet.Initial(config, key.Data, key.Fillable)));

    /// <summary>Splits lines [start, end) where <see cref="Mmu.IsFillable(ulong)"/> may change: at the lines where a cacheable alias begins or ends.</summary>
    private static List<(ulong Start, ulong End, bool Fillable)> FillableRuns(Mmu mmu, ulong start, ulong end, ulong lineSize)
    {
        List<ulong>? cuts = null;
        foreach (var alias in mmu.Aliases)
        {
            if (alias.Type.IsCacheable())
            {
                AddCut(ref cuts, (alias.Pa + lineSize - 1) & ~(lineSize - 1), start, end); // the first line the alias covers
                AddCut(ref cuts, (alias.Pa + alias.Size + lineSize - 1) & ~(lineSize - 1), start, end); // the first it no longer does
            }
        }

        return Runs(cuts, start, end, at => mmu.IsFillable(at));
    }

    /// <summary>Splits lines [start, end) by the data they held at boot (<see cref="HardwareConfig.InitialDataAt"/>).</summary>
    private static List<(ulong Start, ulong End, byte Data)> InitialDataRuns(HardwareConfig config, ulong start, ulong end)
    {
        List<ulong>? cuts = null;
        foreach (var r in config.Regions ?? [])
        {
            AddCut(ref cuts, r.Pa, start, end);
            AddCut(ref cuts, r.Pa + r.Size, start, end);
        }

        return Runs(cuts, start, end, config.InitialDataAt);
    }

    private static void AddCut(ref List<ulong>? cuts, ulong at, ulong start, ulong end)
    {
        if (at > start && at < end)
        {
            (cuts ??= []).Add(at);
        }
    }

    /// <summary>[start, end) cut at <paramref name="cuts"/> (unsorted, maybe repeated), each piece with <paramref name="value"/> of its first line, equal neighbours joined.</summary>
    private static List<(ulong Start, ulong End, T Value)> Runs<T>(List<ulong>? cuts, ulong start, ulong end, Func<ulong, T> value)
    {
        if (cuts is null)
        {
            return [(start, end, value(start))]; // the common case: nothing changes inside the range
        }

        cuts.Add(end);
        cuts.Sort();
        var runs = new List<(ulong, ulong, T)>(cuts.Count);
        var at = start;
        foreach (var cut in cuts)
        {
            if (cut > at)
            {
                var v = value(at);
                if (runs.Count > 0 && EqualityComparer<T>.Default.Equals(runs[^1].Item3, v))
                {
                    runs[^1] = (runs[^1].Item1, cut, v);
                }
                else
                {
                    runs.Add((at, cut, v));
                }

                at = cut;
            }
        }

        return runs;
    }

    /// <summary>
    /// Every value a copy's load may return, as the product of what each source line may hold (lines are
    /// independent). A copy whose source and destination share a line is refused: its halves would not commute.
    /// </summary>
    internal static List<LineBytes> CopyValues(HardwareConfig config, Mmu mmu, LineMap lines, CopyOp copy)
    {
        var load = copy.Load;
        var sources = load.Lines(config.LineSize).ToList();
        var targets = copy.Store.Lines(config.LineSize).Select(l => l.LinePa).ToHashSet();
        if (sources.Any(s => targets.Contains(s.LinePa)))
        {
            throw new NotModelledException($"{copy.Origin}: a copy whose source and destination share a cache line");
        }

        var perLine = new List<List<LineBytes>>(sources.Count);
        long combinations = 1;
        var loads = new List<LineBytes>(2);
        foreach (var (pa, access) in sources)
        {
            var set = lines.TryGetValue(pa, out var known) ? known : LineSet.Initial(config, config.InitialDataAt(pa), mmu.IsFillable(pa));
            var values = new HashSet<LineBytes>();
            foreach (var (state, _) in set.Entries)
            {
                loads.Clear();
                LineSemantics.Loads(state, access, loads);
                values.UnionWith(loads);
            }

            combinations *= values.Count;
            if (combinations > MaxCopyValues)
            {
                throw new NotModelledException(
                    $"{copy.Origin}: the {copy.Length} bytes copied from PA 0x{copy.SrcPa:x} may hold more than {MaxCopyValues} different values on this run (the source lines' caches and RAM disagree); splitting the run on each is beyond this version");
            }

            perLine.Add([.. values.OrderBy(v => Convert.ToHexString(v.Span))]);
        }

        var result = new List<LineBytes>((int)combinations);
        var buffer = new byte[copy.Length];
        void Fill(int k, int offset)
        {
            if (k == perLine.Count)
            {
                result.Add(LineBytes.From(buffer));
                return;
            }

            foreach (var value in perLine[k])
            {
                value.Span.CopyTo(buffer.AsSpan(offset));
                Fill(k + 1, offset + value.Length);
            }
        }

        Fill(0, 0);
        return result;
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
