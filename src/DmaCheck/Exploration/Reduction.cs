using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// What the interleaving reduction needs to know of one agent step: whether it is <em>plain</em> (a read, a write, a
/// signal or a wait that changes nothing shared but its own lines, its own observed variable and its own event), and
/// if so the lines it touches, the variable it reads into and the event it signals or waits for
/// (docs/internals-reduction.md).
/// </summary>
/// <param name="Plain">The step can commute with another plain step: it is an access or an event statement, makes only
/// line operations (no copy, no map or unmap), and leaves the DMA, kernel, debug state and variables as they were.</param>
/// <param name="Lines">The lines it touches, as sorted, disjoint, line-aligned physical ranges [Lo, Hi).</param>
/// <param name="ReadVar">The observed variable a read fills, or -1.</param>
/// <param name="Event">The event a signal or wait names, or null.</param>
/// <param name="HasFindings">The step reports a finding.</param>
/// <param name="Ends">The step is its agent's last: the run may end with it, and the checks at the end of a run
/// (dma-debug's unbind) report on that step.</param>
internal sealed record StepLabel(bool Plain, LineRanges Lines, int ReadVar, string? Event, bool HasFindings, bool Ends)
{
    public static StepLabel NotPlain { get; } = new(false, LineRanges.Empty, -1, null, false, false);

    /// <summary>
    /// Whether two plain steps of different agents commute: they touch no common line, do not read into the same
    /// variable, do not name the same event, and are not both their agents' last steps (either might end the run,
    /// and what is reported at the end is reported on the step that ends it). Anything not plain is dependent on
    /// everything.
    /// </summary>
    public bool IndependentOf(StepLabel other) =>
        Plain && other.Plain
        && !(ReadVar >= 0 && ReadVar == other.ReadVar)
        && !(Event is not null && Event == other.Event)
        && !(Ends && other.Ends)
        && !Lines.Overlaps(other.Lines);

    /// <summary>Whether two labels say the same (the one a local step was chosen by, and the one it had when taken).</summary>
    public bool SameAs(StepLabel other) =>
        Plain == other.Plain && ReadVar == other.ReadVar && Event == other.Event && HasFindings == other.HasFindings && Ends == other.Ends && Lines.SameAs(other.Lines);

    /// <summary>The label of a step that ran from <paramref name="before"/>.</summary>
    public static StepLabel Of(ControlState before, StepResult step, int lineSize)
    {
        var next = step.Next;
        if (step.Statement is not (AccessStmt or EventStmt) || next.Crash is not null
            || !ReferenceEquals(next.Dma, before.Dma) || !ReferenceEquals(next.Debug, before.Debug) || !ReferenceEquals(next.Vars, before.Vars))
        {
            return NotPlain;
        }

        var lines = LineRanges.Empty;
        foreach (var op in step.Ops)
        {
            if (op is not MemoryOp mem)
            {
                return NotPlain;
            }

            lines = lines.Union(LineRanges.Of(mem.Pa, mem.Length, lineSize));
        }

        var ends = next.Agents[step.Agent].Done;
        return step.Statement switch
        {
            AccessStmt { IsWrite: false } read => new StepLabel(true, lines, read.Var, null, step.Findings.Count > 0, ends),
            EventStmt ev => new StepLabel(true, lines, -1, ev.Event, step.Findings.Count > 0, ends),
            _ => new StepLabel(true, lines, -1, null, step.Findings.Count > 0, ends),
        };
    }
}

/// <summary>A small set of line-aligned physical ranges, sorted and merged.</summary>
internal sealed class LineRanges
{
    private readonly (ulong Lo, ulong Hi)[] ranges;

    private LineRanges((ulong Lo, ulong Hi)[] ranges) => this.ranges = ranges;

    public static LineRanges Empty { get; } = new([]);

    /// <summary>The lines of [pa, pa+length).</summary>
    public static LineRanges Of(ulong pa, ulong length, int lineSize)
    {
        var mask = (ulong)lineSize - 1;
        var lo = pa & ~mask;
        var end = pa + length; // MemoryOp refuses a range that wraps
        var hi = end > ulong.MaxValue - mask ? ulong.MaxValue : (end + mask) & ~mask;
        return new([(lo, hi)]);
    }

    public LineRanges Union(LineRanges other)
    {
        if (other.ranges.Length == 0)
        {
            return this;
        }

        if (ranges.Length == 0)
        {
            return other;
        }

        var all = ranges.Concat(other.ranges).OrderBy(r => r.Lo).ToList();
        var merged = new List<(ulong Lo, ulong Hi)> { all[0] };
        foreach (var r in all.Skip(1))
        {
            var last = merged[^1];
            if (r.Lo <= last.Hi)
            {
                merged[^1] = (last.Lo, Math.Max(last.Hi, r.Hi));
            }
            else
            {
                merged.Add(r);
            }
        }

        return new([.. merged]);
    }

    public bool SameAs(LineRanges other) => ranges.AsSpan().SequenceEqual(other.ranges);

    public bool Overlaps(LineRanges other)
    {
        int i = 0, j = 0;
        while (i < ranges.Length && j < other.ranges.Length)
        {
            var a = ranges[i];
            var b = other.ranges[j];
            if (a.Lo < b.Hi && b.Lo < a.Hi)
            {
                return true;
            }

            if (a.Hi <= b.Hi)
            {
                i++;
            }
            else
            {
                j++;
            }
        }

        return false;
    }
}

/// <summary>
/// What one agent may still do, from where it stands, in any run in which only plain steps happen: the label of its
/// next step and the union of the labels of all its remaining steps. Computed by running the agent alone (waits taken
/// as passed), which gives each step the label it has in every such run: plain steps change nothing another plain step
/// reads.
/// </summary>
/// <param name="Next">The label of the next step; <see cref="StepLabel.NotPlain"/> when it is not plain, cannot run
/// (an input not assigned) or fails.</param>
/// <param name="AllPlain">Every remaining step is plain, can run, does not fail and reads no variable twice.</param>
/// <param name="HasFindings">Some remaining step reports a finding.</param>
/// <param name="Lines">Every line the remaining steps touch.</param>
/// <param name="ReadVars">The variables the remaining steps read into, sorted.</param>
/// <param name="Events">The events the remaining steps name.</param>
/// <param name="Steps">How many remaining steps are known to be plain.</param>
internal sealed record AgentFuture(StepLabel Next, bool AllPlain, bool HasFindings, LineRanges Lines, int[] ReadVars, string[] Events, int Steps)
{
    public static AgentFuture Done { get; } = new(StepLabel.NotPlain, true, false, LineRanges.Empty, [], [], 0);

    public static AgentFuture Opaque { get; } = new(StepLabel.NotPlain, false, false, LineRanges.Empty, [], [], 0);

    /// <summary>Whether <paramref name="step"/>, another agent's next step, commutes with everything this agent may still do.</summary>
    public bool Allows(StepLabel step) =>
        AllPlain
        && !(step.ReadVar >= 0 && Array.BinarySearch(ReadVars, step.ReadVar) >= 0)
        && !(step.Event is not null && Events.Contains(step.Event, StringComparer.Ordinal))
        && !step.Lines.Overlaps(Lines);
}

/// <summary>
/// The interleaving reduction of the line-set explorer (docs/internals-reduction.md): the labels the sleep sets compare,
/// and the choice of a <em>local</em> step, one that commutes with everything every other agent may still do, which the
/// search then takes alone (a persistent set of one step).
/// </summary>
internal sealed class Reducer(ScenarioModel model)
{
    /// <summary>Futures, per DMA state object (kernel, mappings: what a plain step cannot change) and then per agent position, debug state and variables objects.</summary>
    private readonly ConditionalWeakTable<DmaState, ConcurrentDictionary<FutureKey, AgentFuture>> futures = [];

    /// <summary>
    /// The same futures by value: equal DMA states, debug states and variables reached along different paths are
    /// different objects (the benchmark's last kmalloc makes one per path), and would each run every agent again.
    /// </summary>
    private readonly ConcurrentDictionary<(UInt128 Env, int Agent, Frame Top, Frame? Below, int Depth), AgentFuture> byValue = new();

    /// <summary>The last <see cref="Env"/> computed per DMA state object, with the debug state and variables it was for.</summary>
    private readonly ConditionalWeakTable<DmaState, StrongBox<EnvEntry?>> envs = [];

    private sealed record EnvEntry(object Debug, object Vars, UInt128 Env);

    /// <summary>The most entries <see cref="byValue"/> keeps before it starts again (it is only a cache).</summary>
    private const int MaxByValue = 1 << 16;

    private readonly int lineSize = model.Hardware.LineSize;

    private readonly record struct FutureKey(int Agent, Frame Top, Frame? Below, int Depth, object Debug, object Vars);

    public StepLabel Label(ControlState before, StepResult step) => StepLabel.Of(before, step, lineSize);

    /// <summary>
    /// An enabled agent whose next step is plain, is not its last, and commutes with every step any other agent may
    /// still take, while the other agents' remaining steps are all plain, cannot fail and report no findings; null when
    /// there is none. Of several, the one with the fewest steps left (then the lowest): runs that differ only in how far
    /// the agents got then meet again sooner (on the interleaving benchmark, half the states of taking the lowest). The
    /// choice depends on the state alone.
    /// </summary>
    public (int Agent, StepLabel Label)? LocalAgent(ControlState s, IReadOnlyList<int> enabled)
    {
        if (enabled.Count < 2)
        {
            return null;
        }

        // Cheap refusal first: an agent about to run anything but an access or an event statement is dependent on
        // everything, and cannot be the local agent either.
        for (var i = 0; i < s.Agents.Length; i++)
        {
            if (!s.Agents[i].Done && model.Current(s, i).Statement is not (AccessStmt or EventStmt))
            {
                return null;
            }
        }

        var all = new AgentFuture[s.Agents.Length];
        var blocking = -1; // the one agent that may do something not plain (or report a finding), if any
        UInt128? env = null;
        for (var i = 0; i < all.Length; i++)
        {
            all[i] = Future(s, i, ref env);
            if (!Quiet(all[i], s))
            {
                if (blocking >= 0)
                {
                    return null;
                }

                blocking = i;
            }
        }

        // Two agents reading into the same variable: one of them fails, in one order or the other.
        for (var i = 0; i < all.Length; i++)
        {
            for (var j = i + 1; j < all.Length; j++)
            {
                if (SharesAny(all[i].ReadVars, all[j].ReadVars))
                {
                    return null;
                }
            }
        }

        (int Agent, StepLabel Label)? best = null;
        foreach (var x in enabled)
        {
            if (blocking >= 0 && x != blocking)
            {
                continue;
            }

            // Not an agent's last step: the run could end with it after the others finish, and the end-of-run checks
            // would then report on it rather than on another agent's last step.
            var next = all[x].Next;
            if (!next.Plain || next.Ends || (next.ReadVar >= 0 && s.Observed.ContainsKey(next.ReadVar)))
            {
                continue;
            }

            var local = true;
            for (var y = 0; y < all.Length && local; y++)
            {
                local = y == x || all[y].Allows(next);
            }

            if (local && (best is null || all[x].Steps < all[best.Value.Agent].Steps))
            {
                best = (x, next);
            }
        }

        return best;
    }

    /// <summary>Whether an agent's remaining steps are all plain, cannot fail and report nothing.</summary>
    private static bool Quiet(AgentFuture f, ControlState s)
    {
        if (!f.AllPlain || f.HasFindings)
        {
            return false;
        }

        foreach (var v in f.ReadVars)
        {
            if (s.Observed.ContainsKey(v))
            {
                return false; // it would read into a variable already read
            }
        }

        return true;
    }

    /// <summary>Whether two sorted arrays share an element.</summary>
    private static bool SharesAny(int[] a, int[] b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (a[i] == b[j])
            {
                return true;
            }

            if (a[i] < b[j])
            {
                i++;
            }
            else
            {
                j++;
            }
        }

        return false;
    }

    /// <summary>
    /// What <paramref name="agent"/> may still do from <paramref name="s"/>: its steps are run alone, one after the
    /// other, until it finishes, meets a step that is not plain or reaches a position already known (memoised per
    /// position, DMA state, debug state and variables).
    /// </summary>
    /// <param name="env">The <see cref="Env"/> of <paramref name="s"/>, computed when first needed.</param>
    internal AgentFuture Future(ControlState s, int agent, ref UInt128? env)
    {
        List<(ConcurrentDictionary<FutureKey, AgentFuture> Table, FutureKey Key, StepLabel Label)>? chain = null;
        AgentFuture tail;
        var c = s; // plain steps leave the DMA state, debug state and variables as they were: one env for the whole walk
        while (true)
        {
            if (c.Agents[agent].Done)
            {
                tail = AgentFuture.Done;
                break;
            }

            if (Key(c, agent) is not { } key)
            {
                tail = AgentFuture.Opaque;
                break;
            }

            var table = futures.GetValue(c.Dma, _ => new ConcurrentDictionary<FutureKey, AgentFuture>());
            if (table.TryGetValue(key, out var known))
            {
                tail = known;
                break;
            }

            env ??= Env(c);
            if (byValue.TryGetValue((env.Value, agent, key.Top, key.Below, key.Depth), out known))
            {
                table.TryAdd(key, known);
                tail = known;
                break;
            }

            if (Run(c, agent) is not { } step)
            {
                tail = AgentFuture.Opaque;
                table.TryAdd(key, tail);
                break;
            }

            (chain ??= []).Add((table, key, step.Label));
            c = step.Next;
        }

        if (chain is null)
        {
            return tail;
        }

        if (byValue.Count > MaxByValue)
        {
            byValue.Clear();
        }

        for (var k = chain.Count - 1; k >= 0; k--)
        {
            tail = Then(chain[k].Label, tail);
            var (table, key, _) = chain[k];
            table.TryAdd(key, tail);
            byValue.TryAdd((env!.Value, agent, key.Top, key.Below, key.Depth), tail);
        }

        return tail;
    }

    /// <summary>
    /// What a plain step's label may depend on besides the agent's own frames, by value: the fingerprint of a control
    /// state with this DMA state, debug state and variables and nothing else (no agents, events or observations).
    /// </summary>
    private UInt128 Env(ControlState s)
    {
        var box = envs.GetValue(s.Dma, _ => new StrongBox<EnvEntry?>());
        var last = Volatile.Read(ref box.Value); // one reference, so threads never see a torn entry
        if (last is null || !ReferenceEquals(last.Debug, s.Debug) || !ReferenceEquals(last.Vars, s.Vars))
        {
            last = new EnvEntry(s.Debug, s.Vars, new ControlState(s.Dma, [], s.Vars, s.Signals.Clear(), s.Observed.Clear(), s.Debug).Fingerprint);
            Volatile.Write(ref box.Value, last);
        }

        return last.Env;
    }

    /// <summary>Where an agent stands, for the memo; null for a frame stack deeper than a firmware call.</summary>
    private static FutureKey? Key(ControlState s, int agent)
    {
        var depth = 0;
        Frame? top = null, below = null;
        foreach (var f in s.Agents[agent].Frames)
        {
            if (depth == 0)
            {
                top = f;
            }
            else if (depth == 1)
            {
                below = f;
            }

            depth++;
        }

        return depth is 0 or > 2 ? null : new FutureKey(agent, top!, below, depth, s.Debug, s.Vars);
    }

    /// <summary>The agent's next step run alone, with its label, when it is plain; null when it is not, cannot run yet, or fails.</summary>
    private (StepLabel Label, ControlState Next)? Run(ControlState s, int agent)
    {
        var frame = s.Agents[agent].Frames.Peek();
        var stmt = model.Scenario.Programs[frame.Program].Body[frame.Pc];
        if (stmt is not (AccessStmt or EventStmt))
        {
            return null;
        }

        if (stmt is AccessStmt { Address.Var: { } name } && !frame.Locals.ContainsKey(name) && !s.Vars.ContainsKey(name))
        {
            return null; // cannot run yet: conservatively, it might do anything once it can
        }

        // A step's label does not depend on what was observed before, except for whether its own variable was (the
        // caller checks that against the real state), so it is computed with nothing observed: the memo stays exact.
        var clean = s.Observed.IsEmpty ? s : s.With(observed: s.Observed.Clear());
        StepResult step;
        try
        {
            step = model.Step(clean, agent);
        }
        catch (Exception) // it fails (or the model cannot run it): the search meets that itself, if the step can happen
        {
            return null;
        }

        if (step.Outcome == StepOutcomeKind.KernelBug)
        {
            return null; // the kernel crashes: the search meets it itself, if the step can happen
        }

        var label = StepLabel.Of(clean, step, lineSize);
        return label.Plain ? (label, step.Next) : null;
    }

    /// <summary>The future of an agent whose next step has <paramref name="label"/> and whose later steps have <paramref name="rest"/>.</summary>
    private static AgentFuture Then(StepLabel label, AgentFuture rest)
    {
        var readVars = rest.ReadVars;
        var allPlain = rest.AllPlain;
        if (label.ReadVar >= 0)
        {
            allPlain &= Array.BinarySearch(readVars, label.ReadVar) < 0; // a second read into one variable fails
            readVars = [.. readVars.Append(label.ReadVar).Distinct().Order()];
        }

        var events = label.Event is null || rest.Events.Contains(label.Event, StringComparer.Ordinal) ? rest.Events : [.. rest.Events, label.Event];
        return new AgentFuture(label, allPlain, label.HasFindings || rest.HasFindings, label.Lines.Union(rest.Lines), readVars, events, rest.Steps + 1);
    }
}

/// <summary>
/// A sleep set: agents whose next step need not be taken from a state, because a run that takes it first was
/// explored from an ancestor and everything since commutes with it. Each entry keeps the label the step had there,
/// which is the label it has here (commuting steps change nothing it reads).
/// </summary>
internal sealed class SleepSet
{
    private readonly (int Agent, StepLabel Label)[] entries;

    private SleepSet((int Agent, StepLabel Label)[] entries) => this.entries = entries;

    public static SleepSet Empty { get; } = new([]);

    public bool Contains(int agent)
    {
        foreach (var e in entries)
        {
            if (e.Agent == agent)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The sleep set of the state <paramref name="label"/>'s step leads to: the entries here and the steps taken
    /// before it from the same state (<paramref name="before"/>) that commute with it.
    /// </summary>
    public SleepSet After(StepLabel label, List<(int Agent, StepLabel Label)> before)
    {
        if (!label.Plain || (entries.Length == 0 && before.Count == 0))
        {
            return Empty;
        }

        List<(int Agent, StepLabel Label)>? kept = null;
        foreach (var e in entries.Concat(before))
        {
            if (e.Label.IndependentOf(label))
            {
                (kept ??= []).Add(e);
            }
        }

        return kept is null ? Empty : new([.. kept.OrderBy(e => e.Agent)]);
    }

    /// <summary>The entries both sets hold: a state reached along several paths may skip only what every one of them covers.</summary>
    public SleepSet Intersect(SleepSet other)
    {
        if (entries.Length == 0 || ReferenceEquals(this, other))
        {
            return this;
        }

        if (other.entries.Length == 0)
        {
            return other;
        }

        var kept = entries.Where(e => other.Contains(e.Agent)).ToArray();
        return kept.Length == entries.Length ? this : kept.Length == 0 ? Empty : new(kept);
    }
}
