namespace DmaCheck.Hardware;

/// <summary>A move the hardware may make on its own at any time. Each costs one event.</summary>
public enum SpontaneousMove : byte
{
    /// <summary>An Invalid line becomes Clean(RAM): a speculative or prefetch fill through a live cacheable alias.</summary>
    Fill,

    /// <summary>A Dirty line is written back and dropped; a Clean line is dropped.</summary>
    Evict,

    /// <summary>A Dirty line is written back and stays Clean.</summary>
    WriteBack,
}

/// <summary>
/// The hardware rules for one physical line (design §3): deterministic effects of accesses and cache maintenance,
/// and the spontaneous moves. Every explorer uses these and only these.
/// </summary>
public static class LineSemantics
{
    /// <summary>The states a line may be in before the scenario does anything, as set by <see cref="HardwareConfig.Initial"/>.</summary>
    public static IReadOnlyList<LineState> InitialStates(HardwareConfig config)
    {
        var old = LineBytes.Uniform(config.LineSize, WriterTable.Old);
        var invalid = LineState.Fresh(old);
        return config.Initial switch
        {
            InitialCache.Cold => [invalid],
            InitialCache.Arbitrary => [invalid, invalid.WithCache(CacheState.Clean, old), invalid.WithCache(CacheState.Dirty, old)],
            _ => throw new ArgumentOutOfRangeException(nameof(config)),
        };
    }

    /// <summary>Applies one access or maintenance operation to bytes [Start, End) of the line.</summary>
    public static LineState Apply(LineState s, in LineAccess access, HardwareConfig config)
    {
        var op = access.Op;
        return op.Kind switch
        {
            LineOpKind.Clean => s.Cache == CacheState.Dirty ? WriteBack(s) : s,
            LineOpKind.CleanInvalidate => Drop(s.Cache == CacheState.Dirty ? WriteBack(s) : s),
            LineOpKind.Invalidate => config.IvacActsAsCivac && s.Cache == CacheState.Dirty ? Drop(WriteBack(s)) : Drop(s),
            LineOpKind.Read => Read(s, access),
            LineOpKind.Write => Write(s, access),
            _ => throw new ArgumentOutOfRangeException(nameof(access)),
        };
    }

    private static LineState Read(LineState s, in LineAccess a)
    {
        var op = a.Op;
        LineState after;
        LineBytes source;
        switch (op.Master)
        {
            case MasterKind.Cpu or MasterKind.Firmware when op.Type.IsCacheable():
                // A cacheable load hits a valid line, or allocates one from RAM first.
                after = s.Cache == CacheState.Invalid ? s.WithCache(CacheState.Clean, s.Ram) : s;
                source = after.Cached!;
                break;
            case MasterKind.CoherentDevice:
                // A snooping read returns dirty data from the cache; otherwise it reads RAM.
                after = s;
                source = s.Cache == CacheState.Dirty ? s.Cached! : s.Ram;
                break;
            default:
                // Non-cacheable and Device loads, and non-coherent masters, go to RAM and ignore any cached copy.
                after = s;
                source = s.Ram;
                break;
        }

        var values = LineBytes.From(source.Span[a.Start..a.End]);
        return after.WithObservation(new Observation(op.Var, a.VarOffset, values));
    }

    private static LineState Write(LineState s, in LineAccess a)
    {
        var op = a.Op;
        switch (op.Master)
        {
            case MasterKind.Cpu or MasterKind.Firmware when op.Type.IsCacheable():
                {
                    // Write-allocate: an Invalid line is filled from RAM, the bytes merged, and the line left Dirty.
                    var data = s.Cache == CacheState.Invalid ? s.Ram : s.Cached!;
                    return s.WithCache(CacheState.Dirty, data.With(a.Start, a.End, op.Writer));
                }

            case MasterKind.CoherentDevice:
                {
                    // The interconnect writes back a dirty copy first so other bytes of the line survive, then the
                    // write lands in RAM and the cached copy is invalidated.
                    var merged = s.Cache == CacheState.Dirty ? WriteBack(s) : s;
                    return Drop(merged.WithRam(merged.Ram.With(a.Start, a.End, op.Writer)));
                }

            default:
                // Non-cacheable stores and non-coherent masters write RAM; a cached copy, clean or dirty, is untouched
                // and may later be evicted over this data.
                return s.WithRam(s.Ram.With(a.Start, a.End, op.Writer));
        }
    }

    private static LineState WriteBack(LineState s) => new(CacheState.Clean, s.Cached, s.Cached!, s.Observations);

    private static LineState Drop(LineState s) => s.Cache == CacheState.Invalid ? s : s.WithCache(CacheState.Invalid, null);

    /// <summary>The spontaneous moves enabled in state <paramref name="s"/>; a fill needs a live cacheable alias.</summary>
    public static void Moves(LineState s, bool fillable, List<(SpontaneousMove Move, LineState Next)> into)
    {
        switch (s.Cache)
        {
            case CacheState.Invalid:
                if (fillable)
                {
                    into.Add((SpontaneousMove.Fill, s.WithCache(CacheState.Clean, s.Ram)));
                }

                break;
            case CacheState.Clean:
                into.Add((SpontaneousMove.Evict, Drop(s)));
                break;
            case CacheState.Dirty:
                into.Add((SpontaneousMove.Evict, Drop(WriteBack(s))));
                into.Add((SpontaneousMove.WriteBack, WriteBack(s)));
                break;
        }
    }

    public static string Describe(SpontaneousMove move) => move switch
    {
        SpontaneousMove.Fill => "speculative fill through a cacheable alias",
        SpontaneousMove.Evict => "eviction",
        SpontaneousMove.WriteBack => "write-back",
        _ => move.ToString(),
    };
}
