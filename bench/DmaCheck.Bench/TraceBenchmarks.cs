using System.Globalization;
using BenchmarkDotNet.Attributes;
using DmaCheck.Traces;

namespace DmaCheck.Bench;

/// <summary>
/// Issue 18, item 6: a million-event dma:* trace, read and checked by <c>dmacheck trace</c>'s library path
/// (<see cref="TraceCheck.Run"/>) from a file on disk, streamed. The trace is generated in the setup, in the layout and
/// proportions of the recorded NVMe traces: dma_map_page/dma_unmap_page pairs, dma_map_sg/dma_unmap_sg lists of four,
/// syncs, coherent allocs and frees, and one swiotlb_bounced in ten maps, with up to 32 mappings live at once.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class TraceBenchmarks
{
    private string path = string.Empty;

    [Params(1_000_000)]
    public int Events { get; set; } = 1_000_000;

    [GlobalSetup]
    public void Setup()
    {
        path = Path.Combine(Path.GetTempPath(), $"dmacheck-bench-{Events}.trace");
        using var w = new StreamWriter(path);
        Write(w, Events);
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(path);

    [Benchmark]
    public int ParseAndCheck()
    {
        using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var result = TraceCheck.Run(input, path, new TraceOptions([]));
        if (result.Stats.Events != Events || result.Findings.Count != 0)
        {
            throw new InvalidOperationException($"{result.Stats.Events} events, {result.Findings.Count} findings");
        }

        return result.PeakLiveEntries;
    }

    /// <summary>The same, with the what-if replay on linux-6.4-arm64 (dmacheck trace --profile): every map is replayed, none is unsafe (page-sized buffers).</summary>
    [Benchmark]
    public long ParseCheckAndReplay()
    {
        using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var result = TraceCheck.Run(input, path, new TraceOptions([], Profile: DmaCheck.Dma.Profiles.Linux64Arm64));
        if (result.Stats.Events != Events || result.Findings.Count != 0 || result.WhatIf is not { Maps: > 0 } whatIf)
        {
            throw new InvalidOperationException($"{result.Stats.Events} events, {result.Findings.Count} findings, {result.WhatIf?.Maps} maps replayed");
        }

        return whatIf.Maps;
    }

    /// <summary>Writes exactly <paramref name="events"/> events of a correct driver.</summary>
    public static void Write(TextWriter w, int events)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine("# tracer: nop");
        w.WriteLine("#");
        w.WriteLine(string.Create(inv, $"# entries-in-buffer/entries-written: {events}/{events}   #P:2"));
        w.WriteLine("#");
        var n = 0;
        var t = 1.0;
        var live = new Queue<(ulong Dma, ulong Size, string Dir, bool Sg)>();
        var slot = 0UL;
        string Prefix()
        {
            t += 0.000001;
            return string.Create(inv, $"              dd-141     [000] .....   {t,10:0.000000}: ");
        }

        while (n < events)
        {
            var left = events - n;
            if (live.Count >= 32 || (left <= live.Count * 2 && live.Count > 0))
            {
                var (dma, size, dir, sg) = live.Dequeue();
                if (sg)
                {
                    w.WriteLine(string.Create(inv, $"{Prefix()}dma_unmap_sg: 0000:00:04.0 dir={dir} phys_addrs={{0x{dma:x},0x{dma + 0x1000:x},0x{dma + 0x2000:x},0x{dma + 0x3000:x}}} attrs="));
                }
                else
                {
                    w.WriteLine(string.Create(inv, $"{Prefix()}dma_unmap_page: 0000:00:04.0 dir={dir} dma_addr={dma:x} size={size} attrs="));
                }

                n++;
                continue;
            }

            var pa = 0x10000000UL + (slot++ % 4096) * 0x10000;
            var pick = n % 10;
            if (pick == 0 && left >= 2)
            {
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_alloc: 0000:00:04.0 dir=BIDIRECTIONAL dma_addr={pa + 0x8000:x} size=4096 virt_addr=00000000f7522574 flags=GFP_KERNEL attrs="));
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_free: 0000:00:04.0 dir=BIDIRECTIONAL dma_addr={pa + 0x8000:x} size=4096 virt_addr=00000000f7522574 attrs="));
                n += 2;
            }
            else if (pick == 1 && left >= 4)
            {
                var bounce = 0x7000000UL + (slot % 64) * 0x1000;
                w.WriteLine(string.Create(inv, $"{Prefix()}swiotlb_bounced: dev_name: 0000:00:04.0 dma_mask=ffffffff dev_addr={pa:x} size=4096 NORMAL"));
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_map_page: 0000:00:04.0 dir=TO_DEVICE dma_addr={bounce:x} size=4096 phys_addr={pa:x} attrs="));
                live.Enqueue((bounce, 4096, "TO_DEVICE", false));
                n += 2;
            }
            else if (pick == 3 && left >= 4)
            {
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_map_sg: 0000:00:04.0 dir=FROM_DEVICE nents=4/4 ents=4/4 dma_addrs={{0x{pa:x},0x{pa + 0x1000:x},0x{pa + 0x2000:x},0x{pa + 0x3000:x}}} sizes={{0x1000,0x1000,0x1000,0x1000}} phys_addrs={{0x{pa:x},0x{pa + 0x1000:x},0x{pa + 0x2000:x},0x{pa + 0x3000:x}}} attrs=NO_WARN"));
                live.Enqueue((pa, 0x4000, "FROM_DEVICE", true));
                n++;
            }
            else if (left >= 4)
            {
                var dir = pick % 2 == 0 ? "TO_DEVICE" : "FROM_DEVICE";
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_map_page: 0000:00:04.0 dir={dir} dma_addr={pa:x} size=4096 phys_addr={pa:x} attrs="));
                n++;
                if (pick == 5)
                {
                    w.WriteLine(string.Create(inv, $"{Prefix()}dma_sync_single_for_cpu: 0000:00:04.0 dir={dir} dma_addr={pa + 0x100:x} size=512"));
                    n++;
                }

                live.Enqueue((pa, 4096, dir, false));
            }
            else
            {
                w.WriteLine(string.Create(inv, $"{Prefix()}dma_alloc: 0000:00:04.0 dir=BIDIRECTIONAL dma_addr={pa + 0x8000:x} size=4096 virt_addr=00000000f7522574 flags=GFP_KERNEL attrs="));
                n++;
            }
        }
    }
}
