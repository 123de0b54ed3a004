using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>The default CMA area (cma=), dma_alloc_contiguous and cma_release, and the dram setting that makes room for it.</summary>
public class CmaTests
{
    private static readonly PlatformLayout Board4G = PlatformLayout.Arm64Va48.WithDram(4UL << 30, out _)!;

    private static KernelState Boot(ulong cma, bool initOnAlloc = false, bool initOnFree = false, SwiotlbBoot swiotlb = SwiotlbBoot.Off) =>
        KernelState.Boot(Board4G, new KernelConfig(initOnAlloc, initOnFree, Swiotlb: swiotlb, CmaBytes: cma), HardwareConfig.Default);

    private static string Show(IEnumerable<HwOp> ops) => string.Join("\n", ops.Select(op => op switch
    {
        MemoryOp m => $"{m.Op.Kind} {m.Op.Type} 0x{m.Pa:x}+0x{m.Length:x} ({m.Origin})",
        MapOp m => $"map {m.Alias.Type} 0x{m.Alias.Pa:x}+0x{m.Alias.Size:x}",
        UnmapOp u => $"unmap 0x{u.Alias.Pa:x}",
        _ => op.ToString()!,
    }));

    [Fact]
    public void TheAreaIsReservedTopDownBelowFourGibAndAligned()
    {
        var k = Boot(1000UL << 20); // rounded up to CMA_MIN_ALIGNMENT_BYTES (2 MiB): 1000 MiB is already a multiple
        var area = k.Allocator.Cma!;
        Assert.Equal(0x1_0000_0000UL - (1000UL << 20), PlatformLayout.PfnToPhys(area.BasePfn));
        Assert.Equal((1000UL << 20) >> 12, area.Count);
        Assert.Equal(OwnerKind.Free, k.OwnerOf(area.BasePfn).Kind);
        Assert.Equal((1002UL << 20) >> 12, Boot(1001UL << 20).Allocator.Cma!.Count);
    }

    [Fact]
    public void TheSwiotlbPoolGoesBelowTheArea()
    {
        var k = Boot(1UL << 30, swiotlb: SwiotlbBoot.On);
        var area = k.Allocator.Cma!;
        Assert.Equal(area.BasePfn - (64UL << 20 >> 12), k.SwiotlbPfn);
    }

    [Fact]
    public void CmaOnlyOnArm64AndDramOnlyOnOneBankArm64Layouts()
    {
        Assert.Throws<NotModelledException>(() => KernelState.Boot(PlatformLayout.Arm32Imx6, new KernelConfig(CmaBytes: 16UL << 20), HardwareConfig.Default));
        Assert.Null(PlatformLayout.Arm64Rpi4.WithDram(8UL << 30, out var why));
        Assert.Contains("one DRAM bank", why, StringComparison.Ordinal);
        Assert.Throws<NotModelledException>(() => Boot(4UL << 30)); // more than the board holds below 4 GiB
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, true)]
    [InlineData(true, true, false)] // init_on_free takes over
    public void CmaAllocClearsOnlyWithInitOnAllocAndIsFirstFitAligned(bool initOnAlloc, bool initOnFree, bool zeroes)
    {
        var ops = new List<HwOp>();
        var k = Boot(64UL << 20, initOnAlloc, initOnFree);
        var area = k.Allocator.Cma!;
        k = Cma.Alloc(k, 3, 2, "a", ops, out var first)!;
        Assert.Equal(area.BasePfn, first);
        Assert.Equal(zeroes ? $"Write NormalWriteBack 0x{first << 12:x}+0x3000 (cma_alloc: alloc_contig_range: post_alloc_hook: kernel_init_pages (init_on_alloc))" : string.Empty, Show(ops));

        // The next aligned run: 3 pages at order-2 alignment start 4 frames on.
        k = Cma.Alloc(k, 3, 2, "b", ops, out var second)!;
        Assert.Equal(first + 4, second);
        Assert.Equal(new PageOwner(OwnerKind.Allocation, "b"), k.OwnerOf(second + 2));

        // Released frames are free again, named after their last owner, and reused first fit.
        ops.Clear();
        k = Cma.Release(k, first, 3, null, "dma_free_contiguous", ops, null);
        Assert.Equal(initOnFree ? $"Write NormalWriteBack 0x{first << 12:x}+0x3000 (cma_release: free_contig_range: free_pages_prepare: kernel_init_pages (init_on_free))" : string.Empty, Show(ops));
        Assert.Equal(new PageOwner(OwnerKind.Free, "a"), k.OwnerOf(first));
        Cma.Alloc(k, 1, 0, "c", ops, out var third);
        Assert.Equal(first, third);
        Assert.Throws<KernelBugException>(() => Cma.Release(k, first, 3, null, "dma_free_contiguous", ops, null));
    }

    [Fact]
    public void AFullAreaFallsBackToThePageAllocator()
    {
        var k = Boot(4UL << 20);
        Assert.Null(Cma.Alloc(k, 2048, 8, "big", [], out _));
        var env = new DmaEnvironment(Profiles.Linux64Arm64 with { Layout = Board4G });
        var s = DmaApi.DmaAllocAttrs(env, DmaState.Boot(k), new DmaDevice("dev", false), 8UL << 20, Gfp.GFP_KERNEL, [], out _, out var handle);
        Assert.Equal(DmaApi.DmaMappingError, handle); // 8 MiB: beyond MAX_ORDER and beyond the area: NULL
        s = DmaApi.DmaAllocAttrs(env, DmaState.Boot(k), new DmaDevice("dev", false), 2UL << 20, Gfp.GFP_KERNEL, [], out _, out handle);
        Assert.True(k.Allocator.Cma!.Contains(handle >> 12));
        Assert.Single(s.Coherent);
    }

    [Fact]
    public void AGibibyteCoherentBufferComesFromTheAreaWithTheV64Sequence()
    {
        var k = Boot(1536UL << 20, initOnAlloc: true);
        var env = new DmaEnvironment(Profiles.Linux64Arm64 with { Layout = Board4G });
        var ops = new List<HwOp>();
        var dev = new DmaDevice("scm", false);
        var s = DmaApi.DmaAllocAttrs(env, DmaState.Boot(k), dev, 1UL << 30, Gfp.GFP_KERNEL, ops, out var cpu, out var handle);
        var pa = PlatformLayout.PfnToPhys(k.Allocator.Cma!.BasePfn);
        Assert.Equal(pa, handle);
        Assert.Equal(string.Join("\n",
            $"Write NormalWriteBack 0x{pa:x}+0x40000000 (cma_alloc: alloc_contig_range: post_alloc_hook: kernel_init_pages (init_on_alloc))",
            $"Clean NormalWriteBack 0x{pa:x}+0x40000000 (arch_dma_prep_coherent [arm64.prep_coherent=clean]: dcache_clean_poc)",
            $"map NormalNonCacheable 0x{pa:x}+0x40000000",
            $"Write NormalNonCacheable 0x{pa:x}+0x40000000 (dma_direct_alloc: memset(ret, 0, size) through the NC remap)"), Show(ops));

        // dma_free_coherent: vunmap, then cma_release (dma_free_contiguous); nothing is written without init_on_free.
        ops.Clear();
        s = DmaApi.DmaFreeAttrs(env, s, dev, 1UL << 30, cpu, handle, DmaAttrs.None, ops, []);
        Assert.Equal($"unmap 0x{pa:x}", Show(ops));
        Assert.Equal(new PageOwner(OwnerKind.Free, "dma_alloc_coherent(scm)"), s.Kernel.OwnerOf(handle >> 12));
    }

    [Fact]
    public void TheSettingsParseSizesAndSayWhatIsWrong()
    {
        var text = "profile linux-6.4-arm64\nset dram = 2G\nset cma = 256M\ndevice d { coherent = false }\ncpu c {\n  b = dma_alloc_coherent(d, 8K, GFP_KERNEL)\n}\n";
        var scenario = Binder.Load("s.dmc", text);
        Assert.Equal(256UL << 20, scenario.KernelConfig.CmaBytes);
        Assert.Equal(0x1_0000_0000UL, scenario.Profile.Layout.RamEnd);
        var bad = Assert.Throws<ScenarioException>(() => Binder.Load("s.dmc", text.Replace("256M", "3000", StringComparison.Ordinal)));
        Assert.Contains("a whole number of 4 KiB pages", bad.Message, StringComparison.Ordinal);
        bad = Assert.Throws<ScenarioException>(() => Binder.Load("s.dmc", text.Replace("linux-6.4-arm64", "linux-5.13-arm-rpi4", StringComparison.Ordinal)));
        Assert.Contains("one DRAM bank", bad.Message, StringComparison.Ordinal);
    }
}
