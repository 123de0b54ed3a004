using System.Collections.Immutable;

namespace DmaCheck.Hardware;

/// <summary>
/// Bytes that an agent read from one line into an observation variable: <see cref="Values"/> are the bytes of
/// the variable starting at <see cref="VarOffset"/>.
/// </summary>
public sealed record Observation(int Var, int VarOffset, LineBytes Values);

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
            h.Add(o.VarOffset);
            h.Add(o.Values);
        }

        hash = h.ToHashCode();
    }

    public CacheState Cache { get; }

    /// <summary>The cached bytes; null when the line is Invalid.</summary>
    public LineBytes? Cached { get; }

    public LineBytes Ram { get; }

    /// <summary>Observations, ordered by variable then offset.</summary>
    public ImmutableArray<Observation> Observations { get; }

    public static LineState Fresh(LineBytes ram) => new(CacheState.Invalid, null, ram, []);

    public LineState WithCache(CacheState cache, LineBytes? cached) => new(cache, cached, Ram, Observations);

    public LineState WithRam(LineBytes ram) => new(Cache, Cached, ram, Observations);

    public LineState WithObservation(Observation observation)
    {
        var list = Observations.RemoveAll(o => o.Var == observation.Var && o.VarOffset == observation.VarOffset);
        var index = 0;
        while (index < list.Length && (list[index].Var < observation.Var ||
               (list[index].Var == observation.Var && list[index].VarOffset < observation.VarOffset)))
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
            if (a.Var != b.Var || a.VarOffset != b.VarOffset || !a.Values.Equals(b.Values))
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
