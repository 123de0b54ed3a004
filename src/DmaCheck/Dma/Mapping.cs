using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The DMA API front end (kernel/dma/mapping.c, include/linux/dma-mapping.h) over dma-direct (kernel/dma/direct.c),
/// the atomic pool (kernel/dma/pool.c), arm32's __dma_alloc (arch/arm/mm/dma-mapping.c) and xen-swiotlb
/// (drivers/xen/swiotlb-xen.c). Pure: every call takes a state and returns a new one, appending the hardware
/// operations it performs to <c>ops</c>. The version followed is the profile's (v5.8..v6.4); what changed in that
/// span is a switch. docs/kernel-checks.md and docs/kernel-checks-seed2.md say what was checked against which source.
/// </summary>
public static partial class DmaApi
{
    /// <summary>DMA_MAPPING_ERROR: (dma_addr_t)~0.</summary>
    public const ulong DmaMappingError = ulong.MaxValue;

    /// <summary>The default coherent_dma_mask, DMA_BIT_MASK(32).</summary>
    public const ulong DefaultCoherentMask = 0xffff_ffff;

    /// <summary>
    /// dma_alloc_attrs(dev, size, &amp;handle, gfp, attrs) with no per-device coherent pool and no IOMMU. Rejects
    /// __GFP_COMP; strips __GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM; dispatches to xen_swiotlb_alloc_coherent in a
    /// Xen dom0, else dma_direct_alloc. Returns cpu address 0 (NULL) on failure.
    /// </summary>
    public static DmaState DmaAllocAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        if ((gfp & Gfp.__GFP_COMP) != 0)
        {
            // WARN_ON_ONCE(flag & __GFP_COMP) and return NULL.
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        gfp &= ~(Gfp.__GFP_DMA | Gfp.__GFP_DMA32 | Gfp.__GFP_HIGHMEM);
        switch (env.OpsFor(dev))
        {
            case DmaOpsKind.ArmDmaOps:
                // arm_dma_alloc / arm_coherent_dma_alloc → __dma_alloc(..., is_coherent, attrs).
                if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
                {
                    throw new NotModelledException("__dma_alloc with DMA_ATTR_NO_KERNEL_MAPPING (want_vaddr false) under arm_dma_ops is not modelled");
                }

                return ArmDmaAlloc(env, s, dev, PlatformLayout.PageAlign(size), gfp, ops, out cpuAddr, out handle);
            case DmaOpsKind.XenSwiotlb when env.XenArmAlloc == XenArmAllocMode.XenSwiotlbAllocCoherent:
                return XenSwiotlbAllocCoherent(env, s, dev, size, gfp, attrs, ops, out cpuAddr, out handle);
            case DmaOpsKind.Iommu:
                return IommuDmaAlloc(env, s, dev, size, gfp, attrs, ops, out cpuAddr, out handle);
            default:
                return DmaDirectAlloc(env, s, dev, size, gfp, attrs, ops, out cpuAddr, out handle);
        }
    }

    /// <summary>Overload without attributes, for callers of dma_alloc_coherent().</summary>
    public static DmaState DmaAllocAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle) =>
        DmaAllocAttrs(env, s, dev, size, gfp, DmaAttrs.None, ops, out cpuAddr, out handle);

    /// <summary>
    /// dma_free_attrs(): a NULL cpu_addr is a no-op; xen_swiotlb_free_coherent in a Xen dom0, else dma_direct_free.
    /// </summary>
    public static DmaState DmaFreeAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        if (cpuAddr == 0)
        {
            return s;
        }

        return env.OpsFor(dev) switch
        {
            DmaOpsKind.ArmDmaOps => ArmDmaFree(env, s, dev, size, cpuAddr, handle, ops, findings), // arm_dma_free → __arm_dma_free
            DmaOpsKind.XenSwiotlb when env.XenArmAlloc == XenArmAllocMode.XenSwiotlbAllocCoherent => XenSwiotlbFreeCoherent(env, s, dev, size, cpuAddr, handle, attrs, ops, findings),
            DmaOpsKind.Iommu => IommuDmaFree(env, s, dev, size, cpuAddr, handle, ops, findings),
            _ => DmaDirectFree(env, s, dev, size, cpuAddr, handle, attrs, ops, findings),
        };
    }

    /// <summary>
    /// The memory type dma_mmap_attrs gives the user mapping, per <see cref="Switches.DmaMmapPgprot"/>: dma_pgprot()
    /// since 33dcb37cef74 (v5.3-rc4); before it dma_common_mmap took arch_dma_mmap_pgprot() for every device, which on
    /// arm64 (v5.0..v5.2) is pgprot_writecombine unless the device is coherent and the attributes lack
    /// DMA_ATTR_WRITE_COMBINE. arm_dma_ops have their own mmap (__get_dma_pgprot for non-coherent devices only).
    /// </summary>
    public static MemoryType UserMappingPgprot(DmaEnvironment env, DmaDevice dev, DmaAttrs attrs)
    {
        if (env.DmaMmapPgprot == DmaMmapPgprotMode.DmaPgprot || env.Profile.ArmDmaOps || env.Layout.Arch == Arch.Arm32)
        {
            return DmaPgprot(dev, attrs);
        }

        return env.Layout.Arch == Arch.Arm64
            ? (!dev.Coherent || (attrs & DmaAttrs.DMA_ATTR_WRITE_COMBINE) != 0 ? MemoryType.NormalNonCacheable : MemoryType.NormalWriteBack)
            : throw new NotModelledException($"dma_common_mmap before 33dcb37cef74 on {env.Layout.Arch} ({Switches.DmaMmapPgprot.Key}=arch_dma_mmap_pgprot): pgprot_noncached for a coherent device's write-back page, an attribute alias whose effects are not modelled");
    }

    /// <summary>The memory type of a user mapping of a coherent buffer: dma_pgprot(dev, vma-&gt;vm_page_prot, attrs).</summary>
    public static MemoryType DmaPgprot(DmaDevice dev, DmaAttrs attrs) =>
        dev.Coherent ? MemoryType.NormalWriteBack : MemoryType.NormalNonCacheable; // pgprot_dmacoherent / pgprot_writecombine: Normal-NC on arm64 and arm (bufferable)

    /// <summary>
    /// dma_mmap_attrs(dev, vma, cpu_addr, dma_addr, size, attrs) for a whole-buffer vma (vm_pgoff 0): dma_direct_mmap
    /// (the pfn from the handle) without dma_map_ops, else ops-&gt;mmap, which for xen_swiotlb_dma_ops is
    /// dma_common_mmap (the page from cpu_addr, per <see cref="Switches.CommonVaddrToPage"/>). Either way
    /// remap_pfn_range maps whatever pfn it is given; the findings say when that pfn is not the buffer's.
    /// </summary>
    public static DmaState DmaMmapAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, ulong handle, ulong size, DmaAttrs attrs, string buffer,
        List<HwOp> ops, List<Finding> findings, out ulong userVa)
    {
        var layout = env.Layout;
        var count = PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift;
        var kind = env.OpsFor(dev);
        if (kind == DmaOpsKind.Iommu)
        {
            // iommu_dma_mmap (v6.12): vm_page_prot = dma_pgprot(); a remapped buffer's own pages by vm_map_pages.
            const string mmap = "dma_mmap_attrs → iommu_dma_mmap";
            var pages = IommuBufferPages(env, s, dev, cpuAddr, mmap, out var remap);
            var buf = FindBuffer(s, handle, cpuAddr);
            CheckExportedPages(s.Kernel, pages, count, buf, mmap, remap ? "dma_common_find_pages(cpu_addr) → vm_map_pages" : "vmalloc_to_pfn / virt_to_page(cpu_addr) → remap_pfn_range", $"the user mapping of {buffer}", FindingKinds.UserMappingForeignPage, FindingKinds.UserMappingOutsideRam,
                "user space can read and write it", "the process takes a fault when it touches the mapping (nothing answers at that physical address)", findings);
            var mapped = s.Kernel.MapUser(pages, count, DmaPgprot(dev, attrs), $"user mapping of {buffer} (iommu_dma_mmap)", s.OwnerOf(pages), ops, out userVa);
            return s with { Kernel = mapped };
        }

        var direct = kind != DmaOpsKind.XenSwiotlb;
        var function = kind == DmaOpsKind.ArmDmaOps ? (dev.Coherent ? "arm_coherent_dma_mmap" : "arm_dma_mmap") : direct ? "dma_direct_mmap" : "dma_common_mmap";
        var (pfn, how) = direct
            ? (layout.DmaToPhys(handle) >> PlatformLayout.PageShift, kind == DmaOpsKind.ArmDmaOps ? $"dma_to_pfn(0x{handle:x})" : $"PHYS_PFN(dma_to_phys(0x{handle:x}))")
            : CommonVaddrToPage(env, s.Kernel, cpuAddr, function);
        var record = FindBuffer(s, handle, cpuAddr);
        // The mapping is the buffer's only if it maps the buffer's pages; a use-after-free check makes sense only then.
        var intended = record is not null && pfn == record.Pfn ? s.OwnerOf(record.Pfn) : null;
        CheckExportedPages(s.Kernel, pfn, count, record, function, how, $"the user mapping of {buffer}", FindingKinds.UserMappingForeignPage, FindingKinds.UserMappingOutsideRam,
            "user space can read and write it", "the process takes a fault when it touches the mapping (nothing answers at that physical address)", findings);
        var k = s.Kernel.MapUser(pfn, count, UserMappingPgprot(env, dev, attrs), $"user mapping of {buffer} ({function})", intended, ops, out userVa);
        return s with { Kernel = k };
    }

    /// <summary>
    /// dma_get_sgtable_attrs for a coherent buffer: dma_direct_get_sgtable (the page from the handle) without
    /// dma_map_ops, else ops-&gt;get_sgtable = dma_common_get_sgtable, which puts the page of cpu_addr (per
    /// <see cref="Switches.CommonVaddrToPage"/>) in a one-entry table of PAGE_ALIGN(size) bytes.
    /// </summary>
    public static (ulong Pfn, ulong Length) DmaGetSgtableAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, ulong handle, ulong size, string buffer, List<Finding> findings)
    {
        var layout = env.Layout;
        var length = PlatformLayout.PageAlign(size);
        var kind = env.OpsFor(dev);
        if (kind == DmaOpsKind.Iommu)
        {
            // iommu_dma_get_sgtable (v6.12): sg_alloc_table_from_pages of the remap's pages, size bytes (one element for a contiguous run).
            const string get = "dma_get_sgtable_attrs → iommu_dma_get_sgtable";
            var pages = IommuBufferPages(env, s, dev, cpuAddr, get, out var remap);
            CheckExportedPages(s.Kernel, pages, length >> PlatformLayout.PageShift, FindBuffer(s, handle, cpuAddr), get, remap ? "dma_common_find_pages(cpu_addr) → sg_alloc_table_from_pages" : "vmalloc_to_page / virt_to_page(cpu_addr) → sg_set_page", $"the sg table of {buffer}", FindingKinds.SgForeignPage, FindingKinds.SgPageOutsideRam,
                "an importer reads and writes it", "an importer that uses its physical address reaches no memory", findings);
            return (pages, remap ? size : length);
        }

        var direct = kind != DmaOpsKind.XenSwiotlb;
        var function = kind == DmaOpsKind.ArmDmaOps ? "arm_dma_get_sgtable" : direct ? "dma_direct_get_sgtable" : "dma_common_get_sgtable";
        var (pfn, how) = direct
            ? (layout.DmaToPhys(handle) >> PlatformLayout.PageShift, kind == DmaOpsKind.ArmDmaOps ? $"pfn_to_page(dma_to_pfn(0x{handle:x}))" : $"pfn_to_page(PHYS_PFN(dma_to_phys(0x{handle:x})))")
            : CommonVaddrToPage(env, s.Kernel, cpuAddr, function);
        var record = FindBuffer(s, handle, cpuAddr);
        CheckExportedPages(s.Kernel, pfn, length >> PlatformLayout.PageShift, record, function, how, $"the sg table of {buffer}", FindingKinds.SgForeignPage, FindingKinds.SgPageOutsideRam,
            "an importer reads and writes it", "an importer that uses its physical address (sg_phys, dma_map_sg) reaches no memory; one that touches the struct page faults (on arm64, page_address() arithmetic happens to give back the vmalloc address)", findings);
        return (pfn, length);
    }

    /// <summary>
    /// dma_map_single_attrs(dev, ptr, size, dir, attrs) (include/linux/dma-mapping.h, since 4544b9f25e70 in v5.5, so in
    /// every modelled profile): a vmalloc address is refused first, with dev_WARN_ONCE "rejecting DMA map of vmalloc
    /// memory" and DMA_MAPPING_ERROR, before debug_dma_map_single runs; then dma_map_page_attrs(virt_to_page(ptr),
    /// offset_in_page(ptr)).
    /// </summary>
    public static DmaState DmaMapSingle(DmaEnvironment env, DmaState s, DmaDevice dev, ulong ptr, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var layout = s.Kernel.Layout;
        if (layout.IsVmallocAddr(ptr))
        {
            env.Profile.RequireModelled(ProfileGaps.MapSingleVmalloc);
            findings.Add(new Finding(FindingKinds.MapSingleVmalloc, function, null, new PageOwner(OwnerKind.Allocation, "a vmalloc area"), Severity.ContractViolation,
                $"{dev.Name}: rejecting DMA map of vmalloc memory (0x{ptr:x}, {size} bytes; dev_WARN_ONCE in dma_map_single_attrs, 4544b9f25e70): the map returns DMA_MAPPING_ERROR. A vmalloc buffer is mapped page by page with vmalloc_to_page and dma_map_page, or allocated with kmalloc"));
            handle = DmaMappingError;
            return s;
        }

        if (!layout.IsLinearMapAddr(ptr))
        {
            throw new NotModelledException($"dma_map_single on 0x{ptr:x}, which is not a linear-map address: virt_to_page would compute a bogus page");
        }

        return DmaMapPage(env, s, dev, layout.VirtToPfn(ptr), ptr & (PlatformLayout.PageSize - 1), size, dir, attrs, function, ops, findings, out handle);
    }

    /// <summary>
    /// dma_map_page_attrs(dev, page, offset, size, dir, attrs) (kernel/dma/mapping.c, v5.10..v6.4): BUG_ON on an
    /// invalid direction, then dma_direct_map_page when dma_map_direct() (no dma_map_ops), else ops-&gt;map_page:
    /// arm_dma_map_page / arm_coherent_dma_map_page under arm_dma_ops (arch/arm/mm/dma-mapping.c, up to v5.18),
    /// xen_swiotlb_map_page in a Xen dom0 (drivers/xen/swiotlb-xen.c). The dma-debug hook is <see cref="DmaMapping{TDebug}"/>'s.
    /// </summary>
    public static DmaState DmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        CheckDirection(dir, function);
        return env.OpsFor(dev) switch
        {
            DmaOpsKind.ArmDmaOps => ArmDmaMapPage(env, s, dev, pfn, offset, size, dir, attrs, function, ops, findings, out handle),
            DmaOpsKind.XenSwiotlb => XenSwiotlbMapPage(env, s, dev, pfn, offset, size, dir, attrs, function, ops, findings, out handle),
            DmaOpsKind.Iommu => IommuDmaMapPage(env, s, dev, pfn, offset, size, dir, attrs, function, ops, findings, out handle),
            _ => DmaDirectMapPage(env, s, dev, pfn, offset, size, dir, attrs, function, ops, findings, out handle),
        };
    }

    /// <summary>
    /// The part of the map's bounce test that depends on the buffer alone, not on where it is: dma_direct_map_page's
    /// v6.5 kmalloc bounce (<see cref="DmaKmallocNeedsBounce"/>). arm_dma_map_page and xen_swiotlb_map_page do not make
    /// it. The other reasons to bounce (swiotlb=force, dma_capable) depend on the boot options and the address.
    /// </summary>
    public static bool MapBouncesForCacheSafety(DmaEnvironment env, KernelState k, DmaDevice dev, ulong size, DmaDirection dir) =>
        env.OpsFor(dev) == DmaOpsKind.Direct && DmaKmallocNeedsBounce(k, dev, size, dir);

    /// <summary>
    /// dma_unmap_page_attrs(dev, addr, size, dir, attrs) (v5.10..v6.4; dma_unmap_single_attrs calls it): BUG_ON on an
    /// invalid direction, then dma_direct_unmap_page or ops-&gt;unmap_page (arm_dma_unmap_page; none in
    /// arm_coherent_dma_ops; xen_swiotlb_unmap_page).
    /// </summary>
    public static DmaState DmaUnmap(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        return env.OpsFor(dev) switch
        {
            DmaOpsKind.ArmDmaOps => ArmDmaUnmapPage(env, s, dev, handle, size, dir, attrs, function, ops, findings),
            DmaOpsKind.XenSwiotlb => XenSwiotlbUnmapPage(env, s, dev, handle, size, dir, attrs, function, ops, findings),
            DmaOpsKind.Iommu => IommuDmaUnmapPage(env, s, dev, handle, size, dir, attrs, function, ops, findings),
            _ => DmaDirectUnmapPage(env, s, dev, handle, size, dir, attrs, function, ops, findings),
        };
    }

    /// <summary>
    /// dma_sync_single_for_cpu(dev, addr, size, dir) (v5.10..v6.4): BUG_ON on an invalid direction, then
    /// dma_direct_sync_single_for_cpu or ops-&gt;sync_single_for_cpu (arm_dma_sync_single_for_cpu; none in
    /// arm_coherent_dma_ops; xen_swiotlb_sync_single_for_cpu).
    /// </summary>
    public static void SyncForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        switch (env.OpsFor(dev))
        {
            case DmaOpsKind.ArmDmaOps:
                ArmDmaSyncSingleForCpu(env, s, dev, handle, size, dir, function, ops);
                break;
            case DmaOpsKind.XenSwiotlb:
                XenSwiotlbSyncSingleForCpu(env, s, dev, handle, size, dir, function, ops, findings);
                break;
            case DmaOpsKind.Iommu:
                IommuDmaSyncSingleForCpu(env, s, dev, handle, size, dir, function, ops, findings);
                break;
            default:
                DmaDirectSyncSingleForCpu(env, s, dev, handle, size, dir, function, ops, findings);
                break;
        }
    }

    /// <summary>
    /// dma_sync_single_for_device(dev, addr, size, dir) (v5.10..v6.4): BUG_ON on an invalid direction, then
    /// dma_direct_sync_single_for_device or ops-&gt;sync_single_for_device (arm_dma_sync_single_for_device;
    /// xen_swiotlb_sync_single_for_device).
    /// </summary>
    public static DmaState SyncForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        switch (env.OpsFor(dev))
        {
            case DmaOpsKind.ArmDmaOps:
                ArmDmaSyncSingleForDevice(env, s, dev, handle, size, dir, function, ops);
                return s;
            case DmaOpsKind.XenSwiotlb:
                return XenSwiotlbSyncSingleForDevice(env, s, dev, handle, size, dir, function, ops, findings);
            case DmaOpsKind.Iommu:
                return IommuDmaSyncSingleForDevice(env, s, dev, handle, size, dir, function, ops, findings);
            default:
                return DmaDirectSyncSingleForDevice(env, s, dev, handle, size, dir, function, ops, findings);
        }
    }

    /// <summary>
    /// dma_map_sg_attrs / dma_map_sgtable → __dma_map_sg_attrs (v5.10..v6.4): BUG_ON on an invalid direction, then
    /// dma_direct_map_sg or ops-&gt;map_sg (arm_dma_map_sg, xen_swiotlb_map_sg). The result is the number of entries
    /// mapped, or 0 on failure (the -EIO of v5.16 and later, and dma_map_sg's 0 before).
    /// </summary>
    public static DmaState DmaMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped)
    {
        CheckDirection(dir, function);
        CheckSgList(table, nents, function);
        return env.OpsFor(dev) switch
        {
            DmaOpsKind.ArmDmaOps => ArmDmaMapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings, out mapped),
            DmaOpsKind.XenSwiotlb => XenSwiotlbMapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings, out mapped),
            DmaOpsKind.Iommu => IommuDmaMapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings, out mapped),
            _ => DmaDirectMapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings, out mapped),
        };
    }

    /// <summary>dma_unmap_sg_attrs / dma_unmap_sgtable (v5.10..v6.4): dma_direct_unmap_sg or ops-&gt;unmap_sg (arm_dma_unmap_sg; none in arm_coherent_dma_ops; xen_swiotlb_unmap_sg).</summary>
    public static DmaState DmaUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        CheckSgList(table, nents, function);
        return env.OpsFor(dev) switch
        {
            DmaOpsKind.ArmDmaOps => ArmDmaUnmapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings),
            DmaOpsKind.XenSwiotlb => XenSwiotlbUnmapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings),
            DmaOpsKind.Iommu => IommuDmaUnmapSg(env, s, dev, s.Kernel.SgTables[table.Id], nents, dir, attrs, function, ops, findings),
            _ => DmaDirectUnmapSg(env, s, dev, table, nents, dir, attrs, function, ops, findings),
        };
    }

    /// <summary>dma_sync_sg_for_cpu / dma_sync_sgtable_for_cpu (v5.10..v6.4): dma_direct_sync_sg_for_cpu or ops-&gt;sync_sg_for_cpu (arm_dma_sync_sg_for_cpu, xen_swiotlb_sync_sg_for_cpu).</summary>
    public static void SyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckSgList(table, nents, function);
        CheckDirection(dir, function);
        switch (env.OpsFor(dev))
        {
            case DmaOpsKind.ArmDmaOps:
                ArmDmaSyncSgForCpu(env, s, dev, table, nents, dir, function, ops);
                break;
            case DmaOpsKind.XenSwiotlb:
                XenSwiotlbSyncSgForCpu(env, s, dev, table, nents, dir, function, ops, findings);
                break;
            case DmaOpsKind.Iommu:
                IommuSyncSg(env, s, dev, s.Kernel.SgTables[table.Id], nents, dir, true, function, ops, findings);
                break;
            default:
                DmaDirectSyncSgForCpu(env, s, dev, table, nents, dir, function, ops, findings);
                break;
        }
    }

    /// <summary>dma_sync_sg_for_device / dma_sync_sgtable_for_device (v5.10..v6.4): dma_direct_sync_sg_for_device or ops-&gt;sync_sg_for_device (arm_dma_sync_sg_for_device, xen_swiotlb_sync_sg_for_device).</summary>
    public static DmaState SyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckSgList(table, nents, function);
        CheckDirection(dir, function);
        switch (env.OpsFor(dev))
        {
            case DmaOpsKind.ArmDmaOps:
                ArmDmaSyncSgForDevice(env, s, dev, table, nents, dir, function, ops);
                return s;
            case DmaOpsKind.XenSwiotlb:
                return XenSwiotlbSyncSgForDevice(env, s, dev, table, nents, dir, function, ops, findings);
            case DmaOpsKind.Iommu:
                return IommuSyncSg(env, s, dev, s.Kernel.SgTables[table.Id], nents, dir, false, function, ops, findings);
            default:
                return DmaDirectSyncSgForDevice(env, s, dev, table, nents, dir, function, ops, findings);
        }
    }

    /// <summary>
    /// dma_map_resource(dev, phys_addr, size, dir, attrs) (kernel/dma/mapping.c): BUG_ON on an invalid direction; a RAM
    /// address is handled as <see cref="Switches.MapResourceRamCheck"/> says: BUG_ON(pfn_valid) up to v5.0,
    /// WARN_ON_ONCE(pfn_valid) and DMA_MAPPING_ERROR from v5.1 to a9c38c5d267c (v5.16), nothing since (the 2026
    /// dma-debug report is the Debug layer's). Then dma_direct_map_resource without dma_map_ops or under arm_dma_ops
    /// (whose .map_resource it is). In a Xen dom0 it depends on the release (no .map_resource up to v5.15, one later),
    /// which is not modelled.
    /// </summary>
    public static DmaState DmaMapResource(DmaEnvironment env, DmaState s, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, string function, List<Finding> findings, out ulong handle)
    {
        CheckDirection(dir, function);
        var kind = env.OpsFor(dev);
        if (kind == DmaOpsKind.ArmDmaOps)
        {
            ArmCheckNoSwiotlb(env, s, function);
        }

        var pfn = phys >> PlatformLayout.PageShift;
        if (env.MapResourceRamCheck == MapResourceRamCheckMode.BugOn && env.Layout.PfnValid(pfn))
        {
            // v4.9..v5.0: "Don't allow RAM to be mapped" was a BUG_ON.
            throw new KernelBugException(function, $"BUG_ON(pfn_valid(PHYS_PFN(0x{phys:x}))) [{Switches.MapResourceRamCheck.Key}=bug_on]: dma_map_resource does not allow RAM to be mapped, and this kernel oopses");
        }

        if (env.MapResourceRamCheck == MapResourceRamCheckMode.WarnFail && env.Layout.PfnValid(pfn))
        {
            findings.Add(new Finding(FindingKinds.MapResourceRam, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"WARN_ON_ONCE(pfn_valid(PHYS_PFN(0x{phys:x}))) [{Switches.MapResourceRamCheck.Key}=warn_fail]: dma_map_resource does not allow RAM to be mapped and returns DMA_MAPPING_ERROR (use dma_map_single or dma_map_page for RAM)"));
            handle = DmaMappingError;
            return s;
        }

        if (kind == DmaOpsKind.XenSwiotlb)
        {
            // v5.8..v5.15's xen_swiotlb_dma_ops have no .map_resource, so addr keeps its initial DMA_MAPPING_ERROR; later
            // releases give it one (dma_direct_map_resource, then xen_swiotlb_direct_map_resource), and which release
            // did is not recorded here.
            throw new NotModelledException($"{function} in a Xen dom0: whether xen_swiotlb_dma_ops has a .map_resource (none up to v5.15, so DMA_MAPPING_ERROR; one in later releases) is not modelled");
        }

        if (kind == DmaOpsKind.Iommu)
        {
            throw IommuNotModelled(dev, function, "iommu_dma_map_resource");
        }

        return DmaDirectMapResource(env, s, dev, phys, size, function, findings, out handle);
    }

    /// <summary>One backend's map_page, as the sg loops call it for each entry.</summary>
    private delegate DmaState MapPageOp(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle);

    /// <summary>One backend's unmap_page.</summary>
    private delegate DmaState UnmapPageOp(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings);

    /// <summary>
    /// The for_each_sg loop of dma_direct_map_sg, arm_dma_map_sg and xen_swiotlb_map_sg: <paramref name="mapPage"/> on
    /// each entry's page, offset and length, then sg-&gt;dma_address and sg_dma_len; on a failed entry the entries
    /// before it are unmapped with <paramref name="unmapPage"/> and the caller's attrs plus <paramref name="unmapExtraAttrs"/>.
    /// </summary>
    private static DmaState MapSgEntries(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings,
        MapPageOp mapPage, string mapPageName, UnmapPageOp unmapPage, DmaAttrs unmapExtraAttrs, out int mapped)
    {
        var k = s.Kernel;
        for (var i = 0; i < nents; i++)
        {
            var e = k.SgTables[table.Id].Entries[i];
            if (e.Pfn is not { } pfn)
            {
                throw new KernelBugException(function, $"entry {i} of the table has no page (no sg_set_buf or sg_set_page): sg_page() is NULL and {mapPageName} dereferences it");
            }

            s = mapPage(env, s with { Kernel = k }, dev, pfn, e.Offset, e.Length, dir, attrs, function, ops, findings, out var handle);
            if (handle == DmaMappingError)
            {
                s = UnmapSgEntries(env, s, dev, s.Kernel.SgTables[table.Id], i, dir, attrs | unmapExtraAttrs, function, ops, findings, unmapPage);
                mapped = 0;
                return s;
            }

            k = Scatterlist.SetDma(s.Kernel, s.Kernel.SgTables[table.Id], i, handle, e.Length, function, ops);
        }

        mapped = nents;
        return s with { Kernel = k };
    }

    /// <summary>The for_each_sg loop of the unmap_sg ops: <paramref name="unmapPage"/>(sg_dma_address, sg_dma_len) for each of the first nents entries.</summary>
    private static DmaState UnmapSgEntries(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, UnmapPageOp unmapPage)
    {
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            s = unmapPage(env, s, dev, e.DmaAddress, e.DmaLength, dir, attrs, function, ops, findings);
        }

        return s;
    }

    /// <summary>for_each_sg(sgl, sg, nents, i) walks sg_next: past the table's end marker it returns NULL, which the loop then dereferences.</summary>
    public static void CheckSgList(SgTable table, int nents, string function)
    {
        if (table.Freed)
        {
            throw new KernelBugException(function, "the sg table was freed by sg_free_table: its scatterlist is freed memory (use after free)");
        }

        if (nents > table.OrigNents)
        {
            throw new KernelBugException(function, $"nents {nents} runs past the table's {table.OrigNents} entries: sg_next() returns NULL at the end marker and for_each_sg dereferences it");
        }
    }

    /// <summary>dma_mapping_error(dev, addr): addr == DMA_MAPPING_ERROR.</summary>
    public static bool DmaMappingErrorCheck(ulong handle) => handle == DmaMappingError;

    private static void CheckDirection(DmaDirection dir, string function)
    {
        // BUG_ON(!valid_dma_direction(dir)) in the map and sync entry points.
        if (dir == DmaDirection.DMA_NONE)
        {
            throw new KernelBugException(function, "BUG_ON(!valid_dma_direction(dir)): DMA_NONE");
        }
    }
}

/// <summary>
/// The DMA API entry points as kernel/dma/mapping.c and include/linux/dma-mapping.h order them (v5.16..v6.4; the
/// order of the debug calls is the same from v5.10, when the streaming calls moved out of line, to v6.x): the
/// backend (<see cref="DmaApi"/>, which dispatches to dma-direct, arm_dma_ops or xen_swiotlb_dma_ops by profile) and
/// the dma-debug hooks around it. debug_dma_alloc_coherent, debug_dma_map_page, debug_dma_unmap_page,
/// debug_dma_map_sg, debug_dma_sync_* and debug_dma_map/unmap_resource run after the backend;
/// debug_dma_free_coherent and debug_dma_unmap_sg before it; debug_dma_map_single between dma_map_single_attrs' vmalloc
/// rejection and dma_map_page_attrs. With CONFIG_DMA_API_DEBUG off the hooks are <see cref="NoDmaDebugHooks{TDebug}"/>.
/// </summary>
/// <typeparam name="TDebug">The debug layer's state, which the hooks thread through.</typeparam>
public sealed class DmaMapping<TDebug>(DmaEnvironment env, IDmaDebugHooks<TDebug> debug)
{
    public DmaEnvironment Environment => env;

    /// <summary>dma_alloc_attrs (dma_alloc_coherent is dma_alloc_attrs with no attributes): the backend, then debug_dma_alloc_coherent.</summary>
    public (DmaState Dma, TDebug Debug) AllocAttrs(DmaState dma, TDebug dbg, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, int line, List<HwOp> ops, List<Finding> findings, out ulong cpu, out ulong handle)
    {
        if (DevCoherent.TryAlloc(dma, dev, size, ops, out cpu, out handle) is { } pooled)
        {
            return (pooled, dbg); // dma_alloc_from_dev_coherent: returns at once, before the debug hook
        }

        dma = DmaApi.DmaAllocAttrs(env, dma, dev, size, gfp, attrs, ops, out cpu, out handle);
        return (dma, debug.AllocCoherent(dbg, dma, dev, cpu, handle, size, line, attrs, findings));
    }

    /// <summary>dma_free_attrs: a NULL cpu_addr returns at once; else debug_dma_free_coherent, then the backend.</summary>
    public (DmaState Dma, TDebug Debug) FreeAttrs(DmaState dma, TDebug dbg, DmaDevice dev, ulong size, ulong cpu, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        if (DevCoherent.TryRelease(dma, dev, size, cpu) is { } released)
        {
            return (released, dbg); // dma_release_from_dev_coherent: first, before the debug hook
        }

        if (cpu != 0)
        {
            dbg = debug.FreeCoherent(dbg, dma, dev, size, cpu, handle, findings);
        }

        return (DmaApi.DmaFreeAttrs(env, dma, dev, size, cpu, handle, attrs, ops, findings), dbg);
    }

    /// <summary>dma_mmap_attrs: the backend only (no debug hook).</summary>
    public DmaState MmapAttrs(DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, DmaAttrs attrs, string buffer, List<HwOp> ops, List<Finding> findings, out ulong userVa) =>
        DmaApi.DmaMmapAttrs(env, dma, dev, cpu, handle, size, attrs, buffer, ops, findings, out userVa);

    /// <summary>dma_get_sgtable_attrs: the backend only (no debug hook).</summary>
    public (ulong Pfn, ulong Length) GetSgtableAttrs(DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, string buffer, List<Finding> findings) =>
        DmaApi.DmaGetSgtableAttrs(env, dma, dev, cpu, handle, size, buffer, findings);

    /// <summary>
    /// dma_map_single_attrs: the vmalloc rejection (in the backend), then dma_map_page_attrs of virt_to_page(ptr) and
    /// offset_in_page(ptr), whose debug_dma_map_page follows the backend. (debug_dma_map_single runs between the two,
    /// but on every modelled kernel it can report nothing: since 4544b9f25e70, v5.5, a vmalloc address never reaches
    /// it, and an address outside the linear map stops the run as not modelled. docs/findings.md, E17.)
    /// </summary>
    public (DmaState Dma, TDebug Debug) MapSingle(DmaState dma, TDebug dbg, DmaDevice dev, ulong ptr, ulong size, DmaDirection dir, DmaAttrs attrs, string function, int line, TaskStack? current,
        List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var layout = dma.Kernel.Layout;
        dma = DmaApi.DmaMapSingle(env, dma, dev, ptr, size, dir, attrs, function, ops, findings, out handle);
        ulong? pfn = layout.IsLinearMapAddr(ptr) ? layout.VirtToPfn(ptr) : null;
        var offset = layout.IsLinearMapAddr(ptr) ? ptr & (PlatformLayout.PageSize - 1) : 0;
        return (dma, debug.MapPage(dbg, dma, dev, pfn, offset, size, dir, handle, attrs, function, line, current, findings));
    }

    /// <summary>dma_map_page_attrs: the backend, then debug_dma_map_page.</summary>
    public (DmaState Dma, TDebug Debug) MapPage(DmaState dma, TDebug dbg, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, int line, TaskStack? current,
        List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        dma = DmaApi.DmaMapPage(env, dma, dev, pfn, offset, size, dir, attrs, function, ops, findings, out handle);
        return (dma, debug.MapPage(dbg, dma, dev, pfn, offset, size, dir, handle, attrs, function, line, current, findings));
    }

    /// <summary>dma_unmap_page_attrs (dma_unmap_single_attrs calls it): the backend, then debug_dma_unmap_page.</summary>
    public (DmaState Dma, TDebug Debug) UnmapPage(DmaState dma, TDebug dbg, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        dma = DmaApi.DmaUnmap(env, dma, dev, handle, size, dir, attrs, function, ops, findings);
        return (dma, debug.UnmapPage(dbg, dma, dev, handle, size, dir, function, findings));
    }

    /// <summary>dma_sync_single_for_cpu: the backend, then debug_dma_sync_single_for_cpu.</summary>
    public TDebug SyncSingleForCpu(DmaState dma, TDebug dbg, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        DmaApi.SyncForCpu(env, dma, dev, handle, size, dir, function, ops, findings);
        return debug.SyncSingle(dbg, dma, dev, handle, size, dir, true, function, findings);
    }

    /// <summary>dma_sync_single_for_device: the backend, then debug_dma_sync_single_for_device.</summary>
    public (DmaState Dma, TDebug Debug) SyncSingleForDevice(DmaState dma, TDebug dbg, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        dma = DmaApi.SyncForDevice(env, dma, dev, handle, size, dir, function, ops, findings);
        return (dma, debug.SyncSingle(dbg, dma, dev, handle, size, dir, false, function, findings));
    }

    /// <summary>
    /// dma_sync_single_range_for_cpu(dev, addr, offset, size, dir) (include/linux/dma-mapping.h; checked against the
    /// v5.16..v6.1 header, the same inline since the streaming calls moved out of line in v5.10): the single sync of
    /// [addr + offset, addr + offset + size), with its debug hook.
    /// </summary>
    public TDebug SyncSingleRangeForCpu(DmaState dma, TDebug dbg, DmaDevice dev, ulong addr, ulong offset, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings) =>
        SyncSingleForCpu(dma, dbg, dev, unchecked(addr + offset), size, dir, function, ops, findings);

    /// <summary>dma_sync_single_range_for_device(dev, addr, offset, size, dir): dma_sync_single_for_device(dev, addr + offset, size, dir), as for the CPU side.</summary>
    public (DmaState Dma, TDebug Debug) SyncSingleRangeForDevice(DmaState dma, TDebug dbg, DmaDevice dev, ulong addr, ulong offset, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings) =>
        SyncSingleForDevice(dma, dbg, dev, unchecked(addr + offset), size, dir, function, ops, findings);

    /// <summary>
    /// dma_map_sg_attrs / dma_map_sgtable → __dma_map_sg_attrs: the backend, then debug_dma_map_sg when it mapped
    /// entries; dma_map_sgtable then sets sgt-&gt;nents (<paramref name="sgtable"/>). <paramref name="mapped"/> is 0 on failure.
    /// </summary>
    public (DmaState Dma, TDebug Debug) MapSg(DmaState dma, TDebug dbg, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, bool sgtable, string function, int line, TaskStack? current,
        List<HwOp> ops, List<Finding> findings, out int mapped)
    {
        DmaApi.CheckSgList(table, nents, function);
        dma = DmaApi.DmaMapSg(env, dma, dev, table, nents, dir, attrs, function, ops, findings, out mapped);
        if (mapped == 0)
        {
            return (dma, dbg);
        }

        var mappedTable = dma.Kernel.SgTables[table.Id];
        dbg = debug.MapSg(dbg, dma, dev, mappedTable, nents, mapped, dir, attrs, function, line, current, findings);
        if (sgtable)
        {
            dma = dma with { Kernel = Scatterlist.SetNents(dma.Kernel, mappedTable, mapped) };
        }

        return (dma, dbg);
    }

    /// <summary>dma_unmap_sg_attrs / dma_unmap_sgtable: debug_dma_unmap_sg, then the backend.</summary>
    public (DmaState Dma, TDebug Debug) UnmapSg(DmaState dma, TDebug dbg, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        DmaApi.CheckSgList(table, nents, function);
        dbg = debug.UnmapSg(dbg, dma, dev, table, nents, dir, function, findings);
        return (DmaApi.DmaUnmapSg(env, dma, dev, table, nents, dir, attrs, function, ops, findings), dbg);
    }

    /// <summary>dma_sync_sg_for_cpu / dma_sync_sgtable_for_cpu: the backend, then debug_dma_sync_sg_for_cpu.</summary>
    public TDebug SyncSgForCpu(DmaState dma, TDebug dbg, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        DmaApi.CheckSgList(table, nents, function);
        DmaApi.SyncSgForCpu(env, dma, dev, table, nents, dir, function, ops, findings);
        return debug.SyncSg(dbg, dma, dev, table, nents, dir, true, function, findings);
    }

    /// <summary>dma_sync_sg_for_device / dma_sync_sgtable_for_device: the backend, then debug_dma_sync_sg_for_device.</summary>
    public (DmaState Dma, TDebug Debug) SyncSgForDevice(DmaState dma, TDebug dbg, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        DmaApi.CheckSgList(table, nents, function);
        dma = DmaApi.SyncSgForDevice(env, dma, dev, table, nents, dir, function, ops, findings);
        return (dma, debug.SyncSg(dbg, dma, dev, table, nents, dir, false, function, findings));
    }

    /// <summary>dma_map_resource: the backend, then debug_dma_map_resource.</summary>
    public (DmaState Dma, TDebug Debug) MapResource(DmaState dma, TDebug dbg, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, int line, List<Finding> findings, out ulong handle)
    {
        dma = DmaApi.DmaMapResource(env, dma, dev, phys, size, dir, "dma_map_resource", findings, out handle);
        return (dma, debug.MapResource(dbg, dma, dev, handle, phys, size, dir, line, findings));
    }

    /// <summary>dma_unmap_resource: dma-direct has no unmap_resource, so only debug_dma_unmap_resource runs (iommu_dma_unmap_resource, for a device behind an IOMMU, is not modelled).</summary>
    public TDebug UnmapResource(DmaState dma, TDebug dbg, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, List<Finding> findings) =>
        env.OpsFor(dev) == DmaOpsKind.Iommu
            ? throw new NotModelledException($"dma_unmap_resource → iommu_dma_unmap_resource: {dev.Name} is behind an IOMMU, and that is not modelled yet (docs/iommu.md)")
            : debug.UnmapResource(dbg, dma, dev, handle, size, dir, findings);

    /// <summary>dma_mapping_error: debug_dma_mapping_error, then the test against DMA_MAPPING_ERROR.</summary>
    public bool MappingError(TDebug dbg, DmaDevice dev, ulong handle, out TDebug next)
    {
        next = debug.MappingError(dbg, dev, handle);
        return DmaApi.DmaMappingErrorCheck(handle);
    }
}
