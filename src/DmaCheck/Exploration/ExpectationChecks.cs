using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// The part of an expectation that one line decides: byte ranges [From, To) of observed variables (as variable
/// offsets) that must all hold <c>Writer</c>'s bytes.
/// </summary>
public sealed record LineCheck(ulong LinePa, IReadOnlyList<(int Var, int From, int To, byte Writer)> Ranges)
{
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

                var lo = Math.Max(from, o.VarOffset);
                var hi = Math.Min(to, o.VarOffset + o.Values.Length);
                if (lo < hi && !o.Values.IsUniform(lo - o.VarOffset, hi - o.VarOffset, writer))
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
    /// <summary>The per-line checks of <paramref name="e"/> in a run that ended in <paramref name="ctrl"/>, or null if a variable it names was never read on that run.</summary>
    public static IReadOnlyList<LineCheck>? For(Expectation e, ControlState ctrl, int lineSize)
    {
        var byLine = new SortedDictionary<ulong, List<(int, int, int, byte)>>();
        foreach (var atom in e.Atoms)
        {
            if (!ctrl.Observed.TryGetValue(atom.Var, out var range))
            {
                return null;
            }

            var high = atom.High ?? range.Length;
            var start = range.Pa + atom.Low;
            var end = range.Pa + high;
            for (var line = start & ~(ulong)(lineSize - 1); line < end; line += (ulong)lineSize)
            {
                var from = (int)(Math.Max(line, start) - range.Pa);
                var to = (int)(Math.Min(line + (ulong)lineSize, end) - range.Pa);
                if (!byLine.TryGetValue(line, out var list))
                {
                    byLine[line] = list = [];
                }

                list.Add((atom.Var, from, to, atom.Writer));
            }
        }

        return byLine.Select(p => new LineCheck(p.Key, p.Value)).ToList();
    }

    /// <summary>The first unobserved variable an expectation names on this run.</summary>
    public static string? MissingVariable(Expectation e, ControlState ctrl, Scenario scenario) =>
        e.Atoms.Where(a => !ctrl.Observed.ContainsKey(a.Var)).Select(a => scenario.ObservedVars[a.Var]).FirstOrDefault();
}
