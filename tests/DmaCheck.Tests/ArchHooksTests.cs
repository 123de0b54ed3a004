using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The MIPS, RISC-V and pre-v2.6.34 32-bit arm arch_sync_dma_* tables as exact operation sequences, the all-levels
/// maintenance of the RISC-V cores, and the hardware flag of a CPU that never fills a line on its own.
/// </summary>
public class ArchHooksTests
{
    private static string Show(IEnumerable<HwOp> ops, ulong basePa) => string.Join(" | ", ops.OfType<MemoryOp>()
        .Select(m => $"{m.Op.Kind} {m.Pa - basePa}..{m.Pa - basePa + m.Length}"));

    private static (KernelState K, ulong Pa) Boot(KernelProfile profile)
    {
        var layout = profile.Layout;
        var hw = (HardwareConfig.Default with { OuterCache = layout.OuterCache, SpeculativeFill = layout.SpeculativeFill }).WithLines(layout.L1LineSize, layout.OuterLineSize);
        var k = KernelState.Boot(layout, new KernelConfig(), hw).AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        return (k, PlatformLayout.PfnToPhys(pfn));
    }

    private static (string Map, string Unmap) MapUnmap(KernelProfile profile, DmaDirection dir, ulong offset, ulong size)
    {
        var env = new DmaEnvironment(profile);
        var (k, pa) = Boot(profile);
        var map = new List<HwOp>();
        var unmap = new List<HwOp>();
        switch (profile.Arch)
        {
            case Arch.Mips32:
                MipsDmaHooks.ArchSyncDmaForDevice(k, pa + offset, size, dir, "map", map);
                MipsDmaHooks.ArchSyncDmaForCpu(env, k, pa + offset, size, dir, "unmap", unmap);
                break;
            case Arch.RiscV64:
                RiscvDmaHooks.ArchSyncDmaForDevice(env, k, pa + offset, size, dir, "map", map);
                RiscvDmaHooks.ArchSyncDmaForCpu(k, pa + offset, size, dir, "unmap", unmap);
                break;
            case Arch.Ppc32:
                PpcDmaHooks.ArchSyncDmaForDevice(env, k, pa + offset, size, dir, "map", map);
                PpcDmaHooks.ArchSyncDmaForCpu(env, k, pa + offset, size, dir, "unmap", unmap);
                break;
            default:
                Arm32DmaHooks.ArchSyncDmaForDevice(k, pa + offset, size, dir, "map", map);
                Arm32DmaHooks.ArchSyncDmaForCpu(env, k, pa + offset, size, dir, "unmap", unmap);
                break;
        }

        return (Show(map, pa), Show(unmap, pa));
    }

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, "CleanInvalidate 0..128", "CleanInvalidate 0..128")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, "Invalidate 0..128", "Invalidate 0..128")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, "CleanInvalidate 0..128", "CleanInvalidate 0..128")]
    public void MipsOnABmips5000RepeatsTheMaintenanceAfterTheTransfer(DmaDirection dir, string map, string unmap) =>
        Assert.Equal((map, unmap), MapUnmap(Profiles.Linux58MipsBmips5000, dir, 0, 128));

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, "CleanInvalidate 0..128")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, "Invalidate 0..128")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, "CleanInvalidate 0..128")]
    public void MipsWithoutPostDmaFlushDoesNothingAfterTheTransfer(DmaDirection dir, string map)
    {
        Assert.Equal((map, string.Empty), MapUnmap(Profiles.Linux58MipsMalta, dir, 0, 128));
        Assert.Equal((map, string.Empty), MapUnmap(Profiles.Linux58MipsBmips5000.With(Switches.MipsPostDmaFlush, "r10000"), dir, 0, 128));
    }

    [Fact]
    public void MipsHitInvalidateDiscardsPartlyCoveredEdgeLinesWhole()
    {
        // r4k_dma_cache_inv: Hit_Invalidate on every line the range touches (32-byte lines), no clean of the edges.
        var (k, pa) = Boot(Profiles.Linux58MipsMalta);
        var ops = new List<HwOp>();
        MipsDmaHooks.ArchSyncDmaForDevice(k, pa + 8, 40, DmaDirection.DMA_FROM_DEVICE, "map", ops);
        var op = Assert.IsType<MemoryOp>(Assert.Single(ops));
        Assert.Equal(LineOpKind.Invalidate, op.Op.Kind);
        Assert.Equal([pa, pa + 32], op.Lines(k.Hardware.LineSize).Select(l => l.LinePa));

        // A dirty neighbour in the first line is lost: the discard is of the whole line.
        var dirty = LineSemantics.Apply(LineSemantics.InitialStates(k.Hardware, WriterTable.Old).Single(),
            new LineAccess(LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, 9), 0, 8, 0), k.Hardware).Single;
        var after = LineSemantics.Apply(dirty, op.AccessAt(pa, k.Hardware.LineSize)!.Value, k.Hardware).Single;
        Assert.Equal(CacheState.Invalid, after.Cache);
        Assert.Equal(LineBytes.Uniform(32, WriterTable.Old), after.Ram);
    }

    [Fact]
    public void MipsRangesAsLargeAsTheCacheStopAsNotModelled()
    {
        var (k, pa) = Boot(Profiles.Linux58MipsMalta);
        Assert.Throws<NotModelledException>(() => MipsDmaHooks.ArchSyncDmaForDevice(k, pa, 32UL << 10, DmaDirection.DMA_FROM_DEVICE, "map", []));
    }

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, "CleanAllLevels 0..128", "")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, "CleanAllLevels 0..128", "CleanInvalidateAllLevels 0..128")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, "CleanInvalidateAllLevels 0..128", "CleanInvalidateAllLevels 0..128")]
    public void RiscvZicbomTableOfV61(DmaDirection dir, string map, string unmap) =>
        Assert.Equal((map, unmap), MapUnmap(Profiles.Linux61RiscvZicbom, dir, 0, 128));

    [Fact]
    public void RiscvCmoLoopStartsAtTheBlockHoldingTheStart()
    {
        // ALT_CMO_OP rounds the start down to riscv_cbom_block_size (64) and runs to start + size.
        Assert.Equal(("CleanAllLevels 0..104", string.Empty), MapUnmap(Profiles.Linux61RiscvZicbom, DmaDirection.DMA_TO_DEVICE, 40, 64));
    }

    [Fact]
    public void THeadCleanIsL1OnlyBefore8eb8fe67e2c8()
    {
        Assert.Equal(("Clean 0..128", string.Empty), MapUnmap(Profiles.Linux61RiscvTh1520, DmaDirection.DMA_TO_DEVICE, 0, 128));
        Assert.Equal(("CleanAllLevels 0..128", string.Empty), MapUnmap(Profiles.Linux61RiscvTh1520.With(Switches.RiscvTheadClean, "cva"), DmaDirection.DMA_TO_DEVICE, 0, 128));
        Assert.Equal(("CleanInvalidateAllLevels 0..128", "CleanInvalidateAllLevels 0..128"), MapUnmap(Profiles.Linux61RiscvTh1520, DmaDirection.DMA_BIDIRECTIONAL, 0, 128));
    }

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, 0UL, 64UL, "Clean 0..64")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, 0UL, 64UL, "CleanInvalidate 0..64")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 0UL, 64UL, "Invalidate 0..64")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 8UL, 32UL, "CleanInvalidate 8..40")]
    public void PowerpcDmaSyncIsTheSameBothWays(DmaDirection dir, ulong offset, ulong size, string op)
    {
        var expected = op;
        Assert.Equal((expected, expected), MapUnmap(Profiles.Linux54Ppc8xx, dir, offset, size));
    }

    [Fact]
    public void PowerpcBefore03d70617b8a7InvalidatesAnUnalignedRange() =>
        Assert.Equal(("Invalidate 8..40", "Invalidate 8..40"), MapUnmap(Profiles.Linux54Ppc8xx.With(Switches.PpcFromDeviceUnaligned, "invalidate"), DmaDirection.DMA_FROM_DEVICE, 8, 32));

    [Fact]
    public void Arm32BeforeTheSpeculativePrefetchFixDoesNothingOnUnmap()
    {
        var fixedUnmap = MapUnmap(Profiles.Linux513ArmImx6, DmaDirection.DMA_FROM_DEVICE, 0, 128).Unmap;
        Assert.Equal("OuterInvalidate 0..128 | Invalidate 0..128", fixedUnmap);
        Assert.Equal(string.Empty, MapUnmap(Profiles.Linux513ArmImx6.With(Switches.Arm32DevToCpu, "none"), DmaDirection.DMA_FROM_DEVICE, 0, 128).Unmap);
    }

    private static readonly HardwareConfig TwoLevels = HardwareConfig.Default with { OuterCache = true };

    private static LineState Step(LineState s, LineOpKind kind, HardwareConfig config) =>
        LineSemantics.Apply(s, new LineAccess(LineOp.Maintenance(kind), 0, 64, 0), config).Single;

    [Fact]
    public void AllLevelsMaintenanceReachesRamThroughTheOuterCache()
    {
        var payload = LineBytes.Uniform(64, 8);
        var dirty = LineSemantics.Apply(LineSemantics.InitialStates(TwoLevels, WriterTable.Old).Single(),
            new LineAccess(LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, 8), 0, 64, 0), TwoLevels).Single;

        var cleaned = Step(dirty, LineOpKind.CleanAllLevels, TwoLevels);
        Assert.Equal((CacheState.Clean, CacheState.Clean, payload), (cleaned.Cache, cleaned.Outer, cleaned.Ram));

        var flushed = Step(dirty, LineOpKind.CleanInvalidateAllLevels, TwoLevels);
        Assert.Equal((CacheState.Invalid, CacheState.Invalid, payload), (flushed.Cache, flushed.Outer, flushed.Ram));

        var discarded = Step(dirty, LineOpKind.InvalidateAllLevels, TwoLevels);
        Assert.Equal((CacheState.Invalid, CacheState.Invalid), (discarded.Cache, discarded.Outer));
        Assert.Equal(LineBytes.Uniform(64, WriterTable.Old), discarded.Ram);

        // The L1-only clean leaves the data dirty in the outer level.
        var l1 = Step(dirty, LineOpKind.Clean, TwoLevels);
        Assert.Equal((CacheState.Clean, CacheState.Dirty), (l1.Cache, l1.Outer));
        Assert.Equal(LineBytes.Uniform(64, WriterTable.Old), l1.Ram);
    }

    [Fact]
    public void AllLevelsMaintenanceWithoutAnOuterLevelIsTheInnerOperation()
    {
        var config = HardwareConfig.Default;
        var dirty = LineSemantics.Apply(LineSemantics.InitialStates(config, WriterTable.Old).Single(),
            new LineAccess(LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, 8), 0, 64, 0), config).Single;
        Assert.Equal(Step(dirty, LineOpKind.Clean, config), Step(dirty, LineOpKind.CleanAllLevels, config));
        Assert.Equal(Step(dirty, LineOpKind.CleanInvalidate, config), Step(dirty, LineOpKind.CleanInvalidateAllLevels, config));
        Assert.Equal(Step(dirty, LineOpKind.Invalidate, config), Step(dirty, LineOpKind.InvalidateAllLevels, config));
    }

    [Fact]
    public void ACpuThatDoesNotSpeculateNeverFillsALine()
    {
        var alias = new Alias("lm", 0x8000_0000, 0, 1UL << 20, MemoryType.NormalWriteBack);
        var speculating = Mmu.Empty.Map(alias);
        var inOrder = Mmu.Empty.WithSpeculation(false).Map(alias);
        Assert.True(speculating.IsFillable(0x40));
        Assert.False(inOrder.IsFillable(0x40));
        Assert.True(inOrder.IsFillable(0, 4096)); // the range question is about the translations only
        Assert.NotEqual(speculating, inOrder);
        Assert.False(inOrder.Unmap(alias).Speculates);

        // Booted on the Malta layout, the kernel's page tables carry the core's flag.
        var (k, pa) = Boot(Profiles.Linux58MipsMalta);
        Assert.False(k.Mmu.IsFillable(pa));
        Assert.True(Boot(Profiles.Linux58MipsBmips5000).K.Mmu.IsFillable(pa));
    }

    [Theory]
    [InlineData("linux-5.8-mips-malta", "KSEG1")]
    [InlineData("linux-6.1-riscv64-th1520", "non-cacheable remap")]
    [InlineData("linux-5.4-ppc-8xx", "powerpc")]
    public void CoherentAllocationForANonCoherentDeviceStopsAsNotModelled(string profile, string what)
    {
        var text = $"scenario \"t\"\nprofile {profile}\ndevice d {{ coherent = false }}\ncpu driver {{\n  buf = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n  write buf[0..64] = data\n}}\n";
        var scenario = Binder.Load("t.dmc", text);
        var result = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        Assert.NotNull(result.Inconclusive);
        Assert.Contains("not modelled", result.Inconclusive, StringComparison.Ordinal);
        Assert.Contains(what, result.Inconclusive, StringComparison.Ordinal);
    }
}
