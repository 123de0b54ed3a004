using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>swiotlb (kernel/dma/swiotlb.c as of v6.4): slot search, and the exact copy and maintenance sequence of each switch value.</summary>
public class SwiotlbTests
{
    private static readonly DmaDevice Nc = new("d", false);

    private static DmaState Boot(SwiotlbBoot mode = SwiotlbBoot.Force, int slots = KernelConfig.DefaultSwiotlbSlots) =>
        DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(Swiotlb: mode, SwiotlbSlots: slots), HardwareConfig.Default));

    private static SwiotlbPool Pool(int slots = 1024) => new(0x1_0000_0000, slots, true, 0, System.Collections.Immutable.ImmutableSortedDictionary<int, SwiotlbAllocation>.Empty);

    [Fact]
    public void TheSearchIsFirstFitFromARotatingIndex()
    {
        var pool = Pool();
        pool = pool.Allocate(Nc, 0x8000_0000, 100, "a", out var a)!;
        pool = pool.Allocate(Nc, 0x8000_1000, 100, "b", out var b)!;
        Assert.Equal((0, 1), (a.Index, b.Index));

        // Slot 0 is free again, but the index has moved on past b.
        pool = pool.Release(a).Allocate(Nc, 0x8000_2000, 3000, "c", out var c)!;
        Assert.Equal((2, 2), (c.Index, c.Slots));
    }

    [Fact]
    public void APageOrMoreStartsOnASlotThatMatchesThePageOffset()
    {
        var pool = Pool().Allocate(Nc, 0x8000_0000, 100, "a", out _)!;
        pool.Allocate(Nc, 0x8000_1000, 4096, "b", out var b);
        Assert.Equal(2, b.Index);

        // v6.4 (0eee5ae10256): bit 11 of the slot must match the original's, so a page-sized map of buf + 0x800 takes an odd slot.
        Pool().Allocate(Nc, 0x8000_0800, 4096, "c", out var c);
        Assert.Equal(1, c.Index);
    }

    [Fact]
    public void NoAllocationSpansASegmentOf128Slots()
    {
        var pool = Pool() with { SearchIndex = 126 };
        pool.Allocate(Nc, 0x8000_0000, 3 * 2048, "a", out var a);
        Assert.Equal(128, a.Index);
        Assert.Null(Pool().Allocate(Nc, 0x8000_0000, 129 * 2048, "too big", out _));
    }

    [Fact]
    public void MinAlignMaskKeepsTheLowBitsOfTheOriginalAddress()
    {
        var nvme = Nc with { MinAlignMask = 0xfff };
        var pool = Pool();
        pool = pool.Allocate(nvme, 0x8000_0840, 512, "a", out var a)!;
        var tlb = pool.SlotAddress(a.Index) + a.Offset;
        Assert.Equal(0x840UL, tlb & 0xfff);
        Assert.Equal(0x40UL, a.Offset);
        Assert.Equal(1, a.Index); // bit 11 of the slot address must match the original's
    }

    [Fact]
    public void AFullPoolFailsTheMappingWithTheKernelsWarning()
    {
        var s = Boot(slots: 128);
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 7, "big", [], out var pfn);
        s = s with { Kernel = k };
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var findings = new List<Finding>();
        s = DmaApi.DmaMapSingle(env, s, Nc with { Coherent = true }, k.Layout.LinearAddress(pfn), 128 * 2048, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], findings, out var first);
        Assert.False(DmaApi.DmaMappingErrorCheck(first));
        DmaApi.DmaMapSingle(env, s, Nc with { Coherent = true }, k.Layout.LinearAddress(pfn), 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], findings, out var second);
        Assert.True(DmaApi.DmaMappingErrorCheck(second));
        Assert.Contains("swiotlb buffer is full (sz: 64 bytes), total 128 (slots), used 128 (slots)", Assert.Single(findings).Message);
    }

    /// <summary>What a map, sync or unmap does, in order: copies into and out of the bounce slots, and the DC operations (one entry per run of the same instruction).</summary>
    private static string Sequence(IEnumerable<HwOp> ops, ulong tlbBase)
    {
        var names = ops.Select(op => op switch
        {
            CopyOp copy => copy.DstPa >= tlbBase ? "copy-in" : "copy-out",
            MemoryOp mem => mem.Op.Mnemonic,
            _ => op.GetType().Name,
        }).ToList();
        return string.Join(" ", names.Where((n, i) => i == 0 || names[i - 1] != n));
    }

    [Theory]
    [InlineData("to_device_only", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "DC CVAC")]
    [InlineData("to_device_only", DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "copy-in DC CVAC")]
    [InlineData("to_device_only", DmaDirection.DMA_BIDIRECTIONAL, DmaAttrs.None, "copy-in DC CVAC")]
    [InlineData("to_device_only", DmaDirection.DMA_TO_DEVICE, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, "")]
    [InlineData("unless_overwrite", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "copy-in DC CVAC")]
    [InlineData("unless_overwrite", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.DMA_ATTR_OVERWRITE, "DC CVAC")]
    [InlineData("unless_overwrite", DmaDirection.DMA_TO_DEVICE, DmaAttrs.DMA_ATTR_OVERWRITE, "copy-in DC CVAC")]
    [InlineData("unless_overwrite", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, "")]
    [InlineData("always", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "copy-in DC CVAC")]
    [InlineData("always", DmaDirection.DMA_FROM_DEVICE, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, "copy-in")]
    public void MapBounceFollowsTheSwitch(string value, DmaDirection dir, DmaAttrs attrs, string expected)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64.With(Switches.SwiotlbMapBounce, value));
        var s = Boot();
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        s = s with { Kernel = k };
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSingle(env, s, Nc, k.Layout.LinearAddress(pfn), 256, dir, attrs, "dma_map_single", ops, [], out var handle);
        Assert.Equal(expected, Sequence(ops, s.Swiotlb!.Start));
        Assert.Equal(s.Swiotlb.Start, k.Layout.DmaToPhys(handle));
        Assert.Equal(s.Swiotlb.Start, s.Mappings.Single().Tlb);
    }

    [Theory]
    [InlineData("by_direction", DmaDirection.DMA_FROM_DEVICE, "DC CVAC")]
    [InlineData("by_direction", DmaDirection.DMA_TO_DEVICE, "copy-in DC CVAC")]
    [InlineData("by_direction", DmaDirection.DMA_BIDIRECTIONAL, "copy-in DC CVAC")]
    [InlineData("always", DmaDirection.DMA_FROM_DEVICE, "copy-in DC CVAC")]
    public void SyncForDeviceCopiesThenCleans(string value, DmaDirection dir, string expected)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64.With(Switches.SwiotlbSyncForDeviceBounce, value));
        var (s, handle) = Mapped(env, dir);
        var ops = new List<HwOp>();
        DmaApi.SyncForDevice(env, s, Nc, handle, 256, dir, "dma_sync_single_for_device", ops, []);
        Assert.Equal(expected, Sequence(ops, s.Swiotlb!.Start));
    }

    [Theory]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, "DC IVAC copy-out")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, "DC IVAC copy-out")]
    [InlineData(DmaDirection.DMA_TO_DEVICE, "")]
    public void SyncForCpuAndUnmapInvalidateThenCopyBack(DmaDirection dir, string expected)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, handle) = Mapped(env, dir);
        var ops = new List<HwOp>();
        DmaApi.SyncForCpu(env, s, Nc, handle, 256, dir, "dma_sync_single_for_cpu", ops, []);
        Assert.Equal(expected, Sequence(ops, s.Swiotlb!.Start));

        ops.Clear();
        var after = DmaApi.DmaUnmap(env, s, Nc, handle, 256, dir, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Equal(expected, Sequence(ops, s.Swiotlb.Start));
        Assert.Empty(after.Swiotlb!.Used);
        Assert.Empty(after.Mappings);
    }

    [Fact]
    public void APartialSyncAtAnOffsetCopiesJustThoseBytes()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, handle) = Mapped(env, DmaDirection.DMA_FROM_DEVICE);
        var ops = new List<HwOp>();
        DmaApi.SyncForCpu(env, s, Nc, handle + 64, 32, DmaDirection.DMA_FROM_DEVICE, "dma_sync_single_for_cpu", ops, []);
        var copy = Assert.Single(ops.OfType<CopyOp>());
        var orig = s.Mappings.Single().Phys;
        Assert.Equal((s.Swiotlb!.Start + 64, orig + 64, 32UL), (copy.SrcPa, copy.DstPa, copy.Length));
    }

    [Fact]
    public void ASyncPastTheSlotsWarnsAndIsTruncated()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var (s, handle) = Mapped(env, DmaDirection.DMA_FROM_DEVICE);
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        DmaApi.SyncForCpu(env, s, Nc with { Coherent = true }, handle + 200, 100, DmaDirection.DMA_FROM_DEVICE, "dma_sync_single_for_cpu", ops, findings);
        Assert.Equal(56UL, Assert.Single(ops.OfType<CopyOp>()).Length);
        Assert.Contains("Buffer overflow detected. Allocation size: 56. Mapping size: 100.", Assert.Single(findings).Message);
    }

    [Fact]
    public void AnAddressTheDeviceCannotReachBouncesOnlyWhenThereIsAPool()
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var narrow = Nc with { Coherent = true, DmaMaskBits = 31 }; // DRAM is at 0x80000000..0xc0000000
        foreach (var mode in new[] { SwiotlbBoot.Off, SwiotlbBoot.On })
        {
            var s = Boot(mode);
            var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
            var after = DmaApi.DmaMapSingle(env, s with { Kernel = k }, narrow, k.Layout.LinearAddress(pfn), 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], [], out var handle);

            // Without a pool, "DMA addr overflow"; with one, the pool (below 4 GiB, not below 2 GiB) is out of reach too:
            // swiotlb_map unmaps again ("swiotlb addr overflow"). Either way DMA_MAPPING_ERROR, and no slot is kept.
            Assert.True(DmaApi.DmaMappingErrorCheck(handle));
            Assert.True(after.Swiotlb is null || after.Swiotlb.Used.IsEmpty);
        }

        var on = Boot(SwiotlbBoot.On);
        var k2 = on.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn2);
        var mapped = DmaApi.DmaMapSingle(env, on with { Kernel = k2 }, Nc with { Coherent = true }, k2.Layout.LinearAddress(pfn2), 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], [], out var direct);
        Assert.Equal(PlatformLayout.PfnToPhys(pfn2), direct); // within the 32-bit mask: no bounce
        Assert.Null(mapped.Mappings.Single().Tlb);
    }

    /// <summary>dma.kmalloc_bounce=on (v6.5): a small non-coherent FROM_DEVICE mapping bounces; off, it is maintained in place.</summary>
    [Theory]
    [InlineData(true, 32UL, "copy-in DC CVAC")]
    [InlineData(true, 64UL, "DC CVAC")]
    [InlineData(false, 32UL, "DC CVAC")]
    public void SmallKmallocMappingsBounceOnlyWithKmallocBouncing(bool bounce, ulong size, string expected)
    {
        var config = new KernelConfig(Swiotlb: SwiotlbBoot.On, KmallocBounce: bounce, KmallocMinalign: bounce ? 8 : 128);
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, config, HardwareConfig.Default));
        var k = Kmalloc.Alloc(s.Kernel, size, Gfp.GFP_KERNEL, [], out var va);
        var env = new DmaEnvironment(Profiles.Linux64Arm64.With(Switches.KmallocBounce, bounce ? "on" : "off"));
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSingle(env, s with { Kernel = k }, Nc, va, size, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_single", ops, [], out _);
        Assert.Equal(expected, Sequence(ops, s.Swiotlb!.Start));
    }

    /// <summary>
    /// v6.4 swiotlb_bounce works from the slot's own bookkeeping: a partial sync whose address lies in a later slot below
    /// the original's aligned offset is refused ("Access before mapping start detected"), and one that starts past the
    /// allocation is refused too ("Buffer overflow detected ... M+O"). Neither copies anything.
    /// </summary>
    [Theory]
    [InlineData(0x780UL, 64UL, "Access before mapping start detected. orig offset 256, requested offset 128.")]
    [InlineData(4096UL + 64, 32UL, "Buffer overflow detected. Allocation size: 0. Mapping size: 32+")]
    public void AnOutOfRangePartialSyncCopiesNothing(ulong at, ulong size, string warning)
    {
        var nvme = new DmaDevice("nvme", true, MinAlignMask: 0xfff);
        var env = new DmaEnvironment(Profiles.Linux64Arm64);
        var s = Boot();
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 1, "t", [], out var pfn);
        s = DmaApi.DmaMapSingle(env, s with { Kernel = k }, nvme, k.Layout.LinearAddress(pfn) + 0x100, 4096, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_single", [], [], out var handle);
        Assert.Equal(0x100UL, k.Layout.DmaToPhys(handle) & 0xfff); // min_align_mask keeps the low bits
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        DmaApi.SyncForCpu(env, s, nvme, handle + at, size, DmaDirection.DMA_FROM_DEVICE, "dma_sync_single_for_cpu", ops, findings);
        Assert.Empty(ops.OfType<CopyOp>());
        Assert.Contains(warning, Assert.Single(findings).Message);
    }

    [Fact]
    public void UnmappingFromInsideAnAllocationFreesOnlyTheRest()
    {
        var pool = Pool().Allocate(Nc, 0x8000_0000, 3 * 2048, "a", out var a)!;
        var partly = pool.Release(a, pool.SlotAddress(1));
        Assert.Equal(1, partly.Used[0].Slots); // slot 0 stays in use, leaked
        Assert.Empty(pool.Release(a, pool.SlotAddress(0)).Used);
    }

    [Fact]
    public void ThePoolStartsZeroedUnlessAResidueIsNamed()
    {
        Assert.Equal("zero", new KernelConfig().SwiotlbResidue);
        Assert.Equal(512, new KernelConfig(KmallocBounce: true).SwiotlbSlotCount(PlatformLayout.Arm64Va48)); // 1 MiB per GiB
        Assert.Equal(KernelConfig.DefaultSwiotlbSlots, new KernelConfig(KmallocBounce: true).SwiotlbSlotCount(PlatformLayout.Arm64Rpi4)); // needed for DMA anyway
    }

    [Fact]
    public void ThePoolIsReservedAtBootAndTheAllocatorStepsOverIt()
    {
        var k = Boot().Kernel;
        var pool = k.SwiotlbPfn!.Value;
        Assert.Equal(KernelState.SwiotlbOwner, k.OwnerOf(pool).Name);
        Assert.Equal(0xc000_0000UL - (64UL << 20), PlatformLayout.PfnToPhys(pool)); // top-down below 4 GiB
        var next = k.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        Assert.True(pfn < pool);
        Assert.Equal(OwnerKind.Allocation, next.OwnerOf(pfn).Kind);
    }

    private static (DmaState, ulong) Mapped(DmaEnvironment env, DmaDirection dir)
    {
        var s = Boot();
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        s = DmaApi.DmaMapSingle(env, s with { Kernel = k }, Nc, k.Layout.LinearAddress(pfn), 256, dir, DmaAttrs.None, "dma_map_single", [], [], out var handle);
        return (s, handle);
    }

    /// <summary>
    /// A bounce whose source line may hold two values: the linear-map alias of a coherent buffer still caches the zeroes
    /// init_on_alloc wrote (v6.4 prep_coherent only cleans) while the driver wrote the payload through the non-cacheable
    /// alias. The copy splits the run; the device sees the stale zeroes on a quiet machine, and the payload only after an
    /// eviction of the source line, which the line-set explorer counts through the run's base cost. The brute-force
    /// explorer must agree, and the witness must show the upstream line's event.
    /// </summary>
    [Fact]
    public void ACopyFromALineWithTwoPossibleValuesSplitsTheRunExactly()
    {
        const string text = """
            scenario "bounce of a stale alias"
            profile linux-6.4-arm64
            set init_on_alloc = on
            set swiotlb = force
            device dsp { coherent = false }
            device probe { coherent = true }
            cpu driver {
              buf = dma_alloc_coherent(dsp, 4096, GFP_KERNEL)
              write buf[0..64] = payload
              sgt = dma_get_sgtable(dsp, buf, 4096)
              pg = sg_page(sgt)
              h = dma_map_page(probe, pg, 0, 64, DMA_TO_DEVICE)
              dma_mapping_error(probe, h)
              signal mapped
            }
            dma reader by probe {
              wait mapped
              read dma(h)[0..64] -> seen
            }
            expect sees_payload: seen == payload
            expect sees_zero: seen == zero
            """;
        var scenario = Binder.Load("bounce.dmc", text);
        var explorer = new LineSetExplorer();
        var lineSet = explorer.Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default with { MaxStates = 5_000_000 });
        Assert.Empty(ExplorerAgreementProperties.Compare(lineSet, brute));
        var payload = lineSet.Verdicts.Single(v => v.Expectation.Name == "sees_payload");
        var zero = lineSet.Verdicts.Single(v => v.Expectation.Name == "sees_zero");
        Assert.Equal((Verdict.Sometimes, 0), (payload.Verdict, payload.MinEventsToFail));
        Assert.Equal((Verdict.Sometimes, 1), (zero.Verdict, zero.MinEventsToFail));

        var witness = WitnessBuilder.Build(new ScenarioModel(scenario), zero.Expectation, explorer.Failures["sees_zero"]);
        Assert.Equal(1, witness.Events);
        var upstream = Assert.Single(witness.Upstream);
        Assert.Equal(1, upstream.Events);
        Assert.Contains(upstream.Items, i => i is MoveItem { Move: SpontaneousMove.Evict });
    }
}
