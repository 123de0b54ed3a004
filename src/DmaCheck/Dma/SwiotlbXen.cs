using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// xen_swiotlb_dma_ops (drivers/xen/swiotlb-xen.c).
public static partial class DmaApi
{
    /// <summary>
    /// xen_swiotlb_alloc_coherent (drivers/xen/swiotlb-xen.c, v5.8..v5.18 on ARM): the size is rounded to a Xen page
    /// order, __GFP_DMA and __GFP_HIGHMEM are stripped, xen_alloc_coherent_pages = dma_direct_alloc does the work,
    /// phys comes from the handle (never from the returned address), and the buffer is cleared again through ret.
    /// In a dom0 with a 1:1 physical map the machine address is in the mask and contiguous, so no exchange happens.
    /// </summary>
    private static DmaState XenSwiotlbAllocCoherent(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
        {
            throw new NotModelledException("xen_swiotlb_alloc_coherent with DMA_ATTR_NO_KERNEL_MAPPING (it would memset the page cookie)");
        }

        var order = PlatformLayout.GetOrder(size);
        size = PlatformLayout.PageSize << order;
        s = DmaDirectAlloc(env, s, dev, size, gfp & ~(Gfp.__GFP_DMA | Gfp.__GFP_HIGHMEM), attrs, ops, out cpuAddr, out handle);
        if (cpuAddr == 0)
        {
            return s;
        }

        if (handle + size - 1 > DefaultCoherentMask)
        {
            throw new NotModelledException("xen_create_contiguous_region (a machine address beyond the coherent mask) is not modelled");
        }

        s.Kernel.CpuStore(cpuAddr, size, WriterTable.Zero, "xen_swiotlb_alloc_coherent: memset(ret, 0, size)", ops);
        return s;
    }

    /// <summary>
    /// xen_swiotlb_free_coherent (v5.8..v5.18 on ARM): phys from the handle; the struct page of vaddr, found per
    /// <see cref="Switches.XenFreeCoherentPage"/>, has its PG_xen_remapped bit tested and cleared
    /// (TestClearPageXenRemapped: an atomic read-modify-write of page-&gt;flags); then xen_free_coherent_pages =
    /// dma_direct_free with the handle.
    /// </summary>
    private static DmaState XenSwiotlbFreeCoherent(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong vaddr, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        const string function = "xen_swiotlb_free_coherent";
        var layout = env.Layout;
        var order = PlatformLayout.GetOrder(size);
        size = PlatformLayout.PageSize << order;
        var how = env.XenFreeIsVmallocAware && layout.IsVmallocAddr(vaddr) ? "vmalloc_to_page" : "virt_to_page";
        var pfn = how == "vmalloc_to_page"
            ? s.Kernel.VmallocToPfn(vaddr) ?? throw new KernelBugException(function, $"vmalloc_to_page(0x{vaddr:x}) is NULL: nothing is mapped there")
            : layout.VirtToPfn(vaddr);
        var record = FindBuffer(s, handle, vaddr);
        CheckPageFlagsAccess(s.Kernel, pfn, record, function, $"TestClearPageXenRemapped({how}(0x{vaddr:x}))", findings);
        return DmaDirectFree(env, s, dev, size, vaddr, handle, attrs, ops, findings);
    }

    /// <summary>
    /// A read-modify-write of page-&gt;flags of <paramref name="pfn"/>'s struct page by <paramref name="function"/>:
    /// an oops if that struct page does not exist, memory corruption if it belongs to a page the buffer does not own.
    /// </summary>
    private static void CheckPageFlagsAccess(KernelState k, ulong pfn, CoherentAllocation? buffer, string function, string expression, List<Finding> findings)
    {
        var layout = k.Layout;
        var owner = k.OwnerOf(pfn);
        if (!layout.StructPageExists(pfn))
        {
            throw new FatalFindingException(new Finding(FindingKinds.BogusStructPage, function, pfn, owner, Severity.Fault,
                $"{expression} touches {layout.DescribePage(pfn)}, which does not exist (no DRAM there, so no memmap): the kernel oopses with \"Unable to handle kernel paging request at virtual address 0x{layout.StructPageAddress(pfn):x}\"",
                Fatal: true));
        }

        if (buffer is null || pfn < buffer.Pfn || pfn - buffer.Pfn >= (PlatformLayout.PageAlign(buffer.Size) >> PlatformLayout.PageShift))
        {
            findings.Add(new Finding(FindingKinds.ForeignPageFlags, function, pfn, owner, Severity.Corruption,
                $"{expression} test-and-clears PG_xen_remapped (an alias of PG_owner_priv_1) in {layout.DescribePage(pfn)}, owned by {owner.Describe()}, not by the buffer: if its owner uses that bit (PG_checked, PG_swapcache, PG_pinned...), it is lost, and xen_destroy_contiguous_region runs on the buffer"));
        }
    }

    /// <summary>
    /// The caller's name for the maintenance a streaming call does, with the swiotlb-xen function in between.
    /// xen_swiotlb_dma_ops (drivers/xen/swiotlb-xen.c, v5.10..v5.18) make the same decisions as dma-direct for the
    /// dom0's own pages, which Xen on arm maps 1:1: a page is bounced when !dma_capable or swiotlb=force
    /// (range_straddles_page_boundary and xen_arch_need_swiotlb are false for a local, contiguous page), and its cache
    /// maintenance is arch_sync_dma_for_* because pfn_valid(dma_to_phys(handle)) holds (foreign pages, synced by the
    /// GNTTABOP_cache_flush hypercall, do not occur here). The translation is phys_to_dma, as since the v5.9 fix-rpi4
    /// series (the only earlier profile, v5.8 on arm64, has no DMA offset).
    /// </summary>
    private static string XenVia(string function, string xenFunction) => $"{function} → {xenFunction}";

    /// <summary>
    /// xen_swiotlb_map_page (drivers/xen/swiotlb-xen.c, v5.10..v5.18): the handle is xen_phys_to_dma(phys) when the
    /// device can reach it and swiotlb=force is off; otherwise swiotlb_tbl_map_single bounces it (the model's
    /// <see cref="SwiotlbMap"/>, labelled through xen_swiotlb_map_page). Then, unless DMA_ATTR_SKIP_CPU_SYNC, a
    /// non-coherent device gets arch_sync_dma_for_device on the address really used. No v6.5 kmalloc bounce.
    /// </summary>
    private static DmaState XenSwiotlbMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        var dma = env.Layout.PhysToDma(phys);
        var via = XenVia(function, "xen_swiotlb_map_page");
        if (s.Swiotlb is { ForceBounce: true } || !DmaCapable(env, dev, dma, size))
        {
            if (s.Swiotlb is not { } pool)
            {
                throw new NotModelledException($"{function} → xen_swiotlb_map_page must bounce {size} bytes at PA 0x{phys:x} for {dev.Name}, but the scenario has no swiotlb pool: a Xen dom0 always sets up swiotlb-xen's (xen_mm_init → xen_swiotlb_init), which this model reserves only with `set swiotlb = on`");
            }

            return SwiotlbMap(env, s, pool, dev, phys, size, dir, attrs, function, via, ops, findings, out handle);
        }

        handle = dma;
        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, via, ops);
        }

        return RecordMapping(s, new StreamingMapping(dev.Name, handle, phys, size, dir, function));
    }

    /// <summary>
    /// xen_swiotlb_unmap_page (v5.10..v5.18): unless DMA_ATTR_SKIP_CPU_SYNC, arch_sync_dma_for_cpu for a non-coherent
    /// device; then, for a bounce address, swiotlb_tbl_unmap_single with the caller's attrs, which copies back
    /// (FROM_DEVICE, BIDIRECTIONAL) unless DMA_ATTR_SKIP_CPU_SYNC and releases the slots.
    /// </summary>
    private static DmaState XenSwiotlbUnmapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        var paddr = env.Layout.DmaToPhys(handle);
        var via = XenVia(function, "xen_swiotlb_unmap_page");
        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForCpu(env, s.Kernel, paddr, size, dir, via, ops);
        }

        if (s.Swiotlb is { } pool && pool.Contains(paddr))
        {
            s = SwiotlbTblUnmapSingle(env, s, pool, paddr, size, dir, attrs, via, function, ops, findings);
        }

        return ForgetMapping(s, dev, handle);
    }

    /// <summary>xen_swiotlb_sync_single_for_cpu (v5.10..v5.18): arch_sync_dma_for_cpu for a non-coherent device, then swiotlb_sync_single_for_cpu for a bounce address.</summary>
    private static void XenSwiotlbSyncSingleForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var paddr = env.Layout.DmaToPhys(handle);
        var via = XenVia(function, "xen_swiotlb_sync_single_for_cpu");
        if (!dev.Coherent)
        {
            ArchSyncDmaForCpu(env, s.Kernel, paddr, size, dir, via, ops);
        }

        if (s.Swiotlb is { } pool && pool.Contains(paddr))
        {
            SwiotlbSyncSingleForCpu(env, s, pool, paddr, size, dir, via, function, ops, findings);
        }
    }

    /// <summary>xen_swiotlb_sync_single_for_device (v5.10..v5.18): swiotlb_sync_single_for_device for a bounce address, then arch_sync_dma_for_device for a non-coherent device.</summary>
    private static DmaState XenSwiotlbSyncSingleForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var paddr = env.Layout.DmaToPhys(handle);
        var via = XenVia(function, "xen_swiotlb_sync_single_for_device");
        var next = s.Swiotlb is { } pool && pool.Contains(paddr) ? SwiotlbSyncSingleForDevice(env, s, pool, paddr, size, dir, via, ops, findings) : s;
        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, paddr, size, dir, via, ops);
        }

        return next;
    }

    /// <summary>
    /// xen_swiotlb_map_sg (v5.10..v5.18): xen_swiotlb_map_page for each entry and sg_dma_len(sg) = sg-&gt;length; on a
    /// failed entry xen_swiotlb_unmap_sg of the ones before with DMA_ATTR_SKIP_CPU_SYNC, and the call fails (the
    /// kernel also zeroes sg_dma_len of the first entry, which the model does not record).
    /// </summary>
    private static DmaState XenSwiotlbMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped) =>
        MapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, XenSwiotlbMapPage, "xen_swiotlb_map_page", XenSwiotlbUnmapPage, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, out mapped);

    /// <summary>xen_swiotlb_unmap_sg (v5.10..v5.18): xen_swiotlb_unmap_page(dev, sg-&gt;dma_address, sg_dma_len(sg), dir, attrs) for each entry.</summary>
    private static DmaState XenSwiotlbUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings) =>
        UnmapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, XenSwiotlbUnmapPage);

    /// <summary>xen_swiotlb_sync_sg_for_cpu (v5.10..v5.18): xen_swiotlb_sync_single_for_cpu(dev, sg-&gt;dma_address, sg-&gt;length, dir) for each entry.</summary>
    private static void XenSwiotlbSyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        for (var i = 0; i < nents; i++)
        {
            XenSwiotlbSyncSingleForCpu(env, s, dev, table.Entries[i].DmaAddress, table.Entries[i].Length, dir, function, ops, findings);
        }
    }

    /// <summary>xen_swiotlb_sync_sg_for_device (v5.10..v5.18): xen_swiotlb_sync_single_for_device for each entry.</summary>
    private static DmaState XenSwiotlbSyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        for (var i = 0; i < nents; i++)
        {
            s = XenSwiotlbSyncSingleForDevice(env, s, dev, table.Entries[i].DmaAddress, table.Entries[i].Length, dir, function, ops, findings);
        }

        return s;
    }
}
