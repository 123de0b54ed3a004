using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The IOMMU model (docs/iommu.md): the IOVA allocator against drivers/iommu/iova.c, iommu-dma's streaming calls
/// against drivers/iommu/dma-iommu.c (v6.12), the device's translation through the domain, and the stops where the
/// model ends.
/// </summary>
public class IommuTests
{
    private const ulong Limit32 = 0xffff_ffff;

    // ---- the IOVA allocator ----

    /// <summary>alloc_iova_fast below a 32-bit mask: top-down, each range aligned to its size rounded up to a power of two.</summary>
    [Theory]
    [InlineData(4096UL)]
    [InlineData(16384UL)]
    [InlineData(65536UL)]
    public void AllocationIsTopDownBelowTheLimitAndSizeAligned(ulong granule)
    {
        var iova = IovaDomain.Init(granule, 1);
        var limit = Limit32 / granule;
        iova = iova.AllocFast(1, limit, true, out var one);
        Assert.Equal(limit, one);
        Assert.Equal(0x1_0000_0000UL - granule, one * granule); // the familiar 0xfffff000 for 4 KiB
        iova = iova.AllocFast(2, limit, true, out var two);
        Assert.Equal(limit + 1 - 4, two); // below the first, aligned to 2
        iova = iova.AllocFast(3, limit, true, out var three); // rounded up to 4, aligned to 4
        Assert.Equal(limit + 1 - 8, three);
        Assert.Equal(three + 3, iova.Ranges[three!.Value]);
    }

    /// <summary>A freed range waits in the IOVA cache of its order: the next allocation of that order takes it back, another order does not.</summary>
    [Fact]
    public void AFreedRangeComesBackOnlyForItsOrder()
    {
        var iova = IovaDomain.Init(4096, 1);
        iova = iova.AllocFast(1, Limit32 >> 12, true, out var first);
        var a = first!.Value;
        iova = iova.FreeFast(a, 1);
        Assert.True(iova.IsCached(a));
        Assert.NotNull(iova.Find(a)); // still reserved in the tree
        iova = iova.AllocFast(2, Limit32 >> 12, true, out var other);
        Assert.NotEqual(a, other);
        iova = iova.AllocFast(1, Limit32 >> 12, true, out var again);
        Assert.Equal(a, again);
        Assert.False(iova.IsCached(a));
    }

    /// <summary>free_iova moves cached32_node up past the freed range, so the next search starts above it and finds the hole.</summary>
    [Fact]
    public void FreeingToTheTreeReopensTheHoleForTheNextSearch()
    {
        var iova = IovaDomain.Init(4096, 1);
        iova = iova.AllocIova(1, 0xfffff, true, out var first);
        iova = iova.AllocIova(1, 0xfffff, true, out var second);
        Assert.Equal(first - 1, second);
        iova = iova.FreeIova(first!.Value);
        iova = iova.AllocIova(1, 0xfffff, true, out var third);
        Assert.Equal(first, third);
    }

    /// <summary>A full space fails, remembers the size in max32_alloc_size, and a free below 32 bits resets it.</summary>
    [Fact]
    public void ExhaustionFailsAndAFreeMakesRoomAgain()
    {
        var iova = IovaDomain.Init(4096, 1);
        for (var i = 0; i < 3; i++)
        {
            iova = iova.AllocIova(1, 3, true, out var got);
            Assert.Equal(3UL - (ulong)i, got);
        }

        var failed = iova.AllocIova(1, 3, true, out var none);
        Assert.Null(none);
        Assert.Equal(1UL, failed.Max32AllocSize); // the next search of that size fails at once
        failed.AllocIova(1, 3, true, out none);
        Assert.Null(none);
        iova = failed.FreeIova(2);
        Assert.Equal(iova.Dma32BitPfn, iova.Max32AllocSize);
        iova.AllocIova(1, 3, true, out var back);
        Assert.Equal(2UL, back);
    }

    /// <summary>A limit below 32 bits (a narrow DMA mask) keeps every range under it.</summary>
    [Fact]
    public void ANarrowMaskKeepsRangesBelowIt()
    {
        var iova = IovaDomain.Init(4096, 1);
        iova.AllocFast(1, ((1UL << 20) - 1) >> 12, true, out var pfn);
        Assert.Equal(0xff000UL, pfn << 12);
    }

    // ---- iommu-dma's streaming calls ----

    private static (DmaEnvironment Env, DmaState State, ulong Pfn) Boot(string profile = "linux-6.12-arm64")
    {
        var p = Profiles.Find(profile)!;
        var s = DmaState.Boot(KernelState.Boot(p.Layout, new KernelConfig(Swiotlb: SwiotlbBoot.On), HardwareConfig.Default));
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 1, "t", [], out var pfn);
        return (new DmaEnvironment(p), s with { Kernel = k }, pfn);
    }

    private static DmaDevice Behind(bool coherent, IommuDomainType type = IommuDomainType.Dma, ulong granule = 4096) =>
        new("nic", coherent, Iommu: new DeviceIommu("smmu0", type, granule));

    /// <summary>The handle is an IOVA with the buffer's offset in its granule; the page table maps the buffer's granules with the direction's permissions, IOMMU_CACHE only for a coherent device.</summary>
    [Theory]
    [InlineData(false, DmaDirection.DMA_TO_DEVICE, IommuProt.Read)]
    [InlineData(false, DmaDirection.DMA_FROM_DEVICE, IommuProt.Write)]
    [InlineData(true, DmaDirection.DMA_BIDIRECTIONAL, IommuProt.Read | IommuProt.Write | IommuProt.Cache)]
    [InlineData(true, DmaDirection.DMA_TO_DEVICE, IommuProt.Read | IommuProt.Cache)]
    public void AMapIsAnIovaWithTheDirectionsPermissions(bool coherent, DmaDirection dir, IommuProt prot)
    {
        var (env, s, pfn) = Boot();
        var dev = Behind(coherent);
        var pa = PlatformLayout.PfnToPhys(pfn) + 0x900; // 0x900..0x1100 spans two granules
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0x900, 0x800, dir, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        Assert.Equal(0xffff_e900UL, handle); // two IOVA pages, aligned to two, at the top of 32 bits
        var domain = s.IommuDomains!["nic"];
        Assert.Equal(2, domain.PageTable.Count);
        Assert.All(domain.PageTable.Values, pte => Assert.Equal(prot, pte.Prot));
        Assert.Equal(pa, domain.IovaToPhys(handle));
        Assert.Equal(pa, DmaApi.DeviceAddressToPhys(env, s, dev, handle, 0x800, dir != DmaDirection.DMA_TO_DEVICE, "engine", [], out var how));
        Assert.Contains("IOVA 0xffffe900 → PA", how, StringComparison.Ordinal);
    }

    /// <summary>A non-coherent device's maintenance is on the buffer's physical address (found back with iommu_iova_to_phys at unmap); the unmap clears the translation and caches the IOVA range.</summary>
    [Fact]
    public void UnmapSyncsThePhysicalAddressAndClearsTheTranslation()
    {
        var (env, s, pfn) = Boot();
        var dev = Behind(false);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", ops, [], out var handle);
        Assert.Contains(ops.OfType<MemoryOp>(), op => op.Pa == PlatformLayout.PfnToPhys(pfn) && op.Origin.StartsWith("dma_map_page → iommu_dma_map_page", StringComparison.Ordinal));
        ops.Clear();
        s = DmaApi.DmaUnmap(env, s, dev, handle, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_page", ops, []);
        Assert.Contains(ops.OfType<MemoryOp>(), op => op.Pa == PlatformLayout.PfnToPhys(pfn) && op.Origin.StartsWith("dma_unmap_page → iommu_dma_unmap_page", StringComparison.Ordinal));
        var domain = s.IommuDomains!["nic"];
        Assert.Empty(domain.PageTable);
        Assert.True(domain.Iova.IsCached(handle >> 12));
        var e = Assert.Throws<FatalFindingException>(() => DmaApi.DeviceAddressToPhys(env, s, dev, handle, 64, true, "engine", [], out _));
        Assert.Equal(FindingKinds.IommuTranslationFault, e.Finding.Kind);
    }

    /// <summary>iommu_dma_unmap_page's WARN_ON(!phys): a second unmap of the same IOVA does nothing but warn.</summary>
    [Fact]
    public void ASecondUnmapWarnsAndDoesNothing()
    {
        var (env, s, pfn) = Boot();
        var dev = Behind(true);
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        s = DmaApi.DmaUnmap(env, s, dev, handle, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_page", [], []);
        var findings = new List<Finding>();
        var again = DmaApi.DmaUnmap(env, s, dev, handle, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_page", [], findings);
        Assert.Same(s, again);
        Assert.Equal(FindingKinds.IommuUnmapUnmapped, Assert.Single(findings).Kind);
    }

    /// <summary>A device write through a DMA_TO_DEVICE mapping (IOMMU_READ only) is a permission fault; a read is translated.</summary>
    [Fact]
    public void AWriteThroughAReadOnlyMappingIsAPermissionFault()
    {
        var (env, s, pfn) = Boot();
        var dev = Behind(false);
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0, 256, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), DmaApi.DeviceAddressToPhys(env, s, dev, handle, 256, false, "engine", [], out _));
        var e = Assert.Throws<FatalFindingException>(() => DmaApi.DeviceAddressToPhys(env, s, dev, handle, 256, true, "engine", [], out _));
        Assert.Equal(FindingKinds.IommuPermissionFault, e.Finding.Kind);
    }

    /// <summary>
    /// A lazy domain's unmap clears the leaves but leaves them in the IOTLB and queues the IOVA range: until the flush
    /// queue runs, the device still reaches the old page (reported with its owner now) and the IOVA is not reused; after
    /// it, the access faults and the range is in the IOVA cache.
    /// </summary>
    [Fact]
    public void ALazyUnmapLeavesTheIotlbEntryUntilTheFlushQueueRuns()
    {
        var (env, s, pfn) = Boot();
        var lazy = Behind(false, IommuDomainType.DmaFq);
        s = DmaApi.DmaMapPage(env, s, lazy, pfn, 0, 4096, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        s = DmaApi.DmaUnmap(env, s, lazy, handle, 4096, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_page", [], []);
        var domain = s.IommuDomains!["nic"];
        Assert.Empty(domain.PageTable);
        Assert.Equal(new QueuedIova(handle >> 12, 1), Assert.Single(domain.Queued!));
        Assert.False(domain.Iova.IsCached(handle >> 12));
        var findings = new List<Finding>();
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), DmaApi.DeviceAddressToPhys(env, s, lazy, handle, 64, true, "engine", findings, out var how));
        Assert.Contains("stale IOTLB entry", how, StringComparison.Ordinal);
        var stale = Assert.Single(findings);
        Assert.Equal(FindingKinds.IommuStaleIotlb, stale.Kind);
        Assert.Equal(Severity.Corruption, stale.Severity);
        Assert.Equal("t", stale.Owner.Name); // the page's owner now

        s = DmaApi.DmaMapPage(env, s, lazy, pfn, 0, 4096, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var second);
        Assert.NotEqual(handle, second); // the queued range is not free yet
        s = DmaApi.IommuFlushQueue(env, s, lazy);
        domain = s.IommuDomains!["nic"];
        Assert.Null(domain.Queued);
        Assert.Null(domain.StaleTlb);
        Assert.True(domain.Iova.IsCached(handle >> 12));
        Assert.Equal(FindingKinds.IommuTranslationFault, Assert.Throws<FatalFindingException>(() => DmaApi.DeviceAddressToPhys(env, s, lazy, handle, 64, true, "engine", [], out _)).Finding.Kind);
        Assert.Same(s, DmaApi.IommuFlushQueue(env, s, lazy)); // nothing queued: nothing happens
    }

    /// <summary>
    /// An untrusted device: a mapping of whole IOVA granules is not bounced and maps as for any device; a sub-granule
    /// one bounces (dev_use_swiotlb): the IOMMU maps a granule-aligned run of swiotlb slots, the buffer is copied in
    /// and the post-padding cleared (2650073f1b58), and the unmap copies back and frees the slots.
    /// </summary>
    [Fact]
    public void AnUntrustedDevicesSubGranuleMappingBouncesThroughAGranuleOfSlots()
    {
        var (env, s, pfn) = Boot();
        var dev = new DmaDevice("tb", true, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        var whole = DmaApi.DmaMapPage(env, s, dev, pfn, 0, 4096, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        Assert.Equal(0xffff_f000UL, handle);
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), whole.IommuDomains!["tb"].IovaToPhys(handle));
        Assert.True(whole.Swiotlb is null || whole.Swiotlb.Used.IsEmpty);

        var ops = new List<HwOp>();
        var bounced = DmaApi.DmaMapPage(env, s, dev, pfn, 0x40, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", ops, [], out handle);
        var slots = Assert.Single(bounced.Swiotlb!.Used.Values);
        Assert.Equal(2, slots.Slots); // a whole 4 KiB granule of 2 KiB slots
        var tlb = bounced.Swiotlb.SlotAddress(slots.Index);
        Assert.Equal(0UL, tlb & 0xfff);
        Assert.Equal(tlb, bounced.IommuDomains!["tb"].IovaToPhys(handle)); // the IOVA reaches the slot, not the buffer
        Assert.Equal(0UL, handle & 0xfff);
        Assert.Contains(ops, o => o is CopyOp c && c.SrcPa == PlatformLayout.PfnToPhys(pfn) + 0x40 && c.DstPa == tlb && c.Length == 256);
        Assert.Contains(ops, o => o is MemoryOp m && m.Pa == tlb + 256 && m.Length == 4096 - 256 && m.Origin.Contains("post-padding", StringComparison.Ordinal));

        ops.Clear();
        var unmapped = DmaApi.DmaUnmap(env, bounced, dev, handle, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_page", ops, []);
        Assert.Empty(unmapped.Swiotlb!.Used);
        Assert.Single(ops.OfType<CopyOp>(), c => c.SrcPa == tlb && c.DstPa == PlatformLayout.PfnToPhys(pfn) + 0x40);
        Assert.Empty(unmapped.Mappings);
    }

    /// <summary>Before 82612d66d51d (v5.11) iommu-dma did not bounce: the sub-granule mapping maps the buffer's own granule.</summary>
    [Fact]
    public void WithoutBouncingTheBuffersOwnGranuleIsMapped()
    {
        var (env, s, pfn) = Boot();
        env = new DmaEnvironment(env.Profile.With(Switches.IommuBounceMapSync, "none"));
        var dev = new DmaDevice("tb", true, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0x40, 256, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        Assert.Equal(PlatformLayout.PfnToPhys(pfn) + 0x40, s.IommuDomains!["tb"].IovaToPhys(handle));
        Assert.Empty(s.Swiotlb!.Used);
    }

    /// <summary>
    /// The swiotlb FROM_DEVICE info-leak fix (swiotlb.map_bounce) on the iommu-dma bounce path: the copy into the slot
    /// at map is made as the switch says; but with v5.11..v6.9's padding clearing (from_bounce) a DMA_FROM_DEVICE slot
    /// is cleared whole from the bounce address afterwards, so the fix changes nothing there; only with 2650073f1b58's
    /// pre/post padding (v6.10, when the copy is always made) is the bounce proper left as the copy made it.
    /// </summary>
    [Theory]
    [InlineData("to_device_only", "from_bounce", false, true)]
    [InlineData("always", "from_bounce", true, true)]
    [InlineData("always", "pre_post_untrusted", true, false)]
    [InlineData("to_device_only", "pre_post_untrusted", false, false)]
    public void TheFromDeviceCopyInMeetsThePaddingClearing(string mapBounce, string padding, bool copied, bool clearedWhole)
    {
        var (env, s, pfn) = Boot();
        env = new DmaEnvironment(env.Profile.With(Switches.SwiotlbMapBounce, mapBounce).With(Switches.IommuBouncePadding, padding));
        var tb = new DmaDevice("tb", true, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapPage(env, s, tb, pfn, 0x40, 64, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", ops, [], out _);
        var tlb = s.Mappings.Single().Tlb!.Value;
        Assert.Equal(copied, ops.OfType<CopyOp>().Any(c => c.DstPa == tlb && c.Length == 64));
        Assert.Equal(clearedWhole, ops.OfType<MemoryOp>().Any(m => m.Pa == tlb && m.Length == 4096));
    }

    /// <summary>
    /// An offset under min_align_mask of IO_TLB_SIZE or more (v6.9's pad slots): the bounce keeps it, the first slot of
    /// the run is a pad slot, the data copies start after it, and the unmap frees the whole run.
    /// </summary>
    [Fact]
    public void AMinAlignOffsetBeyondASlotTakesAPadSlot()
    {
        var (env, s, pfn) = Boot();
        var nvme = new DmaDevice("nvme", true, MinAlignMask: 0xfff, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapPage(env, s, nvme, pfn, 0x900, 256, DmaDirection.DMA_BIDIRECTIONAL, DmaAttrs.None, "dma_map_page", ops, [], out var handle);
        var a = s.Swiotlb!.Used.Values.Single();
        Assert.Equal(1, a.PadSlots);
        var tlb = s.Mappings.Single().Tlb!.Value;
        Assert.Equal(s.Swiotlb.SlotAddress(a.Index) + 0x900, tlb);
        Assert.Equal(0x900UL, handle & 0xfff);
        Assert.Contains(ops, o => o is CopyOp c && c.SrcPa == PlatformLayout.PfnToPhys(pfn) + 0x900 && c.DstPa == tlb && c.Length == 256);
        ops.Clear();
        s = DmaApi.DmaUnmap(env, s, nvme, handle, 256, DmaDirection.DMA_BIDIRECTIONAL, DmaAttrs.None, "dma_unmap_page", ops, []);
        Assert.Contains(ops, o => o is CopyOp c && c.SrcPa == tlb && c.DstPa == PlatformLayout.PfnToPhys(pfn) + 0x900 && c.Length == 256);
        Assert.Empty(s.Swiotlb!.Used);
    }

    /// <summary>Where the bounce model ends: a kernel whose slot search predates v6.9's.</summary>
    [Fact]
    public void BouncesTheModelDoesNotFollowStopAsNotModelled()
    {
        var (env66, s66, pfn66) = Boot("linux-6.6-arm64");
        var tb = new DmaDevice("tb", true, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        Assert.Contains("before v6.9", Assert.Throws<NotModelledException>(() => DmaApi.DmaMapPage(env66, s66, tb, pfn66, 0x40, 256, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out _)).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A bounce for a device with min_align_mask (v6.12): the bounce address keeps the buffer's offset in its granule,
    /// so the handle's offset in its IOVA page is the buffer's, and one granule is mapped. With
    /// iommu_dma.bounce_map_size = aligned (before 2cbc61a1b166) two granules are mapped, the unmap of the driver's
    /// size leaves the second mapped, and the two-page IOVA range waits in the order-0 cache, still whole in the tree.
    /// </summary>
    [Theory]
    [InlineData("size", 1)]
    [InlineData("aligned", 2)]
    public void MinAlignMaskBounceKeepsTheOffsetAndMapsAsTheSwitchSays(string mapSize, int granules)
    {
        var (env, s, pfn) = Boot();
        env = new DmaEnvironment(env.Profile.With(Switches.IommuBounceMapSize, mapSize));
        var nvme = new DmaDevice("nvme", true, MinAlignMask: 0xfff, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        s = DmaApi.DmaMapPage(env, s, nvme, pfn, 0x200, 512, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        var tlb = s.Mappings.Single().Tlb!.Value;
        Assert.Equal(0x200UL, tlb & 0xfff);
        Assert.Equal(0x200UL, handle & 0xfff);
        var domain = s.IommuDomains!["nvme"];
        Assert.Equal(tlb, domain.IovaToPhys(handle));
        Assert.Equal(granules, domain.PageTable.Count);
        s = DmaApi.DmaUnmap(env, s, nvme, handle, 512, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_unmap_page", [], []);
        domain = s.IommuDomains!["nvme"];
        Assert.Equal(granules - 1, domain.PageTable.Count);
        var iovaPfn = (handle & ~0xfffUL) >> 12;
        Assert.True(domain.Iova.IsCached(iovaPfn));
        Assert.Equal(iovaPfn + (ulong)granules - 1, domain.Iova.Ranges[iovaPfn]);
    }

    // ---- iommu_dma_map_sg ----

    private static (DmaState State, SgTable Table) List(DmaState s, params (ulong Pfn, ulong Offset, ulong Length)[] elements)
    {
        var k = Scatterlist.SgAllocTable(s.Kernel, elements.Length, Gfp.GFP_KERNEL, [], out var table)!;
        for (var i = 0; i < elements.Length; i++)
        {
            k = Scatterlist.SgSetPage(k, k.SgTables[table!.Id], i, elements[i].Pfn, elements[i].Length, elements[i].Offset, "sg_set_page", []);
        }

        return (s with { Kernel = k }, k.SgTables[table!.Id]);
    }

    /// <summary>
    /// iommu_dma_map_sg_swiotlb: an untrusted device's list is marked SG_DMA_SWIOTLB and mapped element by element
    /// (no merging: a whole page maps in place, a sub-granule element bounces); dma_sync_sg_for_cpu copies a bounce slot
    /// back only with iommu_dma.sync_sg_bounce = dma_address (08ae5d4a1ae9); the unmap frees every slot.
    /// </summary>
    [Theory]
    [InlineData("dma_address", 1)]
    [InlineData("sg_phys", 0)]
    public void AnUntrustedDevicesListBouncesElementByElement(string syncSg, int copiesAtSync)
    {
        var (env, s, pfn) = Boot();
        env = new DmaEnvironment(env.Profile.With(Switches.IommuSyncSgBounce, syncSg));
        var tb = new DmaDevice("tb", true, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true));
        var (listed, table) = List(s, (pfn, 0, 4096), (pfn + 1, 0x100, 64));
        var mapped = DmaApi.DmaMapSg(env, listed, tb, table, 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out var count);
        var entries = mapped.Kernel.SgTables[table.Id].Entries;
        Assert.Equal(2, count);
        Assert.True(entries[0].DmaSwiotlb);
        Assert.Equal(64UL, entries[1].DmaLength);
        var domain = mapped.IommuDomains!["tb"];
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), domain.IovaToPhys(entries[0].DmaAddress)); // in place
        var slot = domain.IovaToPhys(entries[1].DmaAddress);
        Assert.True(mapped.Swiotlb!.Contains(slot)); // bounced
        var ops = new List<HwOp>();
        DmaApi.SyncSgForCpu(env, mapped, tb, mapped.Kernel.SgTables[table.Id], 2, DmaDirection.DMA_FROM_DEVICE, "dma_sync_sg_for_cpu", ops, []);
        Assert.Equal(copiesAtSync, ops.OfType<CopyOp>().Count(c => c.SrcPa == slot && c.DstPa == PlatformLayout.PfnToPhys(pfn + 1) + 0x100));
        ops.Clear();
        var unmapped = DmaApi.DmaUnmapSg(env, mapped, tb, mapped.Kernel.SgTables[table.Id], 2, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_sg", ops, []);
        Assert.Empty(unmapped.Swiotlb!.Used);
        Assert.Empty(unmapped.Mappings);
        Assert.Single(ops.OfType<CopyOp>(), c => c.SrcPa == slot);
    }

    /// <summary>
    /// __finalise_sg: whole pages, even physically apart, become one DMA segment in one IOVA range; an element that
    /// does not start on a granule starts a new segment; max_seg_size caps a segment.
    /// </summary>
    [Fact]
    public void MapSgMergesGranuleAlignedElementsIntoOneSegment()
    {
        var (env, s, pfn) = Boot();
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "gap", [], out _).AllocPages(Gfp.GFP_KERNEL, 0, "t2", [], out var far);
        s = s with { Kernel = k };
        var (listed, table) = List(s, (pfn, 0, 4096), (far, 0, 4096), (pfn, 0x100, 64));
        var mapped = DmaApi.DmaMapSg(env, listed, Behind(false), table, 3, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out var count);
        var entries = mapped.Kernel.SgTables[table.Id].Entries;
        Assert.Equal(2, count);
        Assert.Equal(8192UL, entries[0].DmaLength);
        Assert.Equal(entries[0].DmaAddress + 8192 + 0x100, entries[1].DmaAddress); // its own granule, with its offset
        Assert.Equal(64UL, entries[1].DmaLength);
        Assert.Equal(DmaApi.DmaMappingError, entries[2].DmaAddress);
        Assert.Equal(0UL, entries[2].DmaLength);
        var domain = mapped.IommuDomains!["nic"];
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), domain.IovaToPhys(entries[0].DmaAddress));
        Assert.Equal(PlatformLayout.PfnToPhys(far), domain.IovaToPhys(entries[0].DmaAddress + 4096)); // physically apart, adjacent in IOVA space

        var capped = new DmaDevice("nic", false, MaxSegSize: 4096, Iommu: new DeviceIommu("smmu0", IommuDomainType.Dma, 4096));
        DmaApi.DmaMapSg(env, listed, capped, table, 2, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_sg", [], [], out var two);
        Assert.Equal(2, two);

        var unmapped = DmaApi.DmaUnmapSg(env, mapped, Behind(false), mapped.Kernel.SgTables[table.Id], 3, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_unmap_sg", [], []);
        Assert.Empty(unmapped.IommuDomains!["nic"].PageTable);
        Assert.Empty(unmapped.Mappings);
    }

    /// <summary>
    /// iommu_dma_alloc with a gfp that cannot block, non-coherent device: a chunk of the atomic pool (its Normal-NC
    /// address is the CPU address), mapped at an IOVA range; the free unmaps it and gives the chunk back.
    /// </summary>
    [Fact]
    public void AnAtomicAllocationComesFromThePoolAndIsMappedAtAnIova()
    {
        var (env, s, _) = Boot();
        var dev = Behind(false);
        s = DmaApi.DmaAllocAttrs(env, s, dev, 4096, Gfp.GFP_ATOMIC, DmaAttrs.None, [], out var cpu, out var handle);
        var record = s.Coherent.Single();
        Assert.Equal(CoherentSource.IommuPool, record.Source);
        Assert.True(s.Pool!.Contains(cpu));
        Assert.Equal(0xfffff000UL, handle);
        Assert.Equal(PlatformLayout.PfnToPhys(record.Pfn), s.IommuDomains!["nic"].IovaToPhys(handle));
        s = DmaApi.DmaFreeAttrs(env, s, dev, 4096, cpu, handle, DmaAttrs.None, [], []);
        Assert.Empty(s.Coherent);
        Assert.Empty(s.Pool!.Chunks);
        Assert.Empty(s.IommuDomains!["nic"].PageTable);
    }

    /// <summary>
    /// DMA_ATTR_FORCE_CONTIGUOUS: iommu_dma_alloc_pages takes a multi-page buffer from the default CMA area (a coherent
    /// device gets its linear address, a non-coherent one a remap), mapped at one IOVA range; the free releases it to
    /// CMA. Without a CMA area, one alloc_pages block.
    /// </summary>
    [Theory]
    [InlineData(true, 16UL << 20)]
    [InlineData(false, 16UL << 20)]
    [InlineData(false, 0UL)]
    public void ForceContiguousTakesContiguousPagesMappedAtOneIova(bool coherent, ulong cma)
    {
        var p = Profiles.Find("linux-6.12-arm64")!;
        var s = DmaState.Boot(KernelState.Boot(p.Layout, new KernelConfig(Swiotlb: SwiotlbBoot.On, CmaBytes: cma), HardwareConfig.Default));
        var env = new DmaEnvironment(p);
        var dev = Behind(coherent);
        s = DmaApi.DmaAllocAttrs(env, s, dev, 8192, Gfp.GFP_KERNEL, DmaAttrs.DMA_ATTR_FORCE_CONTIGUOUS, [], out var cpu, out var handle);
        var record = s.Coherent.Single();
        Assert.Equal(CoherentSource.IommuPages, record.Source);
        Assert.Equal(cma > 0, s.Kernel.Allocator.Cma?.Contains(record.Pfn) ?? false);
        Assert.Equal(!coherent, env.Layout.IsVmallocAddr(cpu));
        var domain = s.IommuDomains!["nic"];
        Assert.Equal(PlatformLayout.PfnToPhys(record.Pfn) + 4096, domain.IovaToPhys(handle + 4096));
        s = DmaApi.DmaFreeAttrs(env, s, dev, 8192, cpu, handle, DmaAttrs.DMA_ATTR_FORCE_CONTIGUOUS, [], []);
        Assert.Empty(s.Coherent);
        Assert.Empty(s.IommuDomains!["nic"].PageTable);
    }

    /// <summary>
    /// iommu_dma_alloc_remap: zeroed order-0 pages, cleaned for a non-coherent device, mapped at one IOVA range for both
    /// directions without IOMMU_CACHE, vmapped Normal-NC; the handle is the IOVA. The free unmaps the range and frees
    /// the pages, the last first.
    /// </summary>
    [Fact]
    public void RemapAllocationMapsItsPagesAtOneIovaRangeAndVmapsThemNonCacheable()
    {
        var (env, s, _) = Boot();
        var ops = new List<HwOp>();
        s = DmaApi.DmaAllocAttrs(env, s, Behind(false), 8192, Gfp.GFP_KERNEL, ops, out var cpu, out var handle);
        var record = Assert.Single(s.Coherent);
        Assert.Equal(CoherentSource.IommuRemap, record.Source);
        Assert.True(env.Layout.IsVmallocAddr(cpu));
        Assert.Equal(0xffff_e000UL, handle); // a two-page IOVA range, top-down
        var domain = s.IommuDomains!["nic"];
        Assert.Equal(PlatformLayout.PfnToPhys(record.Pfn), domain.IovaToPhys(handle));
        Assert.Equal(PlatformLayout.PfnToPhys(record.Pfn) + 4096, domain.IovaToPhys(handle + 4096));
        Assert.All(domain.PageTable.Values, p => Assert.Equal(IommuProt.Read | IommuProt.Write, p.Prot));
        Assert.Contains(ops, o => o is MapOp m && m.Alias.Type == MemoryType.NormalNonCacheable && m.Alias.Va == cpu);
        Assert.Contains(ops, o => o is MemoryOp { Op.Kind: LineOpKind.Clean } m && m.Pa == PlatformLayout.PfnToPhys(record.Pfn) && m.Length == 8192); // arch_dma_prep_coherent (v6.12: clean)

        var freed = DmaApi.DmaFreeAttrs(env, s, Behind(false), 8192, cpu, handle, DmaAttrs.None, [], []);
        Assert.Empty(freed.Coherent);
        Assert.Empty(freed.IommuDomains!["nic"].PageTable);
        Assert.Equal(OwnerKind.Free, freed.OwnerOf(record.Pfn).Kind);
        Assert.Equal(OwnerKind.Free, freed.OwnerOf(record.Pfn + 1).Kind);
    }

    /// <summary>iommu.passthrough=1 gives an identity domain: dma-direct, and the handle is the physical address.</summary>
    [Fact]
    public void PassthroughIsDmaDirect()
    {
        var (env, s, pfn) = Boot();
        var dev = Behind(false, IommuDomainType.Identity);
        Assert.Equal(DmaOpsKind.Direct, env.OpsFor(dev));
        s = DmaApi.DmaMapPage(env, s, dev, pfn, 0, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out var handle);
        Assert.Equal(PlatformLayout.PfnToPhys(pfn), handle);
        Assert.Null(s.IommuDomains);
    }

    /// <summary>Where the model ends, the run says so: a granule above PAGE_SIZE, an IOMMU off arm64, and the calls iommu-dma has that are not built yet.</summary>
    [Fact]
    public void WhatIsNotModelledStopsAsNotModelled()
    {
        var (env, s, pfn) = Boot();
        Assert.Contains("BUG_ON(granule > PAGE_SIZE)", Assert.Throws<NotModelledException>(() => DmaApi.DmaMapPage(env, s, Behind(false, granule: 16384), pfn, 0, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out _)).Message, StringComparison.Ordinal);
        Assert.Contains("DMA_ATTR_NO_KERNEL_MAPPING", Assert.Throws<NotModelledException>(() => DmaApi.DmaAllocAttrs(env, s, Behind(false), 4096, Gfp.GFP_KERNEL, DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING, [], out _, out _)).Message, StringComparison.Ordinal);
        var (env32, s32, pfn32) = Boot("linux-5.13-arm-rpi4");
        Assert.Throws<NotModelledException>(() => DmaApi.DmaMapPage(env32, s32, Behind(false), pfn32, 0, 256, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_page", [], [], out _));
    }

    /// <summary>The scenario language: <c>iommus</c> on a device and the <c>iommu.*</c> settings, with their errors.</summary>
    [Fact]
    public void TheScenarioLanguageDeclaresTheIommu()
    {
        static Scenario Load(string settings, string device = "iommus = smmu0") =>
            Binder.Load("i.dmc", $"profile linux-6.12-arm64\n{settings}\ndevice nic {{ coherent = false, {device} }}\ndma e by nic {{\n  signal x\n}}\n");

        var strict = Load(string.Empty).Programs.Single().DmaDevice!.Iommu!;
        Assert.Equal(new DeviceIommu("smmu0", IommuDomainType.Dma, 4096), strict);
        Assert.Equal(IommuDomainType.DmaFq, Load("set iommu.strict = off").Programs.Single().DmaDevice!.Iommu!.Type);
        Assert.Equal(IommuDomainType.Identity, Load("set iommu.passthrough = on").Programs.Single().DmaDevice!.Iommu!.Type);
        Assert.Equal(65536UL, Load("set iommu.granule = 64K").Programs.Single().DmaDevice!.Iommu!.Granule);
        Assert.Contains("4K, 16K or 64K", Assert.Throws<ScenarioException>(() => Load("set iommu.granule = 8K")).Message, StringComparison.Ordinal);
        Assert.Contains("an identifier", Assert.Throws<ScenarioException>(() => Load(string.Empty, "iommus = 5")).Message, StringComparison.Ordinal);
        var untrusted = Load("set iommu.strict = off\nset iommu.passthrough = on", "iommus = smmu0, untrusted = true").Programs.Single().DmaDevice!.Iommu!;
        Assert.Equal(new DeviceIommu("smmu0", IommuDomainType.Dma, 4096, Untrusted: true), untrusted); // always a strict DMA domain
        Assert.Contains("needs an IOMMU", Assert.Throws<ScenarioException>(() => Load(string.Empty, "untrusted = true")).Message, StringComparison.Ordinal);
    }

    /// <summary>A scenario that reaches an iommu-dma call the model does not have ends inconclusive, naming it.</summary>
    [Fact]
    public void AScenarioReachingAnUnbuiltIommuCallIsInconclusive()
    {
        var outcome = Checker.CheckText("i.dmc", """
            profile linux-6.4-arm64
            device nic { coherent = false, iommus = smmu0 }
            cpu driver {
              ring = dma_alloc_attrs(nic, 4096, GFP_KERNEL, DMA_ATTR_NO_KERNEL_MAPPING)
            }
            """, ExplorationLimits.Default);
        Assert.True(outcome.Inconclusive);
        Assert.Contains("iommu_dma_alloc", outcome.Result!.Inconclusive, StringComparison.Ordinal);
    }
}
