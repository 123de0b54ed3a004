using System.Collections.Immutable;
using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Scatter-gather: sg tables (lib/scatterlist.c), dma_direct_map_sg and its unmap and syncs entry by entry
/// (kernel/dma/direct.c, v5.10..v6.5), and debug_dma_map_sg / unmap_sg / sync_sg (kernel/dma/debug.c): the exact
/// maintenance and copies, each error class firing and not, the syntax, and the control key.
/// </summary>
public class ScatterlistTests
{
    private static readonly DmaDevice Nc = new("nic", false);

    private static DmaState Boot(SwiotlbBoot mode = SwiotlbBoot.Off) =>
        DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(Swiotlb: mode), HardwareConfig.Default));

    /// <summary>A table of one kmalloc buffer per entry, of the given sizes.</summary>
    private static (DmaState State, SgTable Table, ulong[] Pa) Table(DmaState s, params ulong[] sizes)
    {
        var k = Scatterlist.SgAllocTable(s.Kernel, sizes.Length, Gfp.GFP_KERNEL, [], out var table)!;
        var pa = new ulong[sizes.Length];
        for (var i = 0; i < sizes.Length; i++)
        {
            k = Kmalloc.Alloc(k, sizes[i], Gfp.GFP_KERNEL, [], out var va);
            k = Scatterlist.SgSetBuf(k, k.SgTables[table!.Id], i, va, sizes[i], []);
            pa[i] = k.Layout.VirtToPhys(va);
        }

        return (s with { Kernel = k }, k.SgTables[table!.Id], pa);
    }

    /// <summary>The DC operations and copies of a call, each run of one instruction over contiguous lines as "MNEMONIC PA+LEN".</summary>
    private static string Maintenance(IEnumerable<HwOp> ops)
    {
        var runs = new List<(string Name, ulong Pa, ulong End)>();
        foreach (var op in ops)
        {
            var (name, pa, len) = op switch
            {
                CopyOp c => ($"copy 0x{c.SrcPa:x}->0x{c.DstPa:x}", c.SrcPa, c.Length),
                MemoryOp { Op.Kind: LineOpKind.Clean or LineOpKind.Invalidate or LineOpKind.CleanInvalidate } m => (m.Op.Mnemonic, m.Pa, m.Length),
                _ => (string.Empty, 0UL, 0UL),
            };
            if (name.Length == 0)
            {
                continue;
            }

            if (runs.Count > 0 && runs[^1].Name == name && runs[^1].End == pa && !name.StartsWith("copy", StringComparison.Ordinal))
            {
                runs[^1] = (name, runs[^1].Pa, pa + len);
            }
            else
            {
                runs.Add((name, pa, pa + len));
            }
        }

        return string.Join(" | ", runs.Select(r => r.Name.StartsWith("copy", StringComparison.Ordinal) ? $"{r.Name}+{r.End - r.Pa}" : $"{r.Name} 0x{r.Pa:x}+{r.End - r.Pa}"));
    }

    [Fact]
    public void MapSgCleansEachEntryOnItsOwnAndStoresItsDmaAddressAfterIt()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, table, pa) = Table(Boot(), 128, 256, 128);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSg(env, s, Nc, table, 3, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", ops, [], out var mapped);
        Assert.Equal(3, mapped);

        // v6.4 (c50f11c6196f): FROM_DEVICE maps clean; no entry is merged with its neighbour, even when they are adjacent.
        Assert.Equal($"DC CVAC 0x{pa[0]:x}+128 | DC CVAC 0x{pa[1]:x}+256 | DC CVAC 0x{pa[2]:x}+128", Maintenance(ops));

        // Each entry's maintenance comes before the store of its sg->dma_address, and the stores land in the scatterlist.
        var order = ops.OfType<MemoryOp>().Select(m => m.Op.Kind == LineOpKind.Write ? $"store 0x{m.Pa:x}" : $"dc 0x{m.Pa:x}").Distinct().ToList();
        var sgl = s.Kernel.Layout.VirtToPhys(table.Va);
        Assert.Equal([$"dc 0x{pa[0]:x}", $"store 0x{sgl + 16:x}", $"dc 0x{pa[1]:x}", $"store 0x{sgl + 48:x}", $"dc 0x{pa[2]:x}", $"store 0x{sgl + 80:x}"], order);

        var entries = s.Kernel.SgTables[table.Id].Entries;
        Assert.Equal(pa.Select(p => s.Kernel.Layout.PhysToDma(p)), entries.Select(e => e.DmaAddress));
        Assert.Equal([128UL, 256, 128], entries.Select(e => e.DmaLength));
        Assert.Equal(3, s.Mappings.Count);
    }

    [Fact]
    public void UnmapAndSyncForCpuInvalidateEveryEntryOnSgLength()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, table, pa) = Table(Boot(), 128, 256);
        s = DmaApi.DmaMapSg(env, s, Nc, table, 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out _);
        table = s.Kernel.SgTables[table.Id];
        var sync = new List<HwOp>();
        DmaApi.SyncSgForCpu(env, s, Nc, table, 2, DmaDirection.DMA_FROM_DEVICE, "dma_sync_sg_for_cpu", sync, []);
        Assert.Equal($"DC IVAC 0x{pa[0]:x}+128 | DC IVAC 0x{pa[1]:x}+256", Maintenance(sync));
        var unmap = new List<HwOp>();
        s = DmaApi.DmaUnmapSg(env, s, Nc, table, 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_sg", unmap, []);
        Assert.Equal(Maintenance(sync), Maintenance(unmap));
        Assert.Empty(s.Mappings);

        // Unmapping fewer entries leaves the rest mapped.
        var (s2, t2, _) = Table(Boot(), 128, 256);
        s2 = DmaApi.DmaMapSg(env, s2, Nc, t2, 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out _);
        s2 = DmaApi.DmaUnmapSg(env, s2, Nc, s2.Kernel.SgTables[t2.Id], 1, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_sg", [], []);
        Assert.Single(s2.Mappings);
    }

    [Fact]
    public void EachEntryBouncesThroughItsOwnSlots()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, table, pa) = Table(Boot(SwiotlbBoot.Force), 128, 256);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSg(env, s, Nc, table, 2, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_sg", ops, [], out var mapped);
        Assert.Equal(2, mapped);
        var tlb = s.Mappings.Select(m => m.Tlb!.Value).ToArray();
        Assert.Equal(s.Swiotlb!.Start, tlb[0]);
        Assert.Equal(s.Swiotlb.Start + 2048, tlb[1]); // the next slot: each entry is its own swiotlb_tbl_map_single
        Assert.Equal($"copy 0x{pa[0]:x}->0x{tlb[0]:x}+128 | DC CVAC 0x{tlb[0]:x}+128 | copy 0x{pa[1]:x}->0x{tlb[1]:x}+256 | DC CVAC 0x{tlb[1]:x}+256", Maintenance(ops));
        Assert.Equal(tlb.Select(t => s.Kernel.Layout.PhysToDma(t)), s.Kernel.SgTables[table.Id].Entries.Select(e => e.DmaAddress));

        // FROM_DEVICE unmap: invalidate the slots, then copy back, entry by entry.
        var (f, ft, fpa) = Table(Boot(SwiotlbBoot.Force), 128, 256);
        f = DmaApi.DmaMapSg(env, f, Nc, ft, 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out _);
        var ftlb = f.Mappings.Select(m => m.Tlb!.Value).ToArray();
        var unmap = new List<HwOp>();
        DmaApi.DmaUnmapSg(env, f, Nc, f.Kernel.SgTables[ft.Id], 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_sg", unmap, []);
        Assert.Equal($"DC IVAC 0x{ftlb[0]:x}+128 | copy 0x{ftlb[0]:x}->0x{fpa[0]:x}+128 | DC IVAC 0x{ftlb[1]:x}+256 | copy 0x{ftlb[1]:x}->0x{fpa[1]:x}+256", Maintenance(unmap));
    }

    [Fact]
    public void AFailedEntryUnmapsThePrefixWithoutSyncingAndFailsTheCall()
    {
        // No pool and a 32-bit mask: the entry above 4 GiB cannot be mapped.
        var layout = PlatformLayout.Arm64Va48.WithDram(8UL << 30, out _)!;
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var s = DmaState.Boot(KernelState.Boot(layout, new KernelConfig(Swiotlb: SwiotlbBoot.Off), HardwareConfig.Default));
        var k = Scatterlist.SgAllocTable(s.Kernel, 2, Gfp.GFP_KERNEL, [], out var table)!;
        k = Kmalloc.Alloc(k, 128, Gfp.GFP_KERNEL, [], out var low);
        k = Scatterlist.SgSetBuf(k, k.SgTables[table!.Id], 0, low, 128, []);
        var high = layout.Banks[^1].End - PlatformLayout.PageSize;
        Assert.True(high > 1UL << 32);
        k = Scatterlist.SgSetPage(k, k.SgTables[table.Id], 1, high >> PlatformLayout.PageShift, 128, 0, "sg_set_page", []);
        s = s with { Kernel = k };
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        s = DmaApi.DmaMapSg(env, s, Nc, s.Kernel.SgTables[table.Id], 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", ops, findings, out var mapped);
        Assert.Equal(0, mapped);
        Assert.Empty(s.Mappings);
        Assert.Equal(FindingKinds.DmaAddrOverflow, Assert.Single(findings).Kind);

        // Entry 0 was cleaned at map, and its unmap (DMA_ATTR_SKIP_CPU_SYNC) adds no invalidate.
        Assert.Equal($"DC CVAC 0x{layout.VirtToPhys(low):x}+128", Maintenance(ops));
    }

    private static (DebugState Debug, DmaState Dma, SgTable Table, List<Finding> Findings) DebugMapped(DmaDirection dir, bool segmentChecks = false, DmaDevice? dev = null, params ulong[] sizes)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, table, _) = Table(Boot(), sizes.Length == 0 ? [128, 256] : sizes);
        var findings = new List<Finding>();
        s = DmaApi.DmaMapSg(env, s, dev ?? Nc, table, table.OrigNents, dir, DmaAttrs.None, "dma_map_sg", [], findings, out var mapped);
        table = s.Kernel.SgTables[table.Id];
        var debug = DmaDebug.MapSg(DebugState.Empty, s, dev ?? Nc, table, table.OrigNents, mapped, dir, DmaAttrs.None, segmentChecks, "dma_map_sg", 1, findings);
        return (debug, s, table, findings);
    }

    private static string[] Kinds(IEnumerable<Finding> findings) => findings.Select(f => f.Kind).ToArray();

    [Fact]
    public void DebugRecordsOneSgEntryPerElement()
    {
        var (debug, _, table, findings) = DebugMapped(DmaDirection.DMA_FROM_DEVICE);
        Assert.Empty(findings);
        Assert.Equal(2, debug.Entries.Count);
        Assert.All(debug.Entries, e => Assert.Equal((DebugType.Sg, 2, 2, (bool?)null), (e.Type, e.SgCallEnts, e.SgMappedEnts, e.MapErrorChecked)));
        Assert.Equal(table.Entries.Select(e => e.Phys), debug.Entries.Select(e => e.Paddr));
    }

    [Fact]
    public void UnmapWithTheMapsCountIsCleanAnotherCountIsE6()
    {
        var (debug, dma, table, findings) = DebugMapped(DmaDirection.DMA_FROM_DEVICE);
        var clean = DmaDebug.UnmapSg(debug, dma, Nc, table, 2, DmaDirection.DMA_FROM_DEVICE, "dma_unmap_sg", findings);
        Assert.Empty(findings);
        Assert.Empty(clean.Entries);

        var left = DmaDebug.UnmapSg(debug, dma, Nc, table, 1, DmaDirection.DMA_FROM_DEVICE, "dma_unmap_sg", findings);
        Assert.Equal([DmaDebug.FreeSgCount], Kinds(findings));
        Assert.Equal("DMA-API: nic: device driver frees DMA sg list with different entry count [map count=2] [unmap count=1]", findings[0].Message);
        Assert.Single(left.Entries); // entry 1 is never checked, and stays
    }

    [Fact]
    public void SyncWithAnotherCountIsE14ExceptForBidirectionalMappings()
    {
        var (debug, dma, table, findings) = DebugMapped(DmaDirection.DMA_FROM_DEVICE);
        DmaDebug.SyncSg(debug, dma, Nc, table, 2, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_sg_for_cpu", findings);
        Assert.Empty(findings);
        var after = DmaDebug.SyncSg(debug, dma, Nc, table, 1, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_sg_for_cpu", findings);
        Assert.Equal([DmaDebug.SyncSgCount], Kinds(findings));
        Assert.Equal("DMA-API: nic: device driver syncs DMA sg list with different entry count [map count=2] [sync count=1]", findings[0].Message);
        Assert.Equal([false, true], after.Entries.Select(e => e.DeviceOwns)); // only entry 0 went back to the CPU

        var (bidi, bdma, btable, bfindings) = DebugMapped(DmaDirection.DMA_BIDIRECTIONAL);
        DmaDebug.SyncSg(bidi, bdma, Nc, btable, 1, DmaDirection.DMA_BIDIRECTIONAL, true, "dma_sync_sg_for_cpu", bfindings);
        Assert.Empty(bfindings); // check_sync returns before the count check for DMA_BIDIRECTIONAL
    }

    [Fact]
    public void SgAndSingleUnmapsOfEachOthersMappingsAreE4()
    {
        var (debug, dma, table, findings) = DebugMapped(DmaDirection.DMA_TO_DEVICE);
        var e = table.Entries[0];
        DmaDebug.Unmap(debug, dma, Nc, e.DmaAddress, e.DmaLength, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.Equal([DmaDebug.FreeWrongFunction], Kinds(findings));
        Assert.Contains("[mapped as scather-gather] [unmapped as single]", findings[0].Message, StringComparison.Ordinal);

        // A single mapping unmapped by dma_unmap_sg: wrong function, and its sg count (0) differs from the unmap's.
        findings.Clear();
        var single = DmaDebug.Map(DebugState.Empty, dma, Nc, e.DmaAddress, e.Phys, e.DmaLength, DmaDirection.DMA_TO_DEVICE, "dma_map_single", 1, findings);
        single = DmaDebug.MappingError(single, Nc, e.DmaAddress);
        DmaDebug.UnmapSg(single, dma, Nc, table, 1, DmaDirection.DMA_TO_DEVICE, "dma_unmap_sg", findings);
        Assert.Equal([DmaDebug.FreeWrongFunction, DmaDebug.FreeSgCount], Kinds(findings));
        Assert.Contains("[mapped as single] [unmapped as scather-gather]", findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SegmentChecksNeedDebugSgAndFireOnLengthAndBoundary()
    {
        var strict = Nc with { MaxSegSize = 128, SegBoundaryMask = 0xfff };
        Assert.Empty(DebugMapped(DmaDirection.DMA_TO_DEVICE, segmentChecks: false, strict).Findings);

        // 128 and 256 bytes at the start of their slab pages: only the second is too long, neither crosses 4 KiB.
        var (_, _, _, findings) = DebugMapped(DmaDirection.DMA_TO_DEVICE, segmentChecks: true, strict);
        Assert.Equal([DmaDebug.SgSegmentTooLong], Kinds(findings));
        Assert.Equal("DMA-API: nic: mapping sg segment longer than device claims to support [len=256] [max=128]", findings[0].Message);
        Assert.Empty(DebugMapped(DmaDirection.DMA_TO_DEVICE, segmentChecks: true, Nc).Findings); // 65536 and ULONG_MAX by default
    }

    [Fact]
    public void AnEntryAcrossTheSegmentBoundaryIsE20()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var dev = Nc with { SegBoundaryMask = 0xfff };
        var s = Boot();
        var k = Scatterlist.SgAllocTable(s.Kernel, 2, Gfp.GFP_KERNEL, [], out var table)!;
        k = k.AllocPages(Gfp.GFP_KERNEL, 1, "t", [], out var pfn);
        k = Scatterlist.SgSetPage(k, k.SgTables[table!.Id], 0, pfn, 2048, 2048, "sg_set_page", []); // [2 KiB, 4 KiB): inside page 0
        k = Scatterlist.SgSetPage(k, k.SgTables[table.Id], 1, pfn, 4096, 2048, "sg_set_page", []); // [2 KiB, 6 KiB): across
        var findings = new List<Finding>();
        s = DmaApi.DmaMapSg(env, s with { Kernel = k }, dev, k.SgTables[table.Id], 2, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_sg", [], findings, out var mapped);
        DmaDebug.MapSg(DebugState.Empty, s, dev, s.Kernel.SgTables[table.Id], 2, mapped, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, true, "dma_map_sg", 1, findings);
        var start = s.Kernel.Layout.PhysToDma(PlatformLayout.PfnToPhys(pfn) + 2048);
        Assert.Equal([DmaDebug.SgSegmentAcrossBoundary], Kinds(findings));
        Assert.Equal($"DMA-API: nic: mapping sg segment across boundary [start=0x{start:x16}] [end=0x{start + 4095:x16}] [boundary=0x0000000000000fff]", findings[0].Message);
    }

    [Fact]
    public void TwoElementsStartingInOneCachelineOverlap()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var s = Boot();
        var k = Scatterlist.SgAllocTable(s.Kernel, 3, Gfp.GFP_KERNEL, [], out var table)!;
        k = Kmalloc.Alloc(k, 256, Gfp.GFP_KERNEL, [], out var va);
        k = Scatterlist.SgSetBuf(k, k.SgTables[table!.Id], 0, va, 32, []);
        k = Scatterlist.SgSetBuf(k, k.SgTables[table.Id], 1, va + 32, 32, []);  // the same line as entry 0
        k = Scatterlist.SgSetBuf(k, k.SgTables[table.Id], 2, va + 64, 64, []);  // the next line
        var findings = new List<Finding>();
        s = DmaApi.DmaMapSg(env, s with { Kernel = k }, Nc, k.SgTables[table.Id], 3, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", [], findings, out var mapped);
        DmaDebug.MapSg(DebugState.Empty, s, Nc, s.Kernel.SgTables[table.Id], 3, mapped, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, false, "dma_map_sg", 1, findings);
        Assert.Equal([DmaDebug.CachelineOverlap], Kinds(findings));
    }

    [Fact]
    public void TheControlKeyHoldsTablesAndSgDebugEntries()
    {
        static ControlState Ctrl(DmaState dma, DebugState? debug = null) =>
            new(dma, [], ImmutableSortedDictionary<string, Value>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<int, ObservedRange>.Empty, debug);

        var (s, table, _) = Table(Boot(), 128, 256);
        var k = s.Kernel;
        var moved = Scatterlist.SetDma(k, table, 1, 0x1234, 256, "t", []);
        Assert.NotEqual(Ctrl(s).Fingerprint, Ctrl(s with { Kernel = moved }).Fingerprint);
        Assert.NotEqual(Ctrl(s).Fingerprint, Ctrl(s with { Kernel = Scatterlist.SetNents(k, table, 1) }).Fingerprint);
        Assert.NotEqual(Ctrl(s).Fingerprint, Ctrl(s with { Kernel = k with { SgTables = k.SgTables.SetItem(table.Id, table with { Freed = true }) } }).Fingerprint);
        Assert.NotEqual(Ctrl(s).Fingerprint, Ctrl(s with { Kernel = Scatterlist.SgSetPage(k, table, 0, 0x81234, 64, 0, "t", []) }).Fingerprint);

        var (debug, dma, _, _) = DebugMapped(DmaDirection.DMA_FROM_DEVICE);
        var other = debug with { Entries = debug.Entries.SetItem(0, debug.Entries[0] with { SgCallEnts = 3 }) };
        Assert.NotEqual(Ctrl(dma, debug).Fingerprint, Ctrl(dma, other).Fingerprint);
        var mappedEnts = debug with { Entries = debug.Entries.SetItem(0, debug.Entries[0] with { SgMappedEnts = 1 }) };
        Assert.NotEqual(Ctrl(dma, debug).Fingerprint, Ctrl(dma, mappedEnts).Fingerprint);
    }

    private const string Header = "profile linux-6.4-arm64\ndevice nic { coherent = false }\n";

    [Theory]
    [InlineData("cpu a {\n  t = sg_alloc_table()\n}\n", 4, 7, "takes 2 argument(s)")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  sg_set_buf(t, 0, 4096)\n}\n", 5, 3, "takes 4 argument(s)")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  sg_set_page(t, 0, 4096, 0)\n}\n", 5, 3, "takes 5 argument(s)")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  n = dma_map_sg(nic, t, 2)\n}\n", 5, 7, "takes 4 argument(s)")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  dma_sync_sgtable_for_cpu(nic, t, 2, DMA_FROM_DEVICE)\n}\n", 5, 3, "takes 3 argument(s)")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  x = dma_unmap_sg(nic, t, 2, DMA_FROM_DEVICE)\n}\n", 5, 3, "returns nothing to assign")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  sg_dma_address(t, 0)\n}\n", 5, 3, "returns a value")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2)\n  n = dma_map_sg(nic, t, 2, DMA_UPWARDS)\n}\n", 5, 29, "expected a direction")]
    [InlineData("cpu a {\n  t = sg_alloc_table(2, GFP_SOMETIMES)\n}\n", 4, 25, "unknown gfp flag")]
    public void SyntaxErrorsPointAtTheOffendingText(string body, int line, int column, string message)
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", Header + body));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Span.Line, e.Span.Column));
    }

    [Theory]
    [InlineData("max_seg_size = 0", 1, 45, "max_seg_size is dma_set_max_seg_size's size")]
    [InlineData("seg_boundary_mask = 0x1000", 1, 50, "seg_boundary_mask is dma_set_seg_boundary's mask")]
    [InlineData("seg_boundary_mask = 0xff", 1, 50, "at least a page")]
    [InlineData("max_seg = 4", 1, 30, "unknown device property 'max_seg'")]
    public void DevicePropertiesAreChecked(string prop, int line, int column, string message)
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", $"device d {{ coherent = false, {prop} }}\nprofile linux-6.4-arm64\ncpu a {{ signal x }}\n"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Span.Line, e.Span.Column));
    }

    private static ScenarioOutcome Check(string body) => Checker.CheckText("t.dmc", Header + body, ExplorationLimits.Default);

    [Fact]
    public void RunTimeMisuseIsReportedAtTheStatement()
    {
        var past = Check("cpu a {\n  t = sg_alloc_table(2)\n  p = kmalloc(64, GFP_KERNEL)\n  sg_set_buf(t, 2, p, 64)\n}\n");
        Assert.Equal(2, past.ExitCode);
        Assert.Contains("entry 2 is past the end of the table (2 entries", past.Message, StringComparison.Ordinal);

        // nents beyond the table: for_each_sg walks off the end marker.
        var over = Check("cpu a {\n  t = sg_alloc_table(1)\n  p = kmalloc(64, GFP_KERNEL)\n  sg_set_buf(t, 0, p, 64)\n  n = dma_map_sg(nic, t, 2, DMA_TO_DEVICE)\n}\n");
        Assert.Equal(1, over.ExitCode);
        Assert.Contains("sg_next() returns NULL", over.Message, StringComparison.Ordinal);

        // The same for an unmap or sync, which dma-debug walks first.
        var unmapOver = Check("cpu a {\n  t = sg_alloc_table(1)\n  p = kmalloc(64, GFP_KERNEL)\n  sg_set_buf(t, 0, p, 64)\n  n = dma_map_sg(nic, t, 1, DMA_TO_DEVICE)\n  dma_unmap_sg(nic, t, 2, DMA_TO_DEVICE)\n}\n");
        Assert.Equal(1, unmapOver.ExitCode);
        Assert.Contains("sg_next() returns NULL", unmapOver.Message, StringComparison.Ordinal);
        var freed = Check("cpu a {\n  t = sg_alloc_table(1)\n  p = kmalloc(64, GFP_KERNEL)\n  sg_set_buf(t, 0, p, 64)\n  sg_free_table(t)\n  n = dma_map_sg(nic, t, 1, DMA_TO_DEVICE)\n}\n");
        Assert.Contains("freed by sg_free_table", freed.Message, StringComparison.Ordinal);

        var empty = Check("cpu a {\n  t = sg_alloc_table(2)\n  n = dma_map_sg(nic, t, 2, DMA_TO_DEVICE)\n}\n");
        Assert.Contains("has no page", empty.Message, StringComparison.Ordinal);

        var vmalloc = Check("cpu a {\n  b = dma_alloc_coherent(nic, 4096, GFP_KERNEL)\n  t = sg_alloc_table(1)\n  sg_set_buf(t, 0, b, 64)\n}\n");
        Assert.Contains("is a vmalloc address: virt_to_page() computes a bogus struct page", vmalloc.Message, StringComparison.Ordinal);

        var chained = Check("cpu a {\n  t = sg_alloc_table(128)\n}\n");
        Assert.Equal(3, chained.ExitCode);
    }

    [Fact]
    public void ADeviceWriteThroughAnSgAddressIsBoundedBySgDmaLen()
    {
        // Past sg_dma_len the device overruns the mapping: a modelled event naming the victim, not bad input.
        var o = Check("cpu a {\n  t = sg_alloc_table(1)\n  p = kmalloc(64, GFP_KERNEL)\n  sg_set_buf(t, 0, p, 64)\n  n = dma_map_sg(nic, t, 1, DMA_FROM_DEVICE)\n  d = sg_dma_address(t, 0)\n}\ndma rx by nic {\n  write dma(d)[0..128] = x\n}\n");
        Assert.Equal(OutcomeError.None, o.Error);
        var overrun = Assert.Single(o.Result!.Findings, f => f.Finding.Kind == FindingKinds.DeviceOutsideMapping).Finding;
        Assert.Contains("runs 64 bytes past the end of 'd' (", overrun.Message, StringComparison.Ordinal);
        Assert.Equal(Severity.Corruption, overrun.Severity);
    }
}
