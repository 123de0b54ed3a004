using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>One entry of a witness trace.</summary>
public abstract record TraceItem;

/// <summary>An agent executed a statement.</summary>
public sealed record StepItem(StepResult Step) : TraceItem;

/// <summary>A hardware operation of the current statement; Before/After are the witness line's states when it touched that line.</summary>
public sealed record OpItem(HwOp Op, LineState? Before, LineState? After) : TraceItem;

/// <summary>A spontaneous hardware event on the witness line.</summary>
public sealed record MoveItem(SpontaneousMove Move, LineState Before, LineState After) : TraceItem;

/// <summary>
/// The shortest run on which an expectation fails: the agent steps, the hardware operations they caused, and the
/// fewest spontaneous events, all on the one line whose check fails.
/// </summary>
public sealed record Witness(Expectation Expectation, int Events, ulong? LinePa, IReadOnlyList<TraceItem> Items, LineState? Final, string? Missing)
{
    /// <summary>The control state at the end of the run.</summary>
    public ControlState? End { get; init; }

    /// <summary>
    /// Other lines whose events this run needed: the sources of copies (swiotlb bounces) whose bytes reach the
    /// witness line had to hold what was copied. <see cref="Events"/> counts these too.
    /// </summary>
    public IReadOnlyList<UpstreamLine> Upstream { get; init; } = [];

    /// <summary>The agents that hung at a poll on this run, each with the poll (a timeout, or a value that can never arrive).</summary>
    public IReadOnlyList<string> Hung { get; init; } = [];
}

/// <summary>A copy's source line on a witness run: its operations and events up to the last copy that read it.</summary>
public sealed record UpstreamLine(ulong LinePa, int Events, IReadOnlyList<TraceItem> Items);

/// <summary>Rebuilds a witness from a <see cref="FailurePoint"/> by replaying the failing line along the run with back-pointers.</summary>
public static class WitnessBuilder
{
    public static Witness Build(ScenarioModel model, Expectation expectation, FailurePoint failure)
    {
        var path = failure.Node.Path();
        if (failure.LinePa is not { } linePa)
        {
            var items = path.Select(s => (TraceItem)new StepItem(s)).ToList();
            var ctrl = failure.Node.Ctrl;
            var stopped = ctrl.Agents.Select((a, i) => (a, i)).Where(p => p.a.Stopped is not null)
                .Select(p => $"{model.Scenario.Programs[model.Scenario.Agents[p.i]].Name} stopped: {p.a.Stopped}");
            var blocked = ctrl.Agents.Select((a, i) => (a, i)).Where(p => !p.a.Done && model.Current(ctrl, p.i).Statement is not PollStmt)
                .Select(p => $"{model.Scenario.Programs[model.Scenario.Agents[p.i]].Name} is blocked at '{model.Current(ctrl, p.i).Statement.Text}'");
            var hungAt = model.Hung(ctrl).Where(h => !ctrl.Agents[h.Agent].Hung).Select(h => h.Why);
            var why = string.Join("; ", stopped.Concat(blocked).Concat(hungAt));
            var missing = $"'{ExpectationChecks.MissingVariable(expectation, ctrl, model.Scenario)}' was never read on this run" + (why.Length > 0 ? $" ({why})" : string.Empty);
            var upstreamOnly = Upstream(model, path, null);
            return new Witness(expectation, upstreamOnly.Sum(u => u.Events), null, items, null, missing)
            {
                End = ctrl,
                Upstream = upstreamOnly,
                Hung = [.. model.Hung(ctrl).Select(h => h.Why)],
            };
        }

        var config = model.Hardware;
        var check = ExpectationChecks.ForLine(expectation, failure.Node.Ctrl, config.LineSize, linePa)!;
        var main = LineRun.Of(model, path, linePa);
        var (end, cost) = main.Cheapest(main.Accesses.Count, s => !check.Holds(s))
            ?? throw new InvalidOperationException("the explorer reported a failure that replay cannot reproduce");
        var (eventsBefore, stateBefore, stateAfter) = main.WalkBack(end);

        var trace = new List<TraceItem>();
        var k = 0;
        foreach (var step in path)
        {
            trace.Add(new StepItem(step));
            foreach (var op in step.Ops)
            {
                var touches = op is MemoryOp mem && mem.AccessAt(linePa, config.LineSize) is not null;
                if (!touches)
                {
                    trace.Add(new OpItem(op, null, null));
                    continue;
                }

                trace.AddRange(eventsBefore[k].Select(e => (TraceItem)new MoveItem(e.Item1, e.Item2, e.Item3)));
                trace.Add(new OpItem(op, stateBefore[k], stateAfter[k]));
                k++;
            }
        }

        trace.AddRange(eventsBefore[main.Accesses.Count].Select(e => (TraceItem)new MoveItem(e.Item1, e.Item2, e.Item3)));

        var upstream = Upstream(model, path, linePa);
        return new Witness(expectation, cost + upstream.Sum(u => u.Events), linePa, trace, end.Item2, null)
        {
            End = failure.Node.Ctrl,
            Upstream = upstream,
            Hung = [.. model.Hung(failure.Node.Ctrl).Select(h => h.Why)],
        };
    }

    /// <summary>
    /// The sources of copies and the polled lines other than <paramref name="linePa"/>: each had to hold the bytes its
    /// resolved load saw, which may have needed events (those with none are left out).
    /// </summary>
    private static List<UpstreamLine> Upstream(ScenarioModel model, IReadOnlyList<StepResult> path, ulong? linePa)
    {
        var config = model.Hardware;
        var upstream = new List<UpstreamLine>();
        var sources = path.SelectMany(p => p.Ops).OfType<MemoryOp>().Where(m => m.Op.Kind is LineOpKind.CopyRead or LineOpKind.Poll)
            .SelectMany(m => m.Lines(config.LineSize)).Select(l => l.LinePa).Where(pa => pa != linePa).Distinct().Order();
        foreach (var pa in sources)
        {
            var run = LineRun.Of(model, path, pa);
            var layers = run.Accesses.FindLastIndex(a => a.Access.Op.Kind is LineOpKind.CopyRead or LineOpKind.Poll) + 1;
            var (goal, events) = run.Cheapest(layers, _ => true) ?? throw new InvalidOperationException("a resolved copy that replay cannot reproduce");
            if (events == 0)
            {
                continue;
            }

            var (before, opBefore, opAfter) = run.WalkBack(goal);
            var items = new List<TraceItem>();
            for (var layer = 0; layer < layers; layer++)
            {
                items.AddRange(before[layer].Select(e => (TraceItem)new MoveItem(e.Item1, e.Item2, e.Item3)));
                items.Add(new OpItem(run.Accesses[layer].Op, opBefore[layer], opAfter[layer]));
            }

            upstream.Add(new UpstreamLine(pa, events, items));
        }

        return upstream;
    }

    /// <summary>One line's accesses along a run, and the cheapest ways through them (Dijkstra over (layer, state)).</summary>
    private sealed class LineRun
    {
        private readonly HardwareConfig config;
        private readonly bool initialFillable;
        private readonly Dictionary<(int, LineState), int> best = [];
        private readonly Dictionary<(int, LineState), ((int, LineState) From, SpontaneousMove? Move)> back = [];
        private readonly ulong linePa;

        private LineRun(HardwareConfig config, ulong linePa, List<(LineAccess, bool, HwOp)> accesses, bool initialFillable)
        {
            this.config = config;
            this.linePa = linePa;
            Accesses = accesses;
            this.initialFillable = initialFillable;
        }

        /// <summary>The accesses to the line, in order, each with the fillability that holds after it and its operation.</summary>
        public List<(LineAccess Access, bool FillableAfter, HwOp Op)> Accesses { get; }

        public static LineRun Of(ScenarioModel model, IReadOnlyList<StepResult> path, ulong linePa)
        {
            var config = model.Hardware;
            var accesses = new List<(LineAccess, bool, HwOp)>();
            var mmu = model.Initial.Mmu;
            var initialFillable = true;
            foreach (var step in path)
            {
                foreach (var op in step.Ops)
                {
                    mmu = op switch
                    {
                        MapOp m => mmu.Map(m.Alias),
                        UnmapOp u => mmu.Unmap(u.Alias),
                        _ => mmu,
                    };
                    if (op is MemoryOp mem)
                    {
                        foreach (var (pa, access) in mem.Lines(config.LineSize))
                        {
                            if (pa == linePa)
                            {
                                if (accesses.Count == 0)
                                {
                                    initialFillable = mmu.IsFillable(pa);
                                }

                                accesses.Add((access, mmu.IsFillable(pa), op));
                            }
                        }
                    }
                }
            }

            return new LineRun(config, linePa, accesses, initialFillable);
        }

        /// <summary>The cheapest state after <paramref name="layers"/> accesses that satisfies <paramref name="goal"/>, and its cost.</summary>
        public ((int, LineState) End, int Cost)? Cheapest(int layers, Func<LineState, bool> goal)
        {
            best.Clear();
            back.Clear();

            // Moves cost 1, accesses 0; ties prefer later layers.
            var queue = new PriorityQueue<(int Layer, LineState State), (int, int)>();
            foreach (var s in LineSemantics.InitialStates(config, linePa))
            {
                best[(0, s)] = 0;
                queue.Enqueue((0, s), (0, 0));
            }

            var moves = new List<(SpontaneousMove, LineState)>();
            while (queue.TryDequeue(out var node, out var prio))
            {
                var (cost, _) = prio;
                if (best[node] < cost)
                {
                    continue;
                }

                if (node.Layer == layers && goal(node.State))
                {
                    return (node, cost);
                }

                void Relax((int, LineState) next, int c, SpontaneousMove? move)
                {
                    if (!best.TryGetValue(next, out var known) || known > c)
                    {
                        best[next] = c;
                        back[next] = (node, move);
                        queue.Enqueue(next, (c, -next.Item1));
                    }
                }

                moves.Clear();
                LineSemantics.Moves(node.State, node.Layer == 0 ? initialFillable : Accesses[node.Layer - 1].FillableAfter, moves);
                foreach (var (move, next) in moves)
                {
                    Relax((node.Layer, next), cost + 1, move);
                }

                if (node.Layer < layers)
                {
                    var outcomes = LineSemantics.Apply(node.State, Accesses[node.Layer].Access, config);
                    for (var i = 0; i < outcomes.Count; i++)
                    {
                        Relax((node.Layer + 1, outcomes[i]), cost, null);
                    }
                }
            }

            return null;
        }

        /// <summary>Walks back from <paramref name="end"/>: the spontaneous events before each access, and the line's state around each access.</summary>
        public (List<(SpontaneousMove, LineState, LineState)>[] EventsBefore, LineState[] Before, LineState[] After) WalkBack((int, LineState) end)
        {
            var layers = end.Item1;
            var eventsBefore = new List<(SpontaneousMove, LineState, LineState)>[layers + 1];
            for (var i = 0; i <= layers; i++)
            {
                eventsBefore[i] = [];
            }

            var stateBefore = new LineState[layers];
            var stateAfter = new LineState[layers];
            var cur = end;
            while (back.TryGetValue(cur, out var prev))
            {
                if (prev.Move is { } move)
                {
                    eventsBefore[cur.Item1].Insert(0, (move, prev.From.Item2, cur.Item2));
                }
                else
                {
                    stateBefore[cur.Item1 - 1] = prev.From.Item2;
                    stateAfter[cur.Item1 - 1] = cur.Item2;
                }

                cur = prev.From;
            }

            return (eventsBefore, stateBefore, stateAfter);
        }
    }
}
