using System.Collections.Immutable;
using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// The soundness guard of design §5: small and deliberately naive. It keeps one concrete state for every line an
/// expectation can observe, applies each hardware operation of a step as its own move, and allows every spontaneous
/// move on every observed line between any two moves. A 0-1 breadth-first search gives each state its fewest events.
/// Exponential in the number of lines: for small scenarios only.
/// </summary>
public sealed class BruteForceExplorer
{
    public const string Name = "brute-force";

    private sealed record State(ControlState Ctrl, ControlState? Before, int Agent, IReadOnlyList<HwOp>? Pending, int Index, Mmu Mmu, ImmutableArray<LineState> Lines);

    private sealed class StateComparer : IEqualityComparer<State>
    {
        public static StateComparer Instance { get; } = new();

        public bool Equals(State? x, State? y) =>
            x is not null && y is not null && x.Index == y.Index && x.Agent == y.Agent &&
            (x.Pending is null) == (y.Pending is null) &&
            (x.Pending is null ? x.Ctrl.Equals(y.Ctrl) : x.Before!.Equals(y.Before)) &&
            x.Lines.SequenceEqual(y.Lines);

        public int GetHashCode(State s)
        {
            var h = HashCode.Combine(s.Pending is null ? s.Ctrl : s.Before, s.Agent, s.Index);
            foreach (var l in s.Lines)
            {
                h = HashCode.Combine(h, l);
            }

            return h;
        }
    }

    public ExplorationResult Explore(IScenarioModel model, ExplorationLimits limits)
    {
        var watch = Stopwatch.StartNew();
        var config = model.Hardware;
        var findings = new FindingCollector();
        var universe = TouchedLines(model);
        var index = universe.Select((pa, i) => (pa, i)).ToDictionary(p => p.pa, p => p.i);
        var accumulators = model.Scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        var dist = new Dictionary<State, int>(StateComparer.Instance);
        var deque = new LinkedList<(State, int)>();
        if (InitialCombinations(config, universe, out var tooBig) is not { } combinations)
        {
            return new ExplorationResult(model.Scenario, Name, accumulators.Select(a => a.Verdict(true)).ToList(),
                new ExplorationStats(0, 0, 0, watch.Elapsed, 0), tooBig, findings.Results());
        }

        foreach (var lines in combinations)
        {
            var s = new State(model.Initial, null, -1, null, 0, model.Initial.Mmu, lines);
            if (dist.TryAdd(s, 0))
            {
                deque.AddLast((s, 0));
            }
        }

        long finals = 0, transitions = 0, blocked = 0, hung = 0;
        var crashes = new KernelBugAccumulator();
        string? inconclusive = null;
        var moves = new List<(SpontaneousMove, LineState)>();
        var done = new HashSet<State>(StateComparer.Instance);
        var memoryChecks = 0L;
        while (deque.First is { } first)
        {
            deque.RemoveFirst();
            var (state, cost) = first.Value;
            if (!done.Add(state))
            {
                continue;
            }

            if ((inconclusive = limits.Exceeded(watch, dist.Count, (++memoryChecks & 255) == 1)) is not null)
            {
                break;
            }

            void Push(State next, int c)
            {
                transitions++;
                if (!dist.TryGetValue(next, out var known) || known > c)
                {
                    dist[next] = c;
                    if (c == cost)
                    {
                        deque.AddFirst((next, c));
                    }
                    else
                    {
                        deque.AddLast((next, c));
                    }
                }
            }

            // Spontaneous moves, on any line, at any time.
            for (var i = 0; i < universe.Count; i++)
            {
                moves.Clear();
                LineSemantics.Moves(state.Lines[i], state.Mmu.IsFillable(universe[i]), moves);
                foreach (var (_, next) in moves)
                {
                    Push(state with { Lines = state.Lines.SetItem(i, next) }, cost + 1);
                }
            }

            if (state.Pending is not null)
            {
                var op = state.Pending[state.Index];
                var mmu = state.Mmu;
                List<ImmutableArray<LineState>> results = [state.Lines];
                switch (op)
                {
                    case MapOp m:
                        mmu = mmu.Map(m.Alias);
                        break;
                    case UnmapOp u:
                        mmu = mmu.Unmap(u.Alias);
                        break;
                    case MemoryOp mem:
                        // Every combination of the lines' outcomes (most operations have exactly one).
                        foreach (var (pa, access) in mem.Lines(config.LineSize))
                        {
                            if (index.TryGetValue(pa, out var i))
                            {
                                results = results.SelectMany(lines =>
                                {
                                    var outcomes = LineSemantics.Apply(lines[i], access, config);
                                    return Enumerable.Range(0, outcomes.Count).Select(k => lines.SetItem(i, outcomes[k]));
                                }).ToList();
                            }
                        }

                        break;
                    case CopyOp copy:
                        results = Copy(copy, state.Lines, index, config);
                        break;
                }

                var last = state.Index + 1 == state.Pending.Count;
                foreach (var lines in results)
                {
                    Push(last
                        ? new State(state.Ctrl, null, -1, null, 0, mmu, lines)
                        : state with { Index = state.Index + 1, Mmu = mmu, Lines = lines }, cost);
                }

                continue;
            }

            var any = false;
            var moving = false;
            foreach (var agent in model.Enabled(state.Ctrl))
            {
                any = true;
                var step = model.Step(state.Ctrl, agent);
                if (step.Ops.OfType<PollOp>().FirstOrDefault() is { } poll)
                {
                    // The poll's read, now, on the concrete lines: the agent moves on when every byte is the writer's.
                    if (step.Ops.Count != 1 || step.Missed is null)
                    {
                        throw new InvalidOperationException("a poll step makes one read");
                    }

                    foreach (var (lines, hit) in Poll(poll, state.Lines, index, config))
                    {
                        var taken = hit ? step : step.Missed;
                        findings.Add(taken);
                        Push(new State(taken.Next, null, -1, null, 0, state.Mmu, lines), cost);
                    }

                    moving |= poll.Bounded || CanHit(poll, state.Lines, index, state.Mmu, config);
                    continue;
                }

                moving = true;
                findings.Add(step);
                Push(step.Ops.Count == 0
                    ? new State(step.Next, null, -1, null, 0, state.Mmu, state.Lines)
                    : new State(step.Next, state.Ctrl, agent, step.Ops, 0, state.Mmu, state.Lines), cost);
            }

            if (!any || !moving)
            {
                // No agent can step, or only polls without max whose value no spontaneous move can bring (they read on,
                // but nothing changes until another agent writes, and none can): a final state, hung if a poll is left.
                finals++;
                crashes.Record(state.Ctrl, cost);
                if (state.Ctrl.Crash is not null || state.Ctrl.NotModelled is not null)
                {
                    continue; // a kernel crash is a verdict of its own; the expectations are judged on the other runs
                }

                blocked += model.IsFinished(state.Ctrl) ? 0 : 1;
                hung += model.IsHung(state.Ctrl) ? 1 : 0;
                foreach (var acc in accumulators)
                {
                    var holds = Holds(acc.Expectation, state.Ctrl, universe, state.Lines);
                    acc.Record(holds, holds ? null : cost, cost == 0 ? !holds : null);
                }
            }
        }

        inconclusive ??= crashes.NotModelled?.Message; // some run reached what the model does not have
        return new ExplorationResult(model.Scenario, Name, crashes.Expectations(accumulators, inconclusive is not null),
            new ExplorationStats(dist.Count, finals, transitions, watch.Elapsed, blocked) { Hung = hung }, inconclusive, findings.Results())
        { KernelBugs = crashes.Verdicts(inconclusive is not null), NotModelled = crashes.NotModelled };
    }

    /// <summary>
    /// A poll's read on concrete lines: every combination of what each line's load may return (two values for a snoop
    /// of a stale Clean line), with the lines after the load and whether every byte was the writer's.
    /// </summary>
    private static List<(ImmutableArray<LineState> Lines, bool Hit)> Poll(PollOp poll, ImmutableArray<LineState> lines, Dictionary<ulong, int> index, HardwareConfig config)
    {
        var results = new List<(ImmutableArray<LineState>, bool)> { (lines, true) };
        var values = new List<LineBytes>(2);
        foreach (var (pa, access) in poll.Load.Lines(config.LineSize))
        {
            var i = index.TryGetValue(pa, out var at) ? at : throw new InvalidOperationException($"the polled line 0x{pa:x} is not tracked");
            var next = new List<(ImmutableArray<LineState>, bool)>();
            foreach (var (current, hit) in results)
            {
                values.Clear();
                LineSemantics.Loads(current[i], access, values);
                var after = LineSemantics.Apply(current[i], access, config).First!;
                foreach (var all in values.Select(v => v.Span.IndexOfAnyExcept(poll.Writer) < 0).Distinct())
                {
                    next.Add((current.SetItem(i, after), hit && all));
                }
            }

            results = next;
        }

        return results;
    }

    /// <summary>Whether spontaneous moves alone can bring every polled line to a state whose load returns only the writer's bytes (lines move independently).</summary>
    private static bool CanHit(PollOp poll, ImmutableArray<LineState> lines, Dictionary<ulong, int> index, Mmu mmu, HardwareConfig config)
    {
        var values = new List<LineBytes>(2);
        var moves = new List<(SpontaneousMove, LineState)>();
        foreach (var (pa, access) in poll.Load.Lines(config.LineSize))
        {
            var seen = new HashSet<LineState> { lines[index[pa]] };
            var work = new Queue<LineState>(seen);
            var reachable = false;
            while (!reachable && work.TryDequeue(out var s))
            {
                values.Clear();
                LineSemantics.Loads(s, access, values);
                reachable = values.Any(v => v.Span.IndexOfAnyExcept(poll.Writer) < 0);
                moves.Clear();
                LineSemantics.Moves(s, mmu.IsFillable(pa), moves);
                foreach (var (_, next) in moves)
                {
                    if (seen.Add(next))
                    {
                        work.Enqueue(next);
                    }
                }
            }

            if (!reachable)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A copy on concrete lines, byte by byte: each tracked source line is loaded (every outcome of the load), and
    /// each tracked destination line stores the bytes loaded. Destination lines are tracked only with their sources.
    /// </summary>
    private static List<ImmutableArray<LineState>> Copy(CopyOp copy, ImmutableArray<LineState> lines, Dictionary<ulong, int> index, HardwareConfig config)
    {
        // Every combination of what the tracked source lines' loads return, with the states they leave.
        var results = new List<(ImmutableArray<LineState> Lines, int[] Bytes)>();
        var unknown = new int[copy.Length];
        Array.Fill(unknown, -1);
        results.Add((lines, unknown));
        foreach (var (pa, access) in copy.Load.Lines(config.LineSize))
        {
            if (!index.TryGetValue(pa, out var i))
            {
                continue;
            }

            var next = new List<(ImmutableArray<LineState>, int[])>();
            foreach (var (current, bytes) in results)
            {
                var values = new List<LineBytes>(2);
                LineSemantics.Loads(current[i], access, values);
                foreach (var value in values)
                {
                    var data = (int[])bytes.Clone();
                    for (var b = 0; b < value.Length; b++)
                    {
                        data[access.VarOffset + b] = value[b];
                    }

                    var load = new LineAccess(LineOp.CopyRead(copy.Master, copy.SrcType, Padded(value, access.VarOffset, (int)copy.Length)), access.Start, access.End, access.VarOffset);
                    next.Add((current.SetItem(i, LineSemantics.Apply(current[i], load, config).Single), data));
                }
            }

            results = next;
        }

        var outcomes = new List<ImmutableArray<LineState>>(results.Count);
        foreach (var (current, bytes) in results)
        {
            var after = current;
            foreach (var (pa, access) in copy.Store.Lines(config.LineSize))
            {
                if (!index.TryGetValue(pa, out var i))
                {
                    continue;
                }

                var data = new byte[copy.Length];
                for (var b = access.VarOffset; b < access.VarOffset + (access.End - access.Start); b++)
                {
                    data[b] = bytes[b] >= 0 ? (byte)bytes[b] : throw new InvalidOperationException($"the copy's source for line 0x{pa:x} is not tracked");
                }

                var store = new LineAccess(LineOp.CopyWrite(copy.Master, copy.DstType, LineBytes.From(data)), access.Start, access.End, access.VarOffset);
                after = after.SetItem(i, LineSemantics.Apply(after[i], store, config).Single);
            }

            outcomes.Add(after);
        }

        return outcomes;
    }

    private static LineBytes Padded(LineBytes value, int offset, int length)
    {
        var data = new byte[length];
        value.Span.CopyTo(data.AsSpan(offset));
        return LineBytes.From(data);
    }

    /// <summary>
    /// Evaluates an expectation on one concrete final state, independently of the line-set explorer's per-line
    /// checks: each observed variable is reassembled byte by byte from the lines' observations, then compared.
    /// </summary>
    private static bool Holds(Expectation e, ControlState ctrl, IReadOnlyList<ulong> universe, ImmutableArray<LineState> lines)
    {
        foreach (var atom in e.Atoms)
        {
            if (!ctrl.Observed.TryGetValue(atom.Var, out var range))
            {
                return false;
            }

            var bytes = new int[range.Length];
            Array.Fill(bytes, -1);
            for (var l = 0; l < lines.Length; l++)
            {
                foreach (var o in lines[l].Observations.Where(o => o.Var == atom.Var))
                {
                    var at = o.VarOffset(universe[l], range.Pa);
                    for (var i = 0; i < o.Values.Length; i++)
                    {
                        bytes[at + i] = o.Values[i];
                    }
                }
            }

            for (var k = atom.Low; k < (atom.High ?? range.Length); k++)
            {
                if (bytes[k] < 0)
                {
                    throw new InvalidOperationException($"byte {k} of observed variable {atom.Var} is missing from the final state");
                }

                if (bytes[k] != atom.Writer)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// The lines an expectation can observe: those read, on any interleaving, into a variable some expectation
    /// names, and the source lines of any copy into a line already included (to a fixed point). No other hardware
    /// rule couples two lines (every operation is applied line by line), so the other lines cannot change a verdict
    /// and are left out; without this, one page-sized allocation would make 64 lines and 3^64 states. Polled lines are
    /// included too: what they hold decides where the agent goes. Only polls make control flow depend on data, and
    /// this search of control states follows both outcomes of each, so it finds every line a run touches (and perhaps
    /// some no run does, which costs states, not answers). Findings are collected by the search proper.
    /// </summary>
    private static List<ulong> TouchedLines(IScenarioModel model)
    {
        var observedVars = model.Scenario.Expectations.SelectMany(e => e.Atoms).Select(a => a.Var).ToHashSet();
        var lines = new SortedSet<ulong>();
        var copies = new HashSet<CopyOp>();
        var seen = new HashSet<ControlState> { model.Initial };
        var work = new Stack<ControlState>();
        work.Push(model.Initial);
        while (work.TryPop(out var s))
        {
            foreach (var agent in model.Enabled(s))
            {
                StepResult step;
                try
                {
                    step = model.Step(s, agent);
                }
                catch (RunException)
                {
                    // Past a poll, this search follows both outcomes whatever the lines hold, so it may reach a state
                    // no run reaches; the search proper meets every error of a state a run does reach.
                    continue;
                }

                foreach (var op in step.Ops.OfType<MemoryOp>().Where(m => m.Op.Kind == LineOpKind.Read && observedVars.Contains(m.Op.Var)))
                {
                    foreach (var (pa, _) in op.Lines(model.Hardware.LineSize))
                    {
                        lines.Add(pa);
                    }
                }

                // A polled line decides where the agent goes: it is tracked whatever reads it feeds.
                foreach (var poll in step.Ops.OfType<PollOp>())
                {
                    foreach (var (pa, _) in poll.Load.Lines(model.Hardware.LineSize))
                    {
                        lines.Add(pa);
                    }
                }

                copies.UnionWith(step.Ops.OfType<CopyOp>());
                foreach (var next in step.Missed is { } missed ? [step.Next, missed.Next] : new[] { step.Next })
                {
                    if (seen.Add(next))
                    {
                        work.Push(next);
                    }
                }


            }
        }

        var size = model.Hardware.LineSize;
        bool grew;
        do
        {
            grew = false;
            foreach (var copy in copies)
            {
                // Byte k of the copy goes from SrcPa + k to DstPa + k.
                foreach (var (dst, access) in copy.Store.Lines(size).Where(l => lines.Contains(l.LinePa)).ToList())
                {
                    var first = copy.SrcPa + (ulong)access.VarOffset;
                    var last = first + (ulong)(access.End - access.Start) - 1;
                    for (var pa = first & ~(ulong)(size - 1); pa <= last; pa += (ulong)size)
                    {
                        grew |= lines.Add(pa);
                    }
                }
            }
        }
        while (grew);

        return [.. lines];
    }

    /// <summary>The most lines the brute force tracks: each is a separate array slot of every state it stores.</summary>
    public const int MaxLines = 4096;

    /// <summary>The most initial states it starts from (the product of every line's initial states).</summary>
    public const int MaxInitialStates = 1 << 20;

    /// <summary>
    /// Every combination of the lines' initial states, built eagerly line by line; null, with the reason, when the
    /// scenario is beyond what enumerating concrete lines can do (the run is then inconclusive, never a guess).
    /// </summary>
    private static List<ImmutableArray<LineState>>? InitialCombinations(HardwareConfig config, IReadOnlyList<ulong> lines, out string? tooBig)
    {
        tooBig = null;
        if (lines.Count > MaxLines)
        {
            tooBig = $"the brute-force explorer tracks each line on its own, and this scenario touches {lines.Count} lines ({(ulong)lines.Count * (ulong)config.LineSize >> 10} KiB), more than its limit of {MaxLines}; the line-set explorer has no such limit";
            return null;
        }

        var result = new List<ImmutableArray<LineState>.Builder> { ImmutableArray.CreateBuilder<LineState>(lines.Count) };
        foreach (var pa in lines)
        {
            var initial = LineSemantics.InitialStates(config, pa);
            if ((long)result.Count * initial.Count > MaxInitialStates)
            {
                tooBig = $"the brute-force explorer would start from more than {MaxInitialStates} combinations of initial line states ({lines.Count} lines, cache_init = arbitrary); the line-set explorer has no such limit";
                return null;
            }

            var next = new List<ImmutableArray<LineState>.Builder>(result.Count * initial.Count);
            foreach (var prefix in result)
            {
                for (var k = 0; k < initial.Count; k++)
                {
                    var b = k == initial.Count - 1 ? prefix : CopyOf(prefix, lines.Count);
                    b.Add(initial[k]);
                    next.Add(b);
                }
            }

            result = next;
        }

        return result.Select(b => b.MoveToImmutable()).ToList();
    }

    private static ImmutableArray<LineState>.Builder CopyOf(ImmutableArray<LineState>.Builder b, int capacity)
    {
        var copy = ImmutableArray.CreateBuilder<LineState>(capacity);
        copy.AddRange(b);
        return copy;
    }
}
