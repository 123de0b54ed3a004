using System.Globalization;
using System.Text;
using DmaCheck.Dma;
using DmaCheck.Kernel;

namespace DmaCheck.Traces;

/// <summary>
/// <c>dmacheck trace FILE --profile P --emit-scenario OUT.dmc [--from T1] [--to T2]</c>: a window of a recorded trace as
/// a scenario (issue 18 item 4). Each streaming mapping made in the window becomes a buffer placed at the trace's
/// physical address (<c>buffer NAME { phys = PA, size = N }</c>); the driver's calls, in trace order, a CPU thread; and
/// each mapping a DMA engine of its device that may read (TO_DEVICE, BIDIRECTIONAL) and write (FROM_DEVICE,
/// BIDIRECTIONAL) the mapping at any time while the device owns it: from the map or a sync_for_device to the
/// sync_for_cpu or unmap that gives it back. Expectations say that the device reads what the CPU wrote before giving
/// it the buffer, and the CPU reads what the device wrote once it has the buffer back.
/// </summary>
/// <remarks>
/// Coherent buffers (dma_alloc) become dma_alloc_coherent and dma_free_coherent calls of the driver: the trace has no
/// physical address for them and the language cannot place a coherent allocation, so the model's allocator places
/// them (the trace's dma_addr is in a comment). dma_map_resource becomes dma_map_resource of the trace's address (MMIO:
/// no DMA engine, since device accesses to MMIO are not modelled). sg lists become lists: sg_alloc_table (its own
/// memory, kmalloc'd), sg_set_buf of each element, dma_map_sg, sg_dma_address of each; their syncs are made per
/// element as single syncs (what dma_direct_sync_sg_* does per element). Everything else is not emitted, and each such
/// event is named by its trace line, in the file's header and on the command's output: mappings made before the window
/// (their start is unknown), dma_alloc_pages and dma_alloc_sgt, lists an IOMMU merged (each element's length is not
/// traced) or the trace truncated. Expectation names are the trace line that gave the buffer to the device
/// (<see cref="CpuReadsDeviceDataName"/>), so a what-if hazard names the one its window fails.
/// </remarks>
public sealed class ScenarioEmitter(KernelProfile profile, double? from, double? to, IReadOnlyCollection<string> deviceFilter, int maxMappings = ScenarioEmitter.DefaultMaxMappings)
{
    /// <summary>The most streaming mappings one emitted scenario holds unless --max-mappings says otherwise: each is an agent, and the search grows with them.</summary>
    public const int DefaultMaxMappings = 8;

    /// <summary>The largest --max-mappings.</summary>
    public const int MaxMaxMappings = 64;

    /// <summary>The most mappings this emitter takes; a window with more is an error naming the first one left out.</summary>
    public int MaxMappings => maxMappings;

    /// <summary>The interval a buffer was given to the device by: the trace line of the map or sync_for_device, and the sg element.</summary>
    public static string IntervalName(long line, int element) => element < 0 ? $"L{line}" : $"L{line}_e{element}";

    /// <summary>The expectation that the CPU reads what the device wrote in the interval that trace line <paramref name="line"/> started.</summary>
    public static string CpuReadsDeviceDataName(long line, int element) => $"cpu_reads_device_data_{IntervalName(line, element)}";

    /// <summary>The expectation that the device reads what the CPU wrote before trace line <paramref name="line"/> gave it the buffer.</summary>
    public static string DeviceReadsCpuDataName(long line, int element) => $"device_reads_cpu_data_{IntervalName(line, element)}";

    /// <summary>The expectation that the memory before (or after) the buffer mapped at trace line <paramref name="line"/>, in its edge DMA granule, keeps its data.</summary>
    public static string MemoryBesideName(long line, int element, bool before) => $"memory_{(before ? "before" : "after")}_{IntervalName(line, element)}_keeps_its_data";

    private sealed class Mapping
    {
        public required int Id;
        public required string Device;
        public required DmaDirection Dir;
        public required ulong Handle;
        public required ulong Phys;
        public required ulong Size;
        public required long Line;
        public required string Event;

        /// <summary>The element's index in its dma_map_sg, or -1.</summary>
        public required int Element;

        /// <summary>The map's DMA attributes as the language writes them ("0": none).</summary>
        public string Attrs = "0";

        /// <summary>The trace line that started each interval the device owns the mapping (the map, then each sync_for_device).</summary>
        public List<long> Starts { get; } = [];
        public bool Open = true;
        public bool Unmapped;

        /// <summary>Of an sg element: its list.</summary>
        public SgList? List;

        public int Intervals => Starts.Count;
    }

    private sealed class SgList
    {
        public required int Id;
        public required List<Mapping> Elements;
    }

    private sealed record Coherent(int Id, string Device, ulong DmaAddr, ulong Size, long Line)
    {
        public bool Freed { get; set; }
        public required string Attrs { get; init; }
    }

    private sealed record Resource(int Id, string Device, ulong DmaAddr, ulong Size, DmaDirection Dir, long Line)
    {
        public bool Unmapped { get; set; }
    }

    private readonly List<Mapping> mappings = [];
    private readonly List<SgList> lists = [];
    private readonly List<Coherent> coherent = [];
    private readonly List<Resource> resources = [];

    /// <summary>Of each pair of buffers in one granule: the one the driver got back first (which it may write again) and the other, still the device's.</summary>
    private readonly List<(Mapping Owner, Mapping Victim, int Interval)> reuses = [];

    /// <summary>How many streaming mappings are emitted.</summary>
    public int Mappings => mappings.Count;

    /// <summary>Whether anything (a mapping, a coherent buffer, a resource) is emitted.</summary>
    public bool Any => mappings.Count + coherent.Count + resources.Count > 0;
    private readonly List<Func<Func<Mapping, string>, string[]>> cpu = [];
    private readonly Dictionary<ulong, List<SgList>> sgByFirstPhys = [];
    private readonly Dictionary<string, string> deviceNames = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, List<long>> skipped = new(StringComparer.Ordinal);
    private long firstLine;
    private long lastLine;

    /// <summary>How many streaming mappings (sg elements one by one) the window made.</summary>
    public int MappingsSeen { get; private set; }

    /// <summary>The trace line of the first mapping past <see cref="MaxMappings"/>, if any.</summary>
    public long? FirstLeftOut { get; private set; }

    /// <summary>What is not emitted, each with the trace lines of its events (at most the first few): "REASON (lines L1, L2, ...)".</summary>
    public IEnumerable<string> NotEmitted => skipped.Select(kv =>
        $"{kv.Value.Count} x {kv.Key} (line{(kv.Value.Count == 1 ? "" : "s")} {string.Join(", ", kv.Value.Take(6))}{(kv.Value.Count > 6 ? ", ..." : string.Empty)})");

    private string DeviceName(string device)
    {
        if (!deviceNames.TryGetValue(device, out var name))
        {
            name = $"dev{deviceNames.Count}";
            deviceNames[device] = name;
        }

        return name;
    }

    public void Add(TraceEvent e)
    {
        if ((from is { } f && e.Seconds < f) || (to is { } t && e.Seconds > t) || (deviceFilter.Count > 0 && !deviceFilter.Contains(e.Device)))
        {
            return;
        }

        firstLine = firstLine == 0 ? e.Line : firstLine;
        lastLine = e.Line;
        switch (e.Kind)
        {
            case TraceEventKind.Map when e.HasAttr("MMIO") && e.Phys is { } mmio && e.Direction is { } dir:
                MapResource(e, mmio, dir);
                break;
            case TraceEventKind.MapResource when e.Phys is { } mmio && e.Direction is { } dir:
                MapResource(e, mmio, dir);
                break;
            case TraceEventKind.Map when e.DmaAddr == DmaApi.DmaMappingError:
                Skip("a failed map (DMA_MAPPING_ERROR): the model decides itself whether a map fails", e.Line);
                break;
            case TraceEventKind.Map when e.Phys is { } phys && e.Direction is { } dir && dir != DmaDirection.DMA_NONE:
                if (Map(e, e.DmaAddr, phys, e.Size, dir, e.Name, -1) is { } single)
                {
                    single.Attrs = Attrs(e);
                    var waits = WaitReused(single);
                    var prepare = Prepare(single);
                    cpu.Add(buf => [.. waits, .. PrepareLines(prepare), .. MapSingle(single, buf, e.Line)]);
                }

                break;
            case TraceEventKind.MapSg when e.Direction is { } dir && dir != DmaDirection.DMA_NONE:
                MapSg(e, dir);
                break;
            case TraceEventKind.Unmap when e.HasAttr("MMIO"):
            case TraceEventKind.UnmapResource:
                if (resources.LastOrDefault(r => !r.Unmapped && r.Device == e.Device && r.DmaAddr == e.DmaAddr) is { } res)
                {
                    res.Unmapped = true;
                    var attrs = Attrs(e, "MMIO");
                    cpu.Add(_ => [$"dma_unmap_resource({deviceNames[res.Device]}, r{res.Id}, {res.Size}, {res.Dir}, {attrs})   # line {e.Line}"]);
                }
                else
                {
                    Skip("an unmap of a resource mapped before the window", e.Line);
                }

                break;
            case TraceEventKind.Unmap:
                if (Live(e.Device, e.DmaAddr) is { List: null } u)
                {
                    End(u, u.Handle, u.Size, unmap: true, e.Line, Attrs(e));
                }
                else
                {
                    Skip("an unmap of a mapping made before the window (or not emitted)", e.Line);
                }

                break;
            case TraceEventKind.UnmapSg:
                if (e.PhysAddrs.Length > 0 && sgByFirstPhys.TryGetValue(e.PhysAddrs[0], out var sgs) && sgs.Count > 0)
                {
                    var list = sgs[0];
                    sgs.RemoveAt(0);
                    EndList(list, e.Line, Attrs(e));
                }
                else
                {
                    Skip("a dma_unmap_sg of a list mapped before the window (or not emitted)", e.Line);
                }

                break;
            case TraceEventKind.SyncSingleForCpu or TraceEventKind.SyncSingleForDevice:
                Sync(e, e.DmaAddr, e.Size, e.Kind == TraceEventKind.SyncSingleForCpu);
                break;
            case TraceEventKind.SyncSgForCpu or TraceEventKind.SyncSgForDevice:
                for (var i = 0; i < Math.Min(e.DmaAddrs.Length, e.Sizes.Length); i++)
                {
                    Sync(e, e.DmaAddrs[i], e.Sizes[i], e.Kind == TraceEventKind.SyncSgForCpu);
                }

                break;
            case TraceEventKind.Alloc when e.Size > 0:
                var c = new Coherent(coherent.Count, e.Device, e.DmaAddr, e.Size, e.Line) { Attrs = Attrs(e) };
                coherent.Add(c);
                var device = DeviceName(e.Device);
                var gfp = Gfp(e);
                cpu.Add(_ => [$"c{c.Id} = {(c.Attrs == "0" ? $"dma_alloc_coherent({device}, {c.Size}, {gfp})" : $"dma_alloc_attrs({device}, {c.Size}, {gfp}, {c.Attrs})")}   # line {e.Line}: trace dma_addr 0x{c.DmaAddr:x} (placed by the model's allocator: dma_alloc traces no physical address)"]);
                break;
            case TraceEventKind.Free:
                if (coherent.LastOrDefault(x => !x.Freed && x.Device == e.Device && x.DmaAddr == e.DmaAddr) is { } freed)
                {
                    freed.Freed = true;
                    var attrs = Attrs(e);
                    cpu.Add(_ => [$"{(attrs == "0" ? $"dma_free_coherent({deviceNames[freed.Device]}, {freed.Size}, c{freed.Id})" : $"dma_free_attrs({deviceNames[freed.Device]}, {freed.Size}, c{freed.Id}, {attrs})")}   # line {e.Line}"]);
                }
                else
                {
                    Skip("a dma_free of a buffer allocated before the window", e.Line);
                }

                break;
            case TraceEventKind.AllocPages or TraceEventKind.FreePages or TraceEventKind.AllocSgt or TraceEventKind.FreeSgt:
                Skip($"{e.Name} (the language has no dma_alloc_pages/dma_alloc_noncoherent or dma_alloc_sgt)", e.Line);
                break;
            case TraceEventKind.SwiotlbBounced:
                break;
            default:
                Skip($"{e.Name} events", e.Line);
                break;
        }
    }

    /// <summary>The trace's attrs= as the language writes them (DMA_ATTR_X|DMA_ATTR_Y, or 0); an attribute the language does not have is left out, with a notice naming the line.</summary>
    private string Attrs(TraceEvent e, params string[] ignore)
    {
        var known = new List<string>();
        foreach (var a in e.Attrs.Split('|', StringSplitOptions.RemoveEmptyEntries))
        {
            if (a is "SKIP_CPU_SYNC" or "NO_WARN" or "WRITE_COMBINE" or "NO_KERNEL_MAPPING")
            {
                known.Add("DMA_ATTR_" + a);
            }
            else if (!ignore.Contains(a))
            {
                Skip($"the DMA attribute {a} (the language does not have it)", e.Line);
            }
        }

        return known.Count == 0 ? "0" : string.Join('|', known);
    }

    /// <summary>dma_alloc's gfp flags as the language writes them; flags it does not have are left out, with a notice.</summary>
    private string Gfp(TraceEvent e)
    {
        var known = new List<string>();
        foreach (var f in (e.Flags ?? "GFP_KERNEL").Split('|', StringSplitOptions.RemoveEmptyEntries))
        {
            if (GfpExtensions.Names.ContainsKey(f))
            {
                known.Add(f);
            }
            else
            {
                Skip($"the gfp flag {f} (the language does not have it)", e.Line);
            }
        }

        return known.Count == 0 ? "GFP_KERNEL" : string.Join('|', known);
    }

    private void Skip(string what, long line)
    {
        if (!skipped.TryGetValue(what, out var lines))
        {
            lines = [];
            skipped[what] = lines;
        }

        lines.Add(line);
    }

    private void MapResource(TraceEvent e, ulong phys, DmaDirection dir)
    {
        var r = new Resource(resources.Count, e.Device, e.DmaAddr, e.Size, dir, e.Line);
        resources.Add(r);
        var device = DeviceName(e.Device);
        var attrs = Attrs(e, "MMIO");
        cpu.Add(_ => [$"r{r.Id} = dma_map_resource({device}, 0x{phys:x}, {r.Size}, {dir}, {attrs})   # line {e.Line}: {e.Name} (MMIO: the device's accesses to it are not modelled)", $"dma_mapping_error({device}, r{r.Id})"]);
    }

    private void MapSg(TraceEvent e, DmaDirection dir)
    {
        if (e.Truncated || (e.HasCounts && e.Ents != e.Nents) || e.DmaAddrs.Length != e.PhysAddrs.Length || e.Sizes.Length != e.PhysAddrs.Length)
        {
            MappingsSeen += e.Nents > 0 ? e.Nents : e.PhysAddrs.Length;
            Skip(e.Truncated
                ? "a [TRUNCATED] dma_map_sg (elements past the 128th are not traced)"
                : "a dma_map_sg an IOMMU merged (ents < nents: each element's length is not traced)", e.Line);
            return;
        }

        var attrs = Attrs(e);
        var elements = new List<Mapping>();
        for (var i = 0; i < e.PhysAddrs.Length; i++)
        {
            if (Map(e, e.DmaAddrs[i], e.PhysAddrs[i], e.Sizes[i], dir, $"{e.Name} element {i}", i) is { } m)
            {
                m.Attrs = attrs;
                elements.Add(m);
            }
        }

        if (elements.Count == 0)
        {
            return;
        }

        // As a list where the language has sg tables (not on 32-bit arm; 1 to 127 entries), else element by element.
        var asList = profile.Layout.Arch != Arch.Arm32 && elements.Count == e.PhysAddrs.Length && elements.Count <= 127;
        if (!asList)
        {
            Skip(elements.Count == e.PhysAddrs.Length
                ? "a dma_map_sg emitted element by element as dma_map_single (no sg table here: 32-bit arm, or more than 127 entries)"
                : "a dma_map_sg whose elements are not all emitted (--max-mappings): emitted element by element", e.Line);
            foreach (var m in elements)
            {
                var waits = WaitReused(m);
                var prepare = Prepare(m);
                cpu.Add(buf => [.. waits, .. PrepareLines(prepare), .. MapSingle(m, buf, e.Line)]);
            }

            return;
        }

        var list = new SgList { Id = lists.Count, Elements = elements };
        lists.Add(list);
        foreach (var m in elements)
        {
            m.List = list;
        }

        if (!sgByFirstPhys.TryGetValue(e.PhysAddrs[0], out var sgs))
        {
            sgs = [];
            sgByFirstPhys[e.PhysAddrs[0]] = sgs;
        }

        sgs.Add(list);
        var device = DeviceName(e.Device);
        var reused = elements.SelectMany(WaitReused).Distinct().ToList();
        var prepares = elements.SelectMany(Prepare).ToList();
        cpu.Add(buf =>
        {
            var lines = new List<string>(reused);
            lines.AddRange(PrepareLines(prepares));
            foreach (var m in elements.Where(m => dir != DmaDirection.DMA_FROM_DEVICE))
            {
                lines.Add($"write {buf(m)}[0..{m.Size}] = cpu_m{m.Id}_0");
            }

            lines.Add($"sg{list.Id} = sg_alloc_table({elements.Count}, GFP_KERNEL)");
            lines.AddRange(elements.Select((m, i) => $"sg_set_buf(sg{list.Id}, {i}, {buf(m)}, {m.Size})"));
            lines.Add(attrs == "0"
                ? $"n{list.Id} = dma_map_sg({device}, sg{list.Id}, {elements.Count}, {dir})   # line {e.Line}: {e.Name}, {elements.Count} element(s)"
                : $"n{list.Id} = dma_map_sg_attrs({device}, sg{list.Id}, {elements.Count}, {dir}, {attrs})   # line {e.Line}: {e.Name}, {elements.Count} element(s)");
            lines.AddRange(elements.Select((m, i) => $"h{m.Id} = sg_dma_address(sg{list.Id}, {i})"));
            lines.AddRange(elements.Select(m => $"signal go_m{m.Id}_0"));
            return [.. lines];
        });
    }

    private string[] MapSingle(Mapping m, Func<Mapping, string> buf, long line)
    {
        var lines = new List<string>();
        if (m.Dir != DmaDirection.DMA_FROM_DEVICE)
        {
            lines.Add($"write {buf(m)}[0..{m.Size}] = cpu_m{m.Id}_0");
        }

        lines.Add(m.Attrs == "0"
            ? $"h{m.Id} = dma_map_single({deviceNames[m.Device]}, {buf(m)}, {m.Size}, {m.Dir})   # line {line}: {m.Event}"
            : $"h{m.Id} = dma_map_single_attrs({deviceNames[m.Device]}, {buf(m)}, {m.Size}, {m.Dir}, {m.Attrs})   # line {line}: {m.Event}");
        lines.Add($"dma_mapping_error({deviceNames[m.Device]}, h{m.Id})");
        lines.Add($"signal go_m{m.Id}_0");
        return [.. lines];
    }

    /// <summary>Where a physical address lies in the emitted buffers: a buffer's name and the offset in it (set while emitting).</summary>
    private Func<ulong, (string Name, ulong Offset)> locate = _ => throw new InvalidOperationException("not emitting");

    /// <summary>
    /// A DMA_FROM_DEVICE buffer about to be mapped while the device owns another (not TO_DEVICE) in one of its DMA
    /// granules: the driver, which owns it until the map, may write it first (the what-if's pair, "before mapping
    /// it"); its bytes in the shared granules are written. TO_DEVICE and BIDIRECTIONAL buffers are written whole anyway.
    /// </summary>
    private List<(ulong Lo, ulong Hi, int Id)> Prepare(Mapping n)
    {
        var writes = new List<(ulong Lo, ulong Hi, int Id)>();
        if (n.Dir != DmaDirection.DMA_FROM_DEVICE || Granule <= 1)
        {
            return writes;
        }

        var g = Granule;
        var shared = mappings.Where(v => !ReferenceEquals(v, n) && v.Line != n.Line && v.Open && !v.Unmapped && v.Dir != DmaDirection.DMA_TO_DEVICE && ShareGranule(n, v))
            .SelectMany(v => new[] { v.Phys / g, (v.Phys + v.Size - 1) / g }).Distinct().Order();
        foreach (var granule in shared)
        {
            var lo = Math.Max(n.Phys, granule * g);
            var hi = Math.Min(n.Phys + n.Size, (granule + 1) * g);
            if (hi > lo)
            {
                writes.Add((lo, hi, n.Id));
            }
        }

        return writes;
    }

    private IEnumerable<string> PrepareLines(List<(ulong Lo, ulong Hi, int Id)> writes) => writes.Select(w =>
    {
        var (name, offset) = locate(w.Lo);
        return $"write {name}[{offset}..{offset + w.Hi - w.Lo}] = prep_m{w.Id}_{w.Lo:x}   # the driver may write its buffer before mapping it";
    });

    /// <summary>A new mapping of bytes that a buffer given back earlier held: the driver's write of that buffer (its reuse thread) comes first.</summary>
    private List<string> WaitReused(Mapping m) =>
        reuses.Select(r => r.Owner).Distinct().Where(o => o.Phys < m.Phys + m.Size && m.Phys < o.Phys + o.Size).Select(o => $"wait reused_m{o.Id}").ToList();

    private Mapping? Live(string device, ulong dma) =>
        mappings.LastOrDefault(m => !m.Unmapped && m.Device == device && dma >= m.Handle && dma - m.Handle < Math.Max(m.Size, 1));

    private Mapping? Map(TraceEvent e, ulong handle, ulong phys, ulong size, DmaDirection dir, string name, int element)
    {
        MappingsSeen++;
        if (size == 0)
        {
            Skip("an empty mapping (size 0)", e.Line);
            return null;
        }

        if (mappings.Count >= maxMappings)
        {
            FirstLeftOut ??= e.Line;
            return null;
        }

        DeviceName(e.Device);
        var m = new Mapping { Id = mappings.Count, Device = e.Device, Dir = dir, Handle = handle, Phys = phys, Size = size, Line = e.Line, Event = name, Element = element };
        m.Starts.Add(e.Line);
        mappings.Add(m);
        return m;
    }

    private void Sync(TraceEvent e, ulong dma, ulong size, bool forCpu)
    {
        if (Live(e.Device, dma) is not { } m)
        {
            Skip("a sync of a mapping made before the window (or not emitted)", e.Line);
            return;
        }

        if (forCpu)
        {
            if (m.Open)
            {
                End(m, dma, size, unmap: false, e.Line, "0");
            }
            else
            {
                var at = e.Line;
                cpu.Add(_ => [$"dma_sync_single_for_cpu({deviceNames[m.Device]}, {Handle(m, dma)}, {size}, {m.Dir})   # line {at} (the CPU owns the buffer already)"]);
            }

            return;
        }

        if (m.Open)
        {
            // The device owns it already: nothing changes hands, but the call's maintenance is made.
            var at = e.Line;
            cpu.Add(_ => [$"dma_sync_single_for_device({deviceNames[m.Device]}, {Handle(m, dma)}, {size}, {m.Dir})   # line {at} (the device owns the buffer already)"]);
            return;
        }

        var n = m.Intervals;
        m.Starts.Add(e.Line);
        m.Open = true;
        var line = e.Line;
        cpu.Add(buf =>
        {
            var lines = new List<string>();
            if (m.Dir != DmaDirection.DMA_FROM_DEVICE)
            {
                lines.Add($"write {buf(m)}[0..{m.Size}] = cpu_m{m.Id}_{n}");
            }

            lines.Add($"dma_sync_single_for_device({deviceNames[m.Device]}, {Handle(m, dma)}, {size}, {m.Dir})   # line {line}");
            lines.Add($"signal go_m{m.Id}_{n}");
            return [.. lines];
        });
    }

    private static string Handle(Mapping m, ulong dma) => dma == m.Handle ? $"h{m.Id}" : $"h{m.Id} + {dma - m.Handle}";

    /// <summary>Whether two buffers have a DMA granule in common (the what-if's pair).</summary>
    private bool ShareGranule(Mapping a, Mapping b)
    {
        var g = Granule;
        if (g <= 1)
        {
            return false;
        }

        var (a0, a1, b0, b1) = (a.Phys / g, (a.Phys + a.Size - 1) / g, b.Phys / g, (b.Phys + b.Size - 1) / g);
        return a0 == b0 || a0 == b1 || a1 == b0 || a1 == b1;
    }

    private ulong Granule => (ulong)WhatIfReplay.DmaGranule(profile, Hardware.HardwareConfig.Default).Bytes;

    /// <summary>
    /// The buffers in a granule with <paramref name="owner"/> that the device still owns and writes, when the driver gets
    /// <paramref name="owner"/> back: the driver may write it again now (the what-if's pair), which a thread of its own
    /// does, at any time before the other is given back.
    /// </summary>
    private List<string> Reuse(Mapping owner)
    {
        var waits = new List<string>();
        foreach (var victim in mappings.Where(v => !ReferenceEquals(v, owner) && v.Open && !v.Unmapped && v.Dir != DmaDirection.DMA_TO_DEVICE && ShareGranule(owner, v)))
        {
            if (reuses.Any(r => ReferenceEquals(r.Owner, owner)))
            {
                reuses.Add((owner, victim, victim.Intervals - 1));
                continue;
            }

            reuses.Add((owner, victim, victim.Intervals - 1));
            waits.Add($"signal given_back_m{owner.Id}");
        }

        return waits;
    }

    /// <summary>The device gives the mapping back (sync_for_cpu of [dma, dma+size), or the unmap): it has finished its accesses; then the CPU reads what it wrote.</summary>
    private void End(Mapping m, ulong dma, ulong size, bool unmap, long line, string attrs)
    {
        var n = m.Intervals - 1;
        var wasOpen = m.Open;
        m.Open = false;
        m.Unmapped |= unmap;
        var reuse = Reuse(m);
        cpu.Add(buf =>
        {
            var lines = new List<string>();
            lines.AddRange(Before(m, n, wasOpen));
            var device = deviceNames[m.Device];
            lines.Add(unmap
                ? (attrs == "0" ? $"dma_unmap_single({device}, h{m.Id}, {m.Size}, {m.Dir})   # line {line}" : $"dma_unmap_single_attrs({device}, h{m.Id}, {m.Size}, {m.Dir}, {attrs})   # line {line}")
                : $"dma_sync_single_for_cpu({device}, {Handle(m, dma)}, {size}, {m.Dir})   # line {line}");
            if (wasOpen && m.Dir != DmaDirection.DMA_TO_DEVICE)
            {
                var lo = unmap ? 0 : dma - m.Handle;
                var hi = unmap ? m.Size : Math.Min(m.Size, lo + size);
                if (hi > lo)
                {
                    lines.Add($"read {buf(m)}[{lo}..{hi}] -> cpu_sees_m{m.Id}_{n}");
                }
            }

            lines.AddRange(reuse);
            return [.. lines];
        });
    }

    /// <summary>Before the CPU takes interval <paramref name="n"/> of <paramref name="m"/> back: the device's accesses are done, and so is any write of a buffer in its granule that the driver got back earlier.</summary>
    private List<string> Before(Mapping m, int n, bool wasOpen)
    {
        var lines = new List<string>();
        if (wasOpen)
        {
            lines.Add($"wait done_m{m.Id}_{n}");
        }

        lines.AddRange(reuses.Where(r => ReferenceEquals(r.Victim, m) && r.Interval == n).Select(r => $"wait reused_m{r.Owner.Id}").Distinct());
        return lines;
    }

    /// <summary>dma_unmap_sg of a list: every element given back at once.</summary>
    private void EndList(SgList list, long line, string attrs)
    {
        var state = list.Elements.Select(m => (M: m, N: m.Intervals - 1, WasOpen: m.Open)).ToList();
        foreach (var m in list.Elements)
        {
            m.Open = false;
            m.Unmapped = true;
        }

        var reuse = list.Elements.SelectMany(Reuse).ToList();
        cpu.Add(buf =>
        {
            var lines = new List<string>();
            foreach (var (m, n, wasOpen) in state)
            {
                lines.AddRange(Before(m, n, wasOpen));
            }

            var first = list.Elements[0];
            lines.Add(attrs == "0"
                ? $"dma_unmap_sg({deviceNames[first.Device]}, sg{list.Id}, {list.Elements.Count}, {first.Dir})   # line {line}"
                : $"dma_unmap_sg_attrs({deviceNames[first.Device]}, sg{list.Id}, {list.Elements.Count}, {first.Dir}, {attrs})   # line {line}");
            foreach (var (m, n, wasOpen) in state.Where(s => s.WasOpen && s.M.Dir != DmaDirection.DMA_TO_DEVICE))
            {
                lines.Add($"read {buf(m)}[0..{m.Size}] -> cpu_sees_m{m.Id}_{n}");
            }

            lines.Add($"sg_free_table(sg{list.Id})");
            lines.AddRange(reuse);
            return [.. lines];
        });
    }

    /// <summary>
    /// The scenario text. <paramref name="relocate"/>: null keeps the trace's physical addresses; otherwise every buffer
    /// moves by one delta, a multiple of 2 MiB (so offsets inside pages and cache granules stay), that puts the lowest
    /// at or above that address.
    /// </summary>
    public string Emit(string traceFile, ulong? relocate)
    {
        if (!Any)
        {
            throw new InvalidOperationException("nothing is mapped or allocated in the window");
        }

        // Buffers: the mappings' byte ranges, overlapping ones merged (a buffer mapped twice, or a list's elements).
        var ranges = mappings.Select(m => (m.Phys, End: m.Phys + m.Size)).OrderBy(r => r.Phys).ToList();
        var buffers = new List<(ulong Lo, ulong Hi)>();
        foreach (var r in ranges)
        {
            if (buffers.Count > 0 && r.Phys < buffers[^1].Hi)
            {
                buffers[^1] = (buffers[^1].Lo, Math.Max(buffers[^1].Hi, r.End));
            }
            else
            {
                buffers.Add((r.Phys, r.End));
            }
        }

        // The memory beside a FROM_DEVICE or BIDIRECTIONAL buffer in its first and last DMA granule (the what-if's
        // "granule holding memory outside it"): other kernel code's bytes, which a thread of their own may write at any
        // time. Not traced, so placed here as buffers of their own.
        var granule = Granule;
        var neighbours = new List<(ulong Lo, ulong Hi)>();
        var neighbourNames = new List<string>();
        if (granule > 1)
        {
            foreach (var m in mappings.Where(m => m.Dir != DmaDirection.DMA_TO_DEVICE))
            {
                var lo = m.Phys & ~(granule - 1);
                var hi = (m.Phys + m.Size + granule - 1) & ~(granule - 1);
                foreach (var (a, b, before) in new[] { (lo, m.Phys, true), (m.Phys + m.Size, hi, false) })
                {
                    var part = 0;
                    // The part of [a, b) that no buffer and no earlier neighbour holds.
                    var start = a;
                    while (start < b)
                    {
                        var inside = buffers.Concat(neighbours).FirstOrDefault(r => start >= r.Lo && start < r.Hi);
                        if (inside != default)
                        {
                            start = inside.Hi;
                            continue;
                        }

                        var end = Math.Min(b, buffers.Concat(neighbours).Where(r => r.Lo > start).Select(r => r.Lo).DefaultIfEmpty(b).Min());
                        neighbours.Add((start, end));
                        var name = MemoryBesideName(m.Line, m.Element, before);
                        neighbourNames.Add(part++ == 0 ? name : name.Replace("_keeps_its_data", $"_{part}_keeps_its_data", StringComparison.Ordinal));
                        start = end;
                    }
                }
            }
        }

        const ulong block = 2UL << 20;
        var delta = relocate is { } target && buffers.Count > 0 ? ((target + block - 1) & ~(block - 1)) - (buffers[0].Lo & ~(block - 1)) : 0;
        string BufferOf(Mapping m)
        {
            var i = buffers.FindIndex(b => m.Phys >= b.Lo && m.Phys < b.Hi);
            return m.Phys == buffers[i].Lo ? $"b{i}" : $"b{i} + {m.Phys - buffers[i].Lo}";
        }

        locate = pa =>
        {
            var i = buffers.FindIndex(b => pa >= b.Lo && pa < b.Hi);
            return ($"b{i}", pa - buffers[i].Lo);
        };
        var s = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        s.AppendLine(inv, $"# Emitted by 'dmacheck trace {Path.GetFileName(traceFile)} --profile {profile.Name} --emit-scenario{(from is null ? string.Empty : $" --from {from.Value.ToString(inv)}")}{(to is null ? string.Empty : $" --to {to.Value.ToString(inv)}")}'");
        s.AppendLine(inv, $"# from trace lines {firstLine}..{lastLine}: {mappings.Count} streaming mapping(s) ({lists.Count} sg list(s)), {coherent.Count} coherent buffer(s), {resources.Count} resource mapping(s).");
        s.AppendLine("# Each mapping's device may read (TO_DEVICE) or write (FROM_DEVICE) it at any time while it owns it; the checks say");
        s.AppendLine("# that each side sees the other's data; an expectation is named by the trace line that gave the buffer to the device");
        s.AppendLine("# (its map or sync_for_device, and _eN for sg element N). sg syncs are made per element as single syncs (what");
        s.AppendLine("# dma_direct_sync_sg_* does per element). Coherent buffers are placed by the model's allocator (dma_alloc traces no");
        s.AppendLine("# physical address). When the driver gets a buffer back while the device still owns another in one of its DMA");
        s.AppendLine("# granules, a thread driver_reuses_mN writes it again before the other comes back (the what-if's pair).");
        s.AppendLine("# Every device is taken as non-coherent where the profile's architecture has non-coherent DMA,");
        s.AppendLine("# with a 64-bit DMA mask (no bounce for reach), as the what-if replay does. The memory beside a buffer that is not");
        s.AppendLine("# TO_DEVICE in its first and last DMA granule is placed as buffers n*, which another thread writes at any time.");
        s.AppendLine(delta == 0
            ? "# Buffers are placed at the trace's physical addresses."
            : string.Create(inv, $"# Buffers are moved by 0x{delta:x} (a multiple of 2 MiB, so offsets in pages and cache lines stay): the trace's addresses are not free RAM of layout {profile.Layout.Name}."));
        foreach (var what in NotEmitted)
        {
            s.AppendLine(inv, $"# not emitted: {what}");
        }

        s.AppendLine(inv, $"scenario \"{Path.GetFileName(traceFile)}, lines {firstLine}..{lastLine}\"");
        s.AppendLine(inv, $"profile {profile.Name}");
        if (granule > (ulong)Hardware.HardwareConfig.Default.LineSize && granule is 32 or 64 or 128)
        {
            // The what-if's board: cache lines as large as the granule the kernel aligns DMA buffers to.
            s.AppendLine(inv, $"set cache.line = {granule}   # as large as dma_get_cache_alignment(), as the what-if replay takes them");
        }

        s.AppendLine();
        var coherentDma = profile.Layout.Arch == Arch.X86_64;
        foreach (var (trace, name) in deviceNames)
        {
            s.AppendLine(inv, $"device {name} {{ coherent = {(coherentDma ? "true" : "false")}, dma_mask = 64 }}   # {trace}");
        }

        for (var i = 0; i < buffers.Count; i++)
        {
            s.AppendLine(inv, $"buffer b{i} {{ phys = 0x{buffers[i].Lo + delta:x}, size = {buffers[i].Hi - buffers[i].Lo} }}   # trace PA 0x{buffers[i].Lo:x}");
        }

        for (var i = 0; i < neighbours.Count; i++)
        {
            s.AppendLine(inv, $"buffer n{i} {{ phys = 0x{neighbours[i].Lo + delta:x}, size = {neighbours[i].Hi - neighbours[i].Lo} }}   # beside a buffer in its {granule}-byte DMA granule");
        }

        s.AppendLine();
        s.AppendLine("cpu driver {");
        foreach (var step in cpu)
        {
            foreach (var line in step(BufferOf))
            {
                s.AppendLine(inv, $"  {line}");
            }
        }

        s.AppendLine("}");
        var expects = new List<string>();
        if (neighbours.Count > 0)
        {
            s.AppendLine();
            s.AppendLine("cpu others {   # other kernel code using the memory beside the buffers, at any time");
            for (var i = 0; i < neighbours.Count; i++)
            {
                s.AppendLine(inv, $"  write n{i}[0..{neighbours[i].Hi - neighbours[i].Lo}] = other_n{i}");
                s.AppendLine(inv, $"  read n{i}[0..{neighbours[i].Hi - neighbours[i].Lo}] -> others_see_n{i}");
                expects.Add($"expect {neighbourNames[i]}: others_see_n{i} == other_n{i}");
            }

            s.AppendLine("}");
        }

        foreach (var owner in reuses.Select(r => r.Owner).Distinct())
        {
            // The owner's bytes in the granules it shares with the buffers the device still owns.
            var shared = reuses.Where(r => ReferenceEquals(r.Owner, owner)).SelectMany(r => new[] { r.Victim.Phys / granule, (r.Victim.Phys + r.Victim.Size - 1) / granule }).ToHashSet();
            s.AppendLine();
            s.AppendLine(inv, $"cpu driver_reuses_m{owner.Id} {{   # the driver has the buffer of line {owner.Line} back and may write it while the device owns {string.Join(", ", reuses.Where(r => ReferenceEquals(r.Owner, owner)).Select(r => $"line {r.Victim.Line}'s").Distinct())}");
            s.AppendLine(inv, $"  wait given_back_m{owner.Id}");
            foreach (var g in shared.Order())
            {
                var lo = Math.Max(owner.Phys, g * granule);
                var hi = Math.Min(owner.Phys + owner.Size, (g + 1) * granule);
                if (hi > lo)
                {
                    var i = buffers.FindIndex(b => lo >= b.Lo && lo < b.Hi);
                    s.AppendLine(inv, $"  write b{i}[{lo - buffers[i].Lo}..{hi - buffers[i].Lo}] = reuse_m{owner.Id}_{g * granule:x}");
                }
            }

            s.AppendLine(inv, $"  signal reused_m{owner.Id}");
            s.AppendLine("}");
        }

        foreach (var m in mappings)
        {
            s.AppendLine();
            s.AppendLine(inv, $"dma m{m.Id} by {deviceNames[m.Device]} {{   # line {m.Line}: {m.Event}, {m.Dir}, {m.Size} bytes at PA 0x{m.Phys:x}");
            for (var n = 0; n < m.Intervals; n++)
            {
                s.AppendLine(inv, $"  wait go_m{m.Id}_{n}");
                if (m.Dir != DmaDirection.DMA_FROM_DEVICE)
                {
                    s.AppendLine(inv, $"  read dma(h{m.Id})[0..{m.Size}] -> dev_sees_m{m.Id}_{n}");
                    expects.Add($"expect {DeviceReadsCpuDataName(m.Starts[n], m.Element)}: dev_sees_m{m.Id}_{n} == cpu_m{m.Id}_{n}");
                }

                if (m.Dir != DmaDirection.DMA_TO_DEVICE)
                {
                    s.AppendLine(inv, $"  write dma(h{m.Id})[0..{m.Size}] = dev_m{m.Id}_{n}");
                }

                s.AppendLine(inv, $"  signal done_m{m.Id}_{n}");
            }

            s.AppendLine("}");
        }

        // The CPU's reads of what the device wrote: one per interval the CPU got back in the window.
        var text = s.ToString();
        foreach (var m in mappings.Where(m => m.Dir != DmaDirection.DMA_TO_DEVICE))
        {
            for (var n = 0; n < m.Intervals; n++)
            {
                if (text.Contains($"-> cpu_sees_m{m.Id}_{n}\n", StringComparison.Ordinal))
                {
                    expects.Add($"expect {CpuReadsDeviceDataName(m.Starts[n], m.Element)}: cpu_sees_m{m.Id}_{n} == dev_m{m.Id}_{n}");
                }
            }
        }

        return text + Environment.NewLine + string.Join(Environment.NewLine, expects) + Environment.NewLine;
    }
}
