using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// The footprint of a statement in a state (<see cref="StepAccess"/>), and the union of the footprints of everything an
/// agent may still run (docs/internals-reduction.md). The catalogue says which shared parts each call may use
/// (<see cref="CallCatalogue.FootprintOf"/>); the lines are worked out here from the values the statement's inputs hold.
/// For a statement that has not run yet an input may not be assigned: its lines are then those of the map that will
/// assign it (a handle covers its buffer's lines, or the swiotlb pool's when it may bounce), or every line.
/// </summary>
internal sealed class FootprintAnalysis
{
    private readonly ScenarioModel model;
    private readonly int lineSize;

    /// <summary>
    /// Handle-table entries are keyed by this granule: the largest of the model's line, dma-debug's cacheline
    /// (L1_CACHE_BYTES) and the kernel's sharing granule (dma_get_cache_alignment, CTR_EL0.CWG), by which its checks
    /// compare entries.
    /// </summary>
    private readonly int granule;

    private readonly IReadOnlySet<Statement> marked;

    /// <summary>
    /// What accesses, maps, syncs and unmaps read of the allocators and the coherent buffers: who owns the pages and
    /// objects of the memory they reach, and nothing else. Their steps leave these reads out: a step that may change an
    /// owner either reaches every line (a free, or any call the analysis does not refine) or hands out memory that is free
    /// now (<see cref="StepAccess.Fresh"/>), and both conflict with a step through the lines it reaches.
    /// </summary>
    private const StateParts OwnLines = StateParts.PageAllocator | StateParts.Slab | StateParts.CoherentBuffers | StateParts.AtomicPool;

    /// <summary>Every statement that assigns each variable, across all programs, with its program.</summary>
    private readonly Dictionary<string, List<(Statement Stmt, int Program)>> producers = new(StringComparer.Ordinal);

    /// <summary>With dma-debug's unbind check, the run's last step reports on every live entry, whichever agent takes it.</summary>
    private readonly bool endsConflict;

    /// <summary>
    /// The statements that use an IOMMU DMA domain (<see cref="DmaOpsKind.Iommu"/>): a call for a device behind one, and
    /// every access of such a device's DMA engine (it translates through the domain). The IOMMU state is not refined
    /// into parts: each of these steps is taken to touch everything.
    /// </summary>
    private readonly HashSet<Statement> iommuSteps = new(ReferenceEqualityComparer.Instance);

    /// <param name="marked">Statements that must keep their place in every run: they reported a finding, crashed the
    /// kernel or failed on an earlier, reduced search. Each conflicts with every step.</param>
    public FootprintAnalysis(ScenarioModel model, IReadOnlySet<Statement> marked)
    {
        this.model = model;
        this.marked = marked;
        lineSize = model.Hardware.LineSize;
        var cache = model.Initial.Dma.Kernel.Config.CacheConstants;
        granule = Math.Max(Math.Max(lineSize, cache.L1CacheBytes), cache.SharingGranule(model.Hardware));
        var config = model.Scenario.KernelConfig;
        endsConflict = config.DmaApiDebug && config.DebugUnbindAtEnd;
        for (var p = 0; p < model.Scenario.Programs.Count; p++)
        {
            var engine = model.Scenario.Programs[p].DmaDevice;
            foreach (var stmt in model.Scenario.Programs[p].Body)
            {
                if ((engine is not null && UsesIommu(engine)) || (stmt is IDeviceStatement { Device: var d } && UsesIommu(d)))
                {
                    iommuSteps.Add(stmt);
                }

                if (Assigns(stmt) is { } v)
                {
                    if (!producers.TryGetValue(v, out var list))
                    {
                        producers[v] = list = [];
                    }

                    list.Add((stmt, p));
                }
            }
        }
    }

    private bool UsesIommu(DmaDevice dev) => model.Environment.OpsFor(dev) == DmaOpsKind.Iommu;

    /// <summary>The footprint of <paramref name="agent"/>'s next statement in <paramref name="s"/>.</summary>
    public StepAccess Next(ControlState s, int agent)
    {
        var frame = s.Agents[agent].Frames.Peek();
        var program = model.Scenario.Programs[frame.Program];
        return Of(s, frame, program, program.Body[frame.Pc], null);
    }

    /// <summary>
    /// Futures by value: what an agent may still run depends only on where it stands, the variables and the DMA state
    /// (the page tables, allocators and pool its statements' lines are worked out from). Bounded: it is only a cache.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Agent, UInt128 Position, UInt128 Vars, UInt128 Dma), StepAccess> futures = new();

    private const int MaxFutures = 1 << 16;

    /// <summary>Everything <paramref name="agent"/> may still run from <paramref name="s"/>, in any run.</summary>
    public StepAccess Future(ControlState s, int agent)
    {
        var a = s.Agents[agent];
        if (a.Done)
        {
            return StepAccess.None;
        }

        if (endsConflict)
        {
            return StepAccess.Everything;
        }

        var key = (agent, StateHasher.Of(a), StateHasher.Of(s.Vars), StateHasher.Of(s.Dma));
        if (futures.TryGetValue(key, out var known))
        {
            return known;
        }

        if (futures.Count >= MaxFutures)
        {
            futures.Clear();
        }

        return futures[key] = Compute(s, a);
    }

    private StepAccess Compute(ControlState s, AgentState a)
    {
        var all = StepAccess.None;
        HashSet<int>? firmware = null;
        foreach (var frame in a.Frames)
        {
            var program = model.Scenario.Programs[frame.Program];
            for (var pc = frame.Pc; pc < program.Body.Count && !all.All; pc++)
            {
                all = all.Union(Of(s, frame, program, program.Body[pc], null));
                if (program.Body[pc] is SmcStmt smc && (firmware ??= []).Add(smc.Firmware))
                {
                    all = all.Union(FirmwareFuture(s, smc.Firmware, firmware));
                }
            }
        }

        return all;
    }

    /// <summary>Everything a firmware program may run once called, its parameters unknown.</summary>
    private StepAccess FirmwareFuture(ControlState s, int index, HashSet<int> seen)
    {
        var program = model.Scenario.Programs[index];
        var frame = new Frame(index, 0, System.Collections.Immutable.ImmutableDictionary<string, Value>.Empty);
        var unknown = program.Parameters.ToHashSet(StringComparer.Ordinal);
        var all = StepAccess.None;
        foreach (var stmt in program.Body)
        {
            all = all.Union(Of(s, frame, program, stmt, unknown));
            if (stmt is SmcStmt smc && seen.Add(smc.Firmware))
            {
                all = all.Union(FirmwareFuture(s, smc.Firmware, seen));
            }
        }

        return all;
    }

    /// <summary>The footprint of <paramref name="stmt"/> run by <paramref name="program"/> from <paramref name="frame"/> in a state whose values are <paramref name="s"/>'s.</summary>
    /// <param name="unknown">Local names whose values are not known (a firmware call not made yet).</param>
    private StepAccess Of(ControlState s, Frame frame, AgentProgram program, Statement stmt, HashSet<string>? unknown)
    {
        if (marked.Contains(stmt) || (iommuSteps.Count > 0 && iommuSteps.Contains(stmt)))
        {
            return StepAccess.Everything;
        }

        var sem = CallCatalogue.SemanticsOf(stmt);
        var reads = new List<string>();
        foreach (var e in sem.Inputs(stmt))
        {
            if (e.Var is { } v && !IsLocal(frame, v, unknown))
            {
                reads.Add(v);
            }
        }

        var ctx = new Values(this, s, frame, program, stmt, unknown);
        switch (stmt)
        {
            case EventStmt ev:
                return ev.IsWait ? new StepAccess { Waits = [ev.Event] } : new StepAccess { Signals = [ev.Event] };
            case SmcStmt:
                return new StepAccess { VarReads = reads };
            case AccessStmt a:
                return Access(ctx, program, a.Space, a.Address, a.Low, a.High, a.IsWrite, a.IsWrite ? null : a.Var, reads);
            case PollStmt p:
                return Access(ctx, program, p.Space, p.Address, p.Low, p.High, false, null, reads);
            case MapStmt m:
                return Map(ctx, m, sem.Footprint, reads);
            case SyncStmt y:
                return ByHandle(ctx, sem.Footprint, y.Handle, null, y.Size, reads);
            case SyncRangeStmt r:
                return ByHandle(ctx, sem.Footprint, r.Handle, r.Offset, r.Size, reads);
            case MappingErrorStmt e:
                return ByHandle(ctx, sem.Footprint, e.Handle, null, null, reads);
            case KmallocStmt or AllocPagesStmt:
                // New memory, and the allocator's own state: what it writes (a new slab page's or object's clearing)
                // lies in memory that is free now.
                return new StepAccess
                {
                    Reads = sem.Footprint.Reads & StepAccess.Shared,
                    Writes = sem.Footprint.Writes & StepAccess.Shared,
                    Fresh = true,
                    VarReads = reads,
                    VarWrites = [Assigns(stmt)!],
                };
            default:
                return Coarse(sem.Footprint, stmt, reads);
        }
    }

    /// <summary>What the catalogue says, with every line and every entry the call's parts name.</summary>
    private static StepAccess Coarse(Footprint fp, Statement stmt, List<string> reads)
    {
        const StateParts table = StateParts.StreamingMappings | StateParts.DebugEntries;
        if (((fp.Reads | fp.Writes) & (StateParts.Signals | StateParts.Observed)) != 0)
        {
            return StepAccess.Everything;
        }

        var target = Assigns(stmt);
        return new StepAccess
        {
            Reads = fp.Reads & StepAccess.Shared,
            Writes = fp.Writes & StepAccess.Shared,
            AllLines = true,
            AllTableReads = (fp.Reads & table) != 0,
            AllTableWrites = (fp.Writes & table) != 0,
            VarReads = reads,
            VarWrites = target is null ? [] : [target],
            AllVarWrites = target is null && (fp.Writes & StateParts.Variables) != 0,
        };
    }

    private StepAccess Access(Values ctx, AgentProgram program, AddressSpace space, ValueExpr address, ulong low, ulong high, bool isWrite, int? observed, List<string> reads)
    {
        var device = program.Kind is not (AgentKind.Cpu or AgentKind.User);

        // A device access outside its mapping names the allocation it lands in (DeviceBounds): kmalloc objects, pages
        // and coherent buffers, which a step that allocates or frees one changes.
        var parts = StateParts.Swiotlb | (space == AddressSpace.Virtual ? StateParts.PageTables : StateParts.None)
            | (device && space == AddressSpace.Dma ? StateParts.Slab | StateParts.PageAllocator | StateParts.CoherentBuffers | StateParts.AtomicPool : StateParts.None);
        var range = AccessRange(ctx, space, address, low, high);
        var fresh = range is null && space == AddressSpace.Virtual && address.Var is { } name && ctx.Producer(name) is { Stmt: KmallocStmt or AllocPagesStmt };
        var lines = range?.Lines ?? (fresh ? LineRanges.Empty : null);
        var keys = range?.Keys ?? (fresh ? LineRanges.Empty : null);
        return new StepAccess
        {
            Fresh = fresh,
            Unsettled = range?.Unsettled ?? false,
            Reads = parts,
            Lines = lines ?? LineRanges.Empty,
            AllLines = lines is null,
            TableReads = keys ?? LineRanges.Empty,
            AllTableReads = keys is null,
            TableWrites = device && isWrite && keys is not null ? WholeEntries(ctx.S, keys) : LineRanges.Empty,
            AllTableWrites = device && isWrite && keys is null,
            VarReads = reads,
            Observed = observed is { } v ? [v] : [],
        };
    }

    /// <summary>The physical range an access reaches, when its address is known (or bounded by the map that will assign it).</summary>
    private (LineRanges Lines, LineRanges Keys, bool Unsettled)? AccessRange(Values ctx, AddressSpace space, ValueExpr address, ulong low, ulong high)
    {
        var length = high - low;
        if (ctx.Number(address) is { } at)
        {
            try
            {
                var start = checked(at + low);
                var pa = space switch
                {
                    AddressSpace.Virtual => ctx.S.Mmu.Translate(start, length).Pa,
                    AddressSpace.Physical => start,
                    _ => ctx.S.Dma.Kernel.Layout.DmaToPhys(start),
                };
                _ = checked(pa + length);
                return (Ranges(pa, length), KeyRanges((pa, length)), Unsettled(ctx.S, pa, length));
            }
            catch (Exception)
            {
                return null; // the step fails; the search meets that itself
            }
        }

        if (space == AddressSpace.Dma && address.Var is { } v && address.Field is null && address.Mask is null && ctx.Producer(v) is { Stmt: MapStmt producer } made
            && producer.Size.Var is null && high <= producer.Size.Constant && address.Constant <= producer.Size.Constant - high)
        {
            // A handle a map will assign, and an access that stays inside the mapping's size: within the buffer's
            // lines, or the pool's when it may bounce. (A device may compute an address outside it: then every line.)
            return MapBound(ProducerValues(ctx.S, producer, made.Program), producer) is { Fresh: false } b ? (b.Lines, b.Keys, b.Unsettled) : null;
        }

        return null;
    }

    /// <summary>The values a statement of program <paramref name="program"/> would see now, its program's parameters unknown.</summary>
    private Values ProducerValues(ControlState s, Statement stmt, int program)
    {
        var p = model.Scenario.Programs[program];
        return new Values(this, s, new Frame(program, 0, System.Collections.Immutable.ImmutableDictionary<string, Value>.Empty), p, stmt,
            p.Parameters.ToHashSet(StringComparer.Ordinal));
    }

    private StepAccess Map(Values ctx, MapStmt m, Footprint fp, List<string> reads)
    {
        var bound = MapBound(ctx, m);
        return Bounded(bound, fp.Reads & StepAccess.Shared & ~OwnLines, bound is { Bounce: false } ? StateParts.None : StateParts.Swiotlb, reads, [m.Target]);
    }

    /// <summary>A map's, unmap's or sync's footprint: the lines and entries of <paramref name="bound"/>, or every one when it is unknown.</summary>
    private static StepAccess Bounded(Bound? bound, StateParts reads, StateParts writes, List<string> varReads, IReadOnlyCollection<string>? varWrites = null) => new()
    {
        Fresh = bound?.Fresh ?? false,
        Unsettled = bound?.Unsettled ?? false,
        Reads = reads,
        Writes = writes,
        Lines = bound?.Lines ?? LineRanges.Empty,
        AllLines = bound is null,
        TableReads = bound?.Keys ?? LineRanges.Empty,
        TableWrites = bound?.Keys ?? LineRanges.Empty,
        AllTableReads = bound is null,
        AllTableWrites = bound is null,
        VarReads = varReads,
        VarWrites = varWrites ?? [],
    };

    /// <summary>
    /// The lines a map reaches and the entry lines it adds: its buffer's (dma_map_single of a linear-map address or
    /// dma_map_page), and the swiotlb pool's when it may bounce (<see cref="DmaApi.DmaMapPage"/>'s test); null when unknown.
    /// </summary>
    private Bound? MapBound(Values ctx, MapStmt m)
    {
        if (ctx.Number(m.Size) is not { } size || size == 0)
        {
            return null;
        }

        var layout = ctx.S.Dma.Kernel.Layout;
        ulong phys;
        if (m.Offset is null)
        {
            if (ctx.Number(m.Address) is not { } ptr)
            {
                return FreshBound(ctx, m.Address);
            }

            if (!layout.IsLinearMapAddr(ptr))
            {
                return null;
            }

            phys = layout.VirtToPhys(ptr);
        }
        else
        {
            if (ctx.Lookup(m.Address) is null)
            {
                return FreshBound(ctx, m.Address);
            }

            if (ctx.Lookup(m.Address) is not PageRef page || ctx.Number(m.Offset) is not { } offset)
            {
                return null;
            }

            phys = (page.Pfn << PlatformLayout.PageShift) + offset;
        }

        if (phys > ulong.MaxValue - size)
        {
            return null;
        }

        var dma = ctx.S.Dma;
        var bounce = dma.Swiotlb is { } pool
            && (pool.ForceBounce || !DmaApi.DmaCapable(model.Environment, m.Device, layout.PhysToDma(phys), size)
                || DmaApi.DmaKmallocNeedsBounce(dma.Kernel, m.Device, size, m.Direction) || model.Environment.OpsFor(m.Device) == DmaOpsKind.XenSwiotlb);
        var lines = Ranges(phys, size);
        var keys = KeyRanges((phys, size));
        if (bounce)
        {
            var (start, length) = PoolRange(dma.Swiotlb!);
            lines = lines.Union(Ranges(start, length));
            keys = keys.Union(KeyRanges((start, length)));
        }

        return new Bound(lines, keys, bounce, bounce || Unsettled(ctx.S, phys, size));
    }

    /// <summary>A map of a buffer an allocation will return: memory free now, or the pool's if it may bounce; null when the buffer comes from elsewhere.</summary>
    private static Bound? FreshBound(Values ctx, ValueExpr buffer)
    {
        if (buffer.Var is not { } v || ctx.Producer(v) is not { Stmt: KmallocStmt or AllocPagesStmt })
        {
            return null;
        }

        if (ctx.S.Dma.Swiotlb is not null)
        {
            return null; // it may bounce: the pool's lines too (kept simple: every line)
        }

        return new Bound(LineRanges.Empty, LineRanges.Empty, false, false) { Fresh = true };
    }

    private bool Unsettled(ControlState s, ulong pa, ulong length)
    {
        var mask = (ulong)granule - 1;
        var lo = pa & ~mask;
        var end = pa + Math.Max(length, 1);
        var hi = end > ulong.MaxValue - mask ? ulong.MaxValue : (end + mask) & ~mask;
        return !Kmalloc.IsSettled(s.Dma.Kernel, lo, hi - lo);
    }

    /// <summary>What a map reaches: its lines, the entry lines it adds, whether it may bounce, whether any of it may still be handed out.</summary>
    private sealed record Bound(LineRanges Lines, LineRanges Keys, bool Bounce, bool Unsettled)
    {
        /// <summary>The buffer is one an allocation not yet made will return.</summary>
        public bool Fresh { get; init; }
    }

    /// <summary>An unmap, a sync or dma_mapping_error of a handle: the lines of the buffer the handle reaches, and the entries that cover them.</summary>
    private StepAccess ByHandle(Values ctx, Footprint fp, ValueExpr handleExpr, ValueExpr? offsetExpr, ValueExpr? sizeExpr, List<string> reads)
    {
        Bound? bound = null;
        if (ctx.Number(handleExpr) is { } handle)
        {
            var offset = offsetExpr is null ? 0 : ctx.Number(offsetExpr);
            var size = sizeExpr is null ? 1 : ctx.Number(sizeExpr);
            bound = offset is { } o && size is { } n && n > 0 && handle != DmaApi.DmaMappingError ? HandleBound(ctx.S, handle + o, n) : null;
        }
        else if (handleExpr.Var is { } v && ctx.Producer(v) is { Stmt: MapStmt producer } at)
        {
            bound = MapBound(ProducerValues(ctx.S, producer, at.Program), producer);
        }

        var writes = fp.Writes & StepAccess.Shared;
        return Bounded(bound, fp.Reads & StepAccess.Shared & ~OwnLines, bound is { Bounce: false } ? writes & ~StateParts.Swiotlb : writes, reads);
    }

    /// <summary>What a known handle reaches: its buffer's lines, or (a bounce address) the pool's and every live mapping's buffer.</summary>
    private Bound? HandleBound(ControlState s, ulong handle, ulong size)
    {
        var phys = s.Dma.Kernel.Layout.DmaToPhys(handle);
        if (phys > ulong.MaxValue - size)
        {
            return null;
        }

        if (s.Dma.Swiotlb is { } pool && pool.Contains(phys))
        {
            return null; // a bounce address: the copy reaches the original buffer, which only the handle table knows
        }

        return new Bound(Ranges(phys, size), WholeEntries(s, KeyRanges((phys, size))), false, Unsettled(s, phys, size));
    }

    /// <summary>
    /// <paramref name="keys"/> and every line of each live entry (a streaming mapping or a dma-debug entry) they reach:
    /// a step that changes an entry it finds through some of its lines claims all of them, so that a step reading the
    /// entry through any other of its lines conflicts with it.
    /// </summary>
    private LineRanges WholeEntries(ControlState s, LineRanges keys)
    {
        var layout = s.Dma.Kernel.Layout;
        var all = keys;
        void Add(ulong pa, ulong size, ref bool hit, ref LineRanges entry)
        {
            if (pa <= ulong.MaxValue - Math.Max(size, 1))
            {
                var r = KeyRanges((pa, size));
                hit |= r.Overlaps(keys);
                entry = entry.Union(r);
            }
        }

        foreach (var m in s.Dma.Mappings)
        {
            var (hit, entry) = (false, LineRanges.Empty);
            Add(m.Phys, m.Size, ref hit, ref entry);
            Add(layout.DmaToPhys(m.Handle), m.Size, ref hit, ref entry);
            if (m.Tlb is { } tlb)
            {
                Add(tlb, m.Size, ref hit, ref entry);
            }

            all = hit ? all.Union(entry) : all;
        }

        foreach (var e in s.Debug.Entries)
        {
            var (hit, entry) = (false, LineRanges.Empty);
            Add(e.Paddr, e.Size, ref hit, ref entry);
            Add(e.DeviceBase, e.Size, ref hit, ref entry);
            Add(layout.DmaToPhys(e.Handle), e.Size, ref hit, ref entry);
            all = hit ? all.Union(entry) : all;
        }

        return all;
    }

    private static (ulong Start, ulong Length) PoolRange(SwiotlbPool pool) => (pool.Start, (ulong)pool.Slots * SwiotlbPool.SlotSize);

    private LineRanges Ranges(ulong pa, ulong length) => LineRanges.Of(pa, Math.Max(length, 1), lineSize);

    private LineRanges KeyRanges((ulong Pa, ulong Length) r) => LineRanges.Of(r.Pa, Math.Max(r.Length, 1), granule);

    private static bool IsLocal(Frame frame, string name, HashSet<string>? unknown) =>
        frame.Locals.ContainsKey(name) || (unknown?.Contains(name) ?? false);

    /// <summary>The variable a statement assigns, if any.</summary>
    internal static string? Assigns(Statement stmt) => stmt switch
    {
        MapStmt m => m.Target,
        KmallocStmt k => k.Target,
        AllocPagesStmt a => a.Target,
        AllocCoherentStmt a => a.Target,
        MmapStmt m => m.Target,
        GetSgtableStmt g => g.Target,
        DeriveStmt d => d.Target,
        ResourceStmt r => r.Target,
        SgAllocStmt a => a.Target,
        SgFieldStmt f => f.Target,
        SgDmaStmt d => d.Target,
        _ => null,
    };

    /// <summary>The values a statement's expressions hold in a state, where known.</summary>
    private readonly struct Values(FootprintAnalysis owner, ControlState s, Frame frame, AgentProgram program, Statement stmt, HashSet<string>? unknown)
    {
        public ControlState S => s;

        public Value? Lookup(ValueExpr e)
        {
            if (e.Var is not { } v)
            {
                return new NumberValue(e.Constant);
            }

            if (unknown?.Contains(v) ?? false)
            {
                return null;
            }

            return frame.Locals.TryGetValue(v, out var local) ? local : s.Vars.GetValueOrDefault(v);
        }

        public ulong? Number(ValueExpr e)
        {
            if (Lookup(e) is null)
            {
                return null;
            }

            try
            {
                return new StepContext(owner.model, s, frame, program, stmt, [], []).Number(e);
            }
            catch (Exception)
            {
                return null; // the step fails (a bad value): the search meets that itself
            }
        }

        /// <summary>The one statement that will assign global <paramref name="v"/>, when exactly one does and it has not run.</summary>
        public (Statement Stmt, int Program)? Producer(string v) =>
            !frame.Locals.ContainsKey(v) && !(unknown?.Contains(v) ?? false) && !s.Vars.ContainsKey(v)
            && owner.producers.TryGetValue(v, out var list) && list.Count == 1 ? list[0] : null;
    }
}
