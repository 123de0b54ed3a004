using System.Collections.Immutable;

namespace DmaCheck.Hardware;

/// <summary>
/// Bytes that an agent read from one line into an observation variable: <see cref="Values"/> are bytes
/// [<see cref="LineOffset"/>, LineOffset + Values.Length) of the line. The offset is the line's own, not the
/// variable's: every variable is read once per run, from one physical range, so the variable offset follows from
/// the line's address and that range, and lines that saw the same bytes at the same place hold equal states however
/// far into the variable they lie. That is what lets a uniform buffer share one line set (docs/internals-line-sets.md).
/// </summary>
public sealed record Observation(int Var, int LineOffset, LineBytes Values)
{
    /// <summary>The offset in the variable of <see cref="Values"/>[0], for a line at <paramref name="linePa"/> of a variable read from <paramref name="varPa"/>.</summary>
    public int VarOffset(ulong linePa, ulong varPa) => checked((int)(linePa + (ulong)LineOffset - varPa));
}

/// <summary>
/// Everything the model knows about one physical cache line: its cache state and cached bytes, the bytes in
/// RAM behind it, and the observations agents made of it. Immutable and compared by value; the explorers keep
/// sets of these.
/// </summary>
public sealed class LineState : IEquatable<LineState>
{
    private readonly int hash;

    public LineState(CacheState cache, LineBytes? cached, LineBytes ram, ImmutableArray<Observation> observations)
    {
        if ((cache == CacheState.Invalid) != (cached is null))
        {
            throw new ArgumentException("an Invalid line holds no data, a valid line does");
        }

        Cache = cache;
        Cached = cached;
        Ram = ram;
        Observations = observations;
        var h = new HashCode();
        h.Add(cache);
        h.Add(cached);
        h.Add(ram);
        foreach (var o in observations)
        {
            h.Add(o.Var);
            h.Add(o.LineOffset);
            h.Add(o.Values);
        }

        hash = h.ToHashCode();
    }

    public CacheState Cache { get; }

    /// <summary>The cached bytes; null when the line is Invalid.</summary>
    public LineBytes? Cached { get; }

    public LineBytes Ram { get; }

    /// <summary>Observations, ordered by variable then line offset.</summary>
    public ImmutableArray<Observation> Observations { get; }

    public static LineState Fresh(LineBytes ram) => new(CacheState.Invalid, null, ram, []);

    public LineState WithCache(CacheState cache, LineBytes? cached) => new(cache, cached, Ram, Observations);

    public LineState WithRam(LineBytes ram) => new(Cache, Cached, ram, Observations);

    public LineState WithObservation(Observation observation)
    {
        var list = Observations.RemoveAll(o => o.Var == observation.Var && o.LineOffset == observation.LineOffset);
        var index = 0;
        while (index < list.Length && (list[index].Var < observation.Var ||
               (list[index].Var == observation.Var && list[index].LineOffset < observation.LineOffset)))
        {
            index++;
        }

        return new LineState(Cache, Cached, Ram, list.Insert(index, observation));
    }

    public bool Equals(LineState? other)
    {
        if (other is null)
        {
            return false;
        }

        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (hash != other.hash || Cache != other.Cache || !Equals(Cached, other.Cached) || !Ram.Equals(other.Ram) ||
            Observations.Length != other.Observations.Length)
        {
            return false;
        }

        for (var i = 0; i < Observations.Length; i++)
        {
            var a = Observations[i];
            var b = other.Observations[i];
            if (a.Var != b.Var || a.LineOffset != b.LineOffset || !a.Values.Equals(b.Values))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as LineState);

    public override int GetHashCode() => hash;

    /// <summary>For example <c>Clean(zero), RAM payload</c>.</summary>
    public string Describe(WriterTable writers)
    {
        var cache = Cache switch
        {
            CacheState.Invalid => "Invalid",
            _ => $"{Cache}({Cached!.Describe(writers)})",
        };
        return $"{cache}, RAM {Ram.Describe(writers)}";
    }
}
