using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>What a witness needs: the kernel operations and spontaneous events on the witness line without which the failure changes.</summary>
/// <param name="Needed">Indices into <see cref="Witness.Items"/> of the kernel operations and events the failure needs.</param>
/// <param name="Removed">Indices of those that can be dropped with the same failure.</param>
public sealed record MinimisedWitness(IReadOnlyList<int> Needed, IReadOnlyList<int> Removed);

/// <summary>
/// Delta-debugs a witness: drops kernel operations and spontaneous events on the witness line one at a time,
/// keeping a drop whenever the same failure remains (the expectation's reads see exactly the same bytes), until no
/// single one can go. The scenario's own reads and writes are never dropped: without them the question changes.
/// The result is 1-minimal: each remaining kernel operation and event is needed.
/// </summary>
public static class WitnessMinimiser
{
    public static MinimisedWitness? Minimise(Witness w, HardwareConfig config)
    {
        if (w.LinePa is not { } linePa || w.End is not { } final)
        {
            return null;
        }

        var check = ExpectationChecks.ForLine(w.Expectation, final, config.LineSize, linePa);
        if (check is null)
        {
            return null;
        }

        var vars = w.Expectation.Atoms.Select(a => a.Var).ToHashSet();
        var entries = new List<int>();
        var candidates = new HashSet<int>();
        var ownAccess = false;
        for (var i = 0; i < w.Items.Count; i++)
        {
            switch (w.Items[i])
            {
                case StepItem s:
                    ownAccess = s.Step.Statement is AccessStmt or PollStmt;
                    break;
                case OpItem { Before: not null }:
                    entries.Add(i);
                    if (!ownAccess)
                    {
                        candidates.Add(i);
                    }

                    break;
                case MoveItem:
                    entries.Add(i);
                    candidates.Add(i);
                    break;
            }
        }

        var kept = new List<int>(entries);
        bool progress;
        do
        {
            progress = false;
            foreach (var candidate in kept.Where(candidates.Contains).ToList())
            {
                var trial = kept.Where(i => i != candidate).ToList();
                if (SameFailure(w, trial, linePa, check, vars, config))
                {
                    kept = trial;
                    progress = true;
                }
            }
        }
        while (progress);

        return new MinimisedWitness(kept.Where(candidates.Contains).ToList(), entries.Except(kept).ToList());
    }

    /// <summary>
    /// Replays only <paramref name="keep"/> on the line from its initial state: true when the check still fails with
    /// the same observed bytes; false if it holds, sees other bytes, or a kept move is not enabled.
    /// </summary>
    private static bool SameFailure(Witness w, List<int> keep, ulong linePa, LineCheck check, HashSet<int> vars, HardwareConfig config)
    {
        var first = w.Items.Select(i => i switch
        {
            OpItem { Before: { } b } => b,
            MoveItem m => m.Before,
            _ => null,
        }).First(s => s is not null)!;
        var state = first;
        var moves = new List<(SpontaneousMove Move, LineState Next)>();
        foreach (var index in keep)
        {
            switch (w.Items[index])
            {
                case OpItem { Op: MemoryOp mem, After: { } after }:
                    var access = mem.AccessAt(linePa, config.LineSize)!.Value;
                    var outcomes = LineSemantics.Apply(state, access, config);
                    if (outcomes.Count == 0)
                    {
                        return false; // a copy's load that this state could not have made: not the same run
                    }

                    var pick = Enumerable.Range(0, outcomes.Count).FirstOrDefault(k => outcomes[k].Cache == after.Cache);
                    state = outcomes[pick];
                    break;
                case MoveItem m:
                    // A line's fillability never changes in a run (the explorers refuse mappings that would change
                    // it), and the witness's own moves were legal, so fills stay allowed.
                    moves.Clear();
                    LineSemantics.Moves(state, fillable: true, moves);
                    var next = moves.Where(x => x.Move == m.Move).Select(x => x.Next).FirstOrDefault();
                    if (next is null)
                    {
                        return false;
                    }

                    state = next;
                    break;
            }
        }

        return !check.Holds(state) && Observed(state, vars).SequenceEqual(Observed(w.Final!, vars));
    }

    private static IEnumerable<(int, int, LineBytes)> Observed(LineState s, HashSet<int> vars) =>
        s.Observations.Where(o => vars.Contains(o.Var)).Select(o => (o.Var, o.LineOffset, o.Values));
}
