namespace DmaCheck.Exploration;

/// <summary>Lines [Start, End) (physical, line aligned) that all have the same line set.</summary>
public readonly record struct LineRange(ulong Start, ulong End, LineSet Set);

/// <summary>
/// The line sets of every line a run has touched, as runs of consecutive lines that share one interned set. A
/// uniform buffer costs one entry whatever its size, and an operation costs time in the runs it meets, not in the
/// lines it covers (docs/internals-line-sets.md, "Runs of lines"). Immutable; the explorer edits a
/// <see cref="Builder"/> per step. Canonical: runs are sorted, disjoint, and two touching runs never hold the same
/// set (sets are interned, so "the same" is reference equality), so equal maps have equal run lists.
/// </summary>
public sealed class LineMap
{
    private readonly LineRange[] runs;

    private LineMap(LineRange[] runs, UInt128 fingerprint)
    {
        this.runs = runs;
        Fingerprint = fingerprint;
    }

    public static LineMap Empty { get; } = new([], 0);

    /// <summary>
    /// The sum of <see cref="RunHash(in LineRange)"/> over the runs: a canonical map's identity, kept up to date by the
    /// <see cref="Builder"/>'s edits, so a step pays for the runs it changed, not for the whole map.
    /// </summary>
    public UInt128 Fingerprint { get; }

    /// <summary>A run's term in <see cref="Fingerprint"/>: XxHash128 of its range and its set's fingerprint.</summary>
    public static UInt128 RunHash(in LineRange run) => RunHash(run.Start, run.End, run.Set.Fingerprint);

    /// <summary>The term of the run [<paramref name="start"/>, <paramref name="end"/>) whose set has fingerprint <paramref name="set"/>.</summary>
    internal static UInt128 RunHash(ulong start, ulong end, ulong set)
    {
        Span<byte> bytes = stackalloc byte[24];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, start);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], end);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes[16..], set);
        return System.IO.Hashing.XxHash128.HashToUInt128(bytes);
    }

    /// <summary>The map of <paramref name="runs"/>, which must be canonical, with its <see cref="Fingerprint"/> already known (the packed frontier's maps).</summary>
    internal static LineMap FromRuns(LineRange[] runs, UInt128 fingerprint) => runs.Length == 0 ? Empty : new(runs, fingerprint);

    /// <summary>The runs, in address order.</summary>
    public ReadOnlySpan<LineRange> Runs => runs;

    public int RunCount => runs.Length;

    /// <summary>The set of the touched line at <paramref name="linePa"/>.</summary>
    public bool TryGetValue(ulong linePa, out LineSet set) => TryGet(runs, linePa, out set);

    private static bool TryGet(IReadOnlyList<LineRange> runs, ulong linePa, out LineSet set)
    {
        var i = Find(runs, linePa);
        set = i >= 0 ? runs[i].Set : null!;
        return i >= 0;
    }

    public LineSet this[ulong linePa] =>
        TryGetValue(linePa, out var set) ? set : throw new KeyNotFoundException($"line PA 0x{linePa:x} was never touched on this run");

    /// <summary>The parts of runs that lie in [<paramref name="start"/>, <paramref name="end"/>), clipped to it; lines never touched are left out.</summary>
    public IEnumerable<LineRange> Overlapping(ulong start, ulong end)
    {
        var i = FirstEndingAfter(runs, start);
        for (; i < runs.Length && runs[i].Start < end; i++)
        {
            var r = runs[i];
            yield return new LineRange(Math.Max(r.Start, start), Math.Min(r.End, end), r.Set);
        }
    }

    public Builder ToBuilder() => new(runs, Fingerprint);

    /// <summary>The index of the run holding <paramref name="pa"/>, or -1.</summary>
    private static int Find(IReadOnlyList<LineRange> runs, ulong pa)
    {
        var i = FirstEndingAfter(runs, pa);
        return i < runs.Count && runs[i].Start <= pa ? i : -1;
    }

    /// <summary>The index of the first run whose end lies above <paramref name="pa"/> (runs.Count if none): binary search.</summary>
    private static int FirstEndingAfter(IReadOnlyList<LineRange> runs, ulong pa)
    {
        int lo = 0, hi = runs.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (runs[mid].End <= pa)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>A mutable copy of a map, for the operations of one step.</summary>
    public sealed class Builder
    {
        private readonly List<LineRange> runs;
        private UInt128 fingerprint;

        internal Builder(LineRange[] runs, UInt128 fingerprint)
        {
            this.runs = [.. runs];
            this.fingerprint = fingerprint;
        }

        /// <summary>Sets run <paramref name="i"/>, keeping the fingerprint.</summary>
        private void Set(int i, LineRange run)
        {
            fingerprint += RunHash(run) - RunHash(runs[i]);
            runs[i] = run;
        }

        public bool TryGetValue(ulong linePa, out LineSet set) => TryGet(runs, linePa, out set);

        /// <summary>
        /// Splits [<paramref name="start"/>, <paramref name="end"/>) at the edges of the runs in it: each piece with its
        /// set, or null where no line of the piece was ever touched.
        /// </summary>
        public void Pieces(ulong start, ulong end, List<(ulong Start, ulong End, LineSet? Set)> into)
        {
            into.Clear();
            var at = start;
            for (var i = FirstEndingAfter(runs, start); i < runs.Count && runs[i].Start < end; i++)
            {
                var r = runs[i];
                if (r.Start > at)
                {
                    into.Add((at, r.Start, null));
                    at = r.Start;
                }

                var stop = Math.Min(r.End, end);
                into.Add((at, stop, r.Set));
                at = stop;
            }

            if (at < end)
            {
                into.Add((at, end, null));
            }
        }

        /// <summary>
        /// Replaces whatever the map holds in [<paramref name="start"/>, <paramref name="end"/>) by
        /// <paramref name="ranges"/>, which must be sorted, disjoint and inside that span (they need not cover it:
        /// what they leave out becomes untouched).
        /// </summary>
        public void Replace(ulong start, ulong end, IReadOnlyList<LineRange> ranges)
        {
            var first = FirstEndingAfter(runs, start);
            var last = first;
            var keep = new List<LineRange>(ranges.Count + 2);
            while (last < runs.Count && runs[last].Start < end)
            {
                last++;
            }

            if (first < last && runs[first].Start < start)
            {
                keep.Add(runs[first] with { End = start });
            }

            keep.AddRange(ranges);
            if (first < last && runs[last - 1].End > end)
            {
                keep.Add(runs[last - 1] with { Start = end });
            }

            for (var i = first; i < last; i++)
            {
                fingerprint -= RunHash(runs[i]);
            }

            foreach (var r in keep)
            {
                fingerprint += RunHash(r);
            }

            runs.RemoveRange(first, last - first);
            runs.InsertRange(first, keep);

            // Merge what now touches with the same set, over the edited span and one run either side.
            var lo = Math.Max(0, first - 1);
            var hi = Math.Min(runs.Count - 1, first + keep.Count);
            for (var i = hi; i > lo; i--)
            {
                if (runs[i - 1].End == runs[i].Start && ReferenceEquals(runs[i - 1].Set, runs[i].Set))
                {
                    fingerprint -= RunHash(runs[i]);
                    Set(i - 1, runs[i - 1] with { End = runs[i].End });
                    runs.RemoveAt(i);
                }
            }
        }

        /// <summary>Sets the one line [<paramref name="linePa"/>, <paramref name="linePa"/> + <paramref name="lineSize"/>).</summary>
        public void SetLine(ulong linePa, int lineSize, LineSet set)
        {
            var end = linePa + (ulong)lineSize;
            var i = FirstEndingAfter(runs, linePa);
            if (i < runs.Count && runs[i].Start == linePa && runs[i].End == end
                && (i == 0 || runs[i - 1].End != linePa || !ReferenceEquals(runs[i - 1].Set, set))
                && (i + 1 == runs.Count || runs[i + 1].Start != end || !ReferenceEquals(runs[i + 1].Set, set)))
            {
                Set(i, runs[i] with { Set = set }); // a run of this one line, and no neighbour to merge with: in place
                return;
            }

            Replace(linePa, end, [new LineRange(linePa, end, set)]);
        }

        public LineMap ToImmutable() => new([.. runs], fingerprint);
    }
}
