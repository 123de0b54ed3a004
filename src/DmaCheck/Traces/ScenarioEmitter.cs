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
/// Not emitted, and said so in the file's header: coherent buffers (dma_alloc: the model allocates its own; their
/// physical address is not traced), dma_map_resource, mappings made before the window (their start is unknown), and sg
/// lists as lists: each element is mapped, synced and unmapped as a dma_map_single of its bytes, which is what
/// dma_direct_map_sg does per element (its sg table's own memory is left out).
/// </remarks>
public sealed class ScenarioEmitter(KernelProfile profile, double? from, double? to, IReadOnlyCollection<string> deviceFilter)
{
    /// <summary>The most mappings one emitted scenario holds: each is an agent, and the search grows with them.</summary>
    public const int MaxMappings = 8;

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

        /// <summary>The intervals the device owns the mapping: the CPU statement index that starts each, and whether one is open.</summary>
        public int Intervals;
        public bool Open = true;
        public bool Unmapped;
    }

    private readonly List<Mapping> mappings = [];

    /// <summary>How many mappings are emitted.</summary>
    public int Mappings => mappings.Count;
    private readonly List<Func<Func<Mapping, string>, string[]>> cpu = [];
    private readonly Dictionary<ulong, List<Mapping>> sgByFirstPhys = [];
    private readonly Dictionary<string, string> deviceNames = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, int> skipped = new(StringComparer.Ordinal);
    private long firstLine;
    private long lastLine;

    /// <summary>How many streaming mappings (sg elements one by one) the window made; past <see cref="MaxMappings"/> they are not emitted.</summary>
    public int MappingsSeen { get; private set; }

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
            case TraceEventKind.Map when e.Phys is { } phys && e.Direction is { } dir && dir != DmaDirection.DMA_NONE:
                Map(e, e.DmaAddr, phys, e.Size, dir, e.Name);
                break;
            case TraceEventKind.MapSg when e.Direction is { } dir && dir != DmaDirection.DMA_NONE:
                var elements = new List<Mapping>();
                for (var i = 0; i < Math.Min(e.DmaAddrs.Length, Math.Min(e.Sizes.Length, e.PhysAddrs.Length)); i++)
                {
                    if (Map(e, e.DmaAddrs[i], e.PhysAddrs[i], e.Sizes[i], dir, $"{e.Name} element {i}") is { } m)
                    {
                        elements.Add(m);
                    }
                }

                if (e.PhysAddrs.Length > 0)
                {
                    sgByFirstPhys[e.PhysAddrs[0]] = elements;
                }

                break;
            case TraceEventKind.Unmap:
                if (Live(e.Device, e.DmaAddr) is { } u)
                {
                    End(u, u.Handle, u.Size, unmap: true);
                }
                else
                {
                    Skip("an unmap of a mapping made before the window (or past the first " + MaxMappings + ")");
                }

                break;
            case TraceEventKind.UnmapSg:
                if (e.PhysAddrs.Length > 0 && sgByFirstPhys.Remove(e.PhysAddrs[0], out var list))
                {
                    foreach (var m in list.Where(m => !m.Unmapped))
                    {
                        End(m, m.Handle, m.Size, unmap: true);
                    }
                }
                else
                {
                    Skip("a dma_unmap_sg of a list mapped before the window");
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
            case TraceEventKind.Alloc or TraceEventKind.Free or TraceEventKind.AllocPages or TraceEventKind.FreePages or TraceEventKind.AllocSgt or TraceEventKind.FreeSgt:
                Skip("coherent or page allocations (dma_alloc*, dma_free*): the model allocates its own, and their physical addresses are not traced");
                break;
            case TraceEventKind.SwiotlbBounced:
                break;
            default:
                Skip($"{e.Name} events");
                break;
        }
    }

    private void Skip(string what) => skipped[what] = skipped.GetValueOrDefault(what) + 1;

    private Mapping? Live(string device, ulong dma) =>
        mappings.LastOrDefault(m => !m.Unmapped && m.Device == device && dma >= m.Handle && dma - m.Handle < Math.Max(m.Size, 1));

    private Mapping? Map(TraceEvent e, ulong handle, ulong phys, ulong size, DmaDirection dir, string name)
    {
        MappingsSeen++;
        if (mappings.Count >= MaxMappings || size == 0)
        {
            return null;
        }

        if (!deviceNames.ContainsKey(e.Device))
        {
            deviceNames[e.Device] = $"dev{deviceNames.Count}";
        }

        var m = new Mapping { Id = mappings.Count, Device = e.Device, Dir = dir, Handle = handle, Phys = phys, Size = size, Line = e.Line, Event = name, Intervals = 1 };
        mappings.Add(m);
        cpu.Add(buf =>
        {
            var lines = new List<string>();
            if (dir != DmaDirection.DMA_FROM_DEVICE)
            {
                lines.Add($"write {buf(m)}[0..{size}] = cpu_m{m.Id}_0");
            }

            lines.Add($"h{m.Id} = dma_map_single({deviceNames[m.Device]}, {buf(m)}, {size}, {dir})   # line {e.Line}: {name}");
            lines.Add($"dma_mapping_error({deviceNames[m.Device]}, h{m.Id})");
            lines.Add($"signal go_m{m.Id}_0");
            return [.. lines];
        });
        return m;
    }

    private void Sync(TraceEvent e, ulong dma, ulong size, bool forCpu)
    {
        if (Live(e.Device, dma) is not { } m)
        {
            Skip("a sync of a mapping made before the window (or past the first " + MaxMappings + ")");
            return;
        }

        if (forCpu)
        {
            if (m.Open)
            {
                End(m, dma, size, unmap: false);
            }

            return;
        }

        if (m.Open)
        {
            return; // the device owns it already: nothing changes hands
        }

        var n = m.Intervals++;
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

    /// <summary>The device gives the mapping back (sync_for_cpu of [dma, dma+size), or the unmap): it has finished its accesses; then the CPU reads what it wrote.</summary>
    private void End(Mapping m, ulong dma, ulong size, bool unmap)
    {
        var n = m.Intervals - 1;
        var wasOpen = m.Open;
        m.Open = false;
        m.Unmapped |= unmap;
        cpu.Add(buf =>
        {
            var lines = new List<string>();
            if (wasOpen)
            {
                lines.Add($"wait done_m{m.Id}_{n}");
            }

            var device = deviceNames[m.Device];
            lines.Add(unmap
                ? $"dma_unmap_single({device}, h{m.Id}, {m.Size}, {m.Dir})"
                : $"dma_sync_single_for_cpu({device}, {Handle(m, dma)}, {size}, {m.Dir})");
            if (wasOpen && m.Dir != DmaDirection.DMA_TO_DEVICE)
            {
                var lo = unmap ? 0 : dma - m.Handle;
                var hi = unmap ? m.Size : Math.Min(m.Size, lo + size);
                if (hi > lo)
                {
                    lines.Add($"read {buf(m)}[{lo}..{hi}] -> cpu_sees_m{m.Id}_{n}");
                }
            }

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
        if (mappings.Count == 0)
        {
            throw new InvalidOperationException("no streaming mapping is made in the window");
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
        var granule = (ulong)WhatIfReplay.DmaGranule(profile, Hardware.HardwareConfig.Default).Bytes;
        var neighbours = new List<(ulong Lo, ulong Hi)>();
        if (granule > 1)
        {
            foreach (var m in mappings.Where(m => m.Dir != DmaDirection.DMA_TO_DEVICE))
            {
                var lo = m.Phys & ~(granule - 1);
                var hi = (m.Phys + m.Size + granule - 1) & ~(granule - 1);
                foreach (var (a, b) in new[] { (lo, m.Phys), (m.Phys + m.Size, hi) })
                {
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
                        start = end;
                    }
                }
            }
        }

        const ulong block = 2UL << 20;
        var delta = relocate is { } target ? ((target + block - 1) & ~(block - 1)) - (buffers[0].Lo & ~(block - 1)) : 0;
        string BufferOf(Mapping m)
        {
            var i = buffers.FindIndex(b => m.Phys >= b.Lo && m.Phys < b.Hi);
            return m.Phys == buffers[i].Lo ? $"b{i}" : $"b{i} + {m.Phys - buffers[i].Lo}";
        }

        var s = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        s.AppendLine(inv, $"# Emitted by 'dmacheck trace {Path.GetFileName(traceFile)} --profile {profile.Name} --emit-scenario{(from is null ? string.Empty : $" --from {from.Value.ToString(inv)}")}{(to is null ? string.Empty : $" --to {to.Value.ToString(inv)}")}'");
        s.AppendLine(inv, $"# from trace lines {firstLine}..{lastLine}: {mappings.Count} streaming mapping(s){(MappingsSeen > mappings.Count ? $" (the first {mappings.Count} of {MappingsSeen} in the window: narrow it with --from/--to)" : string.Empty)}.");
        s.AppendLine("# Each mapping's device may read (TO_DEVICE) or write (FROM_DEVICE) it at any time while it owns it; the checks say");
        s.AppendLine("# that each side sees the other's data. sg elements are mapped one by one as dma_map_single (what dma_direct_map_sg");
        s.AppendLine("# does per element); every device is taken as non-coherent where the profile's architecture has non-coherent DMA,");
        s.AppendLine("# with a 64-bit DMA mask (no bounce for reach), as the what-if replay does. The memory beside a buffer that is not");
        s.AppendLine("# TO_DEVICE in its first and last DMA granule is placed as buffers n*, which another thread writes at any time.");
        s.AppendLine(delta == 0
            ? "# Buffers are placed at the trace's physical addresses."
            : string.Create(inv, $"# Buffers are moved by 0x{delta:x} (a multiple of 2 MiB, so offsets in pages and cache lines stay): the trace's addresses are not free RAM of layout {profile.Layout.Name}."));
        foreach (var (what, count) in skipped)
        {
            s.AppendLine(inv, $"# not emitted: {count} x {what}");
        }

        s.AppendLine(inv, $"scenario \"{Path.GetFileName(traceFile)}, lines {firstLine}..{lastLine}\"");
        s.AppendLine(inv, $"profile {profile.Name}");
        if (granule > (ulong)Hardware.HardwareConfig.Default.LineSize && granule is 32 or 64 or 128)
        {
            // The what-if's board: cache lines as large as the granule the kernel aligns DMA buffers to.
            s.AppendLine(inv, $"set cache.line = {granule}   # as large as dma_get_cache_alignment(), as the what-if replay takes them");
        }

        s.AppendLine();
        var coherent = profile.Layout.Arch == Arch.X86_64;
        foreach (var (trace, name) in deviceNames)
        {
            s.AppendLine(inv, $"device {name} {{ coherent = {(coherent ? "true" : "false")}, dma_mask = 64 }}   # {trace}");
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
                expects.Add($"expect neighbour_keeps_its_data_n{i}: others_see_n{i} == other_n{i}");
            }

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
                    expects.Add($"expect device_reads_cpu_data_m{m.Id}_{n}: dev_sees_m{m.Id}_{n} == cpu_m{m.Id}_{n}");
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
                    expects.Add($"expect cpu_reads_device_data_m{m.Id}_{n}: cpu_sees_m{m.Id}_{n} == dev_m{m.Id}_{n}");
                }
            }
        }

        return text + Environment.NewLine + string.Join(Environment.NewLine, expects) + Environment.NewLine;
    }
}
