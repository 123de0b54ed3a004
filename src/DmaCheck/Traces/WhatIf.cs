using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Traces;

/// <summary>What the what-if replay of a trace on a kernel profile saw, besides its findings.</summary>
/// <param name="Coherent">Whether DMA is cache-coherent on the profile (x86_64): then nothing can share a granule unsafely.</param>
/// <param name="Granule">The profile's DMA granule in bytes (<see cref="WhatIfReplay.DmaGranule"/>).</param>
/// <param name="Maps">Streaming buffers replayed: each dma_map_page/dma_map_phys, and each element of a dma_map_sg.</param>
/// <param name="ToDevice">Of those, TO_DEVICE ones that the profile does not bounce: only cleaned, never invalidated, so their own edges are safe.</param>
/// <param name="Bounced">Of those, the ones the profile bounces through swiotlb for their size (dma_kmalloc_needs_bounce): the device never touches the buffer itself.</param>
/// <param name="Checked">FROM_DEVICE and BIDIRECTIONAL buffers not bounced, whose edges were checked.</param>
/// <param name="NotChecked">sg elements whose lengths the trace does not give (an IOMMU merged them: ents &lt; nents).</param>
/// <param name="PoolSlots">The profile's swiotlb pool in 2 KiB slots (0: none).</param>
/// <param name="PeakSlots">The most slots the replayed bounces held at once.</param>
/// <param name="PoolFull">Bounces that found no room (each a swiotlb-full finding).</param>
public sealed record WhatIfSummary(string Profile, string Description, bool Coherent, int Granule, string GranuleSource, int LineSize,
    long Maps, long ToDevice, long Bounced, long Checked, long NotChecked, long BufferHazards, long PairHazards, IReadOnlyList<string> Notes,
    int PoolSlots = 0, int PeakSlots = 0, long PoolFull = 0);

/// <summary>
/// Issue 18, item 3: the trace's kernel side replayed on a kernel profile whose devices are not cache-coherent. Every
/// streaming buffer the trace maps is given to the Dma layer's own decisions for that profile: whether dma-direct
/// bounces it for its size (<see cref="DmaApi.MapBouncesForCacheSafety"/>, v6.5's dma_kmalloc_needs_bounce), and the
/// cache maintenance arch_sync_dma_for_device/arch_sync_dma_for_cpu make on it (<see cref="Arm64DmaHooks"/>,
/// <see cref="Arm32DmaHooks"/>). What is unsafe there is reported:
/// a FROM_DEVICE or BIDIRECTIONAL buffer, not bounced, whose first or last DMA granule holds memory outside it
/// (<see cref="FindingKinds.BufferSharesGranule"/>); and two live buffers (of any device), not both TO_DEVICE and neither
/// bounced, in one granule (<see cref="FindingKinds.MappingsShareGranule"/>). Each finding says what the profile's
/// maintenance does to the shared line and what then corrupts it. A bounce is placed in the profile's own swiotlb pool
/// (<see cref="SwiotlbPool.Allocate"/>) until its unmap; one that finds no room is the model's swiotlb-full.
/// The DMA mask is taken to reach every address and swiotlb=force is off (the profile's boot), so only the size rule
/// bounces; dma_map_resource (MMIO, no maintenance), coherent buffers and dma_alloc_pages (whole pages) are not
/// streaming buffers here. Memory is bounded by the live mappings.
/// </summary>
public sealed class WhatIfReplay
{
    /// <summary>
    /// The DMA granule of <paramref name="profile"/>: what dma_get_cache_alignment() (include/linux/dma-mapping.h)
    /// returns there, the alignment and size a streaming buffer needs on a non-coherent device so that no cache line
    /// holds bytes outside it. It is the model's own (<see cref="DmaAlignment.For"/>,
    /// <see cref="CacheGeometry.DmaGetCacheAlignment"/>): ARCH_DMA_MINALIGN (128 on arm64 before v6.5, L1_CACHE_BYTES = 64
    /// on 32-bit arm), or on arm64 since v6.5 cache_line_size(), the board's writeback granule (CTR_EL0.CWG); 1 on x86_64.
    /// This is the one place the what-if replay takes the granule from.
    /// </summary>
    public static (int Bytes, string Source) DmaGranule(KernelProfile profile, HardwareConfig hardware)
    {
        var cache = DmaAlignment.For(profile);
        var bytes = cache.DmaGetCacheAlignment(hardware);
        var source = cache.DmaCacheAlignment == DmaCacheAlignmentSource.CacheLineSize
            ? $"dma_get_cache_alignment() = cache_line_size() = {bytes} (CTR_EL0.CWG of the board's cores; arm64 since v6.5, 9382bc44b5f5)"
            : cache.ArchDmaMinalign == 0
                ? "dma_get_cache_alignment() = 1 (no ARCH_DMA_MINALIGN: DMA is cache-coherent)"
                : $"dma_get_cache_alignment() = ARCH_DMA_MINALIGN = {bytes} ({(profile.Arch == Arch.Arm32 ? "L1_CACHE_BYTES on 32-bit arm" : "arm64 before v6.5")})";
        return (bytes, source);
    }

    private sealed class Live
    {
        public required ulong Phys;
        public required ulong Size;
        public required DmaDirection Dir;
        public required long Line;
        public required string Timestamp;
        public required string EventName;
        public required string Device;

        /// <summary>How many streaming buffers the replay had met before the event that mapped this one (for the size of an explore window).</summary>
        public required long MapIndex;

        /// <summary>Findings about this buffer whose explore window waits for an unmap.</summary>
        public List<PendingExplore>? Pending;

        /// <summary>The element's index in its dma_map_sg, or -1.</summary>
        public required int Element;

        public string Event => Element < 0 ? EventName : $"{EventName} element {Element}";
        public required ulong FirstGranule;
        public required ulong LastGranule;

        /// <summary>Where the profile bounced it in its swiotlb pool; then the device never touches the buffer itself.</summary>
        public SwiotlbAllocation? Bounce;
    }

    private sealed class DeviceLive
    {
        /// <summary>Single mappings by the recorded dma_addr (what the unmap names), oldest first.</summary>
        public Dictionary<ulong, List<Live?>> ByHandle { get; } = [];

        /// <summary>sg lists by their first element's physical address (all dma_unmap_sg records), oldest first.</summary>
        public Dictionary<ulong, List<List<Live>>> SgByPhys { get; } = [];

    }

    /// <summary>
    /// A finding whose explore window (<c>--from</c> the first buffer's map <c>--to</c> the victim's unmap) and expectation
    /// are known only once the buffers are given back. For a pair, the one unmapped first is the one the driver may
    /// write again (the owner), the other the victim; a buffer hazard's victim is its buffer.
    /// </summary>
    private sealed class PendingExplore
    {
        public required int Finding;
        public required Live Start;
        public required Live Victim;
        public Live? Partner;

        /// <summary>Of a pair, the buffer given back first.</summary>
        public Live? Owner;
        public bool Discards;
        public bool Done;
    }

    private readonly KernelProfile profile;
    private readonly DmaEnvironment env;
    private readonly KernelState kernel;
    private readonly ulong granule;
    private readonly string granuleSource;
    private readonly bool coherent;
    private readonly HashSet<string> deviceFilter;
    private readonly Dictionary<string, DeviceLive> devices = new(StringComparer.Ordinal);

    /// <summary>Live buffers of every device by their first and last granule (a granule index: PA / granule): dma-debug's cacheline radix tree is keyed by the line alone, for all devices (kernel/dma/debug.c, active_cacheline_insert).</summary>
    private readonly Dictionary<ulong, List<Live>> byGranule = [];
    private readonly string file;
    private readonly string? untilText;
    private readonly List<PendingExplore> pendingAtEnd = [];
    private long eventMapStart;
    private readonly Dictionary<(ulong Offset, ulong Size, DmaDirection Dir), Maintenance> maintenance = [];
    private readonly List<TraceFinding> findings = [];
    private readonly SortedSet<string> notes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DmaDevice> deviceRecords = new(StringComparer.Ordinal);

    // Emptied lists, reused: a map and its unmap would otherwise allocate two or three lists each.
    private readonly Stack<List<Live?>> handleLists = new();
    private readonly Stack<List<Live>> granuleLists = new();
    private SwiotlbPool? pool;
    private int peakSlots;
    private long maps, toDevice, bounced, checkedMaps, notChecked, bufferHazards, pairHazards, poolFull, coveredEdges;

    /// <param name="file">The trace's name as the user gave it, for the explore commands the findings print.</param>
    /// <param name="untilText">The check's --until, where a window whose victim is still live ends.</param>
    public WhatIfReplay(KernelProfile profile, IReadOnlyCollection<string> deviceFilter, string file = "FILE", string? untilText = null)
    {
        this.untilText = untilText;
        this.profile = profile;
        this.file = file;
        env = new DmaEnvironment(profile);
        var hardware = HardwareConfig.Default; // 64-byte lines, as the cortex-a57 the arm64 traces were recorded on (CTR_EL0.CWG)
        var (bytes, source) = DmaGranule(profile, hardware);
        granule = (ulong)bytes;
        granuleSource = source;
        coherent = profile.Arch == Arch.X86_64;

        // The maintenance is shown on a board whose cache lines are the granule: the largest the profile allows.
        kernel = ModelComparison.Kernel(profile, coherent ? hardware : hardware with { LineSize = bytes });
        pool = DmaState.Boot(kernel).Swiotlb;
        this.deviceFilter = new HashSet<string>(deviceFilter, StringComparer.Ordinal);
    }

    public IReadOnlyList<TraceFinding> Findings => findings;

    /// <summary>Live buffers held (for the memory bound).</summary>
    public int RetainedRecords => devices.Values.Sum(d => d.ByHandle.Count + d.SgByPhys.Count) + byGranule.Count + maintenance.Count + (pool?.Used.Count ?? 0);

    private DeviceLive Dev(string name)
    {
        if (!devices.TryGetValue(name, out var d))
        {
            d = new DeviceLive();
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

        eventMapStart = maps;
        switch (e.Kind)
        {
            case TraceEventKind.Map when e.Phys is { } phys && e.Direction is { } dir && e.DmaAddr != DmaApi.DmaMappingError:
                // A bounced or coherent buffer is recorded as null: nothing to track, but its unmap must still find it.
                var live = Map(e, phys, e.Size, dir);
                var d = Dev(e.Device);
                if (!d.ByHandle.TryGetValue(e.DmaAddr, out var list))
                {
                    list = handleLists.Count > 0 ? handleLists.Pop() : [];
                    d.ByHandle[e.DmaAddr] = list;
                }

                list.Add(live);
                break;
            case TraceEventKind.MapSg when e.Direction is { } dir && e.PhysAddrs.Length > 0:
                MapSg(e, dir);
                break;
            case TraceEventKind.Unmap:
                UnmapSingle(e);
                break;
            case TraceEventKind.UnmapSg when e.PhysAddrs.Length > 0:
                UnmapSg(e);
                break;
        }
    }

    private void MapSg(TraceEvent e, DmaDirection dir)
    {
        var count = Math.Min(e.DmaAddrs.Length, e.PhysAddrs.Length);
        if (e.Ents != e.Nents || e.DmaAddrs.Length != e.PhysAddrs.Length)
        {
            // An IOMMU merged elements: sizes= holds the merged segments, and each element's own length is not traced.
            notChecked += e.Nents;
            notes.Add("sg-merged: a dma_map_sg whose mapped count (ents) is below nents merged elements (an IOMMU): each element's length is not in the trace, so its elements are not replayed (counted as not checked). dma-direct on the profile would map each element on its own.");
            return;
        }

        if (e.Truncated)
        {
            notes.Add("sg-truncated: a dma_map_sg line is [TRUNCATED]: only its first 128 elements are replayed.");
        }

        var group = new List<Live>();
        for (var i = 0; i < count; i++)
        {
            if (e.DmaAddrs[i] == DmaApi.DmaMappingError)
            {
                continue;
            }

            if (Map(e, e.PhysAddrs[i], e.Sizes[i], dir, i) is { } live)
            {
                group.Add(live);
            }
        }

        var d = Dev(e.Device);
        if (!d.SgByPhys.TryGetValue(e.PhysAddrs[0], out var lists))
        {
            lists = [];
            d.SgByPhys[e.PhysAddrs[0]] = lists;
        }

        lists.Add(group);
    }

    private void UnmapSingle(TraceEvent e)
    {
        if (!devices.TryGetValue(e.Device, out var d) || !d.ByHandle.TryGetValue(e.DmaAddr, out var list))
        {
            return; // the offline dma-debug check reports it
        }

        var live = list[0];
        list.RemoveAt(0);
        if (list.Count == 0)
        {
            d.ByHandle.Remove(e.DmaAddr);
            Recycle(handleLists, list);
        }

        if (live is not null)
        {
            Forget(live, e);
        }
    }

    private void UnmapSg(TraceEvent e)
    {
        if (!devices.TryGetValue(e.Device, out var d) || !d.SgByPhys.TryGetValue(e.PhysAddrs[0], out var lists))
        {
            return;
        }

        var group = lists[0];
        lists.RemoveAt(0);
        if (lists.Count == 0)
        {
            d.SgByPhys.Remove(e.PhysAddrs[0]);
        }

        foreach (var live in group)
        {
            Forget(live, e);
        }
    }

    private static void Recycle<T>(Stack<List<T>> spare, List<T> list)
    {
        if (spare.Count < 1024)
        {
            spare.Push(list);
        }
    }

    private void Forget(Live live, TraceEvent unmap)
    {
        if (live.Bounce is { } bounce)
        {
            pool = pool?.Release(bounce); // swiotlb_tbl_unmap_single → swiotlb_release_slots
            return;
        }

        foreach (var g in Granules(live))
        {
            if (byGranule.TryGetValue(g, out var list))
            {
                list.Remove(live);
                if (list.Count == 0)
                {
                    byGranule.Remove(g);
                    Recycle(granuleLists, list);
                }
            }
        }

        if (live.Pending is { } pending)
        {
            foreach (var p in pending.Where(p => !p.Done))
            {
                if (p.Partner is { } partner && p.Owner is null)
                {
                    // The pair's first unmap: this buffer is the one the driver may write again, the other the victim.
                    p.Owner = live;
                    p.Victim = ReferenceEquals(partner, live) ? p.Victim : partner;
                    if (p.Victim.Dir == DmaDirection.DMA_TO_DEVICE)
                    {
                        Complete(p, unmap, $"in this trace the {Dir(live.Dir)} buffer of line {live.Line} is given back first, while the device only reads the other: the emitted scenario has nothing to fail; the hazard needs the other order");
                    }

                    continue;
                }

                Complete(p, unmap, null);
            }

            live.Pending = null;
        }
    }

    /// <summary>The explore line of a finding: the window to emit and the expectation to explain.</summary>
    private void Complete(PendingExplore p, TraceEvent? unmap, string? why)
    {
        p.Done = true;
        var f = findings[p.Finding];
        var count = maps - p.Start.MapIndex;
        var devicesOption = string.Concat(deviceFilter.Order(StringComparer.Ordinal).Select(d => $" --device {d}"));
        var end = unmap?.Timestamp ?? untilText;
        var window = $"--from {p.Start.Timestamp}{(end is null ? string.Empty : $" --to {end}")}{(count > ScenarioEmitter.DefaultMaxMappings ? $" --max-mappings {count}" : string.Empty)}";
        var emit = $"dmacheck trace {file} --profile {profile.Name}{devicesOption} --emit-scenario OUT.dmc {window}";
        var expectation = p.Discards
            ? ScenarioEmitter.MemoryBesideName(p.Victim.Line, p.Victim.Element, before: p.Victim.Phys % granule != 0)
            : ScenarioEmitter.CpuReadsDeviceDataName(p.Victim.Line, p.Victim.Element);
        findings[p.Finding] = f with
        {
            Explore = why is null
                ? $"explore: {emit}, then dmacheck explain OUT.dmc --expect {expectation}"
                : $"explore: {emit} ({why})",
            ExploreExpectation = why is null ? expectation : null,
            ExploreFrom = p.Start.Timestamp,
            ExploreTo = end,
        };
    }

    /// <summary>A buffer's edge granules: one or two, without allocating (this runs for every map and unmap).</summary>
    private static EdgeGranules Granules(Live live) => new(live.FirstGranule, live.LastGranule);

    private readonly struct EdgeGranules(ulong first, ulong last)
    {
        public Enumerator GetEnumerator() => new(first, last);

        public struct Enumerator(ulong first, ulong last)
        {
            private int index = -1;

            public readonly ulong Current => index == 0 ? first : last;

            public bool MoveNext() => ++index == 0 || (index == 1 && last != first);
        }
    }

    /// <summary>One streaming buffer mapped on the profile: its bounce decision (and slots), its edges, the live buffers beside it. Returns its live record, or null when there is nothing to undo at its unmap (coherent, empty, or the map failed).</summary>
    private Live? Map(TraceEvent e, ulong phys, ulong size, DmaDirection dir, int element = -1)
    {
        maps++;
        if (coherent || size == 0 || dir == DmaDirection.DMA_NONE)
        {
            return null;
        }

        if (!deviceRecords.TryGetValue(e.Device, out var device))
        {
            device = new DmaDevice(e.Device, Coherent: false, DmaMaskBits: 64);
            deviceRecords[e.Device] = device;
        }

        SwiotlbAllocation? bounce = null;
        if (DmaApi.MapBouncesForCacheSafety(env, kernel, device, size, dir))
        {
            bounced++;

            // swiotlb_tbl_map_single in the profile's own pool (boot sizes it for the kmalloc bounce: 1 MiB per GiB).
            if (pool?.Allocate(device, phys, size, $"{e.Name}({e.Device}) at line {e.Line}", out var allocation) is not { } next)
            {
                poolFull++;
                findings.Add(new TraceFinding(FindingKinds.SwiotlbFull, FindingKind.ModelClass, e.Line, e.Timestamp, e.Device, element < 0 ? e.Name : $"{e.Name} element {element}",
                    $"on {profile.Name}, the bounce of a non-coherent {e.Device}'s {Dir(dir)} buffer of {size} byte(s) finds no room: swiotlb buffer is full (sz: {size} bytes), total {pool?.Slots ?? 0} (slots), used {pool?.UsedSlots ?? 0} (slots); the map returns DMA_MAPPING_ERROR",
                    pool is null ? "the profile has no swiotlb pool to bounce through" : $"the profile's pool is {pool.Slots} slots of 2 KiB ({(ulong)pool.Slots * SwiotlbPool.SlotSize / 1024} KiB); the trace keeps more bounced buffers live at once than fit"));
                return null;
            }

            pool = next;
            peakSlots = Math.Max(peakSlots, pool.UsedSlots);
            bounce = allocation;
        }

        var live = new Live
        {
            Phys = phys,
            Size = size,
            Dir = dir,
            Line = e.Line,
            Timestamp = e.Timestamp,
            EventName = e.Name,
            Device = e.Device,
            MapIndex = eventMapStart,
            Element = element,
            FirstGranule = phys / granule,
            LastGranule = (phys + size - 1) / granule,
            Bounce = bounce,
        };
        if (bounce is not null)
        {
            return live;
        }

        if (dir == DmaDirection.DMA_TO_DEVICE)
        {
            toDevice++;
        }
        else
        {
            checkedMaps++;
            CheckEdges(e, live);
        }

        CheckNeighbours(e, live);
        foreach (var g in Granules(live))
        {
            if (!byGranule.TryGetValue(g, out var list))
            {
                list = granuleLists.Count > 0 ? granuleLists.Pop() : [];
                byGranule[g] = list;
            }

            list.Add(live);
        }

        return live;
    }

    private static string Where(Live b) => $"PA 0x{b.Phys:x}..0x{b.Phys + b.Size:x} ({b.Size} byte{(b.Size == 1 ? "" : "s")})";

    private static string Dir(DmaDirection d) => d.ToString();

    private static string SkipCpuSync(TraceEvent e) =>
        e.Attrs.Contains("SKIP_CPU_SYNC", StringComparison.Ordinal) ? "(mapped with DMA_ATTR_SKIP_CPU_SYNC: the map makes no maintenance, the driver's dma_sync_* calls make the same instead) " : "";

    private static string Label(Live x, Live current) => ReferenceEquals(x, current) ? $"this {Dir(x.Dir)} buffer" : $"the {Dir(x.Dir)} buffer of line {x.Line}";

    /// <summary>Why the profile does not bounce this buffer although its edges share granules.</summary>
    private string WhyNotBounced(ulong size)
    {
        if (profile.XenDom0)
        {
            return "xen_swiotlb_map_page has no kmalloc bounce";
        }

        if (!kernel.Config.KmallocBounce)
        {
            return $"the profile does not bounce small buffers (no CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC): its kmalloc objects are aligned to {kernel.Config.KmallocMinalign} bytes (ARCH_KMALLOC_MINALIGN), so a whole kmalloc object never shares a granule, and this buffer is not one";
        }

        var roundup = SlabState.SizeRoundup(size, kernel.Config.KmallocMinalign);
        var rule = size >= 2 * 128
            ? $"its size is at least 2 * ARCH_DMA_MINALIGN (256)"
            : $"kmalloc_size_roundup({size}) = {roundup} is a multiple of the {granule}-byte granule";
        return $"dma_kmalloc_needs_bounce lets it through because {rule}: the rule looks at the size only and takes the buffer for a whole kmalloc object, which this one is not";
    }

    private void CheckEdges(TraceEvent e, Live b)
    {
        var head = b.Phys % granule;
        var end = b.Phys + b.Size;
        var tail = (granule - (end % granule)) % granule;
        if (head == 0 && tail == 0)
        {
            return;
        }

        // Bytes beside it that other live buffers (of any device) hold are not the CPU's while those stay mapped: those
        // buffers are the pairs below, each with its own finding. Only bytes no live buffer holds make this hazard.
        if ((head == 0 || Covered(b.FirstGranule, b.Phys - head, b.Phys)) && (tail == 0 || Covered(b.LastGranule, end, end + tail)))
        {
            coveredEdges++;
            return;
        }

        bufferHazards++;
        var shape = b.Size < granule ? $"smaller than the {granule}-byte granule" : head != 0 ? $"not aligned to the {granule}-byte granule" : $"not a multiple of the {granule}-byte granule";
        var edges = new List<string>();
        if (head != 0)
        {
            edges.Add($"its first granule 0x{b.Phys - head:x} holds {head} byte(s) before it");
        }

        if (tail != 0 && !(head != 0 && b.FirstGranule == b.LastGranule))
        {
            edges.Add($"its last granule 0x{end - (end % granule):x} holds {tail} byte(s) after it");
        }
        else if (tail != 0)
        {
            edges[0] += $" and {tail} after it";
        }

        var m = MaintenanceOf(b.Phys, b.Size, b.Dir);
        Track(new PendingExplore { Finding = findings.Count, Start = b, Victim = b, Discards = m.DiscardsAtUnmap });
        findings.Add(new TraceFinding(FindingKinds.BufferSharesGranule, FindingKind.WhatIfClass, e.Line, e.Timestamp, e.Device, b.Event,
            $"on {profile.Name}, a non-coherent {e.Device}'s {Dir(b.Dir)} buffer {Where(b)} is {shape}: {string.Join("; ", edges)}, and {WhyNotBounced(b.Size)}",
            SkipCpuSync(e) + m.Beside(head != 0 ? $"the {head} byte(s) before it" : $"the {tail} byte(s) after it")));
    }

    private void Track(PendingExplore p)
    {
        foreach (var live in p.Partner is null ? [p.Victim] : new[] { p.Victim, p.Partner })
        {
            live.Pending ??= [];
            live.Pending.Add(p);
        }

        if (pendingAtEnd.Count >= 1024)
        {
            pendingAtEnd.RemoveAll(x => x.Done); // memory stays bounded by the live buffers
        }

        pendingAtEnd.Add(p);
    }

    /// <summary>Whether live buffers in granule <paramref name="g"/> hold every byte of [lo, hi).</summary>
    private bool Covered(ulong g, ulong lo, ulong hi)
    {
        if (!byGranule.TryGetValue(g, out var lives))
        {
            return false;
        }

        foreach (var x in lives.Where(x => x.Phys < hi && x.Phys + x.Size > lo).OrderBy(x => x.Phys))
        {
            if (x.Phys > lo)
            {
                return false;
            }

            lo = Math.Max(lo, x.Phys + x.Size);
            if (lo >= hi)
            {
                return true;
            }
        }

        return lo >= hi;
    }

    private void CheckNeighbours(TraceEvent e, Live b)
    {
        foreach (var g in Granules(b))
        {
            if (!byGranule.TryGetValue(g, out var others))
            {
                continue;
            }

            var other = others.FirstOrDefault(o => o.Dir != DmaDirection.DMA_TO_DEVICE || b.Dir != DmaDirection.DMA_TO_DEVICE);
            if (other is null)
            {
                continue;
            }

            pairHazards++;

            // The victim is a buffer the device writes (not TO_DEVICE). When the earlier one is, the driver may write the new
            // one before mapping it, while the device owns the earlier one (a write any driver may make: it owns the
            // buffer then). Otherwise the earlier one is TO_DEVICE and the new one the victim: the driver may write the
            // earlier one again once it has it back, while the device still owns the new one.
            var (victim, owner) = other.Dir != DmaDirection.DMA_TO_DEVICE ? (other, b) : (b, other);
            var m = MaintenanceOf(victim.Phys, victim.Size, victim.Dir);
            Track(ReferenceEquals(victim, other)
                ? new PendingExplore { Finding = findings.Count, Start = other, Victim = other }
                : new PendingExplore { Finding = findings.Count, Start = other, Victim = b, Partner = other });
            var whose = other.Device == b.Device ? "its" : $"{other.Device}'s";
            findings.Add(new TraceFinding(FindingKinds.MappingsShareGranule, FindingKind.WhatIfClass, e.Line, e.Timestamp, e.Device, b.Event,
                $"on {profile.Name}, a non-coherent {e.Device}'s {Dir(b.Dir)} buffer {Where(b)} shares the {granule}-byte granule 0x{g * granule:x} with {whose} live {Dir(other.Dir)} buffer {Where(other)}, mapped at line {other.Line} ({other.Timestamp} s, {other.Event})",
                SkipCpuSync(e) + m.Pair(Label(owner, b), Label(victim, b), beforeMap: ReferenceEquals(victim, other))));
            return;
        }
    }

    /// <summary>The profile's maintenance on a buffer's edge granules, from the model's arch hooks: the same for any buffer at the same offset in a page with the same size and direction.</summary>
    private Maintenance MaintenanceOf(ulong phys, ulong size, DmaDirection dir)
    {
        var key = (phys % PlatformLayout.PageSize, size, dir);
        if (maintenance.TryGetValue(key, out var m))
        {
            return m;
        }

        m = Maintenance.Of(env, kernel, phys, size, dir);
        if (maintenance.Count < 4096)
        {
            maintenance[key] = m;
        }

        return m;
    }

    /// <summary>The summary, with the notes the replay needs.</summary>
    public WhatIfSummary Finish()
    {
        foreach (var p in pendingAtEnd.Where(p => !p.Done))
        {
            // The victim is still the device's at the end (of the trace, or at --until): the emitted window has no read of it.
            Complete(p, null, $"the buffer of line {p.Victim.Line} is still mapped at the end{(untilText is null ? string.Empty : $" (--until {untilText})")}: the window has no read of it to fail; a window that reaches its unmap has");
        }

        var n = new List<string>(notes);
        if (coveredEdges > 0)
        {
            n.Add($"covered-edges: {coveredEdges} buffer(s) whose edge granules hold, beside them, only bytes of other live buffers (of any device): those bytes are not the CPU's while mapped, so these are reported only as pairs, each with the other buffer.");
        }

        n.Insert(0, coherent
            ? $"DMA is cache-coherent on {profile.Name}: there is no cache maintenance, so no buffer can share a granule unsafely."
            : $"every device is taken as non-coherent (no dma-coherent in its DT); the DMA mask is taken to reach every address and swiotlb=force is off, so only the profile's size rule bounces; the maintenance shown is the model's ({KernelName()}) on cache lines as large as the granule; 'fewest spontaneous events' is read off that maintenance; each finding's explore: line names the window to write as a scenario with --emit-scenario OUT.dmc, and the expectation of it that dmacheck explain walks.");
        return new WhatIfSummary(profile.Name, profile.Description, coherent, (int)granule, granuleSource, kernel.Hardware.LineSize,
            maps, toDevice, bounced, checkedMaps, notChecked, bufferHazards, pairHazards, n, pool?.Slots ?? 0, peakSlots, poolFull);
    }

    private string KernelName() => profile.Arch == Arch.Arm64 ? "arch/arm64/mm/dma-mapping.c, arch/arm64/mm/cache.S" : "arch/arm/mm/dma-mapping.c, arch/arm/mm/cache-v7.S";

    /// <summary>What map (arch_sync_dma_for_device) and unmap (arch_sync_dma_for_cpu) do to a buffer's partial edge line on the profile, as the model's arch hooks give it.</summary>
    private sealed record Maintenance(string? AtMap, string? AtUnmap, LineOpKind? UnmapKind)
    {
        public static Maintenance Of(DmaEnvironment env, KernelState k, ulong phys, ulong size, DmaDirection dir)
        {
            // The maintenance depends on the buffer's offset in its lines and its size only, so it is computed for a copy
            // of the buffer at the same page offset at the start of the profile's DRAM.
            var none = new Maintenance(null, null, null);
            var bank = k.Layout.Banks[0];
            var pa = bank.Base + (phys % PlatformLayout.PageSize);
            if (pa + size > Math.Min(bank.Base + bank.Size, k.Layout.LowmemLimit))
            {
                return none;
            }

            var map = new List<HwOp>();
            var unmap = new List<HwOp>();
            try
            {
                switch (k.Layout.Arch)
                {
                    case Arch.Arm64:
                        Arm64DmaHooks.ArchSyncDmaForDevice(env, k, pa, size, dir, "dma_map_page", map);
                        Arm64DmaHooks.ArchSyncDmaForCpu(k, pa, size, dir, "dma_unmap_page", unmap);
                        break;
                    case Arch.Arm32:
                        Arm32DmaHooks.ArchSyncDmaForDevice(k, pa, size, dir, "dma_map_page", map);
                        Arm32DmaHooks.ArchSyncDmaForCpu(env, k, pa, size, dir, "dma_unmap_page", unmap);
                        break;
                    default:
                        return none;
                }
            }
            catch (NotModelledException)
            {
                return none;
            }

            var line = (ulong)k.Hardware.LineSize;
            var edge = (pa % line) != 0 ? pa & ~(line - 1) : (pa + size - 1) & ~(line - 1);
            var (atMap, _) = On(map, edge, k.Hardware.LineSize);
            var (atUnmap, kind) = On(unmap, edge, k.Hardware.LineSize);
            return new Maintenance(atMap, atUnmap, kind);
        }

        /// <summary>The operations on the line at <paramref name="linePa"/>, each as "ROUTINE (what it does)", the last one's kind.</summary>
        private static (string? Text, LineOpKind? Kind) On(List<HwOp> ops, ulong linePa, int lineSize)
        {
            var hits = ops.OfType<MemoryOp>().Where(o => o.AccessAt(linePa, lineSize) is not null).ToList();
            if (hits.Count == 0)
            {
                return (null, null);
            }

            // An origin reads "dma_unmap_page: arch_sync_dma_for_cpu(DMA_FROM_DEVICE): dcache_inval_poc (partial last line)".
            var parts = hits.Select(o => $"{o.Origin[(o.Origin.LastIndexOf(": ", StringComparison.Ordinal) + 2)..]}: {Verb(o.Op.Kind)}").Distinct().ToList();
            var caller = hits[0].Origin.Split(": ")[..^1];
            return ($"{string.Join(": ", caller)} → {string.Join(", then ", parts)}", hits[^1].Op.Kind);
        }

        private static string Verb(LineOpKind kind) => kind switch
        {
            LineOpKind.Clean or LineOpKind.OuterClean => "write-back",
            LineOpKind.CleanInvalidate or LineOpKind.OuterCleanInvalidate => "write-back and invalidate",
            LineOpKind.Invalidate or LineOpKind.OuterInvalidate => "invalidate",
            _ => kind.ToString(),
        };

        private bool Discards => UnmapKind is LineOpKind.Invalidate or LineOpKind.OuterInvalidate;

        /// <summary>Whether the unmap discards the partial edge line (a CPU store beside the buffer is lost) rather than writing it back over the device's data.</summary>
        public bool DiscardsAtUnmap => AtUnmap is not null && Discards;

        private string Ops => (AtMap is null ? "" : $"map: {AtMap}; ") + $"unmap or sync_for_cpu: {AtUnmap}.";

        /// <summary>The mechanism for memory beside a buffer: what the map and the unmap do to the shared line, and the fewest spontaneous events that corrupt it.</summary>
        public string Beside(string bytes)
        {
            if (AtUnmap is null)
            {
                return $"the model gives no maintenance of this buffer's edge line here; a CPU store to {bytes} while the device owns the buffer still reaches RAM by an eviction (one spontaneous event) over what the device wrote";
            }

            return Discards
                ? $"{Ops} Fewest spontaneous events: none: a CPU store to {bytes} while the device owns the buffer is discarded by that invalidate"
                : $"{Ops} Fewest spontaneous events: none: a CPU store to {bytes} while the device owns the buffer dirties the line, which holds the buffer's old bytes, and that write-back puts them over what the device wrote";
        }

        /// <summary>The mechanism for two buffers in one granule: the CPU writes the one it owns again while the device still owns the other (<paramref name="victim"/>).</summary>
        public string Pair(string owner, string victim, bool beforeMap)
        {
            var when = beforeMap ? "before mapping it" : "after its unmap";
            if (AtUnmap is null)
            {
                return $"{when} the driver may write {owner} while the device still owns {victim}: the dirty shared line reaches RAM by an eviction (one spontaneous event) over what the device wrote";
            }

            var writeBack = beforeMap
                ? $"the store dirties the shared line, which holds {victim}'s old bytes; the map's clean (or at the unmap of {victim}, {AtUnmap}) writes them back over what the device wrote"
                : $"the store dirties the shared line, which holds {victim}'s old bytes; at the unmap of {victim}, {AtUnmap}: the write-back puts them over what the device wrote";
            return Discards && !beforeMap
                ? $"{when} the driver may write {owner} while the device still owns {victim}; at the unmap of {victim}, {AtUnmap}: the driver's store is discarded. Fewest spontaneous events: none"
                : $"{when} the driver may write {owner} while the device still owns {victim}: {writeBack}. Fewest spontaneous events: none";
        }
    }
}
