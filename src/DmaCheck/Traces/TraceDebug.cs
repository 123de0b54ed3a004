using DmaCheck.Debug;
using DmaCheck.Dma;

namespace DmaCheck.Traces;

/// <summary>
/// A DMA-API contract violation found in a trace: one of the Debug layer's kinds (docs/findings.md), the kernel's
/// dma-debug message (after "DMA-API: DEVICE: "), and where: the trace line and timestamp of the event at fault.
/// </summary>
/// <param name="Class">The kernel's error class (E2, E3, ...), as <see cref="DmaDebug.Kinds"/> gives it.</param>
/// <param name="Detail">What dmacheck adds: the line of the map, of an earlier unmap, and the like.</param>
/// <param name="Explore">For a what-if hazard: the window to emit as a scenario and the expectation to explain there (<c>explore: dmacheck trace ... --emit-scenario OUT.dmc --from T1 --to T2, then dmacheck explain OUT.dmc --expect NAME</c>).</param>
/// <param name="ExploreExpectation">The expectation of that scenario that the hazard fails, when the trace lets it fail.</param>
/// <param name="ExploreFrom">The window's --from (the first buffer's map).</param>
/// <param name="ExploreTo">The window's --to (the victim's unmap), or null: to the end.</param>
public sealed record TraceFinding(string Kind, string Class, long Line, string Timestamp, string Device, string Event, string Message, string? Detail,
    string? Explore = null, string? ExploreExpectation = null, string? ExploreFrom = null, string? ExploreTo = null);

/// <summary>A known quirk of the kernel's tracepoints that this trace relies on, and what dmacheck does about it.</summary>
public sealed record TraceNote(string Quirk, string Text);

/// <summary>Per-device figures.</summary>
public sealed record DeviceSummary(string Device, long Maps, long SgMaps, long Unmaps, long Syncs, long Bounced, long Translated, long Allocs, long Frees, int LiveMappings, int LiveCoherent, ulong LiveCoherentBytes);

/// <summary>Options of one check: which devices (all when empty), the time to stop at (leaks are counted there), and the kernel profile to replay the trace on (<see cref="WhatIfReplay"/>), if any.</summary>
public sealed record TraceOptions(IReadOnlyList<string> Devices, double? Until = null, string? UntilText = null, KernelProfile? Profile = null);

/// <summary>The result of checking one trace.</summary>
public sealed record TraceResult(
    string File,
    TraceFormat Format,
    ReadStats Stats,
    IReadOnlyDictionary<string, long> EventCounts,
    IReadOnlyList<DeviceSummary> Devices,
    IReadOnlyList<TraceFinding> Findings,
    IReadOnlyList<TraceNote> Notes,
    string? StoppedAt,
    int PeakLiveEntries,
    WhatIfSummary? WhatIf = null);

/// <summary>
/// Offline CONFIG_DMA_API_DEBUG (kernel/dma/debug.c, v6.12..v6.19): rebuilds each device's live mappings and coherent
/// buffers from the trace and runs the kernel's checks where its hooks run: check_unmap at unmap and free, check_sync
/// at sync, the active-cacheline check (add_dma_entry) at map, and the pending-mappings check
/// (dma_debug_device_change) at the end of the trace or at --until. Messages use the kernel's wording; kinds are the
/// Debug layer's (<see cref="DmaDebug"/>). What a trace cannot show (dma_mapping_error calls, E8; CPU addresses of
/// coherent buffers, E5, since virt_addr is a hashed %p) is not checked, and the report says so.
/// This layer (Traces) uses Debug, Dma and below, never Scenarios or Exploration; Reports renders its results.
/// Memory is bounded by the live entries: an unmapped entry is dropped (only a bounded record of recent unmaps stays,
/// for the "double unmap" detail).
/// </summary>
public sealed class TraceDebug
{
    private sealed class Entry
    {
        public required string Device;
        public required ulong Handle;
        public required ulong Size;
        public required DebugType Type;
        public DmaDirection? Direction;
        public ulong? Paddr;
        public required long Line;
        public required string Timestamp;
        public required string Event;
        public int SgCallEnts;
        public int SgMappedEnts;
        public SgGroup? Group;
        public bool InCachelineTree;
        public Entry? Next; // another live entry with the same handle (the kernel's hash bucket keeps both)

        public string TypeName() => DebugEntry.Name(Type);
    }

    private sealed class SgGroup
    {
        public required List<Entry> Elements;
        public required ulong FirstPhys;
        public required int Nents;
        public required bool Truncated;
    }

    private sealed class DeviceState(string name)
    {
        public string Name { get; } = name;

        public Dictionary<ulong, Entry> Streaming { get; } = [];

        public Dictionary<ulong, Entry> Coherent { get; } = [];

        public Dictionary<ulong, List<SgGroup>> SgByPhys { get; } = [];

        /// <summary>Handle to (line, timestamp) of its last unmap: bounded, for the double-unmap detail only.</summary>
        public Dictionary<ulong, (long Line, string Time)> RecentUnmaps { get; } = [];

        public Dictionary<ulong, TraceEvent> PendingBounces { get; } = [];

        public int LiveStreaming;
        public long Maps, SgMaps, Unmaps, Syncs, Bounced, Translated, Allocs, Frees;
    }

    private const int RecentUnmapLimit = 1 << 14;

    private readonly Dictionary<string, DeviceState> devices = new(StringComparer.Ordinal);
    /// <summary>L1_CACHE_SHIFT of the kernels the traces come from (arm64: arch/arm64/include/asm/cache.h; x86_64 too).</summary>
    private const int L1CacheShift = 6;

    private readonly Dictionary<ulong, int> activeCachelines = [];
    private readonly HashSet<ulong> reportedCachelines = [];
    private readonly List<TraceFinding> findings = [];
    private readonly SortedDictionary<string, TraceNote> notes = new(StringComparer.Ordinal);
    private readonly HashSet<string> deviceFilter;
    private int live;

    public TraceDebug(IReadOnlyCollection<string> deviceFilter)
    {
        this.deviceFilter = new HashSet<string>(deviceFilter, StringComparer.Ordinal);
    }

    public TraceFormat Format { get; } = new();

    private readonly Dictionary<string, long> eventCounts = new(StringComparer.Ordinal);

    /// <summary>The events checked, by name.</summary>
    public SortedDictionary<string, long> EventCounts => new(eventCounts, StringComparer.Ordinal);

    public int PeakLive { get; private set; }

    /// <summary>Everything the checker keeps between events: live entries, sg lists, pending bounces, the recent-unmap record and the cache lines in use. Bounded by the live mappings (and the recent-unmap cap), not by the trace length.</summary>
    public int RetainedRecords => devices.Values.Sum(d => d.Streaming.Count + d.Coherent.Count + d.SgByPhys.Count + d.RecentUnmaps.Count + d.PendingBounces.Count)
        + activeCachelines.Count + reportedCachelines.Count;

    /// <summary>The cap on the recent-unmap record per device.</summary>
    public const int RecentUnmapCap = RecentUnmapLimit;

    public IReadOnlyList<TraceFinding> Findings => findings;

    public IEnumerable<TraceNote> Notes => notes.Values;

    private static string ClassOf(string kind) => DmaDebug.Kinds.First(k => k.Kind == kind).Class;

    private static string Dir(DmaDirection? d) => d?.ToString() ?? "DMA_NONE";

    private void Report(string kind, TraceEvent e, string message, string? detail = null) =>
        findings.Add(new TraceFinding(kind, ClassOf(kind), e.Line, e.Timestamp, e.Device, e.Name, $"DMA-API: {e.Device}: {message}", detail));

    private void Note(string quirk, string text) => notes.TryAdd(quirk, new TraceNote(quirk, text));

    private DeviceState Dev(string name)
    {
        if (!devices.TryGetValue(name, out var d))
        {
            d = new DeviceState(name);
            devices[name] = d;
        }

        return d;
    }

    /// <summary>Feeds one event, in trace order.</summary>
    public void Add(TraceEvent e)
    {
        if (deviceFilter.Count > 0 && !deviceFilter.Contains(e.Device))
        {
            return;
        }

        System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(eventCounts, e.Name, out _)++;
        Format.See(e);
        var d = Dev(e.Device);
        switch (e.Kind)
        {
            case TraceEventKind.SwiotlbBounced:
                d.PendingBounces[e.DmaAddr] = e;
                break;
            case TraceEventKind.Map:
                d.Maps++;
                Bounce(d, e, e.Phys!.Value, e.DmaAddr);
                MapEntry(d, e, e.DmaAddr, e.Size, DebugType.Single, e.Direction, e.Phys, 0, 0, null);
                break;
            case TraceEventKind.MapResource:
                d.Maps++;
                MapEntry(d, e, e.DmaAddr, e.Size, DebugType.Resource, e.Direction, e.Phys, 0, 0, null);
                break;
            case TraceEventKind.AllocPages:
                d.Allocs++;
                if (e.Direction is null)
                {
                    Note("alloc-dir", "dma_alloc_pages' dir= is not a direction here (v6.13..v6.17 leave the alloc events' dir uninitialised): its direction is not checked at free.");
                }

                MapEntry(d, e, e.DmaAddr, e.Size, DebugType.Single, Format.AllocDirUntrusted ? null : e.Direction, null, 0, 0, null);
                break;
            case TraceEventKind.MapSg:
                MapSg(d, e);
                break;
            case TraceEventKind.MapSgErr:
                Note("map-sg-err-phys", "dma_map_sg_err prints the list's physical addresses (sg_phys) under 'dma_addrs=': dmacheck reads them as physical addresses; a failed map leaves no entry.");
                break;
            case TraceEventKind.Unmap or TraceEventKind.UnmapResource or TraceEventKind.FreePages:
                d.Unmaps++;
                Unmap(d, e, e.DmaAddr, e.Size, e.Kind == TraceEventKind.UnmapResource ? DebugType.Resource : DebugType.Single,
                    e.Kind == TraceEventKind.FreePages && Format.AllocDirUntrusted ? null : e.Direction);
                break;
            case TraceEventKind.UnmapSg:
                d.Unmaps++;
                UnmapSg(d, e);
                break;
            case TraceEventKind.SyncSingleForCpu or TraceEventKind.SyncSingleForDevice:
                d.Syncs++;
                Sync(d, e, e.DmaAddr, e.Size, e.Kind == TraceEventKind.SyncSingleForCpu, 0);
                break;
            case TraceEventKind.SyncSgForCpu or TraceEventKind.SyncSgForDevice:
                d.Syncs++;

                // debug_dma_sync_sg_for_*: the event holds all nents elements; the kernel checks the first
                // sg_mapped_ents of them (from the first element's entry) and none when the first has no entry.
                var mappedEnts = e.DmaAddrs.Length > 0 && FindExact(d, e.DmaAddrs[0], e.Sizes[0], DebugType.Sg, e.Direction) is { } firstEntry ? firstEntry.SgMappedEnts : 0;
                for (var i = 0; i < Math.Min(mappedEnts, e.DmaAddrs.Length); i++)
                {
                    Sync(d, e, e.DmaAddrs[i], e.Sizes[i], e.Kind == TraceEventKind.SyncSgForCpu, e.DmaAddrs.Length);
                }

                break;
            case TraceEventKind.Alloc or TraceEventKind.AllocSgt:
                Alloc(d, e);
                break;
            case TraceEventKind.Free or TraceEventKind.FreeSgt:
                Free(d, e);
                break;
            case TraceEventKind.AllocSgtErr:
                break;
        }

        if (live > PeakLive)
        {
            PeakLive = live;
        }
    }

    private void Bounce(DeviceState d, TraceEvent e, ulong phys, ulong dma)
    {
        if (d.PendingBounces.Remove(phys))
        {
            d.Bounced++;
        }
        else if (dma != phys)
        {
            d.Translated++;
        }
    }

    /// <summary>debug_dma_map_phys / debug_dma_map_page, then add_dma_entry with its active-cacheline check.</summary>
    private Entry? MapEntry(DeviceState d, TraceEvent e, ulong handle, ulong size, DebugType type, DmaDirection? dir, ulong? phys, int callEnts, int mappedEnts, SgGroup? group)
    {
        if (handle == ulong.MaxValue)
        {
            return null; // DMA_MAPPING_ERROR: the map failed, dma-debug records nothing
        }

        var entry = new Entry
        {
            Device = d.Name,
            Handle = handle,
            Size = size,
            Type = type,
            Direction = dir,
            Paddr = phys,
            Line = e.Line,
            Timestamp = e.Timestamp,
            Event = e.Name,
            SgCallEnts = callEnts,
            SgMappedEnts = mappedEnts,
            Group = group,
        };
        if (d.Streaming.TryGetValue(handle, out var head))
        {
            while (head.Next is not null)
            {
                head = head.Next;
            }

            head.Next = entry;
        }
        else
        {
            d.Streaming[handle] = entry;
        }

        d.LiveStreaming++;
        live++;

        // active_cacheline_insert: not for DMA_TO_DEVICE; EEXIST is reported unless DMA_ATTR_SKIP_CPU_SYNC.
        if (phys is { } pa && dir is { } direction && direction != DmaDirection.DMA_TO_DEVICE && type != DebugType.Resource)
        {
            var cln = pa >> L1CacheShift;
            activeCachelines.TryGetValue(cln, out var count);
            if (count > 0 && !e.Attrs.Contains("SKIP_CPU_SYNC", StringComparison.Ordinal) && !e.Attrs.Contains("CACHELINES_OVERLAP", StringComparison.Ordinal)
                && reportedCachelines.Add(cln))
            {
                // Once per overlap: the line stays reported until no live mapping starts in it (the kernel prints only
                // its first error unless dma-api/all_errors is set; one stale mapping would otherwise repeat at every map).
                Report(DmaDebug.CachelineOverlap, e, $"cacheline tracking EEXIST, overlapping mappings aren't supported [cln=0x{cln:x}]",
                    $"PA 0x{pa:x} starts in a cache line another live mapping that is not DMA_TO_DEVICE also starts in");
            }

            activeCachelines[cln] = count + 1;
            entry.InCachelineTree = true;
        }

        return entry;
    }

    private void MapSg(DeviceState d, TraceEvent e)
    {
        d.SgMaps++;
        d.Maps++;
        if (e.Truncated)
        {
            Note("sg-truncated", "a dma_map_sg line is marked [TRUNCATED]: only its first 128 elements were recorded, so syncs and unmaps of the others cannot be matched to a mapping and are not checked.");
        }

        var traced = Math.Min(e.DmaAddrs.Length, Math.Min(e.Ents, e.DmaAddrs.Length));
        var group = new SgGroup { Elements = new List<Entry>(traced), FirstPhys = e.PhysAddrs[0], Nents = e.Nents, Truncated = e.Truncated };
        for (var i = 0; i < traced; i++)
        {
            var phys = i < e.PhysAddrs.Length ? e.PhysAddrs[i] : (ulong?)null;
            if (phys is { } p && d.PendingBounces.Remove(p))
            {
                d.Bounced++;
            }
            else if (phys is { } q && q != e.DmaAddrs[i])
            {
                d.Translated++;
            }

            if (MapEntry(d, e, e.DmaAddrs[i], e.Sizes[i], DebugType.Sg, e.Direction, phys, e.Nents, e.Ents, group) is { } entry)
            {
                group.Elements.Add(entry);
            }
        }

        if (!d.SgByPhys.TryGetValue(group.FirstPhys, out var list))
        {
            list = [];
            d.SgByPhys[group.FirstPhys] = list;
        }

        list.Add(group);
    }

    /// <summary>Removes a live entry and its cache-line record.</summary>
    private void Remove(DeviceState d, Entry entry)
    {
        if (d.Streaming.TryGetValue(entry.Handle, out var head))
        {
            if (ReferenceEquals(head, entry))
            {
                if (entry.Next is null)
                {
                    d.Streaming.Remove(entry.Handle);
                }
                else
                {
                    d.Streaming[entry.Handle] = entry.Next;
                }
            }
            else
            {
                while (head.Next is not null && !ReferenceEquals(head.Next, entry))
                {
                    head = head.Next;
                }

                head.Next = entry.Next;
            }
        }

        d.LiveStreaming--;
        live--;
        if (entry.InCachelineTree && entry.Paddr is { } pa)
        {
            var cln = pa >> L1CacheShift;
            if (activeCachelines.TryGetValue(cln, out var count))
            {
                if (count <= 1)
                {
                    activeCachelines.Remove(cln);
                    reportedCachelines.Remove(cln);
                }
                else
                {
                    activeCachelines[cln] = count - 1;
                }
            }
        }

        if (d.RecentUnmaps.Count >= RecentUnmapLimit)
        {
            d.RecentUnmaps.Clear();
        }
    }

    /// <summary>bucket_find_exact: the live entry with this handle, preferring one whose size, type and direction match.</summary>
    private static Entry? FindExact(DeviceState d, ulong handle, ulong size, DebugType type, DmaDirection? dir)
    {
        if (!d.Streaming.TryGetValue(handle, out var head))
        {
            return null;
        }

        Entry? best = null;
        var bestScore = -1;
        for (var e = head; e is not null; e = e.Next)
        {
            var score = (e.Size == size ? 4 : 0) + (e.Type == type ? 2 : 0) + (e.Direction == dir ? 1 : 0);
            if (score > bestScore)
            {
                best = e;
                bestScore = score;
            }
        }

        return best;
    }

    private static string? Earlier(DeviceState d, ulong handle, string what) =>
        d.RecentUnmaps.TryGetValue(handle, out var at) ? $"handle 0x{handle:x} was unmapped at line {at.Line} ({at.Time} s): {what}" : null;

    /// <summary>check_unmap (kernel/dma/debug.c) for dma_unmap_page/phys/resource and dma_free_pages.</summary>
    private void Unmap(DeviceState d, TraceEvent e, ulong handle, ulong size, DebugType type, DmaDirection? dir)
    {
        if (handle == ulong.MaxValue)
        {
            Report(DmaDebug.InvalidFree, e, $"device driver tries to free an invalid DMA memory address");
            return;
        }

        var entry = FindExact(d, handle, size, type, dir);
        if (entry is null)
        {
            if (d.Coherent.TryGetValue(handle, out var coherent))
            {
                Report(DmaDebug.FreeWrongFunction, e, $"device driver frees DMA memory with wrong function [device address=0x{handle:x16}] [size={size} bytes] [mapped as {DebugEntry.Name(coherent.Type)}] [unmapped as {DebugEntry.Name(type)}]",
                    $"allocated at line {coherent.Line} ({coherent.Event})");
                return;
            }

            Report(DmaDebug.FreeNotAllocated, e, $"device driver tries to free DMA memory it has not allocated [device address=0x{handle:x16}] [size={size} bytes]", Earlier(d, handle, "a double unmap"));
            return;
        }

        CheckUnmap(d, e, entry, handle, size, type, dir, 0);
        Remove(d, entry);
        d.RecentUnmaps[handle] = (e.Line, e.Timestamp);
        if (entry.Group is { } g)
        {
            g.Elements.Remove(entry);
            if (g.Elements.Count == 0)
            {
                DropGroup(d, g);
            }
        }
    }

    private void CheckUnmap(DeviceState d, TraceEvent e, Entry entry, ulong handle, ulong size, DebugType type, DmaDirection? dir, int sgCallEnts)
    {
        var mapped = $"mapped at line {entry.Line} ({entry.Timestamp} s, {entry.Event})";
        if (entry.Size != size)
        {
            Report(DmaDebug.FreeSize, e, $"device driver frees DMA memory with different size [device address=0x{handle:x16}] [map size={entry.Size} bytes] [unmap size={size} bytes]", mapped);
        }

        if (entry.Type != type)
        {
            Report(DmaDebug.FreeWrongFunction, e, $"device driver frees DMA memory with wrong function [device address=0x{handle:x16}] [size={size} bytes] [mapped as {entry.TypeName()}] [unmapped as {DebugEntry.Name(type)}]", mapped);
        }

        if (entry.Type == DebugType.Sg && type == DebugType.Sg && sgCallEnts != 0 && entry.SgCallEnts != sgCallEnts)
        {
            Report(DmaDebug.FreeSgCount, e, $"device driver frees DMA sg list with different entry count [map count={entry.SgCallEnts}] [unmap count={sgCallEnts}]", mapped);
        }

        if (entry.Direction is { } md && dir is { } ud && md != ud)
        {
            Report(DmaDebug.FreeDirection, e, $"device driver frees DMA memory with different direction [device address=0x{handle:x16}] [size={size} bytes] [mapped with {Dir(md)}] [unmapped with {Dir(ud)}]", mapped);
        }

        _ = d;
    }

    private static void DropGroup(DeviceState d, SgGroup g)
    {
        if (d.SgByPhys.TryGetValue(g.FirstPhys, out var list))
        {
            list.Remove(g);
            if (list.Count == 0)
            {
                d.SgByPhys.Remove(g.FirstPhys);
            }
        }
    }

    /// <summary>
    /// debug_dma_unmap_sg. The trace gives only each element's sg_phys (not its DMA address), so the live list is found
    /// by its first element's physical address, and its elements are then checked as the kernel checks them.
    /// </summary>
    private void UnmapSg(DeviceState d, TraceEvent e)
    {
        Note("unmap-sg-phys", "dma_unmap_sg records only the physical start of each element, not its DMA address: dmacheck finds the list by its first element's physical address and checks its elements as debug_dma_unmap_sg does.");
        var first = e.PhysAddrs[0];
        SgGroup? group = null;
        if (d.SgByPhys.TryGetValue(first, out var list))
        {
            group = list.FirstOrDefault(g => g.Elements.Count > 0 && g.Elements[0].Direction == e.Direction) ?? list.FirstOrDefault();
        }

        if (group is null || group.Elements.Count == 0)
        {
            // A single mapping unmapped as sg is E4 in the kernel; look for one by physical address.
            var single = d.Streaming.Values.FirstOrDefault(x => x.Paddr == first && x.Type != DebugType.Sg);
            if (single is not null)
            {
                Report(DmaDebug.FreeWrongFunction, e, $"device driver frees DMA memory with wrong function [device address=0x{single.Handle:x16}] [size={single.Size} bytes] [mapped as {single.TypeName()}] [unmapped as scather-gather]",
                    $"mapped at line {single.Line} ({single.Event})");
                return;
            }

            Report(DmaDebug.FreeNotAllocated, e, $"device driver tries to free DMA memory it has not allocated [device address=0x{first:x16}] [size=0 bytes]",
                "no live dma_map_sg list of this device starts at this physical address (dma_unmap_sg traces only sg_phys, shown here as the address)");
            return;
        }

        foreach (var element in group.Elements.ToList())
        {
            CheckUnmap(d, e, element, element.Handle, element.Size, DebugType.Sg, e.Direction, e.PhysAddrs.Length);
            Remove(d, element);
            d.RecentUnmaps[element.Handle] = (e.Line, e.Timestamp);
        }

        group.Elements.Clear();
        DropGroup(d, group);
    }

    /// <summary>bucket_find_contain: the live streaming entry whose [handle, handle+size) holds addr.</summary>
    private static Entry? FindContaining(DeviceState d, ulong addr)
    {
        if (d.Streaming.TryGetValue(addr, out var exact))
        {
            return exact;
        }

        foreach (var head in d.Streaming.Values)
        {
            for (var e = head; e is not null; e = e.Next)
            {
                if (e.Handle <= addr && addr - e.Handle < e.Size)
                {
                    return e;
                }
            }
        }

        return null;
    }

    /// <summary>check_sync (kernel/dma/debug.c).</summary>
    private void Sync(DeviceState d, TraceEvent e, ulong addr, ulong size, bool toCpu, int sgCallEnts)
    {
        var entry = FindContaining(d, addr);
        if (entry is null)
        {
            Report(DmaDebug.SyncNotAllocated, e, $"device driver tries to sync DMA memory it has not allocated [device address=0x{addr:x16}] [size={size} bytes]", Earlier(d, addr, "a sync after unmap"));
            return;
        }

        var mapped = $"mapped at line {entry.Line} ({entry.Timestamp} s, {entry.Event})";
        var end = addr - entry.Handle + size;
        if (end > entry.Size)
        {
            Report(DmaDebug.SyncOutside, e, $"device driver syncs DMA memory outside allocated range [device address=0x{entry.Handle:x16}] [allocation size={entry.Size} bytes] [sync offset+size={end}]", mapped);
        }

        if (entry.Direction is not { } md || md == DmaDirection.DMA_BIDIRECTIONAL || e.Direction is not { } sd)
        {
            return;
        }

        if (md != sd)
        {
            Report(DmaDebug.SyncDirection, e, $"device driver syncs DMA memory with different direction [device address=0x{addr:x16}] [size={size} bytes] [mapped with {Dir(md)}] [synced with {Dir(sd)}]", mapped);
        }

        if (toCpu && md != DmaDirection.DMA_FROM_DEVICE && sd != DmaDirection.DMA_TO_DEVICE)
        {
            Report(DmaDebug.SyncReadOnlyForCpu, e, $"device driver syncs device read-only DMA memory for cpu [device address=0x{addr:x16}] [size={size} bytes] [mapped with {Dir(md)}] [synced with {Dir(sd)}]", mapped);
        }

        if (!toCpu && md != DmaDirection.DMA_TO_DEVICE && sd != DmaDirection.DMA_FROM_DEVICE)
        {
            Report(DmaDebug.SyncWriteOnlyToDevice, e, $"device driver syncs device write-only DMA memory to device [device address=0x{addr:x16}] [size={size} bytes] [mapped with {Dir(md)}] [synced with {Dir(sd)}]", mapped);
        }

        if (sgCallEnts != 0 && entry.Type == DebugType.Sg && entry.SgCallEnts != sgCallEnts)
        {
            Report(DmaDebug.SyncSgCount, e, $"device driver syncs DMA sg list with different entry count [map count={entry.SgCallEnts}] [sync count={sgCallEnts}]", mapped);
        }
    }

    /// <summary>debug_dma_alloc_coherent (and dma_alloc_noncontiguous): a "coherent" entry, keyed by the DMA handle.</summary>
    private void Alloc(DeviceState d, TraceEvent e)
    {
        d.Allocs++;
        Note("hashed-virt-addr", "virt_addr is printed with %p, a hashed pointer: dmacheck matches dma_free to dma_alloc by device and dma_addr, and cannot check the CPU address at free (dma-debug's 'different CPU address', E5).");
        if (e.Kind == TraceEventKind.Alloc && e.DirText is not null && e.Direction is null)
        {
            Note("alloc-dir", $"dma_alloc's dir= is not a direction here ('{e.DirText}' at line {e.Line}): v6.13 added the field to dma_alloc without assigning it, so it prints whatever the ring buffer held; dmacheck ignores it (coherent buffers are bidirectional).");
        }

        if (e.DmaAddr == 0 && e.VirtAddr is null or "(null)" or "0000000000000000")
        {
            return; // a failed allocation
        }

        if (d.Coherent.TryGetValue(e.DmaAddr, out var old))
        {
            // dma_free_attrs returns before trace_dma_free when dma_release_from_dev_coherent() took the buffer back
            // (a per-device coherent pool), so the earlier buffer's free is missing from the trace.
            Note("untraced-pool-free", "a dma_alloc returned a DMA address that an earlier, never-freed dma_alloc of the same device also returned: frees into a per-device coherent pool (dma_release_from_dev_coherent) return before trace_dma_free, so dmacheck takes the earlier buffer as freed.");
            d.Coherent.Remove(e.DmaAddr);
            live--;
            _ = old;
        }

        d.Coherent[e.DmaAddr] = new Entry
        {
            Device = d.Name,
            Handle = e.DmaAddr,
            Size = e.Size,
            Type = DebugType.Coherent,
            Direction = DmaDirection.DMA_BIDIRECTIONAL,
            Line = e.Line,
            Timestamp = e.Timestamp,
            Event = e.Name,
        };
        live++;
    }

    /// <summary>debug_dma_free_coherent: check_unmap of a "coherent" reference.</summary>
    private void Free(DeviceState d, TraceEvent e)
    {
        d.Frees++;
        if (!d.Coherent.TryGetValue(e.DmaAddr, out var entry))
        {
            if (FindExact(d, e.DmaAddr, e.Size, DebugType.Coherent, null) is { } streaming)
            {
                Report(DmaDebug.FreeWrongFunction, e, $"device driver frees DMA memory with wrong function [device address=0x{e.DmaAddr:x16}] [size={e.Size} bytes] [mapped as {streaming.TypeName()}] [unmapped as coherent]",
                    $"mapped at line {streaming.Line} ({streaming.Event})");
                return;
            }

            Report(DmaDebug.FreeNotAllocated, e, $"device driver tries to free DMA memory it has not allocated [device address=0x{e.DmaAddr:x16}] [size={e.Size} bytes]", Earlier(d, e.DmaAddr, "a double free"));
            return;
        }

        if (entry.Size != e.Size)
        {
            Report(DmaDebug.FreeSize, e, $"device driver frees DMA memory with different size [device address=0x{e.DmaAddr:x16}] [map size={entry.Size} bytes] [unmap size={e.Size} bytes]", $"allocated at line {entry.Line} ({entry.Timestamp} s, {entry.Event})");
        }

        d.Coherent.Remove(e.DmaAddr);
        d.RecentUnmaps[e.DmaAddr] = (e.Line, e.Timestamp);
        live--;
    }

    /// <summary>
    /// dma_debug_device_change's check at driver unbind, made at the end of the trace (or at --until): streaming
    /// mappings still live, one finding per device with the kernel's count, placed at its oldest leaked mapping.
    /// Coherent buffers still allocated are counted in the device summary but are not findings: a bound driver keeps
    /// its rings, and a trace does not show the unbind where the kernel would check them.
    /// </summary>
    public void Finish(string at)
    {
        foreach (var d in devices.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            var leaked = d.Streaming.Values.SelectMany(Chain).OrderBy(x => x.Line).ToList();
            if (leaked.Count == 0)
            {
                continue;
            }

            var first = leaked[0];
            var others = leaked.Skip(1).Take(5).Select(x => x.Line.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            var more = leaked.Count > 6 ? $" and {leaked.Count - 6} more" : "";
            findings.Add(new TraceFinding(DmaDebug.Leak, ClassOf(DmaDebug.Leak), first.Line, first.Timestamp, d.Name, first.Event,
                $"DMA-API: {d.Name}: device driver has pending DMA allocations while released from device [count={leaked.Count}] One of leaked entries details: [device address=0x{first.Handle:x16}] [size={first.Size} bytes] [mapped with {Dir(first.Direction)}] [mapped as {first.TypeName()}]",
                $"still mapped {at}" + (others.Count > 0 ? $"; the others were mapped at lines {string.Join(", ", others)}{more}" : "")));
        }

        if (Format.Pre613Alloc && eventCounts.ContainsKey("dma_map_page"))
        {
            Note("alloc-pages-as-map-page", "this trace has the v6.12 format: on v6.12.0..v6.12.47, dma_alloc_pages and dma_free_pages are traced as dma_map_page and dma_unmap_page, so some 'mappings' here may be dma_alloc_pages buffers (dmacheck checks them as mappings, as dma-debug does).");
        }

        if (devices.Values.Any(d => d.Maps > 0) && devices.Values.All(d => d.Syncs == 0))
        {
            Note("coherent-sync-untraced", "no dma_sync_* events: the driver made none (it unmaps instead), or its device needs no cache maintenance and no bouncing, and then dma_sync_single_for_*/dma_sync_sg_for_* return before the tracepoint (dma_dev_need_sync, v6.11); either way the sync checks had nothing to check.");
        }

        if (devices.Values.Any(d => d.Coherent.Count > 0 || d.Allocs > 0))
        {
            Note("dmapool", "dma_pool_alloc/dma_pool_free are not traced: only the pool's backing pages show, as dma_alloc; buffers carved from them are not checked.");
        }
    }

    private static IEnumerable<Entry> Chain(Entry head)
    {
        for (var e = head; e is not null; e = e.Next)
        {
            yield return e;
        }
    }

    public IReadOnlyList<DeviceSummary> Summaries() =>
        devices.Values.OrderBy(d => d.Name, StringComparer.Ordinal)
            .Select(d => new DeviceSummary(d.Name, d.Maps, d.SgMaps, d.Unmaps, d.Syncs, d.Bounced, d.Translated, d.Allocs, d.Frees, d.LiveStreaming, d.Coherent.Count,
                d.Coherent.Values.Aggregate(0UL, (s, x) => s + x.Size)))
            .ToList();
}
