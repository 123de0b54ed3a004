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
        if (step.Statement is not (AccessStmt or EventStmt) || next.Crash is not null || next.NotModelled is not null
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

    public bool IsEmpty => ranges.Length == 0;

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
/// The interleaving reduction of the line-set explorer (docs/internals-reduction.md): the labels the sleep sets compare,
/// and the persistent set of a state, the agents whose next steps are enough to explore from it because no run of the
/// other agents can touch what those steps touch.
/// </summary>
internal sealed class Reducer(ScenarioModel model, IReadOnlySet<Statement> marked)
{
    private readonly int lineSize = model.Hardware.LineSize;

    private readonly FootprintAnalysis footprints = new(model, marked);

    /// <summary>The statements that conflict with every step (<see cref="FootprintAnalysis"/>).</summary>
    public IReadOnlySet<Statement> Marked => marked;

    public StepLabel Label(ControlState before, StepResult step) => StepLabel.Of(before, step, lineSize);

    /// <summary>
    /// The enabled agents of a persistent set of <paramref name="s"/>, smallest first, or null when every enabled agent
    /// is needed. For each enabled agent X, the set is closed from {X}: an enabled member brings in every agent any of
    /// whose remaining statements conflicts with its next step; a member that cannot step brings in every agent that may
    /// enable it (raise the event it waits for, assign the variable it needs). No run of the agents left out can then
    /// touch what a member's next step touches, nor enable a member (Godefroid's persistent sets). The choice depends on
    /// the state alone.
    /// </summary>
    public IEnumerable<List<int>> Persistent(ControlState s, IReadOnlyList<int> enabled)
    {
        if (enabled.Count < 2)
        {
            yield break;
        }

        var n = s.Agents.Length;
        var futures = new StepAccess?[n];
        var nexts = new StepAccess?[n];
        var isEnabled = new bool[n];
        foreach (var e in enabled)
        {
            isEnabled[e] = true;
        }

        var candidates = new List<List<int>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var x in enabled)
        {
            var members = Closure(s, x, isEnabled, futures, nexts);
            var chosen = enabled.Where(a => members[a]).ToList();
            if (chosen.Count < enabled.Count && seen.Add(string.Join(',', chosen)))
            {
                candidates.Add(chosen);
            }
        }

        foreach (var c in candidates.OrderBy(c => c.Count).ThenBy(c => c[0]))
        {
            yield return c;
        }
    }

    private bool[] Closure(ControlState s, int start, bool[] isEnabled, StepAccess?[] futures, StepAccess?[] nexts)
    {
        var n = s.Agents.Length;
        var members = new bool[n];
        var work = new Stack<int>();
        members[start] = true;
        work.Push(start);
        while (work.Count > 0)
        {
            var z = work.Pop();
            for (var y = 0; y < n; y++)
            {
                if (members[y] || s.Agents[y].Done)
                {
                    continue;
                }

                var future = futures[y] ??= footprints.Future(s, y);
                if (isEnabled[z] ? (nexts[z] ??= footprints.Next(s, z)).ConflictsWith(future) : MayEnable(s, z, future))
                {
                    members[y] = true;
                    work.Push(y);
                }
            }
        }

        return members;
    }

    /// <summary>Whether an agent whose remaining statements are <paramref name="future"/> may enable <paramref name="blocked"/>'s next statement.</summary>
    private bool MayEnable(ControlState s, int blocked, StepAccess future)
    {
        if (future.All)
        {
            return true;
        }

        var (_, stmt) = model.Current(s, blocked);
        if (stmt is EventStmt { IsWait: true } wait && future.Signals.Contains(wait.Event))
        {
            return true;
        }

        var frame = s.Agents[blocked].Frames.Peek();
        foreach (var e in CallCatalogue.SemanticsOf(stmt).Inputs(stmt))
        {
            if (e.Var is { } v && !frame.Locals.ContainsKey(v) && !s.Vars.ContainsKey(v) && (future.AllVarWrites || future.VarWrites.Contains(v)))
            {
                return true;
            }
        }

        return false;
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
