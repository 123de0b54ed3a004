using System.Text;
using System.Text.Json;
using DmaCheck.Cli;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Traces;

namespace DmaCheck.Tests;

/// <summary>
/// dmacheck trace --profile (issue 18 item 3): the real recorded traces and small seeded ones replayed on kernel profiles
/// whose devices are not cache-coherent. The expected hazards follow from each buffer's address, size and direction
/// and the profile's granule and kmalloc rule, worked out by hand in each test.
/// </summary>
public class TraceWhatIfTests
{
    private static string Fixtures => Path.Combine(TestPaths.Root, "tests", "fixtures", "traces");

    private static string Real(string name) => Path.Combine(Fixtures, name + ".trace");

    private static string Seeded(string name) => Path.Combine(Fixtures, "whatif", name + ".trace");

    private static TraceResult Replay(string text, string profile, string file = "t.trace", IReadOnlyList<string>? devices = null) =>
        TraceCheck.Run(new MemoryStream(Encoding.UTF8.GetBytes(text)), file, new TraceOptions(devices ?? [], Profile: Profiles.Find(profile)!));

    private static TraceResult ReplayFile(string path, string profile) => Replay(File.ReadAllText(path), profile, path);

    private static List<TraceFinding> Hazards(TraceResult r, string kind) => r.Findings.Where(f => f.Kind == kind).ToList();

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void TheGranuleIsTheProfilesDmaCacheAlignment()
    {
        Assert.Equal(128, WhatIfReplay.DmaGranule(Profiles.Linux64Arm64, HardwareConfig.Default).Bytes);
        Assert.Equal(128, WhatIfReplay.DmaGranule(Profiles.Linux63Arm64, HardwareConfig.Default).Bytes);
        Assert.Equal(64, WhatIfReplay.DmaGranule(Profiles.Linux65Arm64, HardwareConfig.Default).Bytes);
        Assert.Equal(128, WhatIfReplay.DmaGranule(Profiles.Linux65Arm64, new HardwareConfig(LineSize: 128)).Bytes);
        Assert.Equal(64, WhatIfReplay.DmaGranule(Profiles.Linux513ArmImx6, HardwareConfig.Default).Bytes);
        Assert.Equal(1, WhatIfReplay.DmaGranule(Profiles.Linux64X86, HardwareConfig.Default).Bytes);
    }

    /// <summary>
    /// virtio-blk's 1-byte FROM_DEVICE status byte sits 16 bytes into a 128-byte granule, right after the 16-byte
    /// TO_DEVICE request header: on v6.4 (no kmalloc bounce, granule 128) each of the 41 requests is both hazards; on
    /// v6.5 all 41 bounce (kmalloc_size_roundup(1) = 8, not a multiple of 64), and nothing else is unaligned.
    /// </summary>
    [Theory]
    [InlineData("arm64-6.12.118-virtio-blk-noncoherent")]
    [InlineData("arm64-6.12.118-virtio-blk")]
    [InlineData("x86_64-6.12.118-virtio-blk-iommu")]
    public void VirtioBlkStatusBytesAreUnsafeBeforeV65AndBounceFromIt(string trace)
    {
        var lines = File.ReadAllLines(Real(trace));
        var v64 = ReplayFile(Real(trace), "linux-6.4-arm64");
        var buffers = Hazards(v64, FindingKinds.BufferSharesGranule);
        var pairs = Hazards(v64, FindingKinds.MappingsShareGranule);
        Assert.Equal(41, buffers.Count);
        Assert.Equal(41, pairs.Count);
        Assert.All(buffers.Concat(pairs), f =>
        {
            var line = lines[f.Line - 1];
            Assert.Contains("dma_map_page:", line, StringComparison.Ordinal);
            Assert.Contains("dir=FROM_DEVICE", line, StringComparison.Ordinal);
            Assert.Contains(" size=1 ", line, StringComparison.Ordinal);
            Assert.Equal(FindingKind.WhatIfClass, f.Class);
            Assert.Contains(f.Timestamp, line, StringComparison.Ordinal);
        });
        Assert.All(buffers, f => Assert.Contains("smaller than the 128-byte granule", f.Message, StringComparison.Ordinal));
        Assert.All(pairs, f =>
        {
            Assert.Contains("live DMA_TO_DEVICE buffer", f.Message, StringComparison.Ordinal);
            Assert.Contains("(16 bytes)", f.Message, StringComparison.Ordinal);
            Assert.Contains("dcache_inval_poc", f.Detail, StringComparison.Ordinal);
        });
        Assert.Equal(v64.WhatIf!.BufferHazards + v64.WhatIf.PairHazards, v64.Findings.Count);

        // Every other profile without kmalloc bouncing (docs/trace.md's table): the same 41 and 41, at the same lines.
        foreach (var profile in new[] { "linux-6.3-arm64", "linux-5.13-arm-rpi4", "linux-5.13-arm-imx6", "linux-5.8-arm64-xen" })
        {
            var r = ReplayFile(Real(trace), profile);
            Assert.Equal(buffers.Select(f => f.Line), Hazards(r, FindingKinds.BufferSharesGranule).Select(f => f.Line));
            Assert.Equal(pairs.Select(f => f.Line), Hazards(r, FindingKinds.MappingsShareGranule).Select(f => f.Line));
            Assert.Equal(82, r.Findings.Count);
        }

        var v65 = ReplayFile(Real(trace), "linux-6.5-arm64");
        Assert.Empty(v65.Findings);
        Assert.Equal(41, v65.WhatIf!.Bounced);
        Assert.Equal(64, v65.WhatIf.Granule);
        Assert.True(v65.WhatIf.Checked > 50, $"{v65.WhatIf.Checked} buffers checked");
    }

    [Fact]
    public void TheRealNonCoherentTracesBouncesAreTheOnesTheReplayBounces()
    {
        // The v6.5 replay bounces exactly the buffers the real 6.12 kernel bounced (each follows a swiotlb_bounced).
        var lines = File.ReadAllLines(Real("arm64-6.12.118-virtio-blk-noncoherent"));
        var bounced = lines.Count(l => l.Contains("swiotlb_bounced:", StringComparison.Ordinal));
        Assert.Equal(bounced, ReplayFile(Real("arm64-6.12.118-virtio-blk-noncoherent"), "linux-6.5-arm64").WhatIf!.Bounced);
    }

    [Theory]
    [InlineData("x86_64-6.12.118-nvme")]
    [InlineData("x86_64-6.12.118-nvme-swiotlb")]
    public void NvmeBuffersAreAlignedOnEveryArmProfile(string trace)
    {
        foreach (var profile in new[] { "linux-6.3-arm64", "linux-6.4-arm64", "linux-6.5-arm64", "linux-5.13-arm-rpi4", "linux-5.13-arm-imx6", "linux-5.8-arm64-xen" })
        {
            var r = ReplayFile(Real(trace), profile);
            Assert.Empty(r.Findings);
            Assert.True(r.WhatIf!.Checked > 50, $"{profile}: {r.WhatIf.Checked} checked");
            Assert.Equal(0, r.WhatIf.Bounced);
        }
    }

    [Fact]
    public void IommuMergedSgListsAreCountedAsNotChecked()
    {
        foreach (var profile in new[] { "linux-6.3-arm64", "linux-6.4-arm64", "linux-6.5-arm64", "linux-5.13-arm-rpi4", "linux-5.13-arm-imx6", "linux-5.8-arm64-xen" })
        {
            var r = ReplayFile(Real("x86_64-6.12.118-nvme-iommu"), profile);
            Assert.Empty(r.Findings);
            Assert.True(r.WhatIf!.NotChecked > 0);
            Assert.True(r.WhatIf.Checked > 30, $"{profile}: {r.WhatIf.Checked} checked");
            Assert.Contains(r.WhatIf.Notes, n => n.StartsWith("sg-merged", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void OnACoherentProfileNothingIsUnsafe()
    {
        var r = ReplayFile(Seeded("unaligned-buffers"), "linux-6.4-x86_64");
        Assert.Empty(r.Findings);
        Assert.True(r.WhatIf!.Coherent);
        Assert.Equal(0, r.WhatIf.Checked);
        Assert.Contains("cache-coherent", r.WhatIf.Notes[0], StringComparison.Ordinal);
    }

    /// <summary>
    /// Line 13: FROM_DEVICE 512 bytes at offset 0x20: unaligned on both (v6.5 lets it through: size &gt;= 256).
    /// Line 14: BIDIRECTIONAL 200 bytes, aligned start: 56 bytes of its last granule are outside on both (v6.5:
    /// kmalloc_size_roundup(200) = 256 is a multiple of 64, so no bounce). Line 15: FROM_DEVICE 64 bytes at 0x40: a
    /// whole 64-byte granule on v6.5, half a 128-byte one on v6.4. Line 16: TO_DEVICE, unaligned but only cleaned.
    /// Line 17: FROM_DEVICE 24 bytes: bounced on v6.5 (roundup 32), unsafe on v6.4.
    /// </summary>
    [Fact]
    public void SeededUnalignedBuffers()
    {
        var v64 = ReplayFile(Seeded("unaligned-buffers"), "linux-6.4-arm64");
        Assert.Equal([13L, 14, 15, 17], Hazards(v64, FindingKinds.BufferSharesGranule).Select(f => f.Line));
        Assert.Empty(Hazards(v64, FindingKinds.MappingsShareGranule));
        Assert.Equal(0, v64.WhatIf!.Bounced);

        var v65 = ReplayFile(Seeded("unaligned-buffers"), "linux-6.5-arm64");
        var found = Hazards(v65, FindingKinds.BufferSharesGranule);
        Assert.Equal([13L, 14], found.Select(f => f.Line));
        Assert.Equal(1, v65.WhatIf!.Bounced);
        Assert.Contains("32 byte(s) before it", found[0].Message, StringComparison.Ordinal);
        Assert.Contains("at least 2 * ARCH_DMA_MINALIGN", found[0].Message, StringComparison.Ordinal);
        Assert.Contains("kmalloc_size_roundup(200) = 256", found[1].Message, StringComparison.Ordinal);
        Assert.Contains("56 byte(s) after it", found[1].Message, StringComparison.Ordinal);
        Assert.Contains("(partial last line): write-back and invalidate", found[1].Detail, StringComparison.Ordinal);
        Assert.Equal("1.000200", found[1].Timestamp);
    }

    /// <summary>
    /// Line 14: FROM_DEVICE 288 bytes ending 0x20 into a 64-byte granule (0x20 into a 128-byte one: 96 after).
    /// Line 15: a live TO_DEVICE buffer starting right there: a pair. Lines 16-17: two TO_DEVICE buffers in one granule:
    /// no hazard. Line 18: an sg list whose first element is 704 bytes (a multiple of 64, not of 128). Line 19: another
    /// device's 64 bytes in that element's last 128-byte granule: its own hazard on v6.4, but no pair (another device).
    /// </summary>
    [Fact]
    public void SeededSharedGranules()
    {
        var v64 = ReplayFile(Seeded("shared-granule"), "linux-6.4-arm64");
        // Line 19's buffer (dev1) has only dev0's live sg element beside it in its granule: those bytes are not the CPU's
        // while mapped, so it is reported as a pair, not as sharing a granule with memory outside it.
        Assert.Equal([14L, 18], Hazards(v64, FindingKinds.BufferSharesGranule).Select(f => f.Line));
        Assert.Contains(v64.WhatIf!.Notes, n => n.StartsWith("covered-edges: 1 buffer(s)", StringComparison.Ordinal));
        // Two pairs: dev0's two buffers at lines 14 and 15, and dev1's buffer at line 19 with dev0's sg element: pairs
        // are taken across devices, as dma-debug's cacheline radix tree is keyed by the line alone.
        var pairs = Hazards(v64, FindingKinds.MappingsShareGranule);
        Assert.Equal([15L, 19], pairs.Select(f => f.Line));
        var pair = pairs[0];
        Assert.Contains("with dev0's live DMA_FROM_DEVICE buffer", pairs[1].Message, StringComparison.Ordinal);
        Assert.Contains("mapped at line 14", pair.Message, StringComparison.Ordinal);
        Assert.Contains("granule 0x40011100", pair.Message, StringComparison.Ordinal);
        Assert.Equal("dma_map_sg element 0", Hazards(v64, FindingKinds.BufferSharesGranule)[1].Event);

        var v65 = ReplayFile(Seeded("shared-granule"), "linux-6.5-arm64");
        Assert.Equal([14L], Hazards(v65, FindingKinds.BufferSharesGranule).Select(f => f.Line));
        Assert.Equal(15, Assert.Single(Hazards(v65, FindingKinds.MappingsShareGranule)).Line);

        // --device keeps the replay to that device.
        var dev1 = Replay(File.ReadAllText(Seeded("shared-granule")), "linux-6.4-arm64", devices: ["dev1"]);
        Assert.Equal(19, Assert.Single(dev1.Findings).Line);
        Assert.Contains("--device dev1 --emit-scenario", dev1.Findings[0].Explore, StringComparison.Ordinal);
    }

    [Fact]
    public void SkipCpuSyncMapsSayTheMaintenanceIsTheDrivers()
    {
        var text = File.ReadAllText(Seeded("unaligned-buffers")).Replace("dma_addr=40001020 size=512 phys_addr=40001020 attrs=", "dma_addr=40001020 size=512 phys_addr=40001020 attrs=SKIP_CPU_SYNC", StringComparison.Ordinal);
        var found = Hazards(Replay(text, "linux-6.5-arm64"), FindingKinds.BufferSharesGranule);
        Assert.Equal([13L, 14], found.Select(f => f.Line));
        Assert.StartsWith("(mapped with DMA_ATTR_SKIP_CPU_SYNC", found[0].Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("SKIP_CPU_SYNC", found[1].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnmapEndsThePair()
    {
        // The same two buffers, the first unmapped before the second is mapped: no pair, the first's own hazard stays.
        var text = File.ReadAllText(Seeded("shared-granule"));
        var lines = text.Split('\n').ToList();
        var unmap = lines.FindIndex(l => l.Contains("dma_unmap_page: dev0 dir=FROM_DEVICE dma_addr=40011000", StringComparison.Ordinal));
        var moved = lines[unmap];
        lines.RemoveAt(unmap);
        lines.Insert(14, moved); // after the map at line 14 (index 13), before line 15's map
        var r = Replay(string.Join('\n', lines), "linux-6.5-arm64");
        Assert.Empty(Hazards(r, FindingKinds.MappingsShareGranule));
        Assert.Single(Hazards(r, FindingKinds.BufferSharesGranule));
    }

    [Fact]
    public void ASeededUnalignedBufferInARealTraceIsFoundAtItsLine()
    {
        // The real NVMe trace has no hazard on either profile. Move one 4 KiB FROM_DEVICE page's phys_addr along (the
        // unmap names the handle, so dma-debug does not mind): by 0x40 it is still on a 64-byte granule (v6.5) but not
        // on a 128-byte one (v6.4); by 0x20 it is on neither. The hazard is at that map's line.
        var lines = File.ReadAllLines(Real("x86_64-6.12.118-nvme")).ToList();
        var map = lines.FindIndex(l => l.Contains("dma_map_page:", StringComparison.Ordinal) && l.Contains("dir=FROM_DEVICE", StringComparison.Ordinal) && l.Contains(" size=4096 ", StringComparison.Ordinal));
        var phys = lines[map].Split("phys_addr=")[1].Split(' ')[0];
        foreach (var (shift, v64, v65) in new[] { (0x40UL, 1, 0), (0x20UL, 1, 1) })
        {
            var copy = lines.ToList();
            copy[map] = copy[map].Replace($"phys_addr={phys}", $"phys_addr={Convert.ToUInt64(phys, 16) + shift:x}", StringComparison.Ordinal);
            var text = string.Join('\n', copy) + "\n";
            var r64 = Replay(text, "linux-6.4-arm64");
            var r65 = Replay(text, "linux-6.5-arm64");
            Assert.Equal(v64, r64.Findings.Count);
            Assert.Equal(v65, r65.Findings.Count);
            Assert.All(r64.Findings.Concat(r65.Findings), f =>
            {
                Assert.Equal(map + 1, f.Line);
                Assert.Equal(FindingKinds.BufferSharesGranule, f.Kind);
            });
        }
    }

    [Fact]
    public void BouncesBeyondTheProfilesPoolAreSwiotlbFull()
    {
        // linux-6.5-arm64 boots a 512-slot pool for the kmalloc bounce (1 MiB per GiB of its 1 GiB). 514 live 24-byte
        // FROM_DEVICE buffers each bounce into one slot: the 513th and 514th find no room; after one unmap, one fits again.
        var pool = ReplayFile(Real("arm64-6.12.118-virtio-blk-noncoherent"), "linux-6.5-arm64").WhatIf!.PoolSlots;
        Assert.Equal(512, pool);
        var sb = new StringBuilder();
        var n = 0;
        string Line(string body) => $"          dd-131     [000] .....     {1 + (++n * 1e-6):0.000000}: {body}\n";
        for (var i = 0; i < pool + 2; i++)
        {
            sb.Append(Line($"dma_map_page: dev0 dir=FROM_DEVICE dma_addr={0x5000_0000 + (i * 0x800):x} size=24 phys_addr={0x4000_0000 + (i * 0x80):x} attrs="));
        }

        sb.Append(Line("dma_unmap_page: dev0 dir=FROM_DEVICE dma_addr=50000000 size=24 attrs="));
        sb.Append(Line("dma_map_page: dev0 dir=FROM_DEVICE dma_addr=70000000 size=24 phys_addr=48000000 attrs="));
        var r = Replay(sb.ToString(), "linux-6.5-arm64");
        var full = r.Findings.Where(f => f.Kind == FindingKinds.SwiotlbFull).ToList();
        Assert.Equal([pool + 1L, pool + 2], full.Select(f => f.Line));
        Assert.Contains("swiotlb buffer is full (sz: 24 bytes), total 512 (slots), used 512 (slots)", full[0].Message, StringComparison.Ordinal);
        Assert.Equal("model", full[0].Class);
        Assert.Equal(pool, r.WhatIf!.PeakSlots);
        Assert.Equal(2, r.WhatIf.PoolFull);

        // On v6.4 nothing bounces: each buffer is half a 128-byte granule instead.
        var v64 = Replay(sb.ToString(), "linux-6.4-arm64");
        Assert.DoesNotContain(v64.Findings, f => f.Kind == FindingKinds.SwiotlbFull);
        Assert.Equal(pool + 3, Hazards(v64, FindingKinds.BufferSharesGranule).Count);
    }

    [Fact]
    public void TheCommandReportsInTextJsonAndSarif()
    {
        var path = Seeded("shared-granule");
        var (code, text, err) = Cli("trace", path, "--profile", "linux-6.5-arm64");
        Assert.Equal(1, code);
        Assert.Equal("", err);
        Assert.Contains("what-if on linux-6.5-arm64, every device non-coherent:", text, StringComparison.Ordinal);
        Assert.Contains($"{path}:15: 2.000300 s: noncoherent-mappings-share-granule (what-if) in dma_map_page", text, StringComparison.Ordinal);

        var (_, json, _) = Cli("trace", path, "--profile", "linux-6.5-arm64", "--format", "json");
        using var doc = JsonDocument.Parse(json);
        var whatIf = doc.RootElement.GetProperty("whatIf");
        Assert.Equal("linux-6.5-arm64", whatIf.GetProperty("profile").GetString());
        Assert.Equal(64, whatIf.GetProperty("granule").GetInt32());
        var findings = doc.RootElement.GetProperty("findings").EnumerateArray().ToList();
        Assert.Equal([FindingKinds.BufferSharesGranule, FindingKinds.MappingsShareGranule], findings.Select(f => f.GetProperty("kind").GetString()));
        Assert.All(findings, f => Assert.Equal("what-if", f.GetProperty("class").GetString()));

        var (_, sarif, _) = Cli("trace", path, "--profile", "linux-6.5-arm64", "--format", "sarif");
        using var s = JsonDocument.Parse(sarif);
        var run = s.RootElement.GetProperty("runs")[0];
        var rules = run.GetProperty("tool").GetProperty("driver").GetProperty("rules").EnumerateArray().ToList();
        Assert.Contains(rules, r => r.GetProperty("id").GetString() == FindingKinds.MappingsShareGranule);
        Assert.Contains("linux-6.5-arm64", rules[0].GetRawText(), StringComparison.Ordinal);
        Assert.Equal([14, 15], run.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt32()));

        // Without --profile there is no replay.
        var (plain, plainText, _) = Cli("trace", path);
        Assert.Equal(0, plain);
        Assert.DoesNotContain("what-if", plainText, StringComparison.Ordinal);
    }

    [Fact]
    public void MemoryIsBoundedByLiveBuffers()
    {
        // Replaying the same requests many times over leaves nothing behind once they are unmapped.
        var body = File.ReadAllLines(Seeded("shared-granule")).Where(l => !l.StartsWith('#')).ToList();
        var replay = new WhatIfReplay(Profiles.Linux64Arm64, []);
        for (var round = 0; round < 200; round++)
        {
            foreach (var line in body)
            {
                TraceReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(line + "\n")), "t", replay.Add);
            }
        }

        Assert.True(replay.RetainedRecords <= 16, $"{replay.RetainedRecords} records retained");
        Assert.Equal(200 * 4, replay.Findings.Count);
    }
}
