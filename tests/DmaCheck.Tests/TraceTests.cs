using System.Text;
using System.Text.Json;
using DmaCheck.Cli;
using DmaCheck.Debug;
using DmaCheck.Traces;

namespace DmaCheck.Tests;

/// <summary>
/// dmacheck trace (issue 18): the reader on every committed trace (real ones recorded by tools/record-trace, and ones
/// written from the format strings of v6.12.0, v6.13 and v6.19), faults seeded into copies of real traces, and bad input.
/// </summary>
public class TraceTests
{
    private static string Fixtures => Path.Combine(TestPaths.Root, "tests", "fixtures", "traces");

    private static string Real(string workload) => Path.Combine(Fixtures, workload.StartsWith("arm64-", StringComparison.Ordinal)
        ? $"arm64-6.12.118-{workload["arm64-".Length..]}.trace"
        : $"x86_64-6.12.118-{workload}.trace");

    private static TraceResult Check(string text, string file = "t.trace", TraceOptions? options = null) =>
        TraceCheck.Run(new MemoryStream(Encoding.UTF8.GetBytes(text)), file, options ?? new TraceOptions([]));

    private static TraceResult CheckFile(string path) => Check(File.ReadAllText(path), path);

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public static TheoryData<string> RealWorkloads => ["nvme", "nvme-swiotlb", "nvme-iommu", "virtio-blk-iommu", "arm64-virtio-blk", "arm64-virtio-blk-noncoherent"];

    [Theory]
    [MemberData(nameof(RealWorkloads))]
    public void RealTracesOfCorrectDriversHaveNoFindings(string workload)
    {
        var r = CheckFile(Real(workload));
        Assert.Empty(r.Findings);
        Assert.True(r.Stats.Events > 50, $"{r.Stats.Events} events");
        Assert.Empty(r.Stats.OtherEvents);
        var device = Assert.Single(r.Devices);
        Assert.Equal(0, device.LiveMappings);
        Assert.True(device.Maps > 0 && device.Maps == device.Unmaps);
        Assert.Contains(r.Notes, n => n.Quirk == "hashed-virt-addr");
        Assert.Contains("dma_map_page", string.Join(" ", r.Format.Features));
        Assert.True(r.Format.AllocDir);
        Assert.True(File.Exists(Real(workload) + ".meta"), "each recorded trace has its sidecar");
        Assert.Contains("kernel package: linux-image-6.12.118", File.ReadAllText(Real(workload) + ".meta"));
    }

    [Fact]
    public void TheSwiotlbAndIommuTracesShowWhatMakesThemDifferent()
    {
        var plain = Assert.Single(CheckFile(Real("nvme")).Devices);
        Assert.Equal(0, plain.Bounced);
        Assert.Equal(0, plain.Translated);
        var swiotlb = CheckFile(Real("nvme-swiotlb"));
        Assert.True(swiotlb.Format.Swiotlb);
        Assert.True(Assert.Single(swiotlb.Devices).Bounced > 40);
        Assert.True(Assert.Single(CheckFile(Real("nvme-iommu")).Devices).Translated > 40);
        Assert.True(CheckFile(Real("nvme")).Format.SgCounts, "6.12.118 prints dma_map_sg's nents=/ents=");
    }

    [Fact]
    public void SyntheticV6120Trace()
    {
        var r = CheckFile(Path.Combine(Fixtures, "synthetic", "v6.12.0-trace.trace"));
        Assert.Empty(r.Findings);
        Assert.Equal("v6.12", r.Format.Kernel);
        Assert.False(r.Format.AllocDir);
        Assert.False(r.Format.SgCounts);
        Assert.Contains(r.Notes, n => n.Quirk == "alloc-pages-as-map-page");
        Assert.Equal(3, Assert.Single(r.Devices).Syncs);
    }

    [Fact]
    public void SyntheticV613TraceCmdReport()
    {
        var r = CheckFile(Path.Combine(Fixtures, "synthetic", "v6.13-trace-cmd-report.trace"));
        Assert.Empty(r.Findings);
        Assert.True(r.Format.V613Events);
        Assert.StartsWith("v6.13..v6.17", r.Format.Kernel, StringComparison.Ordinal);
        Assert.Contains(r.Notes, n => n.Quirk == "alloc-dir");
        Assert.Contains(r.Notes, n => n.Quirk == "map-sg-err-phys");
        Assert.Contains(r.Notes, n => n.Quirk == "unmap-sg-phys");
    }

    [Fact]
    public void SyntheticV619TracePipe()
    {
        var r = CheckFile(Path.Combine(Fixtures, "synthetic", "v6.19-trace-pipe.trace"));
        Assert.Empty(r.Findings);
        Assert.StartsWith("v6.19 or later", r.Format.Kernel, StringComparison.Ordinal);
        Assert.Equal(1, r.Stats.OtherEvents["irq_handler_entry"]);
    }

    /// <summary>The lines of a real trace, and the index of the first line holding <paramref name="what"/>.</summary>
    private static (List<string> Lines, int Index) Copy(string workload, string what, int skip = 0)
    {
        var lines = File.ReadAllLines(Real(workload)).ToList();
        var index = lines.Select((l, i) => (l, i)).Where(p => p.l.Contains(what, StringComparison.Ordinal)).Skip(skip).First().i;
        return (lines, index);
    }

    private static TraceResult CheckLines(List<string> lines) => Check(string.Join("\n", lines) + "\n");

    [Fact]
    public void SeededDroppedUnmapIsALeakAtItsMap()
    {
        var (lines, unmap) = Copy("virtio-blk-iommu", "dma_unmap_page:", skip: 10);
        var handle = lines[unmap].Split("dma_addr=")[1].Split(' ')[0];
        var map = lines.FindLastIndex(unmap, l => l.Contains("dma_map_page:", StringComparison.Ordinal) && l.Contains($"dma_addr={handle} ", StringComparison.Ordinal));
        lines.RemoveAt(unmap);
        var r = CheckLines(lines);
        var leak = Assert.Single(r.Findings, f => f.Kind == DmaDebug.Leak);
        Assert.Equal(map + 1, leak.Line);
        Assert.Contains("[count=1]", leak.Message, StringComparison.Ordinal);
        Assert.Contains("pending DMA allocations", leak.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SeededChangedSizeIsFoundAtTheUnmap()
    {
        var (lines, unmap) = Copy("nvme", "dma_unmap_page:", skip: 3);
        var size = lines[unmap].Split("size=")[1].Split(' ')[0];
        lines[unmap] = lines[unmap].Replace($"size={size}", "size=1234", StringComparison.Ordinal);
        var f = Assert.Single(CheckLines(lines).Findings);
        Assert.Equal(DmaDebug.FreeSize, f.Kind);
        Assert.Equal("E3", f.Class);
        Assert.Equal(unmap + 1, f.Line);
        Assert.Contains($"[map size={size} bytes] [unmap size=1234 bytes]", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SeededSyncAfterUnmapIsFoundAtTheSync()
    {
        var (lines, unmap) = Copy("nvme-swiotlb", "dma_unmap_page:", skip: 5);
        var handle = lines[unmap].Split("dma_addr=")[1].Split(' ')[0];
        var prefix = lines[unmap][..lines[unmap].IndexOf("dma_unmap_page:", StringComparison.Ordinal)];
        lines.Insert(unmap + 1, $"{prefix}dma_sync_single_for_cpu: 0000:00:04.0 dir=FROM_DEVICE dma_addr={handle} size=64");
        var f = Assert.Single(CheckLines(lines).Findings);
        Assert.Equal(DmaDebug.SyncNotAllocated, f.Kind);
        Assert.Equal(unmap + 2, f.Line);
        Assert.Contains($"was unmapped at line {unmap + 1}", f.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void SeededDuplicatedUnmapIsFoundAtTheSecond()
    {
        var (lines, unmap) = Copy("nvme-iommu", "dma_unmap_page:", skip: 7);
        lines.Insert(unmap + 1, lines[unmap]);
        var f = Assert.Single(CheckLines(lines).Findings);
        Assert.Equal(DmaDebug.FreeNotAllocated, f.Kind);
        Assert.Equal(unmap + 2, f.Line);
        Assert.Contains("tries to free DMA memory it has not allocated", f.Message, StringComparison.Ordinal);
        Assert.Contains("double unmap", f.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void SeededDirectionChangesAreFound()
    {
        var (lines, unmap) = Copy("nvme", "dma_unmap_page: 0000:00:04.0 dir=FROM_DEVICE");
        lines[unmap] = lines[unmap].Replace("dir=FROM_DEVICE", "dir=TO_DEVICE", StringComparison.Ordinal);
        var f = Assert.Single(CheckLines(lines).Findings);
        Assert.Equal(DmaDebug.FreeDirection, f.Kind);
        Assert.Contains("[mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]", f.Message, StringComparison.Ordinal);

        var sync = """
              a-1 [000] ..... 1.0: dma_map_page: d dir=TO_DEVICE dma_addr=1000 size=4096 phys_addr=1000 attrs=
              a-1 [000] ..... 1.1: dma_sync_single_for_cpu: d dir=FROM_DEVICE dma_addr=1800 size=64
              a-1 [000] ..... 1.2: dma_sync_single_for_device: d dir=TO_DEVICE dma_addr=1f00 size=512
              a-1 [000] ..... 1.3: dma_unmap_page: d dir=TO_DEVICE dma_addr=1000 size=4096 attrs=
            """;
        var kinds = Check(sync).Findings.Select(x => (x.Kind, x.Line)).ToList();
        Assert.Equal([(DmaDebug.SyncDirection, 2L), (DmaDebug.SyncReadOnlyForCpu, 2L), (DmaDebug.SyncOutside, 3L)], kinds);
    }

    [Fact]
    public void OverlappingFromDeviceMappingsAreTheKernelsCachelineCheck()
    {
        var text = """
              a-1 [000] ..... 1.0: dma_map_page: d dir=FROM_DEVICE dma_addr=1000 size=32 phys_addr=1000 attrs=
              a-1 [000] ..... 1.1: dma_map_page: d dir=FROM_DEVICE dma_addr=1020 size=32 phys_addr=1020 attrs=
              a-1 [000] ..... 1.2: dma_map_page: e dir=TO_DEVICE dma_addr=1000 size=32 phys_addr=1000 attrs=
              a-1 [000] ..... 1.3: dma_map_page: d dir=FROM_DEVICE dma_addr=2000 size=32 phys_addr=2000 attrs=
              a-1 [000] ..... 1.4: dma_map_page: d dir=FROM_DEVICE dma_addr=2010 size=32 phys_addr=2010 attrs=SKIP_CPU_SYNC
            """;
        var r = Check(text);
        var overlap = Assert.Single(r.Findings, f => f.Kind == DmaDebug.CachelineOverlap);
        Assert.Equal(2, overlap.Line);
        Assert.Contains("[cln=0x40]", overlap.Message, StringComparison.Ordinal);
        Assert.Equal(2, r.Findings.Count(f => f.Kind == DmaDebug.Leak));
    }

    [Fact]
    public void UntilReportsWhatIsLiveThenAsLeaks()
    {
        var lines = File.ReadAllLines(Real("nvme"));
        var map = lines.First(l => l.Contains("dma_map_sg:", StringComparison.Ordinal));
        var stamp = map.Split(": dma_map_sg:")[0].Split(' ')[^1];
        var r = Check(string.Join("\n", lines) + "\n", "nvme.trace", new TraceOptions([], double.Parse(stamp, System.Globalization.CultureInfo.InvariantCulture), stamp));
        var leak = Assert.Single(r.Findings);
        Assert.Equal(DmaDebug.Leak, leak.Kind);
        Assert.Equal(Array.IndexOf(lines, map) + 1, leak.Line);
        Assert.NotNull(r.StoppedAt);
    }

    [Fact]
    public void DeviceFilterKeepsOnlyThatDevice()
    {
        var r = Check(File.ReadAllText(Real("nvme")), "nvme.trace", new TraceOptions(["0000:00:05.0"]));
        Assert.Empty(r.Devices);
        Assert.Contains(r.Notes, n => n.Quirk == "no-such-device");
    }

    [Fact]
    public void TruncatedSgMapsAreReadAndNoted()
    {
        var addrs = string.Join(",", Enumerable.Range(0, 128).Select(i => $"0x{0x100000 + i * 0x1000:x}"));
        var sizes = string.Join(",", Enumerable.Repeat("0x1000", 128));
        var text = $"  a-1 [000] ..... 1.0: dma_map_sg: d dir=TO_DEVICE nents=128/130 ents=128/130 [TRUNCATED] dma_addrs={{{addrs}}} sizes={{{sizes}}} phys_addrs={{{addrs}}} attrs=\n";
        var r = Check(text);
        Assert.Contains(r.Notes, n => n.Quirk == "sg-truncated");
        Assert.Equal(128, Assert.Single(r.Devices).LiveMappings);
    }

    [Fact]
    public void UnknownEventsAreSkippedAndCounted()
    {
        var text = """
              a-1 [000] ..... 1.0: sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b next_pid=2
              a-1 [000] ..... 1.1: sched_switch: prev_comm=b prev_pid=2 ==> next_comm=a next_pid=1
              a-1 [000] ..... 1.2: dma_fence_emit: driver=x timeline=y context=1 seqno=2
            """;
        var r = Check(text);
        Assert.Equal(2, r.Stats.OtherEvents["sched_switch"]);
        Assert.Equal(1, r.Stats.OtherEvents["dma_fence_emit"]);
        Assert.Equal(0, r.Stats.Events);
    }

    [Fact]
    public void ATruncatedLastLineIsTolerated()
    {
        var text = File.ReadAllText(Real("nvme")).TrimEnd('\n');
        var cut = text[..(text.LastIndexOf("dma_unmap_sg:", StringComparison.Ordinal) + 30)];
        var r = Check(cut);
        Assert.Contains(r.Notes, n => n.Quirk == "truncated-last-line");
        Assert.Equal(DmaDebug.Leak, Assert.Single(r.Findings).Kind); // the list whose unmap was cut off
    }

    [Fact]
    public void AMalformedLineIsFileLineColumnWithTheText()
    {
        var path = Path.Combine(Path.GetTempPath(), $"dmacheck-bad-{Guid.NewGuid():N}.trace");
        var lines = File.ReadAllLines(Real("nvme")).ToList();
        lines.Insert(20, "this is not\tan event line");
        File.WriteAllLines(path, lines);
        try
        {
            var (code, stdout, stderr) = Cli("trace", path);
            Assert.Equal(2, code);
            Assert.Equal("", stdout);
            Assert.StartsWith($"{path}:21:1: error: not an ftrace event line", stderr, StringComparison.Ordinal);
            Assert.Contains("this is not\\x09an event line", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);

            lines[20] = lines[21].Replace("dma_addr=", "dma_addr=zz", StringComparison.Ordinal);
            File.WriteAllLines(path, lines);
            (code, _, stderr) = Cli("trace", path);
            Assert.Equal(2, code);
            var column = lines[20].IndexOf("dma_addr=zz", StringComparison.Ordinal) + 1;
            Assert.StartsWith($"{path}:21:{column}: error: 'dma_addr=zz", stderr, StringComparison.Ordinal);
            Assert.Contains("is not a hexadecimal address", stderr, StringComparison.Ordinal);
            Assert.Contains("^", stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ABinaryFileGetsAClearError()
    {
        var path = Path.Combine(Path.GetTempPath(), $"dmacheck-bin-{Guid.NewGuid():N}.trace");
        File.WriteAllBytes(path, [0x17, 0x08, 0x44, .. "tracing6\0\0\0"u8.ToArray()]);
        try
        {
            var (code, _, stderr) = Cli("trace", path);
            Assert.Equal(2, code);
            Assert.Contains("binary trace-cmd trace.dat", stderr, StringComparison.Ordinal);
            Assert.Contains("trace-cmd report", stderr, StringComparison.Ordinal);

            File.WriteAllBytes(path, [.. Enumerable.Range(0, 512).Select(i => (byte)i)]);
            (code, _, stderr) = Cli("trace", path);
            Assert.Equal(2, code);
            Assert.Contains("binary file (a NUL byte at offset 0)", stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadOptionsAreExitTwo()
    {
        var (code, stdout, stderr) = Cli("trace", Real("nvme"), "--profile", "linux-6.4-arm65");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("unknown profile 'linux-6.4-arm65' (did you mean", stderr, StringComparison.Ordinal);
        Assert.Equal(2, Cli("trace", Real("nvme"), "--profile", "linux-6.4-arm64", "--profile", "linux-6.5-arm64").Code);
        Assert.Equal(2, Cli("trace", Real("nvme"), "--profile").Code);
        Assert.Equal(2, Cli("trace", Real("nvme"), "--bogus").Code);
        Assert.Equal(2, Cli("trace", Real("nvme"), "--format", "csv").Code);
        Assert.Equal(2, Cli("trace", Real("nvme"), "--until", "soon").Code);
        Assert.Equal(2, Cli("trace", "/nonexistent/x.trace").Code);
    }

    [Fact]
    public void JsonAndSarifCarryTheFindings()
    {
        var (lines, unmap) = Copy("nvme", "dma_unmap_page:", skip: 3);
        lines.Insert(unmap + 1, lines[unmap]);
        var path = Path.Combine(Path.GetTempPath(), $"dmacheck-dup-{Guid.NewGuid():N}.trace");
        File.WriteAllLines(path, lines);
        try
        {
            var (code, json, _) = Cli("trace", path, "--format", "json");
            Assert.Equal(1, code);
            using var doc = JsonDocument.Parse(json);
            var finding = Assert.Single(doc.RootElement.GetProperty("findings").EnumerateArray());
            Assert.Equal(DmaDebug.FreeNotAllocated, finding.GetProperty("kind").GetString());
            Assert.Equal(unmap + 2, finding.GetProperty("line").GetInt32());

            var (_, sarif, _) = Cli("trace", path, "--format", "sarif");
            using var s = JsonDocument.Parse(sarif);
            var result = Assert.Single(s.RootElement.GetProperty("runs")[0].GetProperty("results").EnumerateArray());
            Assert.Equal(DmaDebug.FreeNotAllocated, result.GetProperty("ruleId").GetString());
            Assert.Equal(unmap + 2, result.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt32());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EscapeShowsControlCharactersAndShortens()
    {
        var (text, caret) = TraceCommand.Escape("ab\u0001c" + new string('x', 200), 0, 20, 3);
        Assert.StartsWith("ab\\x01c", text, StringComparison.Ordinal);
        Assert.EndsWith("...", text, StringComparison.Ordinal);
        Assert.Equal(6, caret);
    }

    /// <summary>Text produced on demand, never held whole: a trace of map/unmap pairs with 32 live mappings.</summary>
    private sealed class GeneratedTrace(int events) : Stream
    {
        private byte[] current = [];
        private int offset;
        private int n;

        public override int Read(byte[] buffer, int off, int count)
        {
            if (offset == current.Length)
            {
                if (n >= events)
                {
                    return 0;
                }

                // 32 maps, then an unmap of the oldest and a new map, in turn: 32 live mappings at most.
                static ulong Pa(int j) => 0x10000000UL + (ulong)(j % 65536) * 0x1000;
                var k = n - 32;
                var line = n < 32 || k % 2 == 1
                    ? $"  dd-1 [000] ..... {n}.5: dma_map_page: 0000:00:04.0 dir=FROM_DEVICE dma_addr={Pa(n < 32 ? n : 32 + k / 2):x} size=4096 phys_addr={Pa(n < 32 ? n : 32 + k / 2):x} attrs=\n"
                    : $"  dd-1 [000] ..... {n}.5: dma_unmap_page: 0000:00:04.0 dir=FROM_DEVICE dma_addr={Pa(k / 2):x} size=4096 attrs=\n";
                current = Encoding.ASCII.GetBytes(line);
                offset = 0;
                n++;
            }

            var c = Math.Min(count, current.Length - offset);
            Array.Copy(current, offset, buffer, off, c);
            offset += c;
            return c;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void MemoryIsBoundedByLiveMappingsNotByTraceLength()
    {
        const int events = 400_000;
        var debug = new TraceDebug([]);
        var samples = new List<int>();
        var stats = TraceReader.Read(new GeneratedTrace(events), "generated", e =>
        {
            debug.Add(e);
            if (e.Line % 100_000 == 0)
            {
                samples.Add(debug.RetainedRecords);
            }
        });
        debug.Finish("at the end");
        Assert.Equal(events, stats.Events);
        Assert.Single(debug.Findings); // the 32 mappings live at the end: one leak report
        Assert.True(debug.PeakLive <= 32, $"peak {debug.PeakLive} live entries");
        Assert.Equal(4, samples.Count);

        // About 40 MB of text and 200,000 distinct handles went through (the reader holds one line); what the checker
        // keeps is the live mappings, their cache lines and the capped record of recent unmaps, never more.
        Assert.All(samples, n => Assert.InRange(n, 1, TraceDebug.RecentUnmapCap + 3 * 32));
    }

    private static ModelComparisonResult Compare(string text, string profile, bool coherent) =>
        ModelComparison.Compare(new MemoryStream(Encoding.UTF8.GetBytes(text)), "t.trace", DmaCheck.Dma.Profiles.Find(profile)!, coherent);

    [Fact]
    public void TheModelBouncesExactlyWhatTheRealNonCoherentKernelBounced()
    {
        var r = Compare(File.ReadAllText(Real("arm64-virtio-blk-noncoherent")), "linux-6.5-arm64", coherent: false);
        Assert.Empty(r.Disagreements);
        Assert.Equal(41, r.KernelBounces);
        Assert.Equal(r.KernelBounces, r.ModelBounces);
        Assert.True(r.Maps > 200 && r.Maps > r.KernelBounces, $"{r.Maps} maps");
        Assert.Equal(0, r.KernelMapErrors);
        Assert.Equal(0, r.ModelMapErrors);
        Assert.Equal(0, r.NotCompared);
    }

    [Fact]
    public void TheModelsSwiotlbSlotsAreTheRealKernels()
    {
        // Each of the 41 status bytes is unmapped before the next request maps one, so a first-fit search would reuse
        // slot 0 every time; the real kernel moved on one slot each time (the area's index, next-fit), as the model does.
        var r = Compare(File.ReadAllText(Real("arm64-virtio-blk-noncoherent")), "linux-6.5-arm64", coherent: false);
        Assert.Equal(40, r.SlotsCompared);
        Assert.Empty(r.SlotDisagreements!);
    }

    [Fact]
    public void TheSlotComparisonSeesAPoolThatDiffers()
    {
        // A kernel that put the fifth bounce back in the first slot (first-fit): one disagreement, at that map's line.
        var lines = File.ReadAllText(Real("arm64-virtio-blk-noncoherent")).Split('\n').ToList();
        var maps = lines.Select((l, i) => (l, i)).Where(p => p.l.Contains("dma_map_page:", StringComparison.Ordinal) && p.l.Contains(" size=1 ", StringComparison.Ordinal)).Select(p => p.i).ToList();
        var first = lines[maps[0]].Split("dma_addr=")[1].Split(' ')[0];
        var fifth = lines[maps[4]].Split("dma_addr=")[1].Split(' ')[0];
        for (var i = maps[4]; i < lines.Count; i++)
        {
            if (lines[i].Contains($"dma_addr={fifth} ", StringComparison.Ordinal))
            {
                lines[i] = lines[i].Replace($"dma_addr={fifth} ", $"dma_addr={first} ", StringComparison.Ordinal);
            }
        }

        var r = Compare(string.Join('\n', lines), "linux-6.5-arm64", coherent: false);
        var d = Assert.Single(r.SlotDisagreements!);
        Assert.Equal(maps[4] + 1, d.Line);
        Assert.Equal(0UL, d.KernelOffset);
        Assert.Equal(4UL * 2048, d.ModelOffset);
    }

    [Fact]
    public void OnTheCoherentArm64TraceNeitherBounces()
    {
        var r = Compare(File.ReadAllText(Real("arm64-virtio-blk")), "linux-6.5-arm64", coherent: true);
        Assert.Empty(r.Disagreements);
        Assert.Equal(0, r.KernelBounces);
        Assert.True(r.Maps > 200);
    }

    [Fact]
    public void TheComparisonSeesAModelThatDiffers()
    {
        var text = File.ReadAllText(Real("arm64-virtio-blk-noncoherent"));

        // Before v6.5 there is no kmalloc bouncing: every bounce the real kernel made is a disagreement.
        var v64 = Compare(text, "linux-6.4-arm64", coherent: false);
        Assert.Equal(41, v64.Disagreements.Count);
        Assert.All(v64.Disagreements, d => Assert.True(d.KernelBounced && !d.ModelBounces && d.Size == 1 && d.Direction == DmaCheck.Dma.DmaDirection.DMA_FROM_DEVICE));

        // The wrong coherence for the device: the same.
        Assert.Equal(41, Compare(text, "linux-6.5-arm64", coherent: true).Disagreements.Count);

        // A kernel that did not bounce one status buffer: found at its line.
        var lines = text.Split('\n').ToList();
        var bounce = lines.FindIndex(l => l.Contains("swiotlb_bounced:", StringComparison.Ordinal));
        var phys = lines[bounce].Split("dev_addr=")[1].Split(' ')[0];
        var map = lines.FindIndex(bounce, l => l.Contains("dma_map_page:", StringComparison.Ordinal));
        lines[map] = System.Text.RegularExpressions.Regex.Replace(lines[map], "dma_addr=[0-9a-f]+", $"dma_addr={phys}");
        lines.RemoveAt(bounce);
        var d = Assert.Single(Compare(string.Join("\n", lines), "linux-6.5-arm64", coherent: false).Disagreements);
        Assert.Equal(map, d.Line); // the map moved up one line when the bounce line went
        Assert.True(d.ModelBounces && !d.KernelBounced);
    }
}
