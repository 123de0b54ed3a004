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
}

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
            var blocked = ctrl.Agents.Select((a, i) => (a, i)).Where(p => !p.a.Done)
                .Select(p => $"{model.Scenario.Programs[model.Scenario.Agents[p.i]].Name} is blocked at '{model.Current(ctrl, p.i).Statement.Text}'");
            var why = string.Join("; ", stopped.Concat(blocked));
            var missing = $"'{ExpectationChecks.MissingVariable(expectation, ctrl, model.Scenario)}' was never read on this run" + (why.Length > 0 ? $" ({why})" : string.Empty);
            return new Witness(expectation, 0, null, items, null, missing) { End = ctrl };
        }

        var config = model.Hardware;
        var check = ExpectationChecks.For(expectation, failure.Node.Ctrl, config.LineSize)!.Single(c => c.LinePa == linePa);

        // The accesses to the line, in order, each with the fillability that holds after it.
        var accesses = new List<(LineAccess Access, bool FillableAfter)>();
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

                            accesses.Add((access, mmu.IsFillable(pa)));
                        }
                    }
                }
            }
        }

        // Dijkstra over (layer, state): layer k is after k accesses; moves cost 1, accesses 0.
        var best = new Dictionary<(int, LineState), int>();
        var back = new Dictionary<(int, LineState), ((int, LineState) From, SpontaneousMove? Move)>();
        var queue = new PriorityQueue<(int Layer, LineState State), (int, int)>();
        foreach (var s in LineSemantics.InitialStates(config, linePa))
        {
            best[(0, s)] = 0;
            queue.Enqueue((0, s), (0, 0));
        }

        (int, LineState)? goal = null;
        var moves = new List<(SpontaneousMove, LineState)>();
        while (queue.TryDequeue(out var node, out var prio))
        {
            var (cost, _) = prio;
            if (best[node] < cost)
            {
                continue;
            }

            if (node.Layer == accesses.Count && !check.Holds(node.State))
            {
                goal = node;
                break;
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
            LineSemantics.Moves(node.State, node.Layer == 0 ? initialFillable : accesses[node.Layer - 1].FillableAfter, moves);
            foreach (var (move, next) in moves)
            {
                Relax((node.Layer, next), cost + 1, move);
            }

            if (node.Layer < accesses.Count)
            {
                var outcomes = LineSemantics.Apply(node.State, accesses[node.Layer].Access, config);
                for (var i = 0; i < outcomes.Count; i++)
                {
                    Relax((node.Layer + 1, outcomes[i]), cost, null);
                }
            }
        }

        if (goal is not { } end)
        {
            throw new InvalidOperationException("the explorer reported a failure that replay cannot reproduce");
        }

        // Walk back: the spontaneous events per layer, and the line's state before each access.
        var eventsBefore = new List<(SpontaneousMove, LineState, LineState)>[accesses.Count + 1];
        for (var i = 0; i <= accesses.Count; i++)
        {
            eventsBefore[i] = [];
        }

        var stateBefore = new LineState[accesses.Count];
        var stateAfter = new LineState[accesses.Count];
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

        var trace = new List<TraceItem>();
        var k = 0;
        foreach (var step in path)
        {
            trace.Add(new StepItem(step));
            foreach (var op in step.Ops)
            {
                var touches = op is MemoryOp mem && mem.Lines(config.LineSize).Any(l => l.LinePa == linePa);
                if (!touches)
                {
                    trace.Add(new OpItem(op, null, null));
                    continue;
                }

                trace.AddRange(eventsBefore[k].Select(e => (TraceItem)new MoveItem(e.Item1, e.Item2, e.Item3)));
                var before = stateBefore[k];
                trace.Add(new OpItem(op, before, stateAfter[k]));
                k++;
            }
        }

        trace.AddRange(eventsBefore[accesses.Count].Select(e => (TraceItem)new MoveItem(e.Item1, e.Item2, e.Item3)));
        return new Witness(expectation, best[end], linePa, trace, end.Item2, null) { End = failure.Node.Ctrl };
    }
}
