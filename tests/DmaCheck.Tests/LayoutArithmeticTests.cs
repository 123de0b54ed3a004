using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>
/// The address arithmetic of each layout against values computed by hand from the kernel's formulas. Each test
/// cites the formula; docs/kernel-checks-seed2.md says which source each was checked against.
/// </summary>
public class LayoutArithmeticTests
{
    [Fact]
    public void Arm64Rpi4VirtToPageOfAVmallocAddressIsFarOutsideRam()
    {
        var l = PlatformLayout.Arm64Rpi4;
        // PAGE_OFFSET = -(1 << VA_BITS) for VA_BITS = 48 (since v5.4).
        Assert.Equal(0xffff_0000_0000_0000UL, l.PageOffset);
        // VMALLOC_START = MODULES_END = PAGE_END + BPF_JIT_REGION_SIZE (128 MiB) + MODULES_VSIZE (128 MiB), v5.4..v5.15.
        Assert.Equal(0xffff_8000_0000_0000UL + (128UL << 20) + (128UL << 20), l.VmallocStart);
        // VMALLOC_END = VMEMMAP_START - SZ_256M, VMEMMAP_START = -(1 << (48 - 6)) (v5.11+).
        Assert.Equal(0xffff_fc00_0000_0000UL - (256UL << 20), l.VmallocEnd);
        // memstart_addr = round_down(0, SZ_1G) = 0, so PHYS_PFN_OFFSET = 0.
        Assert.Equal(0UL, l.PhysOffset);
        // virt_to_page(x): idx = (x - PAGE_OFFSET) / PAGE_SIZE; page_to_pfn = idx + PHYS_PFN_OFFSET.
        var va = l.VmallocStart;
        Assert.Equal((0xffff_8000_1000_0000UL - 0xffff_0000_0000_0000UL) >> 12, l.VirtToPfn(va));
        Assert.Equal(0x8_0001_0000UL, l.VirtToPfn(va));
        Assert.False(l.PfnValid(l.VirtToPfn(va)));
        Assert.False(l.StructPageExists(l.VirtToPfn(va)));
        // struct page = VMEMMAP_START + idx * sizeof(struct page): 0xfffffc0000000000 + 0x800010000 * 64.
        Assert.Equal(0xffff_fe00_0040_0000UL, l.StructPageAddress(l.VirtToPfn(va)));
        // page_to_virt inverts it exactly: PAGE_OFFSET + idx * PAGE_SIZE is the vmalloc address again.
        Assert.Equal(va, l.PageAddress(l.VirtToPfn(va)));
        Assert.True(l.IsVmallocAddr(va));
        Assert.False(l.IsLinearMapAddr(va));
    }

    [Fact]
    public void Arm64V510VmemmapWrapsIntoTheUserHalf()
    {
        var l = PlatformLayout.Arm64Va48V5;
        // v5.10: VMEMMAP_START = -VMEMMAP_SIZE - SZ_2M, VMEMMAP_SIZE = (PAGE_END - PAGE_OFFSET) >> 6 = 2^41.
        Assert.Equal(unchecked(0UL - (1UL << 41) - (2UL << 20)), PlatformLayout.Arm64VmemmapStartVa48V510);
        // v5.10: VMALLOC_END = -PUD_SIZE - VMEMMAP_SIZE - SZ_64K.
        Assert.Equal(unchecked(0UL - (1UL << 30) - (1UL << 41) - (64UL << 10)), l.VmallocEnd);
        // DRAM at 0x80000000: memstart_addr = 0x80000000, PHYS_PFN_OFFSET = 0x80000.
        Assert.Equal(0x8000_0000UL, l.PhysOffset);
        var pfn = l.VirtToPfn(l.VmallocStart);
        Assert.Equal(0x8_0001_0000UL + 0x8_0000UL, pfn);
        // VMEMMAP_START + idx * 64 with idx = 0x800010000 wraps past 2^64 to 0x200000, a user-half address.
        Assert.Equal(0x20_0000UL, l.StructPageAddress(pfn));
        // The linear map: __lm_to_phys(x) = (x & ~PAGE_OFFSET) + PHYS_OFFSET, the same as (x - PAGE_OFFSET) + PHYS_OFFSET here.
        Assert.Equal(0x8123_4000UL, l.VirtToPhys(0xffff_0000_0123_4000));
        Assert.Equal(0xffff_0000_0123_4000UL, l.PhysToVirt(0x8123_4000));
    }

    [Fact]
    public void Arm32Rpi4LowmemAndVmallocFollowVmallocMin()
    {
        var l = PlatformLayout.Arm32Rpi4;
        // vmalloc_min = VMALLOC_END - (240 << 20) - VMALLOC_OFFSET = 0xff800000 - 0x0f000000 - 0x00800000.
        Assert.Equal(0xf000_0000UL, PlatformLayout.Arm32VmallocEnd - (240UL << 20) - PlatformLayout.Arm32VmallocOffset);
        // arm_lowmem_limit = __pa(vmalloc_min) with PAGE_OFFSET 0xc0000000, PHYS_OFFSET 0: 768 MiB of lowmem.
        Assert.Equal(0x3000_0000UL, l.LowmemLimit);
        // VMALLOC_START = (high_memory + VMALLOC_OFFSET) & ~(VMALLOC_OFFSET - 1) = (0xf0000000 + 8M) & ~(8M - 1).
        Assert.Equal(0xf080_0000UL, l.VmallocStart);
        Assert.True(l.HasHighmem);
    }

    [Fact]
    public void Arm32Rpi4VirtToPageOfAVmallocAddressIsARealHighmemPage()
    {
        var l = PlatformLayout.Arm32Rpi4;
        // virt_to_pfn(x) = ((x - PAGE_OFFSET) >> PAGE_SHIFT) + PHYS_PFN_OFFSET = (0xf0800000 - 0xc0000000) >> 12.
        Assert.Equal(0x30800UL, l.VirtToPfn(0xf080_0000));
        Assert.True(l.PfnValid(0x30800));
        Assert.False(l.IsLowmemPfn(0x30800));
        Assert.True(l.StructPageExists(0x30800)); // FLATMEM: mem_map covers every pfn below max_pfn
        // A highmem page has no page_address until kmapped.
        Assert.Null(l.PageAddress(0x30800));
        Assert.Equal(0xc123_4000UL, l.PageAddress(0x1234));
        // unsigned long arithmetic: an address below PAGE_OFFSET wraps at 2^32.
        Assert.Equal(0xf000_0000UL, l.VirtToPhys(0xb000_0000));
    }

    [Fact]
    public void Rpi4DmaAddressesAreOffsetFromPhysical()
    {
        // dma-ranges = <0xc0000000 0x0 0x0 0x40000000>: bus = phys + 0xc0000000 for the first GiB.
        foreach (var l in new[] { PlatformLayout.Arm64Rpi4, PlatformLayout.Arm32Rpi4 })
        {
            Assert.Equal(0xc100_0000UL, l.PhysToDma(0x0100_0000));
            Assert.Equal(0x0100_0000UL, l.DmaToPhys(0xc100_0000));
        }

        Assert.Equal(0x8100_0000UL, PlatformLayout.Arm64Va48.PhysToDma(0x8100_0000));
    }

    /// <summary>
    /// arm64 VMALLOC_START = MODULES_END: PAGE_END + 128 MiB of modules in v5.17..v6.4 (after b89ddf4cca43 dropped the
    /// BPF JIT region), PAGE_END + 2 GiB in v6.5 (3e35d303ab7d); the linux-6.5-arm64 profile has the v6.5 layout.
    /// </summary>
    [Fact]
    public void Arm64VmallocStartFollowsTheModuleRegion()
    {
        Assert.Equal(0xffff_8000_0800_0000UL, PlatformLayout.Arm64Va48.VmallocStart);
        Assert.Equal(0xffff_8000_8000_0000UL, PlatformLayout.Arm64Va48V65.VmallocStart);
        Assert.Equal(PlatformLayout.Arm64Va48.VmallocEnd, PlatformLayout.Arm64Va48V65.VmallocEnd);
        Assert.Same(PlatformLayout.Arm64Va48V65, DmaCheck.Dma.Profiles.Linux65Arm64.Layout);
        Assert.Same(PlatformLayout.Arm64Va48, DmaCheck.Dma.Profiles.Linux64Arm64.Layout);
        Assert.False(PlatformLayout.Arm64Va48V65.IsVmallocAddr(0xffff_8000_1000_0000)); // a module address on v6.5
        Assert.True(PlatformLayout.Arm64Va48.IsVmallocAddr(0xffff_8000_1000_0000));
    }

    [Fact]
    public void Rpi4BanksLeaveTheFirmwareCarveOutOutOfRam()
    {
        var l = PlatformLayout.Arm64Rpi4;
        Assert.True(l.PfnValid(0x3b3ff));
        Assert.False(l.PfnValid(0x3b400)); // 0x3b400000..0x40000000: the GPU firmware's carve-out
        Assert.True(l.PfnValid(0x40000));
        Assert.False(l.PfnValid(0xfc000)); // peripherals from 0xfc000000
        Assert.False(l.IsRam(0x3b3f_f000, 0x2000)); // runs into the hole
    }

    [Fact]
    public void VmallocToPageWalksTheMappingsVirtToPageDoesNot()
    {
        var k = KernelState.Boot(PlatformLayout.Arm32Rpi4, new KernelConfig(), HardwareConfig.Default);
        var ops = new List<HwOp>();
        k = k.AllocPages(Gfp.GFP_KERNEL, 0, "t", ops, out var pfn);
        k = k.Vmap(pfn, 1, MemoryType.NormalNonCacheable, "v", "test", ops, out var va);
        Assert.Equal(pfn, k.VmallocToPfn(va + 123));
        Assert.NotEqual(pfn, k.Layout.VirtToPfn(va));
        Assert.Null(k.VmallocToPfn(va + PlatformLayout.PageSize)); // the guard page: nothing mapped
    }

    [Fact]
    public void TenantsTakeHighmemFirstAndAreMappedInTheirOwnProcess()
    {
        var k = KernelState.Boot(PlatformLayout.Arm32Rpi4, new KernelConfig(), HardwareConfig.Default, [new TenantSpec("firefox", 4096, "secret", TenantZone.Default)]);
        // GFP_HIGHUSER: from the bottom of highmem, 0x30000..0x31000, in MAX_ORDER blocks of 1024 pages.
        Assert.Equal(new PageOwner(OwnerKind.Tenant, "firefox", "secret"), k.OwnerOf(0x30800));
        Assert.Equal(OwnerKind.Free, k.OwnerOf(0x31000).Kind);
        Assert.Equal(OwnerKind.KernelImage, k.OwnerOf(0x10).Kind);
        Assert.Equal(OwnerKind.NoRam, k.OwnerOf(0x3b400).Kind);
        Assert.True(k.Mmu.IsFillable(0x3080_0000));
        Assert.Equal([(0x3000_0000UL, 4UL << 20, "secret"), (0x3040_0000UL, 4UL << 20, "secret"), (0x3080_0000UL, 4UL << 20, "secret"), (0x30c0_0000UL, 4UL << 20, "secret")],
            k.TenantRegions().ToList());
    }
}

/// <summary>The gen_pool behind the atomic pools.</summary>
public class AtomicPoolTests
{
    [Fact]
    public void FirstFitOrderAlignPlacesEachRequestAtAMultipleOfItsRoundedSize()
    {
        var pool = new DmaCheck.Dma.AtomicPool(0x1000_0000, 0x100, 16 * 4096, System.Collections.Immutable.ImmutableSortedDictionary<ulong, ulong>.Empty);
        pool = pool.Alloc(100, out var a)!;          // 1 page at 0
        pool = pool.Alloc(2 * 4096, out var b)!;     // 2 pages: aligned to 2 pages, so at 2 pages, not 1
        pool = pool.Alloc(3 * 4096, out var c)!;     // 3 pages round to 4: at 4 pages
        pool = pool.Alloc(4096, out var d)!;         // 1 page: the hole at page 1
        Assert.Equal([0UL, 2 * 4096UL, 4 * 4096UL, 4096UL], [a, b, c, d]);
        Assert.Null(pool.Alloc(16 * 4096, out _));   // no 16-page run left
        pool = pool.Free(a, 4096, "t").Free(d, 4096, "t").Free(b, 8192, "t").Free(c, 3 * 4096, "t");
        Assert.Throws<KernelBugException>(() => pool.Free(a, 4096, "t"));
        Assert.NotNull(pool.Alloc(16 * 4096, out var all));
        Assert.Equal(0UL, all);
    }
}
