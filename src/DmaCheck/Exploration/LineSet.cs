using DmaCheck.Hardware;

namespace DmaCheck.Exploration;

/// <summary>
/// The set of states one line may be in at a point of a run, each with the fewest spontaneous events that reach
/// it, closed under the spontaneous moves. Immutable; compared by content (the order of entries is canonical).
/// </summary>
public sealed class LineSet : IEquatable<LineSet>
{
    [NotState]
    private readonly int hash;

    private LineSet(KeyValuePair<LineState, int>[] entries)
    {
        Entries = entries;
        var h = 0;
        foreach (var (state, cost) in entries)
        {
            h ^= HashCode.Combine(state, cost); // order-independent
        }

        hash = h;
    }

    public IReadOnlyList<KeyValuePair<LineState, int>> Entries { get; }

    public static LineSet Of(Dictionary<LineState, int> costs) => new(costs.ToArray());

    /// <summary>
    /// Closes <paramref name="start"/> under fills (when <paramref name="fillable"/>), evictions and write-backs,
    /// keeping the least cost of each state: a Dijkstra search over unit-cost moves.
    /// </summary>
    public static LineSet Closure(Dictionary<LineState, int> start, bool fillable)
    {
        var best = new Dictionary<LineState, int>(start);
        var queue = new PriorityQueue<LineState, int>();
        foreach (var (s, c) in start)
        {
            queue.Enqueue(s, c);
        }

        var moves = new List<(SpontaneousMove, LineState)>(2);
        while (queue.TryDequeue(out var s, out var cost))
        {
            if (best[s] < cost)
            {
                continue;
            }

            moves.Clear();
            LineSemantics.Moves(s, fillable, moves);
            foreach (var (_, next) in moves)
            {
                if (!best.TryGetValue(next, out var known) || known > cost + 1)
                {
                    best[next] = cost + 1;
                    queue.Enqueue(next, cost + 1);
                }
            }
        }

        return Of(best);
    }

    /// <summary>The line's states before the scenario does anything.</summary>
    public static LineSet Initial(HardwareConfig config, ulong linePa, bool fillable) => Initial(config, config.InitialDataAt(linePa), fillable);

    /// <summary>The states before the scenario does anything of a line whose last data at boot was <paramref name="writer"/>'s.</summary>
    public static LineSet Initial(HardwareConfig config, byte writer, bool fillable) =>
        Closure(LineSemantics.InitialStates(config, writer).ToDictionary(s => s, _ => 0), fillable);

    /// <summary>Applies an access to every state, then closes the result under spontaneous moves.</summary>
    public LineSet Apply(in LineAccess access, HardwareConfig config, bool fillable)
    {
        var next = new Dictionary<LineState, int>(Entries.Count);
        foreach (var (s, c) in Entries)
        {
            var outcomes = LineSemantics.Apply(s, access, config);
            for (var i = 0; i < outcomes.Count; i++)
            {
                var t = outcomes[i];
                if (!next.TryGetValue(t, out var known) || known > c)
                {
                    next[t] = c;
                }
            }
        }

        return Closure(next, fillable);
    }

    /// <summary>
    /// The least cost of any entry, and the set with that much taken off every entry, so that its cheapest state
    /// costs nothing. A copy's resolved load leaves only the states that could have made it, which may all need
    /// events; the explorer moves those events to the run (<see cref="SearchNode.BaseCost"/>).
    /// </summary>
    public LineSet Normalised(out int least)
    {
        least = Entries.Count == 0 ? 0 : Entries.Min(e => e.Value);
        if (least == 0)
        {
            return this;
        }

        var shift = least;
        return new LineSet(Entries.Select(e => new KeyValuePair<LineState, int>(e.Key, e.Value - shift)).ToArray());
    }

    public bool Equals(LineSet? other)
    {
        if (other is null || hash != other.hash || Entries.Count != other.Entries.Count)
        {
            return false;
        }

        if (ReferenceEquals(this, other))
        {
            return true;
        }

        var mine = Entries.ToDictionary(e => e.Key, e => e.Value);
        return other.Entries.All(e => mine.TryGetValue(e.Key, out var c) && c == e.Value);
    }

    public override bool Equals(object? obj) => Equals(obj as LineSet);

    public override int GetHashCode() => hash;

    [NotState]
    private ulong fingerprint;

    /// <summary>
    /// A content hash that is the same on every run and build (XxHash64 of each entry's state fingerprint and cost,
    /// combined independently of order): what the explorer's state fingerprints are made of.
    /// </summary>
    public ulong Fingerprint
    {
        get
        {
            if (fingerprint == 0)
            {
                var sum = 0UL;
                foreach (var (state, cost) in Entries)
                {
                    sum += Mix(StateFingerprint(state, cost));
                }

                fingerprint = sum | 1; // never 0, so 0 can mean "not computed"
            }

            return fingerprint;
        }
    }

    private static ulong Mix(ulong x)
    {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        return x;
    }

    /// <summary>One entry's fingerprint: its state's, derived from <see cref="LineState"/>'s fields (cache and outer-cache
    /// levels, data, RAM, observations; <see cref="StateHasher"/>), and its cost.</summary>
    private static ulong StateFingerprint(LineState state, int cost)
    {
        Span<byte> bytes = stackalloc byte[20];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(bytes, StateHasher.Of(state));
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes[16..], cost);
        return System.IO.Hashing.XxHash64.HashToUInt64(bytes);
    }
}
