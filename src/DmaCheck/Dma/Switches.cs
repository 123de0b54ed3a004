namespace DmaCheck.Dma;

/// <summary>One behaviour of a switch, with the kernel commit that introduced it and the first release that had it.</summary>
/// <param name="Release">The first release with this behaviour: the tag whose merge window or -rc first had the commit (the
/// equivalent of `git describe --contains`, from the pull request or the kernel.org push log that carried it), or "before vX" for the behaviour a commit replaced.</param>
public sealed record SwitchValue(string Name, string Commit, string Description, string Release);

/// <summary>A piece of kernel behaviour that changed between versions, with one named value per behaviour (design §2).</summary>
/// <param name="Arch">The architecture whose profiles carry this switch, or null for every profile.</param>
public sealed record SwitchDef(string Key, string Description, IReadOnlyList<SwitchValue> Values, Kernel.Arch? Arch = null)
{
    public SwitchValue? Find(string name) => Values.FirstOrDefault(v => v.Name == name);
}

/// <summary>Every switch the model knows. A profile gives each a value; a scenario may override any of them with <c>set</c>.</summary>
public static class Switches
{
    /// <summary>arch_dma_prep_coherent() on arm64 (arch/arm64/mm/dma-mapping.c).</summary>
    public static SwitchDef PrepCoherent { get; } = new(
        "arm64.prep_coherent",
        "What arch_dma_prep_coherent() does to the linear-map alias of freshly allocated coherent pages before they are remapped non-cacheable.",
        [
            new SwitchValue("clean_inval", "b7d9aae40484",
                "dcache_clean_inval_poc (DC CIVAC): dirty lines are written back and every line is invalidated. The behaviour from the move to dma-direct remap (~v5.0) to v6.0, restored for v6.1 final by b7d9aae40484 (Revert \"arm64: dma: Drop cache invalidation from arch_dma_prep_coherent()\"), and kept until v6.3.", "v5.0; v6.1 again (after its rc1..rc8 without)"),
            new SwitchValue("clean", "7bd6680b47fa",
                "dcache_clean_poc (DC CVAC): dirty lines are written back and stay valid. First c44094eee32f (v6.1-rc1..rc8), then 7bd6680b47fa (Revert \"Revert ...\"), merged for v6.4-rc1 and current since.", "v6.4-rc1 (and v6.1-rc1..rc8)"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>arch_sync_dma_for_device() for DMA_FROM_DEVICE on arm64.</summary>
    public static SwitchDef SyncForDeviceFromDevice { get; } = new(
        "arm64.sync_for_device_from_device",
        "What arch_sync_dma_for_device() (dma_map_* and dma_sync_*_for_device) does for DMA_FROM_DEVICE.",
        [
            new SwitchValue("inval", "pre-c50f11c6196f",
                "__dma_map_area: dcache_inval_poc on the buffer (v5.0..v5.18; stable before 5.15.50 and 5.10.125).", "v5.0"),
            new SwitchValue("clean", "c50f11c6196f",
                "dcache_clean_poc, as for the other directions: c50f11c6196f \"arm64: mm: Don't invalidate FROM_DEVICE buffers at start of DMA transfer\" (v5.19-rc3).", "v5.19-rc3 (5.15.50, 5.10.125)"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>How dma_common_mmap() and dma_common_get_sgtable() (kernel/dma/ops_helpers.c) find the page behind cpu_addr.</summary>
    public static SwitchDef CommonVaddrToPage { get; } = new(
        "dma_common_vaddr_to_page",
        "How dma_common_mmap() and dma_common_get_sgtable() turn the cpu_addr of a coherent buffer into its first struct page. These are the mmap/get_sgtable of dma_map_ops that have none of their own, xen_swiotlb_dma_ops among them.",
        [
            new SwitchValue("virt_to_page", "pre-40ac971eab89",
                "virt_to_page(cpu_addr): linear-map arithmetic, wrong for the vmalloc address of a remapped or pool buffer (v5.8..v5.13; ops_helpers.c since v5.10, dma-mapping.c before).", "before v5.14"),
            new SwitchValue("vmalloc_aware", "40ac971eab89",
                "dma_common_vaddr_to_page(): vmalloc_to_page() for a vmalloc address, virt_to_page() otherwise. 40ac971eab89 \"dma-mapping: handle vmalloc addresses in dma_common_{mmap,get_sgtable}\" (v5.14-rc3; stable backports).", "v5.14-rc3"),
        ]);

    /// <summary>How xen_swiotlb_free_coherent() (drivers/xen/swiotlb-xen.c) finds the page whose PG_xen_remapped it tests and clears.</summary>
    public static SwitchDef XenFreeCoherentPage { get; } = new(
        "xen_free_coherent_page",
        "How xen_swiotlb_free_coherent() finds the struct page of the buffer before TestClearPageXenRemapped().",
        [
            new SwitchValue("virt_to_page", "pre-8b1e868f6607",
                "TestClearPageXenRemapped(virt_to_page(vaddr)): linear-map arithmetic on what may be a vmalloc address (v5.8).", "before v5.9"),
            new SwitchValue("vmalloc_aware", "8b1e868f6607",
                "vmalloc_to_page() for a vmalloc vaddr, virt_to_page() otherwise: 8b1e868f6607 \"swiotlb-xen: use vmalloc_to_page on vmalloc virt addresses\" (v5.9-rc1; stable 5.4 and 5.7).", "v5.9-rc1"),
        ]);

    /// <summary>When swiotlb_tbl_map_single() copies the buffer into its bounce slots (reference §6.4, CVE-2022-0854).</summary>
    public static SwitchDef SwiotlbMapBounce { get; } = new(
        "swiotlb.map_bounce",
        "When swiotlb_tbl_map_single() copies the original buffer into the bounce slots at map time.",
        [
            new SwitchValue("to_device_only", "pre-ddbd89deb7d3",
                "Only for DMA_TO_DEVICE and DMA_BIDIRECTIONAL without DMA_ATTR_SKIP_CPU_SYNC: a DMA_FROM_DEVICE mapping keeps the slots' previous contents, and what the device does not overwrite is copied back into the buffer at unmap (the info leak of CVE-2022-0854; up to v5.17-rc5).", "before v5.17-rc6"),
            new SwitchValue("unless_overwrite", "ddbd89deb7d3",
                "Whatever the direction unless DMA_ATTR_SKIP_CPU_SYNC, except a DMA_FROM_DEVICE mapping with the new DMA_ATTR_OVERWRITE: ddbd89deb7d3 'swiotlb: fix info leak with DMA_FROM_DEVICE' (pulled for v5.17-rc6, 27 Feb 2022; until aa6f8dcbab47 in v5.17-rc8); the same again from bddac7c1e02b, which reverted aa6f8dcbab47 in the v5.18 merge window, until 901c7280ca0d two days later.", "v5.17-rc6"),
            new SwitchValue("always", "901c7280ca0d",
                "Always, even with DMA_ATTR_SKIP_CPU_SYNC; DMA_ATTR_OVERWRITE is gone: aa6f8dcbab47 (in mainline by 8 Mar 2022, so v5.17-rc8 and v5.17 shipped with it), reverted by bddac7c1e02b (26 Mar 2022, v5.18 merge window), then reinstated for the map side by 901c7280ca0d 'Reinstate some of swiotlb: rework ...' (v5.18-rc1; stable backports), and current since.", "v5.18-rc1 (v5.17-rc8 with aa6f8dcbab47)"),
        ]);

    /// <summary>Whether dma_sync_*_for_device() bounces a DMA_FROM_DEVICE mapping (reference §6.4).</summary>
    public static SwitchDef SwiotlbSyncForDeviceBounce { get; } = new(
        "swiotlb.sync_for_device_bounce",
        "Which directions swiotlb_sync_single_for_device() copies the original buffer into the bounce slots for.",
        [
            new SwitchValue("by_direction", "901c7280ca0d",
                "DMA_TO_DEVICE and DMA_BIDIRECTIONAL only; DMA_FROM_DEVICE copies nothing. The behaviour before aa6f8dcbab47 (up to v5.17-rc7), restored by its revert bddac7c1e02b (v5.18 merge window) and kept by 901c7280ca0d.", "before v5.17-rc8; again v5.18-rc1"),
            new SwitchValue("always", "aa6f8dcbab47",
                "Every direction: aa6f8dcbab47 'swiotlb: rework fix info leak with DMA_FROM_DEVICE' (in mainline by 8 Mar 2022: v5.17-rc8, and v5.17 shipped with it), which clobbered what the device had written since the last sync_for_cpu (the ath9k regression) and was reverted by bddac7c1e02b about three weeks later (26 Mar 2022, v5.18 merge window).", "v5.17-rc8 (until v5.18-rc1)"),
        ]);

    /// <summary>Whether small kmalloc objects share cache lines, with dma-direct bouncing them for non-coherent DMA (reference §6.5.3).</summary>
    public static SwitchDef KmallocBounce { get; } = new(
        "dma.kmalloc_bounce",
        "The minimum kmalloc alignment on arm64, and whether dma_direct_map_page bounces small buffers that may share a cache line (dma_kmalloc_needs_bounce).",
        [
            new SwitchValue("off", "pre-370645f41e6e",
                "ARCH_KMALLOC_MINALIGN = ARCH_DMA_MINALIGN (128): kmalloc objects never share a cache line, and nothing bounces for its size (up to v6.4).", "before v6.5"),
            new SwitchValue("on", "370645f41e6e",
                "CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (v6.5): 370645f41e6e 'dma-mapping: force bouncing if the kmalloc() size is not cache-line-aligned', 9382bc44b5f5 'arm64: allow kmalloc() caches aligned to the smaller cache_line_size()' and 1c1a429efd4e 'arm64: enable ARCH_WANT_KMALLOC_DMA_BOUNCE for arm64'. Boot makes a small swiotlb pool, kmalloc objects are 8-byte aligned and may share lines, and a non-coherent mapping that is not DMA_TO_DEVICE bounces unless its size is at least 256 or rounds up (kmalloc_size_roundup) to a multiple of the cache line.", "v6.5-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>What dma_map_resource() (kernel/dma/mapping.c) does with a physical address that is RAM (reference §8.2 E18, rule R9).</summary>
    public static SwitchDef MapResourceRamCheck { get; } = new(
        "dma.map_resource_ram_check",
        "What dma_map_resource() does when the physical address it is given is RAM, which the API reserves for MMIO (dma_map_single/page are for RAM).",
        [
            new SwitchValue("bug_on", "v4.9",
                "\"Don't allow RAM to be mapped\": BUG_ON(pfn_valid(PHYS_PFN(phys_addr))) in include/linux/dma-mapping.h, from dma_map_resource's introduction (v4.9) until Christoph Hellwig's 'dma-mapping: don't BUG when calling dma_map_resource on RAM' (posted January 2019, v5.1 merge window): the kernel oopses.", "v4.9"),
            new SwitchValue("warn_fail", "v5.1",
                "\"Don't allow RAM to be mapped\": WARN_ON_ONCE(pfn_valid(PHYS_PFN(phys_addr))) and DMA_MAPPING_ERROR, with or without CONFIG_DMA_API_DEBUG: from 'dma-mapping: don't BUG when calling dma_map_resource on RAM' (v5.1) to v5.15; 5.10 and 5.15 stable until the 2022 backports.", "v5.1-rc1"),
            new SwitchValue("none", "a9c38c5d267c",
                "No test: a9c38c5d267c 'dma-mapping: remove bogus test for pfn_valid from dma_map_resource' (Mike Rapoport, with 3de360c3fdb3 'arm64/mm: drop HAVE_ARCH_PFN_VALID'; v5.16-rc1; stable backports), because pfn_valid() is true for MMIO that shares a memory-map section with RAM. RAM maps like MMIO: dma_direct_map_resource returns the physical address, with no cache maintenance. (f7326196a781 'dma-mapping: export new dma_*map_phys() interface' brought the test back under CONFIG_DMA_API_DEBUG as a WARN and a failure, until af0c3f058662; that interim behaviour is not a value here.)", "v5.16-rc1"),
            new SwitchValue("debug_report", "af0c3f058662",
                "af0c3f058662 'dma-mapping: move dma_map_resource() sanity check into debug code' (2026; 6.18 stable), fixing f7326196a781: dma_map_resource no longer fails; with CONFIG_DMA_API_DEBUG, debug_dma_map_phys reports \"dma_map_resource called for RAM address\" (err_printk) when pfn_valid() and the page is not PageReserved, and records the mapping.", "2026 (6.18 stable)"),
        ]);

    /// <summary>When add_dma_entry (kernel/dma/debug.c) reports a second mapping that is not DMA_TO_DEVICE starting in an active cache line (E21).</summary>
    public static SwitchDef DebugCachelineOverlap { get; } = new(
        "dma_debug.cacheline_overlap",
        "Whether CONFIG_DMA_API_DEBUG's add_dma_entry reports 'cacheline tracking EEXIST, overlapping mappings aren't supported' when a mapping that is not DMA_TO_DEVICE (or a coherent allocation) starts in a cache line an earlier one already tracks.",
        [
            new SwitchValue("silent", "pre-2b4bbc6231d7",
                "The overlap is only counted (active_cacheline_inc_overlap), never reported (up to v5.13).", "before v5.14"),
            new SwitchValue("report", "2b4bbc6231d7",
                "2b4bbc6231d7 'dma-debug: report -EEXIST errors in add_dma_entry' (v5.14): err_printk for every overlap, DMA_ATTR_SKIP_CPU_SYNC mappings included.", "v5.14-rc1"),
            new SwitchValue("skip_cpu_sync", "c2bbf9d1e9ac",
                "c2bbf9d1e9ac 'dma-debug: teach add_dma_entry() about DMA_ATTR_SKIP_CPU_SYNC' (v5.15-rc7): not for a mapping made with DMA_ATTR_SKIP_CPU_SYNC. With CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (v6.5) small kmalloc buffers that share a line are reported too (false positives).", "v5.15-rc7"),
            new SwitchValue("kmalloc_bounce", "03521c892bb8",
                "03521c892bb8 'dma-debug: don't report false positives with DMA_BOUNCE_UNALIGNED_KMALLOC' (v6.18 fixes, late 2025; stable 6.6 and 6.12): not when CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC is set and the device has a swiotlb pool either.", "v6.18 fixes (6.6, 6.12 stable)"),
            new SwitchValue("cache_alignment", "3d48c9fd78dd",
                "3d48c9fd78dd 'dma-debug: suppress cacheline overlap warning when arch has no DMA alignment requirement' (Mikhail Gavrilov, March 2026; 6.19 stable): not when dma_get_cache_alignment() is below L1_CACHE_BYTES either, as on x86_64 (1 < 64), where kmalloc(8) objects that share a line are harmless (the USB hub false positives since v5.14).", "2026 (6.19 stable)"),
        ]);

    /// <summary>Where arm64's dma_get_cache_alignment() comes from: the granule of kmalloc's minimum alignment, of dma_kmalloc_needs_bounce and of the line-sharing rule.</summary>
    public static SwitchDef DmaCacheAlignment { get; } = new(
        "arm64.dma_cache_alignment",
        "What dma_get_cache_alignment() returns on arm64: the alignment the kernel gives kmalloc objects without bouncing, that dma_kmalloc_needs_bounce tests sizes against, and that a DMA buffer must not share with data the CPU writes.",
        [
            new SwitchValue("arch_dma_minalign", "pre-9382bc44b5f5",
                "ARCH_DMA_MINALIGN, 128 bytes, a constant (include/linux/dma-mapping.h), whatever the CPU's writeback granule (up to v6.4). A buffer aligned to the 64-byte L1_CACHE_BYTES (____cacheline_aligned) next to data the CPU writes breaks the rule on any arm64 kernel of this era: IIO fixed dozens of drivers for it (e.g. f68a0445ee86 'iio: accel: adxl313: Fix alignment for DMA safety', v6.0).", "before v6.5"),
            new SwitchValue("cache_line_size", "9382bc44b5f5",
                "9382bc44b5f5 'arm64: allow kmalloc() caches aligned to the smaller cache_line_size()' (v6.5): dma_get_cache_alignment is cache_line_size(), the running CPU's writeback granule (4 << CTR_EL0.CWG; ARCH_DMA_MINALIGN when CWG reads 0). ARCH_DMA_MINALIGN stays 128 as the static alignment for structure members.", "v6.5-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>How swiotlb_bounce() (kernel/dma/swiotlb.c) finds the original address behind a bounce address inside a mapping, for a sync of a sub-range.</summary>
    public static SwitchDef SwiotlbSyncOffset { get; } = new(
        "swiotlb.sync_offset",
        "How swiotlb finds the original bytes for a bounce address that is not the start of its mapping (dma_sync_single_range_*, or dma_sync_single_* on handle + offset): from the slot's orig_addr, with what offset, and what it checks.",
        [
            new SwitchValue("slot_offset", "pre-16fc3cef33a0",
                "swiotlb_tbl_sync_single: the slot's io_tlb_orig_addr plus the bounce address's offset in its 2 KiB slot; bounce addresses are always slot-aligned at map, so every sub-range lands right; no size check (v5.4, v5.10).", "before v5.12"),
            new SwitchValue("slot_start", "16fc3cef33a0",
                "16fc3cef33a0 'swiotlb: don't modify orig_addr in swiotlb_tbl_sync_single' (Christoph Hellwig, in the min_align_mask series pulled for v5.12-rc1; backported to 5.10 and 5.11 stable): the offset in the slot is dropped, so a sync of a sub-range that does not start on a slot boundary copies from or to the start of the slot's original bytes instead of the sub-range (the caam breakage, Dominique Martinet and Horia Geantă); a sync past the slot's alloc_size is truncated with \"Buffer overflow detected\".", "v5.12-rc1"),
            new SwitchValue("align_offset", "5f89468e2f06",
                "5f89468e2f06 'swiotlb: manipulate orig_addr when tlb_addr has offset' (Bumyong Lee; merged after v5.13-rc7, so v5.13; Fixes: 16fc3cef33a0): orig_addr and alloc_size move by (tlb_addr & (IO_TLB_SIZE - 1)) - swiotlb_align_offset(orig_addr), an unsigned int; a negative difference (an address in the first align-offset bytes of a slot) is not modelled.", "v5.13"),
            new SwitchValue("checked", "868c9ddc182b",
                "868c9ddc182b 'swiotlb: add overflow checks to swiotlb_bounce' (Dominique Martinet; v5.15-rc1, AUTOSEL to 5.13 stable): as 5f89468e2f06, but an offset in the slot below the original's aligned offset WARNs \"Access before mapping start detected\" and an offset past alloc_size \"Buffer overflow detected\", and nothing is copied (also, wrongly, for such an address in the second or a later slot).", "v5.15-rc1"),
            new SwitchValue("signed", "e8068f2d756d",
                "e8068f2d756d 'swiotlb: fix swiotlb_bounce() to do partial sync's correctly' (Michael Kelley, dma-mapping fixes for v6.9; CVE-2024-35814): the two checks of 868c9ddc182b are gone and tlb_offset is a signed int, so a sub-range that starts in the first align-offset bytes of a later slot is found right; only the size check against alloc_size is left.", "v6.9"),
        ]);

    /// <summary>How swiotlb's slot search (swiotlb_tbl_map_single / swiotlb_find_slots / swiotlb_area_find_slots) places a bounce buffer, and which low bits of the original address the bounce address keeps.</summary>
    public static SwitchDef SwiotlbSlotSearch { get; } = new(
        "swiotlb.slot_search",
        "Where swiotlb's slot search puts a bounce buffer: whether the bounce address keeps the low bits the device's min_align_mask names (dma_set_min_align_mask, NVMe: 0xfff), and how mappings of a page or more are aligned.",
        [
            new SwitchValue("page_stride", "pre-1f221a0d0dbf",
                "swiotlb_tbl_map_single before the min_align_mask series: the bounce address is the start of a slot, so every low bit of the original below 2 KiB is dropped whatever the device needs; a mapping of PAGE_SIZE or more starts on a page-aligned slot (stride 2 from an aligned index), a smaller one on any free slot (v5.4, v5.10; the field min_align_mask did not exist).", "before v5.12"),
            new SwitchValue("min_align_stride", "1f221a0d0dbf",
                "1f221a0d0dbf 'swiotlb: respect min_align_mask' (Christoph Hellwig, in the series that added min_align_mask to struct device_dma_parameters and 3d2d861eb03e 'nvme-pci: set min_align_mask'; pulled for v5.12-rc1, backported to 5.10 and 5.11 stable): the bounce address keeps orig_addr & min_align_mask & (IO_TLB_SIZE - 1) as an offset in the slot, and the search only takes slots that match the original in the mask's bits above the slot; stride = (mask >> IO_TLB_SHIFT) + 1, doubled for mappings of a page or more, from an index aligned to the stride; a mismatching slot is skipped by one (v5.12..v6.2).", "v5.12-rc1"),
            new SwitchValue("address_mask", "0eee5ae10256",
                "0eee5ae10256 'swiotlb: fix slot alignment checks' (Petr Tesarik, in mainline for v6.3 with a follow-up fix; backported to 6.1.23): page alignment for a mapping of a page or more joins the mask that a slot's address is compared with against the original's, and the search starts at the area's index unaligned (v6.3..v6.8).", "v6.3"),
            new SwitchValue("page_unless_min_align", "14cebf689a78",
                "14cebf689a78 'swiotlb: Reinstate page-alignment for mappings >= PAGE_SIZE' (Will Deacon, tags/dma-mapping-6.9-2024-03-24, so v6.9-rc1; the same series also reworked the alignment of explicitly aligned allocations): the mask compared with the original is the device's min_align_mask above the slot only; a mapping of a page or more is page aligned only when the device has no min_align_mask. That last placement is not modelled (the run says so).", "v6.9-rc1"),
        ]);

    /// <summary>What the user mapping of a coherent buffer gets as page attributes: dma_pgprot() (kernel/dma/mapping.c) or, before it, arch_dma_mmap_pgprot().</summary>
    public static SwitchDef DmaMmapPgprot { get; } = new(
        "dma.mmap_pgprot",
        "The page attributes dma_mmap_attrs gives the user mapping of a coherent buffer (vma->vm_page_prot).",
        [
            new SwitchValue("arch_dma_mmap_pgprot", "pre-33dcb37cef74",
                "dma_common_mmap set vm_page_prot = arch_dma_mmap_pgprot(dev, prot, attrs) whether the device is coherent or not: on arm64 pgprot_writecombine (Normal-NC) for a non-coherent device or DMA_ATTR_WRITE_COMBINE, so a coherent device's buffer allocated and mapped with DMA_ATTR_WRITE_COMBINE (dma_alloc_wc, dma_mmap_wc) got a non-cacheable user mapping while its kernel mapping is cacheable; without ARCH_HAS_DMA_MMAP_PGPROT (x86) pgprot_noncached for every device (up to v5.3-rc3; the x86 case is not modelled).", "before v5.3"),
            new SwitchValue("dma_pgprot", "33dcb37cef74",
                "33dcb37cef74 'dma-mapping: fix page attributes for dma_mmap_*' (Christoph Hellwig, tags/dma-mapping-5.3-4 pulled 10 Aug 2019, so v5.3-rc4): dma_pgprot() returns prot unchanged for a coherent device, and only a non-coherent one gets arch_dma_mmap_pgprot (pgprot_writecombine on arm64).", "v5.3-rc4"),
        ]);

    /// <summary>What xen_swiotlb_dma_ops.alloc/.free are on arm and arm64 (drivers/xen/swiotlb-xen.c).</summary>
    public static SwitchDef XenArmAlloc { get; } = new(
        "xen.arm_alloc",
        "What a Xen dom0 on arm/arm64 uses for dma_alloc_attrs/dma_free_attrs (xen_swiotlb_dma_ops.alloc and .free).",
        [
            new SwitchValue("xen_swiotlb_alloc_coherent", "pre-566fb90e050d",
                "xen_swiotlb_alloc_coherent / xen_swiotlb_free_coherent around xen_alloc_coherent_pages = dma_direct_alloc: the size rounded to a Xen page order, a second memset through the returned address, and at free TestClearPageXenRemapped on the page of vaddr (see xen_free_coherent_page) before dma_direct_free (v5.4..v5.18).", "before v5.19"),
            new SwitchValue("dma_direct", "566fb90e050d",
                "566fb90e050d 'swiotlb-xen: fix DMA_ATTR_NO_KERNEL_MAPPING on arm' (Christoph Hellwig, in the dma-mapping pull for v5.19-rc1): on arm and arm64 .alloc = dma_direct_alloc and .free = dma_direct_free; xen_swiotlb_alloc_coherent is x86 only.", "v5.19-rc1"),
        ]);

    /// <summary>Where iommu_dma_map_page (drivers/iommu/dma-iommu.c) applies arch_sync_dma_for_device when it bounces a mapping through swiotlb.</summary>
    public static SwitchDef IommuBounceMapSync { get; } = new(
        "iommu_dma.bounce_map_sync",
        "Whether iommu_dma_map_page bounces a mapping dev_use_swiotlb picks (an untrusted device's, or from v6.5 a small non-coherent kmalloc buffer's) that does not fill whole IOVA granules, and which physical address its arch_sync_dma_for_device maintains then.",
        [
            new SwitchValue("none", "pre-82612d66d51d",
                "iommu-dma does not bounce at all: a sub-granule mapping of an untrusted device maps the granules around the buffer in place, neighbours included (up to v5.10).", "before v5.11"),
            new SwitchValue("original", "82612d66d51d",
                "82612d66d51d 'iommu: Allow the dma-iommu api to use bounce buffers' (Tom Murphy and Lu Baolu's series converting VT-d to iommu-dma, applied by Will Deacon for v5.11-rc1): the mapping bounces through swiotlb, and the IOMMU maps the bounce slot, but arch_sync_dma_for_device runs afterwards on the original buffer's address, so for a non-coherent device the bounce slot's bytes (the copy and the zeroed padding) may still sit dirty in the CPU cache while the device reads the slot from memory.", "v5.11-rc1"),
            new SwitchValue("bounce", "06e620345d54",
                "06e620345d54 'iommu/dma: Fix arch_sync_dma for map' (David Stevens, iommu tree for v5.16-rc1; 5.15 and 5.10 stable): arch_sync_dma_for_device on the address really used, the bounce slot, before __iommu_dma_map.", "v5.16-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>Which bytes of a bounce slot's IOVA granules iommu_dma_map_page zeroes (drivers/iommu/dma-iommu.c).</summary>
    public static SwitchDef IommuBouncePadding { get; } = new(
        "iommu_dma.bounce_padding",
        "Which bytes around a bounced mapping iommu_dma_map_page clears, so that the device (which the IOMMU lets reach whole granules) does not see what the swiotlb slots held before.",
        [
            new SwitchValue("from_bounce", "82612d66d51d",
                "For every bounced mapping: memset from the bounce address for iova_align(size) bytes, skipping the first size bytes when the buffer was copied in (DMA_TO_DEVICE or DMA_BIDIRECTIONAL without DMA_ATTR_SKIP_CPU_SYNC); so a DMA_FROM_DEVICE mapping's slot is cleared whole, the copy that swiotlb_tbl_map_single made included, and nothing before the bounce address is cleared (v5.11..v6.9).", "v5.11-rc1"),
            new SwitchValue("pre_post_untrusted", "2650073f1b58",
                "2650073f1b58 'iommu/dma: fix zeroing of bounce buffer padding used by untrusted devices' (Michael Kelley, dma-mapping pull for v6.10-rc1; CVE-2024-35814's series): only for an untrusted device, the pre-padding from the granule's start to the bounce address and the post-padding from the buffer's end to the granule's end; the buffer proper keeps what swiotlb_tbl_map_single copied in.", "v6.10-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>The size iommu_dma_map_page passes to __iommu_dma_map for a bounced mapping (drivers/iommu/dma-iommu.c).</summary>
    public static SwitchDef IommuBounceMapSize { get; } = new(
        "iommu_dma.bounce_map_size",
        "The size iommu_dma_map_page hands to __iommu_dma_map after bouncing a mapping, which maps iova_align(size + iova_offset) bytes around the bounce address; the offset is not 0 when the device has a min_align_mask (since 1f221a0d0dbf, v5.12, the bounce address keeps the original's low bits).",
        [
            new SwitchValue("aligned", "82612d66d51d",
                "82612d66d51d (v5.11-rc1): the granule-aligned size, iova_align(size); for a device with a min_align_mask whose buffer does not start on a granule this maps one IOVA granule more than the bounce slots need, the swiotlb memory after them, and the unmap (given the driver's size) leaves that granule mapped and frees the IOVA range into the cache of a smaller order (v5.12..v5.15).", "v5.11-rc1"),
            new SwitchValue("size", "2cbc61a1b166",
                "2cbc61a1b166 'iommu/dma: Account for min_align_mask w/swiotlb' (David Stevens, iommu pull for v5.16-rc1; 5.15.33 stable): the driver's size, so __iommu_dma_map maps exactly the granules the bounce covers.", "v5.16-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>What iommu_dma_sync_sg_for_cpu / _for_device maintain for a list iommu-dma bounced element by element (drivers/iommu/dma-iommu.c).</summary>
    public static SwitchDef IommuSyncSgBounce { get; } = new(
        "iommu_dma.sync_sg_bounce",
        "How iommu_dma_sync_sg_for_cpu and iommu_dma_sync_sg_for_device find the bounce slots of a scatterlist that iommu_dma_map_sg bounced element by element (an untrusted device's list, or from v6.5 one with a small non-coherent kmalloc element).",
        [
            new SwitchValue("sg_phys", "82612d66d51d",
                "82612d66d51d (v5.11-rc1): each element's sg_phys, the original buffer: arch_sync_dma_* on it for a non-coherent device, and a swiotlb copy only if is_swiotlb_buffer(sg_phys), which the original never is; so dma_sync_sg_for_cpu copies nothing back from the bounce slots and dma_sync_sg_for_device nothing into them (only the map and the unmap copy) (v5.11..v5.15).", "v5.11-rc1"),
            new SwitchValue("dma_address", "08ae5d4a1ae9",
                "08ae5d4a1ae9 'iommu/dma: Fix sync_sg with swiotlb' (David Stevens, iommu pull for v5.16-rc1; 5.15 stable): iommu_dma_sync_single_for_* on each element's sg_dma_address, which iommu_iova_to_phys turns into the bounce slot (the arch maintenance and the swiotlb copy); since v6.5 for a list marked SG_DMA_SWIOTLB.", "v5.16-rc1"),
        ],
        Kernel.Arch.Arm64);

    /// <summary>Whether 32-bit arm's dma_unmap_* / dma_sync_*_for_cpu do any cache maintenance (arch/arm/mm/dma-mapping.c).</summary>
    public static SwitchDef Arm32DevToCpu { get; } = new(
        "arm32.dev_to_cpu",
        "What 32-bit arm does when a streaming buffer comes back to the CPU (dma_unmap_single/page/sg, dma_sync_*_for_cpu): whether a speculative linefill made while the device owned the buffer is thrown away.",
        [
            new SwitchValue("none", "pre-v2.6.34 ARM speculative-prefetch series",
                "All cache maintenance happens before the transfer (dma_map_* → dma_cache_maint); dma_unmap_single/page and dma_sync_*_for_cpu do nothing for memory that does not bounce, which is only right for a CPU that never fills a line on its own. On an ARMv6/ARMv7 core, which prefetches speculatively, a line filled while the device was writing stays in the cache and the CPU reads the stale bytes after the unmap (the 2009 linux-arm-kernel thread 'How to efficiently handle DMA and cache on ARMv7?', Catalin Marinas and Russell King). Up to v2.6.33.", "v2.6.33 and earlier"),
            new SwitchValue("invalidate", "ARM: dma-mapping speculative-prefetch series (Russell King, v2.6.34 merge window; commit id not checked here)",
                "Russell King's dma-mapping rework for speculative prefetching: the map side becomes ___dma_*_cpu_to_dev (dmac_map_area, then the outer op) and the unmap/sync-for-CPU side ___dma_*_dev_to_cpu, which for every direction but DMA_TO_DEVICE invalidates the outer cache, then the inner one (dmac_unmap_area = v7_dma_unmap_area), under the comment 'FIXME: non-speculating: not required'; the same order is __dma_page_dev_to_cpu's to this day (Arm32DmaHooks).", "v2.6.34-rc1"),
        ],
        Kernel.Arch.Arm32);

    /// <summary>Which CPUs arch/mips' cpu_needs_post_dma_flush() names (arch/mips/mm/dma-default.c, dma-noncoherent.c since v4.20).</summary>
    public static SwitchDef MipsPostDmaFlush { get; } = new(
        "mips.post_dma_flush",
        "Which MIPS cores cpu_needs_post_dma_flush() says may have filled a line speculatively during the transfer, so that arch_sync_dma_for_cpu (unmap, sync for the CPU) invalidates the buffer again; for every other core it does nothing.",
        [
            new SwitchValue("r10000", "pre-f86f55d3ad21",
                "cpu_is_noncoherent_r10000(): only the R10000 and R12000 (SGI IP28, IP32) get the post-DMA maintenance; a BMIPS5000 gets none, although it speculates and can prefetch a line of a buffer a device is writing.", "before v3.12/v3.13"),
            new SwitchValue("bmips5000", "f86f55d3ad21",
                "f86f55d3ad21 'MIPS: DMA: For BMIPS5000 cores flush region just like non-coherent R10000' (Jim Quinlan, August 2013, full id f86f55d3ad21b21b736bdeb29bee0f0937b77138 as the stable review mails cite it; backported to 3.4, 3.5, 3.10 and 3.11 stable in December 2013, and no 3.12-stable backport was found, which points to v3.12, but the first mainline tag is not pinned down here): cpu_needs_post_dma_flush() adds CPU_BMIPS5000. Later additions change nothing for the bundled cores: 'MIPS: Perform post-DMA cache flushes on systems with MAARs' (Paul Burton, 2017: any core with MAARs, which the 24Kc lacks) and a202bf71f08b (CPU_LOONGSON2EF, v5.8-rc1).", "v3.12 or v3.13 (not pinned)"),
        ],
        Kernel.Arch.Mips32);

    /// <summary>What a T-Head core's ALT_CMO_OP(clean) executes (arch/riscv/include/asm/errata_list.h, THEAD_clean_A0).</summary>
    public static SwitchDef RiscvTheadClean { get; } = new(
        "riscv.thead_clean",
        "What the T-Head CMO errata (ERRATA_THEAD_CMO) patch ALT_CMO_OP(clean) to: a clean by VA that reaches memory, or one that stops at L1's next level (the L2).",
        [
            new SwitchValue("cval1", "d20ec7529236",
                "d20ec7529236 'riscv: implement cache-management errata for T-Head SoCs' (Heiko Stuebner, v6.0-rc1, with 1631ba1259d6's Zicbom support): THEAD_clean_A0 is .long 0x0245000b, documented as dcache.cva but encoding dcache.cval1, which cleans the L1 line into the L2 only. On a C910 cluster with its shared L2 (TH1520) the data a map cleans stays dirty in the L2: a TO_DEVICE device reads stale memory, and for FROM_DEVICE the unmap's flush (dcache.civa) later writes the stale L2 line over what the device wrote.", "v6.0-rc1"),
            new SwitchValue("cva", "8eb8fe67e2c8",
                "8eb8fe67e2c8 'riscv: errata: fix T-Head dcache.cva encoding' (Icenowy Zheng, posted December 2022, applied to riscv fixes September 2023, so v6.6-rc2; stable 6.1.56 and 6.5): THEAD_clean_A0 is .long 0x0255000b, dcache.cva, a clean to memory.", "v6.6-rc2 (6.1.56, 6.5 stable)"),
        ],
        Kernel.Arch.RiscV64);

    /// <summary>What 32-bit powerpc's __dma_sync does for DMA_FROM_DEVICE on a range whose ends are not cache-line aligned.</summary>
    public static SwitchDef PpcFromDeviceUnaligned { get; } = new(
        "ppc.from_device_unaligned",
        "What __dma_sync (arch/powerpc/mm/dma-noncoherent.c; both the map and the unmap side) does for DMA_FROM_DEVICE when the buffer's start or end is not L1_CACHE_BYTES aligned.",
        [
            new SwitchValue("invalidate", "pre-03d70617b8a7",
                "invalidate_dcache_range whatever the alignment: dcbi on the partly covered edge lines too, discarding dirty data of whatever shares them with the buffer (memory corruption).", "before 03d70617b8a7 (2008)"),
            new SwitchValue("flush", "03d70617b8a7",
                "03d70617b8a7 'powerpc: Prevent memory corruption due to cache invalidation of unaligned DMA buffer' (Andrew Lewis, 2008; the id is the mainline one, as Christophe Leroy and Arnd Bergmann cite it with a git.kernel.org/torvalds link in the 2023 rework threads; the first tag is not pinned here): flush_dcache_range (dcbf: write back, then invalidate) when (start | end) is not L1_CACHE_BYTES aligned, invalidate_dcache_range otherwise; current until Arnd Bergmann's 2023 rework of the table.", "2008 (not pinned)"),
        ],
        Kernel.Arch.Ppc32);

    public static IReadOnlyList<SwitchDef> All { get; } = [PrepCoherent, SyncForDeviceFromDevice, CommonVaddrToPage, XenFreeCoherentPage, SwiotlbMapBounce, SwiotlbSyncForDeviceBounce, KmallocBounce, MapResourceRamCheck, DebugCachelineOverlap, DmaCacheAlignment, SwiotlbSyncOffset, SwiotlbSlotSearch, DmaMmapPgprot, XenArmAlloc, Arm32DevToCpu, MipsPostDmaFlush, RiscvTheadClean, PpcFromDeviceUnaligned, IommuBounceMapSync, IommuBouncePadding, IommuBounceMapSize, IommuSyncSgBounce];

    public static SwitchDef? Find(string key) => All.FirstOrDefault(s => s.Key == key);
}
