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
    /// The caller's name for the maintenance a streaming call does, with the swiotlb-xen function in between in a Xen
    /// dom0. xen_swiotlb_dma_ops (drivers/xen/swiotlb-xen.c, v5.10..v6.x) make the same decisions as dma-direct for the
    /// dom0's own pages, which Xen on arm maps 1:1: a page is bounced when !dma_capable or swiotlb=force
    /// (range_straddles_page_boundary and xen_arch_need_swiotlb are false for a local, contiguous page), and its cache
    /// maintenance is arch_sync_dma_for_* because pfn_valid(dma_to_phys(handle)) holds (foreign pages, synced by the
    /// GNTTABOP_cache_flush hypercall, do not occur here). Unmap does arch_sync_dma_for_cpu and then
    /// swiotlb_tbl_unmap_single, whose copy back equals dma-direct's sync then release; the translation is
    /// phys_to_dma, as since the v5.9 fix-rpi4 series (the only earlier profile, v5.8 on arm64, has no DMA offset).
    /// </summary>
    private static string XenVia(DmaEnvironment env, string function, string xenFunction) =>
        env.Profile.XenDom0 ? $"{function} → {xenFunction}" : function;
}
