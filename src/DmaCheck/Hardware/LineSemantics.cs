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

    /// <summary>
    /// An Invalid outer (L2) line becomes Clean(RAM) while a live cacheable alias maps it: the PL310 prefetch engine, or
    /// a linefill through L2 whose inner copy is gone. Only on a board with an outer cache.
    /// </summary>
    OuterFill,

    /// <summary>An outer (L2) line is dropped; a Dirty one is written to RAM first. Only on a board with an outer cache.</summary>
    OuterEvict,

    /// <summary>
    /// A speculative read through a Normal non-cacheable alias, which allocates nothing and changes no state, so it
    /// matters only on a line assigned to another security domain, where it is a fatal abort (<see cref="LineState.NcMapped"/>).
    /// </summary>
    SpeculativeRead,
}

/// <summary>
/// The hardware rules for one physical line (design §3): deterministic effects of accesses and cache maintenance,
/// and the spontaneous moves. Every explorer uses these and only these.
/// </summary>
public static class LineSemantics
{
    /// <summary>The states a line may be in before the scenario does anything, as set by <see cref="HardwareConfig.Initial"/>.</summary>
    /// <remarks>
    /// Cold: Invalid, RAM holding the last data. Arbitrary: also Clean(last data), and Dirty(last data) over RAM
    /// that still holds what was there before it.
    /// </remarks>
    public static IReadOnlyList<LineState> InitialStates(HardwareConfig config, ulong linePa) => InitialStates(config, config.InitialDataAt(linePa));

    /// <summary>The states a line whose last data at boot was <paramref name="writer"/>'s may start in.</summary>
    public static IReadOnlyList<LineState> InitialStates(HardwareConfig config, byte writer)
    {
        var data = LineBytes.Uniform(config.LineSize, writer);
        var behind = LineBytes.Uniform(config.LineSize, config.InitialRamBehind);
        if (config.OuterCache)
        {
            return OuterInitialStates(config, data, behind);
        }

        var invalid = LineState.Fresh(data);
        return config.Initial switch
        {
            InitialCache.Cold => [invalid],
            InitialCache.Arbitrary => [invalid, invalid.WithCache(CacheState.Clean, data), new LineState(CacheState.Dirty, data, behind, [])],
            _ => throw new ArgumentOutOfRangeException(nameof(config)),
        };
    }

    /// <summary>
    /// With an outer level: cold is Invalid at both levels; arbitrary is every placement of the last data that a
    /// history of writes, cleans and evictions can leave: in neither level, in either or both, Clean or Dirty, with
    /// what was there before it wherever it has not yet been written.
    /// </summary>
    private static IReadOnlyList<LineState> OuterInitialStates(HardwareConfig config, LineBytes data, LineBytes behind)
    {
        var invalid = LineState.Fresh(data, hasOuter: true);
        if (config.Initial == InitialCache.Cold)
        {
            return [invalid];
        }

        var stale = LineState.Fresh(behind, hasOuter: true);
        return
        [
            invalid,
            invalid.WithCache(CacheState.Clean, data),
            stale.WithCache(CacheState.Dirty, data),
            invalid.WithOuter(CacheState.Clean, data),
            stale.WithOuter(CacheState.Dirty, data),
            invalid.WithOuter(CacheState.Clean, data).WithCache(CacheState.Clean, data),
            stale.WithOuter(CacheState.Dirty, data).WithCache(CacheState.Clean, data),
            stale.WithOuter(CacheState.Clean, behind).WithCache(CacheState.Dirty, data),
            stale.WithOuter(CacheState.Dirty, data).WithCache(CacheState.Dirty, data),
        ];
    }

    /// <summary>
    /// Applies one access or maintenance operation to bytes [Start, End) of the line. Every operation has one
    /// outcome except a snooping read of a Clean line that differs from RAM, which may return either copy.
    /// </summary>
    public static Outcomes Apply(LineState s, in LineAccess access, HardwareConfig config)
    {
        var op = access.Op;
        if (UsesAliasCopy(op))
        {
            return ApplyAtColour(s, access, config);
        }

        if (!s.Aliases.IsEmpty && (op.Kind is LineOpKind.Assign or LineOpKind.Reach || op.Master == MasterKind.CoherentDevice))
        {
            throw new NotModelledException(op.Master == MasterKind.CoherentDevice
                ? "a snooping (dma-coherent) DMA master on a line with copies at several alias colours of an aliasing data cache (which copies the snoop finds)"
                : "memory assigned to another security domain while an aliasing data cache holds a copy of it at another colour than the linear map's");
        }

        return ApplyHome(s, access, config);
    }

    /// <summary>
    /// Whether <paramref name="op"/> uses one alias copy of the line (or every copy) rather than the linear map's: a CPU or
    /// firmware load, store or by-VA maintenance through a cacheable alias whose colour differs from the linear map's.
    /// </summary>
    private static bool UsesAliasCopy(LineOp op) =>
        op.Colour != 0 && op.Master is MasterKind.Cpu or MasterKind.Firmware && op.Type.IsCacheable() &&
        op.Kind is LineOpKind.Read or LineOpKind.Write or LineOpKind.CopyRead or LineOpKind.Poll or LineOpKind.Clean or LineOpKind.CleanInvalidate or LineOpKind.Invalidate;

    /// <summary>
    /// The line as an access at <paramref name="colour"/> sees it: that copy as the inner level (Invalid when there is none),
    /// over the same outer level and RAM, with no other copies.
    /// </summary>
    private static LineState View(LineState s, ulong colour)
    {
        if (s.Assigned >= 0 || s.BusError)
        {
            throw new NotModelledException("memory assigned to another security domain reached through an alias of another colour on an aliasing data cache");
        }

        var copy = s.AliasAt(colour);
        return new LineState(copy?.State ?? CacheState.Invalid, copy?.Cached, s.Ram, s.Observations, s.HasOuter, s.Outer, s.OuterCached);
    }

    /// <summary>The line with the copy at <paramref name="colour"/> and everything below the inner level taken from <paramref name="view"/>.</summary>
    private static LineState Merge(LineState s, ulong colour, LineState view) =>
        new LineState(s.Cache, s.Cached, view.Ram, view.Observations, view.HasOuter, view.Outer, view.OuterCached, s.Assigned, s.FaultWriter, s.BusError, s.NcMapped, s.Aliases)
            .WithAlias(colour, view.Cache, view.Cached);

    private static Outcomes ApplyAtColour(LineState s, in LineAccess access, HardwareConfig config)
    {
        var colour = access.Op.Colour;
        if (colour == LineOp.AllColours)
        {
            // Maintenance of every copy (flush_cache_all): the linear map's copy, then each other one, the order in which
            // their write-backs land being immaterial (every copy's bytes are written back over the same RAM only if dirty).
            var home = access with { Op = access.Op with { Colour = 0 } };
            var t = ApplyHome(s, home, config).Single;
            foreach (var a in s.Aliases)
            {
                t = Merge(t, a.Colour, ApplyHome(View(t, a.Colour), home, config).Single);
            }

            return new(t);
        }

        var view = View(s, colour);
        var outcomes = ApplyHome(view, access with { Op = access.Op with { Colour = 0 } }, config);
        return outcomes.Count switch
        {
            0 => Outcomes.None,
            1 => new(Merge(s, colour, outcomes.First!)),
            _ => new(Merge(s, colour, outcomes.First!), Merge(s, colour, outcomes.Second!)),
        };
    }

    private static Outcomes ApplyHome(LineState s, in LineAccess access, HardwareConfig config)
    {
        var op = access.Op;
        if (s.BusError)
        {
            // The board reset: nothing the run does afterwards reaches this line.
            return new(s);
        }

        if (s.Assigned >= 0 && FaultsWhileAssigned(s, op, config))
        {
            return new(s.Faulted());
        }

        return op.Kind switch
        {
            LineOpKind.Clean => new(s.Cache == CacheState.Dirty ? WriteBack(s) : s),
            LineOpKind.CleanInvalidate => new(Drop(s.Cache == CacheState.Dirty ? WriteBack(s) : s)),
            LineOpKind.Invalidate => new(config.IvacActsAsCivac && s.Cache == CacheState.Dirty ? Drop(WriteBack(s)) : Drop(s)),
            LineOpKind.Read => Read(s, access),
            LineOpKind.CopyRead => CopyRead(s, access),
            LineOpKind.Poll => (PollClassesOf(s, access) & op.Classes) != 0 ? new(Sources(s, op).After) : Outcomes.None,
            LineOpKind.Write => new(Write(s, access)),
            LineOpKind.OuterClean => new(RequireOuter(s).Outer == CacheState.Dirty ? OuterWriteBack(s) : s),
            LineOpKind.OuterCleanInvalidate => new(OuterDrop(RequireOuter(s).Outer == CacheState.Dirty ? OuterWriteBack(s) : s)),
            LineOpKind.OuterInvalidate => new(OuterDrop(RequireOuter(s))),
            LineOpKind.CleanAllLevels => new(CleanAll(s)),
            LineOpKind.CleanInvalidateAllLevels => new(s.HasOuter ? OuterDrop(Drop(CleanAll(s))) : Drop(CleanAll(s))),
            LineOpKind.InvalidateAllLevels => new(s.HasOuter ? OuterDrop(Drop(s)) : Drop(s)),
            LineOpKind.Assign => new(Assign(s, op)),
            LineOpKind.Reach => new(s.WithNcMapped(op.Writer != 0)),
            _ => throw new ArgumentOutOfRangeException(nameof(access)),
        };
    }

    /// <summary>
    /// Whether <paramref name="op"/> makes a bus access from the non-secure CPU side to a line assigned to another
    /// domain: every CPU load or store (whatever the attributes: the XPU checks the physical address), and cache
    /// maintenance that writes a Dirty line back (DC CVAC, DC CIVAC, and DC IVAC where it acts as CIVAC). Firmware runs
    /// in the secure world and devices stand for the domain the memory was given to: their accesses are allowed.
    /// Discarding a line (IVAC) and dropping a Clean one make no bus access.
    /// </summary>
    private static bool FaultsWhileAssigned(LineState s, LineOp op, HardwareConfig config) => op.Kind switch
    {
        LineOpKind.Read or LineOpKind.Write or LineOpKind.CopyRead or LineOpKind.Poll => op.Master == MasterKind.Cpu,
        LineOpKind.Clean or LineOpKind.CleanInvalidate or LineOpKind.CleanAllLevels or LineOpKind.CleanInvalidateAllLevels => s.Cache == CacheState.Dirty,
        LineOpKind.Invalidate => config.IvacActsAsCivac && s.Cache == CacheState.Dirty,
        _ => false,
    };

    private static LineState Assign(LineState s, LineOp op) =>
        s.HasOuter
            ? throw new NotModelledException("memory assigned to another security domain on a board with an outer cache (which level the XPU sits behind)")
            : s.WithAssignment(op.Var, op.Writer);

    /// <summary>
    /// The one or two states an operation may leave a line in; none for a resolved copy load
    /// (<see cref="LineOpKind.CopyRead"/>) that this state could not have made.
    /// </summary>
    public readonly record struct Outcomes(LineState? First, LineState? Second = null)
    {
        public static Outcomes None => default;

        public int Count => First is null ? 0 : Second is null ? 1 : 2;

        public LineState this[int index] => index switch
        {
            0 => First ?? throw new ArgumentOutOfRangeException(nameof(index)),
            1 => Second ?? throw new ArgumentOutOfRangeException(nameof(index)),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        /// <summary>The single outcome of a deterministic operation.</summary>
        public LineState Single => First is not null && Second is null ? First : throw new InvalidOperationException($"the operation has {Count} outcomes");
    }

    /// <summary>
    /// The distinct bytes [Start, End) a load by <paramref name="access"/>'s master may return from state
    /// <paramref name="s"/>: one value, or two for a snoop of a stale Clean line.
    /// </summary>
    public static void Loads(LineState s, in LineAccess access, List<LineBytes> into)
    {
        if (UsesAliasCopy(access.Op))
        {
            Loads(View(s, access.Op.Colour), access with { Op = access.Op with { Colour = 0 } }, into);
            return;
        }

        var (_, source, other) = Sources(s, access.Op);
        into.Add(LineBytes.From(source.Span[access.Start..access.End]));
        if (other is not null && !other.Span[access.Start..access.End].SequenceEqual(source.Span[access.Start..access.End]))
        {
            into.Add(LineBytes.From(other.Span[access.Start..access.End]));
        }
    }

    /// <summary>
    /// What a poll's load (<paramref name="access"/>, for <see cref="LineOp.Writer"/>'s bytes) may see from state
    /// <paramref name="s"/>: a hit when the bytes it may return are all the writer's, a miss otherwise (both, for a
    /// snoop of a stale Clean line whose copies differ). A miss is hopeful when some state the spontaneous moves reach
    /// from <paramref name="s"/> would give a hit, hopeless otherwise. Fills are left out of that search: a fill copies
    /// RAM into an Invalid line, and every load of an Invalid line already returns RAM, so no fill changes what any
    /// master reads (and so the classes do not depend on whether the line may be filled).
    /// </summary>
    public static PollClasses PollClassesOf(LineState s, in LineAccess access)
    {
        if (UsesAliasCopy(access.Op))
        {
            return PollClassesOf(View(s, access.Op.Colour), access with { Op = access.Op with { Colour = 0 } });
        }

        var classes = PollClasses.None;
        if (Sees(s, access, hit: true))
        {
            classes |= PollClasses.Hit;
        }

        if (Sees(s, access, hit: false))
        {
            classes |= CanComeToHit(s, access) ? PollClasses.Hopeful : PollClasses.Hopeless;
        }

        return classes;
    }

    /// <summary>Whether a load from <paramref name="s"/> may return bytes that are all the writer's (<paramref name="hit"/>) or not.</summary>
    private static bool Sees(LineState s, in LineAccess a, bool hit)
    {
        var (_, source, other) = Sources(s, a.Op);
        return AllWriter(source, a) == hit || (other is not null && AllWriter(other, a) == hit);
    }

    private static bool AllWriter(LineBytes bytes, in LineAccess a)
    {
        foreach (var b in bytes.Span[a.Start..a.End])
        {
            if (b != a.Op.Writer)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether evictions and write-backs (fills change no load) can take <paramref name="s"/> to a state whose load may hit.</summary>
    private static bool CanComeToHit(LineState s, in LineAccess a)
    {
        var seen = new HashSet<LineState> { s };
        var work = new Stack<LineState>();
        work.Push(s);
        var moves = new List<(SpontaneousMove, LineState)>(2);
        while (work.TryPop(out var t))
        {
            if (Sees(t, a, hit: true))
            {
                return true;
            }

            moves.Clear();
            Moves(t, fillable: false, moves);
            foreach (var (_, next) in moves)
            {
                if (seen.Add(next))
                {
                    work.Push(next);
                }
            }
        }

        return false;
    }

    private static Outcomes CopyRead(LineState s, in LineAccess a)
    {
        var (after, source, other) = Sources(s, a.Op);
        var expected = a.Op.Data!.Span.Slice(a.VarOffset, a.End - a.Start);
        return source.Span[a.Start..a.End].SequenceEqual(expected) || (other is not null && other.Span[a.Start..a.End].SequenceEqual(expected))
            ? new(after)
            : Outcomes.None;
    }

    private static Outcomes Read(LineState s, in LineAccess a)
    {
        var (after, source, other) = Sources(s, a.Op);
        return other is null ? new(Observe(after, a, source)) : new(Observe(after, a, source), Observe(after, a, other));
    }

    /// <summary>
    /// What a load by <paramref name="op"/>'s master leaves the line in, and the line's bytes it returns: one
    /// source, or (a snoop of a stale Clean line) either of two.
    /// </summary>
    private static (LineState After, LineBytes Source, LineBytes? Other) Sources(LineState s, LineOp op)
    {
        switch (op.Master)
        {
            case MasterKind.Cpu or MasterKind.Firmware when op.Type.IsCacheable():
                // A cacheable load hits a valid line, or allocates one from the level below first.
                var after = s.Cache == CacheState.Invalid ? Fill(s) : s;
                return (after, after.Cached!, null);
            case MasterKind.CoherentDevice when s.HasOuter:
                throw new NotModelledException("a coherent DMA master on a board with an outer cache (snooping through the SCU or ACP into both levels) is not modelled");
            case MasterKind.CoherentDevice when s.Cache == CacheState.Dirty:
                // A snooping read returns dirty data from the cache.
                return (s, s.Cached!, null);
            case MasterKind.CoherentDevice when s.Cache == CacheState.Clean && !s.Cached!.Equals(s.Ram):
                // A snoop that hits a stale Clean line (left by a non-cacheable write) may be served from the
                // cache or from memory: both are allowed, so both are explored, at no cost.
                return (s, s.Cached!, s.Ram);
            default:
                // Non-cacheable and Device loads ignore any cached copy (Cortex-A behaviour: a hit is ignored;
                // architecturally UNPREDICTABLE under mismatched attributes); non-coherent masters read RAM.
                return (s, s.Ram, null);
        }
    }

    private static LineState Observe(LineState s, in LineAccess a, LineBytes source) =>
        a.Op.Var < 0 ? s : s.WithObservation(new Observation(a.Op.Var, a.Start, LineBytes.From(source.Span[a.Start..a.End])));

    /// <summary>Bytes [Start, End) of the line with the access's store applied: its writer's, or the copied bytes.</summary>
    private static LineBytes Stored(LineBytes data, in LineAccess a) =>
        a.Op.Data is { } copied ? data.With(a.Start, copied.Span.Slice(a.VarOffset, a.End - a.Start)) : data.With(a.Start, a.End, a.Op.Writer);

    private static LineState Write(LineState s, in LineAccess a)
    {
        var op = a.Op;
        switch (op.Master)
        {
            case MasterKind.Cpu or MasterKind.Firmware when op.Type.IsCacheable():
                {
                    // Write-allocate: an Invalid line is filled from the level below, the bytes merged, and the line left Dirty.
                    var filled = s.Cache == CacheState.Invalid ? Fill(s) : s;
                    return filled.WithCache(CacheState.Dirty, Stored(filled.Cached!, a));
                }

            case MasterKind.CoherentDevice when s.HasOuter:
                throw new NotModelledException("a coherent DMA master on a board with an outer cache (snooping through the SCU or ACP into both levels) is not modelled");
            case MasterKind.CoherentDevice:
                {
                    // The interconnect writes back a dirty copy first so other bytes of the line survive, then the
                    // write lands in RAM and the cached copy is invalidated.
                    var merged = s.Cache == CacheState.Dirty ? WriteBack(s) : s;
                    return Drop(merged.WithRam(Stored(merged.Ram, a)));
                }

            default:
                // Non-cacheable stores and non-coherent masters write RAM; a cached copy, clean or dirty, is untouched
                // and may later be evicted over this data.
                return s.WithRam(Stored(s.Ram, a));
        }
    }

    /// <summary>
    /// The inner level writes a Dirty line back and keeps it Clean: to RAM, or on a board with an outer cache into the
    /// outer level, which takes it Dirty whether or not it held the line (write-allocate; the inner level's data
    /// reaches RAM only when the outer line is cleaned or evicted).
    /// </summary>
    private static LineState WriteBack(LineState s) =>
        s.HasOuter
            ? s.WithCache(CacheState.Clean, s.Cached).WithOuter(CacheState.Dirty, s.Cached)
            : s.WithCache(CacheState.Clean, s.Cached).WithRam(s.Cached!);

    /// <summary>
    /// A clean to the point of coherency through every level at once: the inner level's Dirty data goes through the outer
    /// level to RAM; a Dirty outer line is written to RAM. Both levels are left Clean where they were valid.
    /// </summary>
    private static LineState CleanAll(LineState s)
    {
        var t = s.Cache == CacheState.Dirty ? WriteBack(s) : s;
        return t.HasOuter && t.Outer == CacheState.Dirty ? OuterWriteBack(t) : t;
    }

    private static LineState Drop(LineState s) => s.Cache == CacheState.Invalid ? s : s.WithCache(CacheState.Invalid, null);

    /// <summary>
    /// An inner linefill: Clean with the bytes of the level below. On a board with an outer cache an outer miss
    /// allocates the line there too, Clean(RAM) (read-allocate).
    /// </summary>
    private static LineState Fill(LineState s)
    {
        if (!s.HasOuter)
        {
            return s.WithCache(CacheState.Clean, s.Ram);
        }

        var outer = s.Outer == CacheState.Invalid ? s.WithOuter(CacheState.Clean, s.Ram) : s;
        return outer.WithCache(CacheState.Clean, outer.OuterCached);
    }

    private static LineState RequireOuter(LineState s) =>
        s.HasOuter ? s : throw new InvalidOperationException("outer-cache maintenance on a board without an outer cache");

    private static LineState OuterWriteBack(LineState s) => s.WithRam(s.OuterCached!).WithOuter(CacheState.Clean, s.OuterCached);

    private static LineState OuterDrop(LineState s) => s.Outer == CacheState.Invalid ? s : s.WithOuter(CacheState.Invalid, null);

    /// <summary>
    /// The spontaneous moves enabled in state <paramref name="s"/>; a fill needs a live cacheable alias. On a board with
    /// an outer cache the outer level also fills (prefetch) and evicts on its own, independently of the inner level
    /// (the PL310 is neither inclusive nor, as configured here, exclusive).
    /// </summary>
    public static void Moves(LineState s, bool fillable, List<(SpontaneousMove Move, LineState Next)> into)
    {
        if (s.BusError)
        {
            return;
        }

        if (s.Assigned >= 0)
        {
            // Assigned away: a linefill is a bus read and the write-back of a dirty line a bus write, both refused with a
            // fatal abort; a Clean line is dropped without a bus access. A live Normal-NC alias lets the CPU read the line
            // speculatively whatever its cache state.
            if (s.NcMapped)
            {
                into.Add((SpontaneousMove.SpeculativeRead, s.Faulted()));
            }

            switch (s.Cache)
            {
                case CacheState.Invalid when fillable:
                    into.Add((SpontaneousMove.Fill, s.Faulted()));
                    break;
                case CacheState.Clean:
                    into.Add((SpontaneousMove.Evict, Drop(s)));
                    break;
                case CacheState.Dirty:
                    into.Add((SpontaneousMove.Evict, s.Faulted()));
                    into.Add((SpontaneousMove.WriteBack, s.Faulted()));
                    break;
            }

            return;
        }

        switch (s.Cache)
        {
            case CacheState.Invalid:
                if (fillable)
                {
                    into.Add((SpontaneousMove.Fill, Fill(s)));
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

        foreach (var a in s.Aliases)
        {
            // A copy at another colour is evicted or written back on its own; none is filled speculatively (docs/semantics.md,
            // "Aliasing data caches").
            var view = View(s, a.Colour);
            if (a.State == CacheState.Clean)
            {
                into.Add((SpontaneousMove.Evict, Merge(s, a.Colour, Drop(view))));
            }
            else
            {
                into.Add((SpontaneousMove.Evict, Merge(s, a.Colour, Drop(WriteBack(view)))));
                into.Add((SpontaneousMove.WriteBack, Merge(s, a.Colour, WriteBack(view))));
            }
        }

        if (!s.HasOuter)
        {
            return;
        }

        switch (s.Outer)
        {
            case CacheState.Invalid:
                if (fillable)
                {
                    into.Add((SpontaneousMove.OuterFill, s.WithOuter(CacheState.Clean, s.Ram)));
                }

                break;
            case CacheState.Clean:
                into.Add((SpontaneousMove.OuterEvict, OuterDrop(s)));
                break;
            case CacheState.Dirty:
                into.Add((SpontaneousMove.OuterEvict, OuterDrop(OuterWriteBack(s))));
                break;
        }
    }

    public static string Describe(SpontaneousMove move) => move switch
    {
        SpontaneousMove.Fill => "speculative fill through a cacheable alias",
        SpontaneousMove.Evict => "eviction",
        SpontaneousMove.WriteBack => "write-back",
        SpontaneousMove.OuterFill => "outer-cache (L2) linefill or prefetch",
        SpontaneousMove.OuterEvict => "outer-cache (L2) eviction",
        SpontaneousMove.SpeculativeRead => "speculative read through a Normal non-cacheable alias",
        _ => move.ToString(),
    };
}
