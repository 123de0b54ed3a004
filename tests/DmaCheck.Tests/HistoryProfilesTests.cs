using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 15 item 6: the LTS profiles carry the switch values of their tags, and the new switches (swiotlb.sync_offset,
/// swiotlb.slot_search, dma.mmap_pgprot, xen.arm_alloc) behave as the kernels they name did.
/// </summary>
public class HistoryProfilesTests
{
    private static readonly DmaDevice Nvme = new("nvme", true, 64, MinAlignMask: 0xfff);

    private static SwiotlbPool Pool() => new(0x1_0000_0000, 1024, true, 0, System.Collections.Immutable.ImmutableSortedDictionary<int, SwiotlbAllocation>.Empty);

    /// <summary>Per profile and switch, the value at the tag, from the history each value's description cites.</summary>
    public static TheoryData<string, string, string> AtTheTag => new()
    {
        { "linux-5.4-arm64", "swiotlb.sync_offset", "slot_offset" },
        { "linux-5.4-arm64", "swiotlb.slot_search", "page_stride" },
        { "linux-5.4-arm64", "arm64.sync_for_device_from_device", "inval" },
        { "linux-5.10-arm64", "xen_free_coherent_page", "vmalloc_aware" },
        { "linux-5.10-arm64", "swiotlb.map_bounce", "to_device_only" },
        { "linux-5.12-arm64", "swiotlb.sync_offset", "slot_start" },
        { "linux-5.13-arm64", "swiotlb.sync_offset", "align_offset" },
        { "linux-5.15-arm64", "swiotlb.sync_offset", "checked" },
        { "linux-5.15-arm64", "swiotlb.slot_search", "min_align_stride" },
        { "linux-5.15-arm64", "dma_debug.cacheline_overlap", "skip_cpu_sync" },
        { "linux-5.15-arm64", "dma.map_resource_ram_check", "warn_fail" },
        { "linux-5.15-arm64", "xen.arm_alloc", "xen_swiotlb_alloc_coherent" },
        { "linux-6.1-arm64", "arm64.prep_coherent", "clean_inval" },
        { "linux-6.1-arm64", "arm64.sync_for_device_from_device", "clean" },
        { "linux-6.1-arm64", "swiotlb.map_bounce", "always" },
        { "linux-6.1-arm64", "swiotlb.slot_search", "min_align_stride" },
        { "linux-6.1-arm64", "xen.arm_alloc", "dma_direct" },
        { "linux-6.6-arm64", "arm64.prep_coherent", "clean" },
        { "linux-6.6-arm64", "dma.kmalloc_bounce", "on" },
        { "linux-6.6-arm64", "swiotlb.slot_search", "address_mask" },
        { "linux-6.12-arm64", "swiotlb.sync_offset", "signed" },
        { "linux-6.12-arm64", "swiotlb.slot_search", "page_unless_min_align" },
        { "linux-6.6-arm64-xen", "dma.kmalloc_bounce", "on" },
        { "linux-5.10-x86_64", "swiotlb.slot_search", "page_stride" },
        { "linux-5.10-x86_64", "swiotlb.sync_offset", "slot_offset" },
        { "linux-5.10-x86_64", "swiotlb.map_bounce", "to_device_only" },
        { "linux-5.10-x86_64", "dma_debug.cacheline_overlap", "silent" },
    };

    [Theory]
    [MemberData(nameof(AtTheTag))]
    public void AnLtsProfileHasTheValueOfItsTag(string profile, string key, string value) =>
        Assert.Equal(value, Profiles.Find(profile)!.Value(Switches.Find(key)!));

    [Fact]
    public void EveryLtsTagHasANativeProfileAndAllButV54AXenOne()
    {
        foreach (var tag in new[] { "5.4", "5.10", "5.15", "6.1", "6.6", "6.12" })
        {
            Assert.NotNull(Profiles.Find($"linux-{tag}-arm64"));
            Assert.Equal(tag != "5.4", Profiles.Find($"linux-{tag}-arm64-xen") is { XenDom0: true });
        }
    }

    /// <summary>A sync of bytes 128..256 of a mapping whose bounce address keeps offset 0x40 (min_align_mask): the original address each era copies.</summary>
    [Theory]
    [InlineData(SwiotlbSyncOffsetMode.SlotOffset, 0x8000_0040 + 0x40 + 128)] // the in-slot offset added to the slot's orig_addr (0x40 counted twice)
    [InlineData(SwiotlbSyncOffsetMode.SlotStart, 0x8000_0040)] // the offset dropped: the start of the original
    [InlineData(SwiotlbSyncOffsetMode.AlignOffset, 0x8000_0040 + 128)]
    [InlineData(SwiotlbSyncOffsetMode.Checked, 0x8000_0040 + 128)]
    [InlineData(SwiotlbSyncOffsetMode.Signed, 0x8000_0040 + 128)]
    public void ASubRangeSyncFindsItsOriginalAsItsEraDid(SwiotlbSyncOffsetMode mode, ulong expectedOrig)
    {
        var dev = new DmaDevice("d", true, 64, MinAlignMask: 0x7ff);
        var pool = Pool().Allocate(dev, 0x8000_0040, 512, "a", out var a, SwiotlbSlotSearchMode.MinAlignStride)!;
        Assert.Equal(0x40UL, a.Offset);
        var tlb = pool.SlotAddress(a.Index) + a.Offset;
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), HardwareConfig.Default));
        var copied = SwiotlbBounce.Bounce(s, pool, tlb + 128, 64, DmaDirection.DMA_TO_DEVICE, "t", ops, findings, mode);
        Assert.Equal(expectedOrig, copied!.Value.Orig);
        Assert.Equal(expectedOrig, Assert.Single(ops.OfType<CopyOp>()).SrcPa);
        Assert.Empty(findings);
    }

    [Fact]
    public void BeforeTheSignedFixAnAddressEarlyInALaterSlotIsRefusedAfterItItIsFound()
    {
        var pool = Pool().Allocate(Nvme, 0x8000_0200, 4096, "a", out var a, SwiotlbSlotSearchMode.AddressMask)!;
        var inSlot1 = pool.SlotAddress(a.Index + 1) + 0x100; // byte 0x700 of the mapping, before the 0x200 offset of slot 1
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), HardwareConfig.Default));
        var findings = new List<Finding>();
        Assert.Null(SwiotlbBounce.Bounce(s, pool, inSlot1, 16, DmaDirection.DMA_TO_DEVICE, "t", [], findings, SwiotlbSyncOffsetMode.Checked));
        Assert.Equal(FindingKinds.SwiotlbAccessBeforeStart, Assert.Single(findings).Kind);
        Assert.Equal(0x8000_0200UL + 0x700, SwiotlbBounce.Bounce(s, pool, inSlot1, 16, DmaDirection.DMA_TO_DEVICE, "t", [], [], SwiotlbSyncOffsetMode.Signed)!.Value.Orig);
        Assert.Throws<NotModelledException>(() => SwiotlbBounce.Bounce(s, pool, inSlot1, 16, DmaDirection.DMA_TO_DEVICE, "t", [], [], SwiotlbSyncOffsetMode.AlignOffset));
    }

    [Fact]
    public void BeforeMinAlignMaskTheBounceAddressStartsASlot()
    {
        var old = Pool().Allocate(Nvme, 0x8000_0200, 512, "a", out var a, SwiotlbSlotSearchMode.PageStride)!;
        Assert.Equal(0UL, a.Offset);
        Assert.Equal(0UL, old.SlotAddress(a.Index) & 0x7ff);
        Pool().Allocate(Nvme, 0x8000_0a00, 512, "b", out var b, SwiotlbSlotSearchMode.MinAlignStride);
        Assert.Equal(0x200UL, b.Offset);
        Assert.Equal(0xa00UL, (Pool().SlotAddress(b.Index) + b.Offset) & 0xfff);
    }

    [Fact]
    public void BeforeMinAlignMaskAPageSizedBounceStartsOnAPage()
    {
        var pool = Pool().Allocate(new DmaDevice("d", true), 0x8000_0000, 100, "small", out _, SwiotlbSlotSearchMode.PageStride)!;
        pool.Allocate(new DmaDevice("d", true), 0x8000_0800, 4096, "page", out var p, SwiotlbSlotSearchMode.PageStride);
        Assert.Equal(2, p.Index); // slot 1 is free but not page aligned
        Assert.Throws<NotModelledException>(() => pool.Allocate(new DmaDevice("d", true), 0x8000_0800, 4096, "page", out _, SwiotlbSlotSearchMode.PageUnlessMinAlign));
    }

    [Fact]
    public void BeforeTheFixAWriteCombineMmapOfACoherentBufferIsNonCacheableOnArm64()
    {
        var coherent = new DmaDevice("gpu", true);
        var old = new DmaEnvironment(Profiles.Linux54Arm64.With(Switches.DmaMmapPgprot, "arch_dma_mmap_pgprot"));
        Assert.Equal(MemoryType.NormalNonCacheable, DmaApi.UserMappingPgprot(old, coherent, DmaAttrs.DMA_ATTR_WRITE_COMBINE));
        Assert.Equal(MemoryType.NormalWriteBack, DmaApi.UserMappingPgprot(old, coherent, DmaAttrs.None));
        Assert.Equal(MemoryType.NormalWriteBack, DmaApi.UserMappingPgprot(new DmaEnvironment(Profiles.Linux54Arm64), coherent, DmaAttrs.DMA_ATTR_WRITE_COMBINE));
        var x86 = new DmaEnvironment(Profiles.Linux64X86.With(Switches.DmaMmapPgprot, "arch_dma_mmap_pgprot"));
        Assert.Throws<NotModelledException>(() => DmaApi.UserMappingPgprot(x86, coherent, DmaAttrs.None));
    }

    [Fact]
    public void AGapOfAProfileStopsTheRunAsNotModelled()
    {
        var e = Assert.Throws<NotModelledException>(() => Profiles.Linux54Arm64.RequireModelled(ProfileGaps.MapSingleVmalloc));
        Assert.Contains("4544b9f25e70", e.Message, StringComparison.Ordinal);
        Assert.Contains("(linux-5.4-arm64)", e.Message, StringComparison.Ordinal);
        Profiles.Linux510Arm64.RequireModelled(ProfileGaps.MapSingleVmalloc); // v5.10 has the refusal the model follows
    }
}
