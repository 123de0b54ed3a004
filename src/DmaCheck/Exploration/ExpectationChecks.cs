using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// The part of an expectation that each line of [<see cref="First"/>, <see cref="End"/>) decides alone: byte ranges
/// [From, To) of the line (line offsets, not variable offsets) whose observation of variable Var must hold Writer's
/// bytes. Every line of the span has the same ranges, so lines that have the same line set have the same answer.
/// </summary>
public sealed record LineCheck(ulong First, ulong End, IReadOnlyList<(int Var, int From, int To, byte Writer)> Ranges)
{
    public bool Covers(ulong linePa) => linePa >= First && linePa < End;

    public bool Holds(LineState s)
    {
        foreach (var (var, from, to, writer) in Ranges)
        {
            foreach (var o in s.Observations)
            {
                if (o.Var != var)
                {
                    continue;
                }

                var lo = Math.Max(from, o.LineOffset);
                var hi = Math.Min(to, o.LineOffset + o.Values.Length);
                if (lo < hi && !o.Values.IsUniform(lo - o.LineOffset, hi - o.LineOffset, writer))
                {
                    return false;
                }
            }
        }

        return true;
    }
}

/// <summary>Splits expectations into per-line checks. Expectations are conjunctions, so they hold iff every line's check holds.</summary>
public static class ExpectationChecks
{
    /// <summary>
    /// The checks of <paramref name="e"/> in a run that ended in <paramref name="ctrl"/>, as spans of lines with equal
    /// checks in address order, or null if a variable it names was never read on that run. A span costs the same
    /// whatever its length: an atom over a large buffer gives at most its two edge lines and one span between.
    /// </summary>
    public static IReadOnlyList<LineCheck>? For(Expectation e, ControlState ctrl, int lineSize)
    {
        var size = (ulong)lineSize;
        var pieces = new List<(ulong Start, ulong End, (int, int, int, byte) Range)>();
        foreach (var atom in e.Atoms)
        {
            if (!ctrl.Observed.TryGetValue(atom.Var, out var range))
            {
                return null;
            }

            var start = range.Pa + atom.Low;
            var end = range.Pa + (atom.High ?? range.Length);
            if (start >= end)
            {
                continue;
            }

            var first = start & ~(size - 1);
            var last = (end - 1) & ~(size - 1);
            pieces.Add((first, first + size, (atom.Var, (int)(start - first), (int)(Math.Min(first + size, end) - first), atom.Writer)));
            if (last > first)
            {
                if (last > first + size)
                {
                    pieces.Add((first + size, last, (atom.Var, 0, lineSize, atom.Writer)));
                }

                pieces.Add((last, last + size, (atom.Var, 0, (int)(end - last), atom.Writer)));
            }
        }

        // Sweep the pieces' edges: between two consecutive edges every line has the same ranges.
        var edges = pieces.SelectMany(p => new[] { p.Start, p.End }).Distinct().Order().ToList();
        var checks = new List<LineCheck>();
        for (var i = 0; i + 1 < edges.Count; i++)
        {
            var (lo, hi) = (edges[i], edges[i + 1]);
            var ranges = pieces.Where(p => p.Start <= lo && p.End >= hi).Select(p => p.Range).ToList();
            if (ranges.Count == 0)
            {
                continue;
            }

            if (checks.Count > 0 && checks[^1].End == lo && checks[^1].Ranges.SequenceEqual(ranges))
            {
                checks[^1] = checks[^1] with { End = hi };
            }
            else
            {
                checks.Add(new LineCheck(lo, hi, ranges));
            }
        }

        return checks;
    }

    /// <summary>The check of the one line at <paramref name="linePa"/>; null if a variable was never read, or the expectation does not look at that line.</summary>
    public static LineCheck? ForLine(Expectation e, ControlState ctrl, int lineSize, ulong linePa) =>
        For(e, ctrl, lineSize)?.FirstOrDefault(c => c.Covers(linePa));

    /// <summary>The first unobserved variable an expectation names on this run.</summary>
    public static string? MissingVariable(Expectation e, ControlState ctrl, Scenario scenario) =>
        e.Atoms.Where(a => !ctrl.Observed.ContainsKey(a.Var)).Select(a => scenario.ObservedVars[a.Var]).FirstOrDefault();
}
