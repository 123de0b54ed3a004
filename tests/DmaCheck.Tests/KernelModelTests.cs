using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>The kernel and DMA layers: which hardware operations each call performs, in order.</summary>
public class KernelModelTests
{
    private static KernelState Boot(bool initOnAlloc = false, bool initOnFree = false) =>
        KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(initOnAlloc, initOnFree), HardwareConfig.Default);

    private static string Show(IEnumerable<HwOp> ops) => string.Join("\n", ops.Select(op => op switch
    {
        MemoryOp m => $"{m.Op.Kind} {m.Op.Type} 0x{m.Pa:x}+0x{m.Length:x}",
        MapOp m => $"map {m.Alias.Type} 0x{m.Alias.Va:x}->0x{m.Alias.Pa:x}+0x{m.Alias.Size:x}",
        UnmapOp u => $"unmap 0x{u.Alias.Va:x}",
        _ => op.ToString()!,
    }));

    private static ulong FirstPa => PlatformLayout.Arm64Va48.FirstFreePfn << PlatformLayout.PageShift;

    [Fact]
    public void LinearMapArithmetic()
    {
        var l = PlatformLayout.Arm64Va48;
        Assert.Equal(0xffff_0000_0100_0000UL, l.PhysToVirt(0x8100_0000));
        Assert.Equal(0x8100_0000UL, l.VirtToPhys(0xffff_0000_0100_0000));
        Assert.True(l.IsVmallocAddr(l.VmallocStart));
        Assert.False(l.IsVmallocAddr(l.PageOffset));
        Assert.True(l.IsLinearMapAddr(l.PageOffset + 0x1234));
        Assert.False(l.IsLinearMapAddr(l.VmallocStart));
        Assert.Equal(0, PlatformLayout.GetOrder(1));
        Assert.Equal(1, PlatformLayout.GetOrder(4097));
    }

    [Theory]
    [InlineData(false, false, Gfp.GFP_KERNEL, false)]
    [InlineData(true, false, Gfp.GFP_KERNEL, true)]
    [InlineData(false, false, Gfp.GFP_KERNEL | Gfp.__GFP_ZERO, true)]
    [InlineData(true, true, Gfp.GFP_KERNEL, false)] // init_on_free takes over: no zeroing at allocation
    public void PostAllocHookZeroesThroughTheLinearMap(bool initOnAlloc, bool initOnFree, Gfp gfp, bool zeroes)
    {
        var ops = new List<HwOp>();
        Boot(initOnAlloc, initOnFree).AllocPages(gfp, 0, "t", ops, out var pfn);
        Assert.Equal(zeroes ? $"Write NormalWriteBack 0x{pfn << 12:x}+0x1000" : string.Empty, Show(ops));
        if (zeroes)
        {
            Assert.Equal(WriterTable.Zero, ((MemoryOp)ops[0]).Op.Writer);
        }
    }

    [Fact]
    public void InitOnFreeZeroesOnFreeAndFreedBlocksAreReused()
    {
        var ops = new List<HwOp>();
        var k = Boot(initOnFree: true).AllocPages(Gfp.GFP_KERNEL, 1, "t", ops, out var pfn);
        Assert.Empty(ops);
        k = k.FreePages(pfn, 1, ops);
        Assert.Equal($"Write NormalWriteBack 0x{pfn << 12:x}+0x2000", Show(ops));
        k.AllocPages(Gfp.GFP_KERNEL, 1, "t", ops, out var again);
        Assert.Equal(pfn, again);
    }

    [Fact]
    public void FreeingPagesNotOwnedIsAKernelBug()
    {
        var ops = new List<HwOp>();
        var k = Boot().AllocPages(Gfp.GFP_KERNEL, 1, "t", ops, out var pfn);
        Assert.Throws<KernelBugException>(() => k.FreePages(pfn + 1, 0, ops));
        Assert.Throws<KernelBugException>(() => k.FreePages(pfn, 0, ops));
        Assert.Throws<KernelBugException>(() => k.FreePages(pfn, 1, ops).FreePages(pfn, 1, ops));
    }

    [Fact]
    public void VmapAddsAnAliasAndVunmapRemovesIt()
    {
        var ops = new List<HwOp>();
        var k = Boot().Vmap(0x81000, 2, MemoryType.NormalNonCacheable, "nc", "t", ops, out var va);
        Assert.True(k.Layout.IsVmallocAddr(va));
        Assert.Equal((0x8100_0010UL, k.VmapAreas[va]), k.Mmu.Translate(va + 0x10, 8));
        k = k.Vunmap(va, "t", ops);
        Assert.Throws<TranslationFaultException>(() => k.Mmu.Translate(va, 1));
        Assert.Equal($"map NormalNonCacheable 0x{va:x}->0x81000000+0x2000\nunmap 0x{va:x}", Show(ops));
    }

    [Theory]
    [InlineData(0x0UL, 0x100UL, "Invalidate 0x0+0x40\nInvalidate 0x40+0xc0")]
    [InlineData(0x10UL, 0x100UL, "CleanInvalidate 0x0+0x40\nInvalidate 0x40+0xc0")]
    [InlineData(0x0UL, 0xf0UL, "CleanInvalidate 0xc0+0x40\nInvalidate 0x0+0x40\nInvalidate 0x40+0x80")]
    [InlineData(0x10UL, 0xf0UL, "CleanInvalidate 0xc0+0x40\nCleanInvalidate 0x0+0x40\nInvalidate 0x40+0x80")]
    [InlineData(0x10UL, 0x30UL, "CleanInvalidate 0x0+0x40\nCleanInvalidate 0x0+0x40")]
    [InlineData(0x0UL, 0x40UL, "Invalidate 0x0+0x40")]
    public void DcacheInvalPocCleansPartialEdgeLines(ulong start, ulong end, string expected)
    {
        var k = Boot();
        var ops = new List<HwOp>();
        var va = k.Layout.LinearAddress(k.Layout.FirstFreePfn);
        Arm64Cache.DcacheInvalPoc(k, va + start, va + end, "t", ops);
        Assert.Equal(expected, string.Join("\n", ops.Cast<MemoryOp>().Select(m => $"{m.Op.Kind} 0x{m.Pa - FirstPa:x}+0x{m.Length:x}")));
    }

    private static (DmaState State, List<HwOp> Ops, ulong Cpu, ulong Handle) Alloc(string profile, bool coherent, bool initOnAlloc)
    {
        var env = new DmaEnvironment(Profiles.Find(profile)!);
        var state = DmaState.Boot(Boot(initOnAlloc));
        var ops = new List<HwOp>();
        state = DmaApi.DmaAllocAttrs(env, state, new DmaDevice("dev", coherent), 4096, Gfp.GFP_KERNEL, ops, out var cpu, out var handle);
        return (state, ops, cpu, handle);
    }

    [Theory]
    [InlineData("linux-6.4-arm64", "Clean")]
    [InlineData("linux-6.3-arm64", "CleanInvalidate")]
    public void NonCoherentAllocPrepsTheLinearMapBeforeRemappingAndZeroesThroughTheRemap(string profile, string prep)
    {
        var (state, ops, cpu, handle) = Alloc(profile, coherent: false, initOnAlloc: true);
        var pa = FirstPa;
        Assert.Equal(
            $"Write NormalWriteBack 0x{pa:x}+0x1000\n{prep} NormalWriteBack 0x{pa:x}+0x1000\nmap NormalNonCacheable 0x{cpu:x}->0x{pa:x}+0x1000\nWrite NormalNonCacheable 0x{pa:x}+0x1000",
            Show(ops));
        Assert.Equal(pa, handle);
        Assert.True(state.Kernel.Layout.IsVmallocAddr(cpu));
        Assert.Equal(KernelState.LinearMapName, ((MemoryOp)ops[1]).Via!.Name); // maintenance by the linear-map VA
    }

    [Fact]
    public void CoherentAllocUsesTheLinearMapWithoutMaintenance()
    {
        var (state, ops, cpu, _) = Alloc("linux-6.4-arm64", coherent: true, initOnAlloc: false);
        Assert.Equal($"Write NormalWriteBack 0x{FirstPa:x}+0x1000", Show(ops));
        Assert.Equal(state.Kernel.Layout.PhysToVirt(FirstPa), cpu);
    }

    [Fact]
    public void AtomicAllocationComesFromThePoolPreparedAtBootAndIsClearedThroughItsNcAlias()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var ops = new List<HwOp>();
        var dev = new DmaDevice("d", false);
        var s = DmaApi.DmaAllocAttrs(env, DmaState.Boot(Boot()), dev, 64, Gfp.GFP_ATOMIC, ops, out var cpu, out var handle);
        // 1 GiB of RAM: 128 KiB of pool, prepped through the linear map and remapped Normal-NC; then the chunk is cleared.
        Assert.Equal(
            $"Clean NormalWriteBack 0x{FirstPa:x}+0x20000\nmap NormalNonCacheable 0x{cpu:x}->0x{FirstPa:x}+0x20000\nWrite NormalNonCacheable 0x{FirstPa:x}+0x1000",
            Show(ops));
        Assert.Equal(FirstPa, handle);
        ops.Clear();
        s = DmaApi.DmaAllocAttrs(env, s, dev, 64, Gfp.GFP_ATOMIC, ops, out var cpu2, out var handle2);
        Assert.Equal(cpu + 4096, cpu2); // gen_pool first fit, page granular
        Assert.Equal($"Write NormalNonCacheable 0x{FirstPa + 4096:x}+0x1000", Show(ops)); // dma_direct_alloc page-aligns the size first
        ops.Clear();
        s = DmaApi.DmaFreeAttrs(env, s, dev, 64, cpu, handle, DmaAttrs.None, ops, []);
        Assert.Empty(ops); // back to the pool: no unmap, no maintenance
        DmaApi.DmaAllocAttrs(env, s, dev, 64, Gfp.GFP_ATOMIC, ops, out var cpu3, out _);
        Assert.Equal(cpu, cpu3);
        Assert.NotEqual(cpu2, handle2);
    }

    [Fact]
    public void FreeVunmapsAndFreesThePagesFoundFromTheHandle()
    {
        var (state, _, cpu, handle) = Alloc("linux-6.4-arm64", coherent: false, initOnAlloc: false);
        var ops = new List<HwOp>();
        state = DmaApi.DmaFreeAttrs(new DmaEnvironment(Profiles.Linux64Arm64), state, new DmaDevice("dev", false), 4096, cpu, handle, DmaAttrs.None, ops, []);
        Assert.Equal($"unmap 0x{cpu:x}", Show(ops));
        Assert.Empty(state.Kernel.Allocator.Allocated);
        Assert.Empty(state.Coherent);
    }

    [Fact]
    public void CompoundGfpIsRejected()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var ops = new List<HwOp>();
        DmaApi.DmaAllocAttrs(env, DmaState.Boot(Boot()), new DmaDevice("d", false), 64, Gfp.GFP_KERNEL | Gfp.__GFP_COMP, ops, out var cpu, out _);
        Assert.Equal(0UL, cpu);
        Assert.Empty(ops);
    }

    /// <summary>The arm64 table of reference §3.2.4, and the pre-c50f11c6196f FROM_DEVICE map.</summary>
    [Theory]
    [InlineData("clean", DmaDirection.DMA_TO_DEVICE, "Clean", "")]
    [InlineData("clean", DmaDirection.DMA_FROM_DEVICE, "Clean", "Invalidate")]
    [InlineData("clean", DmaDirection.DMA_BIDIRECTIONAL, "Clean", "Invalidate")]
    [InlineData("inval", DmaDirection.DMA_FROM_DEVICE, "Invalidate", "Invalidate")]
    [InlineData("inval", DmaDirection.DMA_TO_DEVICE, "Clean", "")]
    public void StreamingMaintenanceTable(string fromDeviceMap, DmaDirection dir, string onMap, string onUnmap)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64.With(Switches.SyncForDeviceFromDevice, fromDeviceMap));
        var dev = new DmaDevice("d", false);
        var ops = new List<HwOp>();
        var state = DmaState.Boot(Boot());
        var k = state.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", ops, out var pfn);
        state = state with { Kernel = k };
        state = DmaApi.DmaMapSingle(env, state, dev, k.Layout.LinearAddress(pfn), 256, dir, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        Assert.Equal(onMap, string.Join(",", ops.Cast<MemoryOp>().Select(o => o.Op.Kind).Distinct()));
        ops.Clear();
        state = DmaApi.DmaUnmap(env, state, dev, handle, 256, dir, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Equal(onUnmap, string.Join(",", ops.Cast<MemoryOp>().Select(o => o.Op.Kind).Distinct()));
        Assert.Empty(state.Mappings);

        // A coherent device gets no maintenance at all.
        ops.Clear();
        DmaApi.DmaMapSingle(env, state, dev with { Coherent = true }, k.Layout.LinearAddress(pfn), 256, dir, DmaAttrs.None, "dma_map_single", ops, [], out _);
        Assert.Empty(ops);
    }

    [Fact]
    public void MapSingleRejectsVmallocAddresses()
    {
        var (state, _, cpu, _) = Alloc("linux-6.4-arm64", coherent: false, initOnAlloc: false);
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        DmaApi.DmaMapSingle(new DmaEnvironment(Profiles.Linux64Arm64), state, new DmaDevice("dev", false), cpu, 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", ops, findings, out var handle);
        Assert.True(DmaApi.DmaMappingErrorCheck(handle));
        Assert.Empty(ops);
        var warn = Assert.Single(findings);
        Assert.Equal(FindingKinds.MapSingleVmalloc, warn.Kind);
        Assert.StartsWith("dev: rejecting DMA map of vmalloc memory", warn.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("on")]
    [InlineData("off")]
    public void TheVmallocWarnComesBeforeDmaDebugAndWithoutIt(string debug)
    {
        // 4544b9f25e70: dma_map_single_attrs refuses the address before debug_dma_map_single, so E17 never fires for it.
        var text = $"profile linux-6.4-arm64\nset dma_api_debug = {debug}\ndevice d {{ coherent = false }}\ncpu a {{\n  b = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n  h = dma_map_single(d, b, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n}}\n";
        var result = Reports.Checker.CheckText("t.dmc", text, Exploration.ExplorationLimits.Default).Result!;
        Assert.Equal([FindingKinds.MapSingleVmalloc], result.Findings.Select(f => f.Finding.Kind).Distinct().ToArray());
    }

    [Fact]
    public void DmaNoneIsABug()
    {
        var state = DmaState.Boot(Boot());
        Assert.Throws<KernelBugException>(() => DmaApi.SyncForCpu(new DmaEnvironment(Profiles.Linux64Arm64), state, new DmaDevice("d", false), 0x8100_0000, 64, DmaDirection.DMA_NONE, "f", [], []));
    }

    [Fact]
    public void ProfilesDifferOnlyInPrepCoherent()
    {
        Assert.Equal("clean_inval", Profiles.Linux63Arm64.Value(Switches.PrepCoherent));
        Assert.Equal("clean", Profiles.Linux64Arm64.Value(Switches.PrepCoherent));
        Assert.Equal(Profiles.Linux63Arm64.Value(Switches.SyncForDeviceFromDevice), Profiles.Linux64Arm64.Value(Switches.SyncForDeviceFromDevice));
        Assert.All(Switches.All.SelectMany(s => s.Values), v => Assert.False(string.IsNullOrWhiteSpace(v.Commit)));
    }
}

/// <summary>The seed-2 allocation paths: which operations each performs, in order, and what it returns.</summary>
public class Seed2PathTests
{
    private static string Show(IEnumerable<HwOp> ops) => string.Join("\n", ops.Select(op => op switch
    {
        MemoryOp m => $"{m.Op.Kind} {m.Op.Type} 0x{m.Pa:x}+0x{m.Length:x} via {m.Via?.Name}",
        MapOp m => $"map {m.Alias.Type} 0x{m.Alias.Va:x}->0x{m.Alias.Pa:x}+0x{m.Alias.Size:x}",
        UnmapOp u => $"unmap 0x{u.Alias.Va:x}",
        _ => op.ToString()!,
    }));

    private static (DmaState State, List<HwOp> Ops, ulong Cpu, ulong Handle) Alloc(KernelProfile profile, bool coherent, Gfp gfp)
    {
        var env = new DmaEnvironment(profile);
        var s = DmaState.Boot(KernelState.Boot(profile.Layout, new KernelConfig(), HardwareConfig.Default));
        var ops = new List<HwOp>();
        s = DmaApi.DmaAllocAttrs(env, s, new DmaDevice("d", coherent), 4096, gfp, ops, out var cpu, out var handle);
        return (s, ops, cpu, handle);
    }

    [Fact]
    public void Arm32RemapAllocatorClearsAndFlushesTheLinearAliasThenVmaps()
    {
        // arch_dma_alloc → __dma_alloc → remap_allocator: __dma_clear_buffer (memset + dmac_flush_range via the linear map), then vmap.
        var (_, ops, cpu, handle) = Alloc(Profiles.Linux513ArmRpi4, coherent: false, Gfp.GFP_KERNEL);
        Assert.Equal(
            "Write NormalWriteBack 0x1000000+0x1000 via linear map\nCleanInvalidate NormalWriteBack 0x1000000+0x1000 via linear map\nmap NormalNonCacheable 0xf0800000->0x1000000+0x1000",
            Show(ops));
        Assert.Equal(0xf080_0000UL, cpu);
        Assert.Equal(0xc100_0000UL, handle); // RPi4: bus address = PA + 0xc0000000
    }

    [Fact]
    public void Arm32PoolAllocatorDoesNotClearAReusedChunk()
    {
        var env = new DmaEnvironment(Profiles.Linux513ArmRpi4);
        var (s, ops, cpu, handle) = Alloc(Profiles.Linux513ArmRpi4, coherent: false, Gfp.GFP_ATOMIC);
        // The pool's creation at boot clears and flushes it once; the allocation itself does nothing.
        Assert.Equal(
            "Write NormalWriteBack 0x1000000+0x40000 via linear map\nCleanInvalidate NormalWriteBack 0x1000000+0x40000 via linear map\nmap NormalNonCacheable 0xf0800000->0x1000000+0x40000",
            Show(ops));
        ops.Clear();
        s = DmaApi.DmaFreeAttrs(env, s, new DmaDevice("d", false), 4096, cpu, handle, DmaAttrs.None, ops, []);
        DmaApi.DmaAllocAttrs(env, s, new DmaDevice("d", false), 4096, Gfp.GFP_ATOMIC, ops, out var again, out _);
        Assert.Equal(cpu, again);
        Assert.Empty(ops);
    }

    [Fact]
    public void XenAllocGoesThroughDmaDirectAndClearsAgainThroughTheReturnedAddress()
    {
        var (_, ops, cpu, _) = Alloc(Profiles.Linux513Arm64Xen, coherent: false, Gfp.GFP_KERNEL);
        Assert.Equal(
            "CleanInvalidate NormalWriteBack 0x1000000+0x1000 via linear map\nmap NormalNonCacheable 0xffff800010000000->0x1000000+0x1000\n" +
            "Write NormalNonCacheable 0x1000000+0x1000 via dma_alloc_coherent(d) NC remap\nWrite NormalNonCacheable 0x1000000+0x1000 via dma_alloc_coherent(d) NC remap",
            Show(ops));
        Assert.Equal(0xffff_8000_1000_0000UL, cpu);
    }

    [Fact]
    public void ArmCoherentDmaOpsUseTheSimpleAllocatorWithoutFlush()
    {
        var (_, ops, cpu, _) = Alloc(Profiles.Linux513ArmImx6, coherent: true, Gfp.GFP_KERNEL);
        Assert.Equal("Write NormalWriteBack 0x11000000+0x1000 via linear map", Show(ops));
        Assert.Equal(0xc100_0000UL, cpu); // PAGE_OFFSET + (0x11000000 - PHYS_OFFSET 0x10000000)
    }

    [Theory]
    [InlineData("virt_to_page", 0x30800UL)]
    [InlineData("vmalloc_aware", 0x1000UL)]
    public void DmaCommonMmapFindsThePageAsTheSwitchSays(string value, ulong expectedPfn)
    {
        var profile = Profiles.Linux513ArmXenRpi4.With(Switches.CommonVaddrToPage, value);
        var env = new DmaEnvironment(profile);
        var (s, _, cpu, handle) = Alloc(profile, coherent: false, Gfp.GFP_KERNEL);
        var findings = new List<Finding>();
        s = DmaApi.DmaMmapAttrs(env, s, new DmaDevice("d", false), cpu, handle, 4096, DmaAttrs.None, "buf", [], findings, out var va);
        var mapping = s.Kernel.UserMappingAt(va)!;
        Assert.Equal(expectedPfn, mapping.Pfn);
        Assert.Equal(MemoryType.NormalNonCacheable, mapping.Alias.Type);
        Assert.Equal(value == "virt_to_page" ? [FindingKinds.UserMappingForeignPage] : Array.Empty<string>(), findings.Select(f => f.Kind).ToArray());
    }
}
