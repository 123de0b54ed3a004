using DmaCheck.Hardware;

namespace DmaCheck.Exploration;

/// <summary>
/// What a learnt step (<see cref="PackedStep"/>) does to the lines, compiled once: for a step whose operations are
/// plain memory operations on one line each (the loads and stores of small buffers), the line, the access and whether
/// the line may be filled, for each operation in program order. Fillability is fixed: it depends on the MMU, which
/// is part of the shared state the learnt step is keyed by. Each edit remembers the set it turned each set it met
/// into (sets are interned, so by reference), so applying the plan to a node costs a lookup per line instead of the
/// access's hashing and the hardware rules. Any other step has no plan (<see cref="None"/>) and goes through
/// <c>ApplyOps</c>; both give the same lines (docs/internals-state.md).
/// </summary>
internal sealed class LinePlan
{
    /// <summary>The plan of a step the general path must apply.</summary>
    public static LinePlan None { get; } = new([]);

    private readonly Edit[] edits;

    private LinePlan(Edit[] edits) => this.edits = edits;

    public bool IsNone => ReferenceEquals(this, None);

    /// <summary>The plan for <paramref name="ops"/> under <paramref name="mmu"/>, or <see cref="None"/>.</summary>
    public static LinePlan For(IReadOnlyList<HwOp> ops, Mmu mmu, int lineSize)
    {
        var edits = new Edit[ops.Count];
        var size = (ulong)lineSize;
        for (var i = 0; i < ops.Count; i++)
        {
            if (ops[i] is not MemoryOp { Op.Data: null } mem || (mem.Pa & ~(size - 1)) != ((mem.Pa + mem.Length - 1) & ~(size - 1)))
            {
                return None;
            }

            var line = mem.Pa & ~(size - 1);
            edits[i] = new Edit(line, mem.AccessAt(line, lineSize)!.Value with { VarOffset = 0 }, mmu.IsFillable(line));
        }

        return edits.Length == 0 ? None : new LinePlan(edits);
    }

    /// <summary>The plan changes one line: <see cref="OneLine"/> gives it and its new set, so the map need not be built before the child is known to be new.</summary>
    public bool IsOneLine => edits.Length == 1;

    /// <summary>
    /// For a plan of one line, over a packed node's runs: the line, the number of the set it gets, and the hash of
    /// the one-line run of that set (<see cref="LineMap.RunHash(ulong, ulong, ulong)"/>). <paramref name="initial"/>
    /// and <paramref name="applied"/> work on set numbers (<see cref="LineSetIds"/>).
    /// </summary>
    public (ulong Line, int Set, UInt128 RunHash) OneLine(ReadOnlySpan<PackedRun> runs, Func<ulong, bool, int> initial, Func<int, LineAccess, bool, int> applied,
        LineSetIds sets, int lineSize, ref int tick, ExplorationLimits limits, System.Diagnostics.Stopwatch watch, long states)
    {
        var edit = edits[0];
        LimitChecks.Tick(ref tick, limits, watch, states);
        var set = PackedRuns.SetAt(runs, edit.Line);
        var (next, hash) = edit.After(set >= 0 ? set : edit.Initial(initial), applied, sets, lineSize);
        return (edit.Line, next, hash);
    }

    /// <summary>
    /// <paramref name="lines"/> after the plan. <paramref name="initial"/> gives an untouched line's set,
    /// <paramref name="applied"/> a set after an access (both interned).
    /// </summary>
    public LineMap Apply(LineMap lines, int lineSize, Func<ulong, bool, LineSet> initial, Func<LineSet, LineAccess, bool, LineSet> applied,
        ref int tick, ExplorationLimits limits, System.Diagnostics.Stopwatch watch, long states)
    {
        var builder = lines.ToBuilder();
        foreach (var edit in edits)
        {
            LimitChecks.Tick(ref tick, limits, watch, states);
            var set = builder.TryGetValue(edit.Line, out var known) ? known : initial(edit.Line, edit.Fillable);
            builder.SetLine(edit.Line, lineSize, edit.After(set, applied));
        }

        return builder.ToImmutable();
    }

    private sealed class Edit(ulong line, LineAccess access, bool fillable)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<LineSet, LineSet> after = new(ReferenceEqualityComparer.Instance);

        public ulong Line { get; } = line;

        public bool Fillable { get; } = fillable;

        public LineSet After(LineSet set, Func<LineSet, LineAccess, bool, LineSet> applied)
        {
            if (!after.TryGetValue(set, out var next))
            {
                next = applied(set, access, Fillable);
                after.TryAdd(set, next);
            }

            return next;
        }

        /// <summary>The number of the set the line has when no step has touched it yet, plus one (0: not known yet).</summary>
        private int initialId;

        public int Initial(Func<ulong, bool, int> initial)
        {
            var known = Volatile.Read(ref initialId);
            if (known == 0)
            {
                known = initial(Line, Fillable) + 1;
                Volatile.Write(ref initialId, known);
            }

            return known - 1;
        }

        /// <summary>
        /// What the edit turned each set number into, with the hash of that set's one-line run; an entry whose
        /// <see cref="AfterId.SetPlusOne"/> is 0 is not known yet. Grown and written under the lock, read without: an
        /// entry's hash is written before its set, which is read first.
        /// </summary>
        private AfterId[] afterIds = [];

        public (int Set, UInt128 RunHash) After(int set, Func<int, LineAccess, bool, int> applied, LineSetIds sets, int lineSize)
        {
            var known = Volatile.Read(ref afterIds);
            if (set < known.Length)
            {
                ref var memo = ref known[set];
                var next = Volatile.Read(ref memo.SetPlusOne);
                if (next != 0)
                {
                    return (next - 1, memo.RunHash);
                }
            }

            var after = applied(set, access, Fillable);
            var hash = LineMap.RunHash(Line, Line + (ulong)lineSize, sets.Fingerprint(after));
            lock (this.after)
            {
                var table = afterIds;
                if (set >= table.Length)
                {
                    table = new AfterId[Math.Max(set + 1, table.Length * 2)];
                    afterIds.CopyTo(table, 0);
                }

                table[set].RunHash = hash;
                Volatile.Write(ref table[set].SetPlusOne, after + 1);
                Volatile.Write(ref afterIds, table);
            }

            return (after, hash);
        }

        private struct AfterId
        {
            public UInt128 RunHash;
            public int SetPlusOne;
        }
    }
}
