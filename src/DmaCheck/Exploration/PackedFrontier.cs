namespace DmaCheck.Exploration;

/// <summary>
/// A <see cref="LineRange"/> in the packed frontier: lines [Start, End) with the line set numbered <see cref="Set"/> in
/// <see cref="LineSetIds"/>, and its term in the lines' fingerprint (<see cref="LineMap.RunHash(ulong, ulong, ulong)"/>),
/// kept so that an edit pays only for the runs it makes.
/// </summary>
internal readonly struct PackedRun
{
    private readonly ulong hashLow;
    private readonly ulong hashHigh;

    public PackedRun(ulong start, ulong end, int set, UInt128 hash)
    {
        Start = start;
        End = end;
        Set = set;
        hashLow = (ulong)hash;
        hashHigh = (ulong)(hash >> 64);
    }

    /// <summary>A run whose hash is computed from <paramref name="sets"/>.</summary>
    public PackedRun(ulong start, ulong end, int set, LineSetIds sets)
        : this(start, end, set, LineMap.RunHash(start, end, sets.Fingerprint(set)))
    {
    }

    public ulong Start { get; }

    public ulong End { get; }

    public int Set { get; }

    public UInt128 Hash => new(hashHigh, hashLow);
}

/// <summary>
/// Dense numbers for the interned line sets of one search, with each set's fingerprint, so that the packed frontier
/// holds no references (docs/internals-state-storage.md, "The packed frontier"). Sets are interned, so a set is its
/// reference. Reads take no lock: an id is published only after its entry is written.
/// </summary>
internal sealed class LineSetIds
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<LineSet, int> ids = new(ReferenceEqualityComparer.Instance);
    private LineSet[] sets = new LineSet[64];
    private ulong[] fingerprints = new ulong[64];
    private int count;

    public LineSet this[int id] => Volatile.Read(ref sets)[id];

    /// <summary><see cref="LineSet.Fingerprint"/> of set <paramref name="id"/>.</summary>
    public ulong Fingerprint(int id) => Volatile.Read(ref fingerprints)[id];

    /// <summary>The number of <paramref name="set"/>, which must be interned.</summary>
    public int Id(LineSet set)
    {
        if (ids.TryGetValue(set, out var id))
        {
            return id;
        }

        lock (ids)
        {
            if (ids.TryGetValue(set, out id))
            {
                return id;
            }

            id = count;
            if (id == sets.Length)
            {
                var biggerSets = new LineSet[sets.Length * 2];
                var biggerFingerprints = new ulong[sets.Length * 2];
                sets.CopyTo(biggerSets, 0);
                fingerprints.CopyTo(biggerFingerprints, 0);
                Volatile.Write(ref sets, biggerSets);
                Volatile.Write(ref fingerprints, biggerFingerprints);
            }

            sets[id] = set;
            fingerprints[id] = set.Fingerprint;
            count++;
            ids[set] = id;
            return id;
        }
    }
}

/// <summary>
/// One breadth-first level of the unreduced search, as arrays of numbers: for each node its agents' state ids, its
/// shared state id, its control and line fingerprints, its base cost, its number in the path store and its runs of
/// lines (<see cref="PackedRun"/>, set by number). Nothing in it is a reference, so the garbage collector neither
/// scans nor moves a level, and two levels are reused in turn for the whole search (docs/internals-state-storage.md).
/// </summary>
internal sealed class PackedLevel(int agentCount)
{
    private int[] agents = new int[agentCount * 64];
    private int[] steps = new int[agentCount * 64];
    private int[] shared = new int[64];
    private UInt128[] ctrl = new UInt128[64];
    private UInt128[] lines = new UInt128[64];
    private UInt128[] fingerprints = new UInt128[64];
    private int[] costs = new int[64];
    private int[] ids = new int[64];
    private int[] runFrom = new int[65];
    private PackedRun[] runs = new PackedRun[256];

    public int Count { get; private set; }

    public int AgentCount { get; } = agentCount;

    public void Clear() => Count = 0;

    public ReadOnlySpan<int> Agents(int node) => agents.AsSpan(node * AgentCount, AgentCount);

    /// <summary>
    /// Each agent's learnt step from the node (<see cref="PackedStates.StepAt"/>), or -1 where the agent is not
    /// enabled: looked up when the node is written, so that expanding it needs no lookup.
    /// </summary>
    public ReadOnlySpan<int> Steps(int node) => steps.AsSpan(node * AgentCount, AgentCount);

    /// <summary>The steps of reserved node <paramref name="node"/>, to be filled with its agents.</summary>
    public Span<int> StepsOf(int node) => steps.AsSpan(node * AgentCount, AgentCount);

    public int Shared(int node) => shared[node];

    /// <summary>The control state's fingerprint (<see cref="Scenarios.ControlState.Fingerprint"/>).</summary>
    public UInt128 Ctrl(int node) => ctrl[node];

    /// <summary>The lines' fingerprint (<see cref="LineMap.Fingerprint"/>).</summary>
    public UInt128 Lines(int node) => lines[node];

    /// <summary>The node's fingerprint (<see cref="SearchNode.Fingerprint"/>).</summary>
    public UInt128 Fingerprint(int node) => fingerprints[node];

    public int Cost(int node) => costs[node];

    public int Id(int node) => ids[node];

    public ReadOnlySpan<PackedRun> Runs(int node) => runs.AsSpan(runFrom[node], runFrom[node + 1] - runFrom[node]);

    /// <summary>
    /// Makes room for one more node, with <paramref name="runCount"/> runs of lines, numbered <paramref name="id"/> in
    /// the path store, and returns its index. Only the merge reserves, one node at a time and in order; the node is then
    /// filled by <see cref="Write"/> and <see cref="RunsOf"/>, which may run on several threads at once, since no array
    /// grows after its reservation.
    /// </summary>
    public int Reserve(int runCount, int id)
    {
        var n = Count;
        if (n + 1 >= shared.Length)
        {
            Grow();
        }

        var end = runFrom[n] + runCount;
        if (end > runs.Length)
        {
            Array.Resize(ref runs, Math.Max(runs.Length * 2, end));
        }

        runFrom[n + 1] = end;
        ids[n] = id;
        Count = n + 1;
        return n;
    }

    /// <summary>
    /// Fills reserved node <paramref name="node"/>: its agents are <paramref name="parentAgents"/> with agent
    /// <paramref name="agent"/> in state <paramref name="agentState"/> (none changed when <paramref name="agent"/> is -1).
    /// </summary>
    public void Write(int node, ReadOnlySpan<int> parentAgents, int agent, int agentState, int sharedState, UInt128 ctrlFingerprint, UInt128 linesFingerprint,
        UInt128 fingerprint, int cost)
    {
        var to = agents.AsSpan(node * AgentCount, AgentCount);
        parentAgents.CopyTo(to);
        if (agent >= 0)
        {
            to[agent] = agentState;
        }

        shared[node] = sharedState;
        ctrl[node] = ctrlFingerprint;
        lines[node] = linesFingerprint;
        fingerprints[node] = fingerprint;
        costs[node] = cost;
    }

    /// <summary>
    /// Makes room for <paramref name="nodes"/> more nodes with <paramref name="runCount"/> runs in all, and returns the
    /// first one's index and run. The merge then gives each its place (<see cref="Place"/>), and the nodes are written,
    /// on several threads at once: no array grows after this.
    /// </summary>
    public (int Index, int Run) ReserveMany(int nodes, int runCount)
    {
        var n = Count;
        while (n + nodes + 1 >= shared.Length)
        {
            Grow();
        }

        var start = runFrom[n];
        if (start + runCount > runs.Length)
        {
            Array.Resize(ref runs, Math.Max(runs.Length * 2, start + runCount));
        }

        runFrom[n + nodes] = start + runCount;
        Count = n + nodes;
        return (n, start);
    }

    /// <summary>Reserved node <paramref name="node"/>'s place: its runs from <paramref name="run"/>, and its number <paramref name="id"/> in the path store.</summary>
    public void Place(int node, int run, int runCount, int id)
    {
        runFrom[node] = run;
        runFrom[node + 1] = run + runCount;
        ids[node] = id;
    }

    /// <summary>Runs [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>), to be filled.</summary>
    public Span<PackedRun> RunsAt(int start, int count) => runs.AsSpan(start, count);

    /// <summary>The runs reserved for node <paramref name="node"/>, to be filled.</summary>
    public Span<PackedRun> RunsOf(int node) => runs.AsSpan(runFrom[node], runFrom[node + 1] - runFrom[node]);

    private void Grow()
    {
        var size = shared.Length * 2;
        Array.Resize(ref agents, size * AgentCount);
        Array.Resize(ref steps, size * AgentCount);
        Array.Resize(ref shared, size);
        Array.Resize(ref ctrl, size);
        Array.Resize(ref lines, size);
        Array.Resize(ref fingerprints, size);
        Array.Resize(ref costs, size);
        Array.Resize(ref ids, size);
        Array.Resize(ref runFrom, size + 1);
    }

    /// <summary>The bytes the level's arrays hold (for the memory figures).</summary>
    public long Bytes =>
        (long)agents.Length * 4 + steps.Length * 4L + shared.Length * 4L + (ctrl.Length + lines.Length + fingerprints.Length) * 16L + (costs.Length + ids.Length + runFrom.Length) * 4L
        + runs.Length * (long)System.Runtime.CompilerServices.Unsafe.SizeOf<PackedRun>();
}

/// <summary>
/// <see cref="LineMap"/>'s lookups and a one-line edit (what <see cref="LineMap.Builder.SetLine"/> does) over a node's
/// packed runs, giving the same runs and the same fingerprint (a test checks both against the builder's).
/// </summary>
internal static class PackedRuns
{
    /// <summary>The index of the first run whose end lies above <paramref name="pa"/> (runs.Length if none).</summary>
    public static int FirstEndingAfter(ReadOnlySpan<PackedRun> runs, ulong pa)
    {
        int lo = 0, hi = runs.Length;
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

    /// <summary>The set number of the touched line at <paramref name="linePa"/>, or -1.</summary>
    public static int SetAt(ReadOnlySpan<PackedRun> runs, ulong linePa)
    {
        var i = FirstEndingAfter(runs, linePa);
        return i < runs.Length && runs[i].Start <= linePa ? runs[i].Set : -1;
    }

    /// <summary>
    /// The edit of one line to set <paramref name="set"/>, whose one-line run hashes to <paramref name="lineHash"/>:
    /// runs [<c>Lo</c>, <c>Hi</c>) are replaced by the first <c>N</c> runs of <paramref name="seg"/> (at least 5 long),
    /// and the fingerprint <paramref name="fingerprint"/> becomes <c>Fingerprint</c>. As the builder's edit: the run
    /// holding the line is cut around it, and the new run joins a neighbour with the same set.
    /// </summary>
    public static (int Lo, int Hi, int N, UInt128 Fingerprint) EditLine(ReadOnlySpan<PackedRun> runs, UInt128 fingerprint, ulong linePa, int lineSize,
        int set, UInt128 lineHash, Span<PackedRun> seg, LineSetIds sets)
    {
        var end = linePa + (ulong)lineSize;
        var i = FirstEndingAfter(runs, linePa);
        var line = new PackedRun(linePa, end, set, lineHash);

        // The common cases, with the builder's result: the line is a run of its own, or in no run, and no neighbour
        // continues it with the new set.
        var joinsBefore = i > 0 && runs[i - 1].End == linePa && runs[i - 1].Set == set;
        if (i < runs.Length && runs[i].Start == linePa && runs[i].End == end && !joinsBefore
            && (i + 1 == runs.Length || runs[i + 1].Start != end || runs[i + 1].Set != set))
        {
            seg[0] = line;
            return (i, i + 1, 1, fingerprint - runs[i].Hash + lineHash);
        }

        if ((i == runs.Length || runs[i].Start >= end) && !joinsBefore && (i == runs.Length || runs[i].Start != end || runs[i].Set != set))
        {
            seg[0] = line;
            return (i, i, 1, fingerprint + lineHash);
        }

        var lo = Math.Max(0, i - 1);
        var hi = i;
        while (hi < runs.Length && runs[hi].Start <= end)
        {
            hi++; // the run holding the line, and the one after it when it touches the line's end
        }

        var n = 0;
        var placed = false;
        for (var k = lo; k < hi; k++)
        {
            var r = runs[k];
            fingerprint -= r.Hash;
            if (r.End <= linePa || r.Start >= end)
            {
                if (!placed && r.Start >= end)
                {
                    Add(seg, ref n, line, sets);
                    placed = true;
                }

                Add(seg, ref n, r, sets);
                continue;
            }

            if (r.Start < linePa)
            {
                Add(seg, ref n, new PackedRun(r.Start, linePa, r.Set, sets), sets);
            }

            Add(seg, ref n, line, sets);
            placed = true;
            if (r.End > end)
            {
                Add(seg, ref n, new PackedRun(end, r.End, r.Set, sets), sets);
            }
        }

        if (!placed)
        {
            Add(seg, ref n, line, sets);
        }

        for (var k = 0; k < n; k++)
        {
            fingerprint += seg[k].Hash;
        }

        return (lo, hi, n, fingerprint);
    }

    /// <summary>Appends <paramref name="r"/>, joined to the last run when it continues it with the same set.</summary>
    private static void Add(Span<PackedRun> seg, ref int n, PackedRun r, LineSetIds sets)
    {
        if (n > 0 && seg[n - 1].End == r.Start && seg[n - 1].Set == r.Set)
        {
            seg[n - 1] = new PackedRun(seg[n - 1].Start, r.End, r.Set, sets);
        }
        else
        {
            seg[n++] = r;
        }
    }

    /// <summary>The runs as a <see cref="LineMap"/> (for what the packed search leaves to the general path).</summary>
    public static LineMap ToMap(ReadOnlySpan<PackedRun> runs, UInt128 fingerprint, LineSetIds sets)
    {
        var ranges = new LineRange[runs.Length];
        for (var i = 0; i < runs.Length; i++)
        {
            ranges[i] = new LineRange(runs[i].Start, runs[i].End, sets[runs[i].Set]);
        }

        return LineMap.FromRuns(ranges, fingerprint);
    }
}
