using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// iommu-dma's coherent allocations (drivers/iommu/dma-iommu.c, v6.12): iommu_dma_alloc's remap path, its free, and the
// mmap and get_sgtable of such a buffer. Since v6.10 dma_alloc_attrs and friends call these directly when
// use_dma_iommu(dev).
public static partial class DmaApi
{
    /// <summary>
    /// iommu_dma_alloc (v6.12) for a blocking gfp (the model's attributes have no DMA_ATTR_FORCE_CONTIGUOUS, which would
    /// take iommu_dma_alloc_pages instead): gfp |= __GFP_ZERO and
    /// iommu_dma_alloc_remap → __iommu_dma_alloc_noncontiguous. __iommu_dma_alloc_pages takes PAGE_ALIGN(size) pages,
    /// order 0 each below the domain's next page size (2 MiB), zeroed by the page allocator through the linear map; the
    /// IOVA range of iova_align(size) comes from iommu_dma_alloc_iova below the coherent DMA mask; for a device without
    /// IOMMU_CACHE arch_dma_prep_coherent runs on each element of the page list; iommu_map_sg maps the pages with
    /// IOMMU_READ | IOMMU_WRITE; the handle is the IOVA; and dma_common_pages_remap vmaps the pages with
    /// dma_pgprot(dev, PAGE_KERNEL, attrs) (Normal-NC for a non-coherent device). There is no memset through the
    /// remap. The model keeps one coherent record per buffer, so pages that do not come out physically consecutive
    /// stop the run as not modelled; the transient sg table of sg_alloc_table_from_pages is not modelled as memory.
    /// The atomic pool (a non-blocking gfp, non-coherent), iommu_dma_alloc_pages (non-blocking, coherent) and
    /// DMA_ATTR_NO_KERNEL_MAPPING stop as not modelled.
    /// </summary>
    private static DmaState IommuDmaAlloc(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        const string via = "dma_alloc_attrs → iommu_dma_alloc";
        var domain = DomainOf(env, s, dev, "dma_alloc_attrs");
        cpuAddr = 0;
        handle = DmaMappingError;
        if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
        {
            throw new NotModelledException($"{via} with DMA_ATTR_NO_KERNEL_MAPPING (__iommu_dma_alloc_noncontiguous without a remap, the pages as cookie) is not modelled");
        }

        if (!gfp.AllowsBlocking())
        {
            throw new NotModelledException($"{via} with a gfp that cannot block: {(dev.Coherent ? "iommu_dma_alloc_pages (pages from the linear map)" : "dma_alloc_from_pool (the atomic pool)")} and __iommu_dma_map are not modelled yet");
        }

        // __iommu_dma_alloc_noncontiguous → __iommu_dma_alloc_pages: order-0 pages, __GFP_ZERO.
        var count = PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift;
        var owner = OwnerName(dev, attrs);
        var k = s.Kernel;
        var first = 0UL;
        for (var i = 0UL; i < count; i++)
        {
            if (k.TryAllocPages(gfp | Gfp.__GFP_ZERO, 0, owner, ops, out var pfn) is not { } next)
            {
                // __iommu_dma_free_pages of what was taken, and NULL.
                for (var j = i; j-- > 0;)
                {
                    k = k.FreePages(first + j, 0, owner, "__iommu_dma_free_pages", ops, null);
                }

                return s with { Kernel = k };
            }

            if (i == 0)
            {
                first = pfn;
            }
            else if (pfn != first + i)
            {
                throw new NotModelledException($"{via}: page {i} of the {count} came from pfn 0x{pfn:x}, not next to the first (0x{first:x}); the model keeps a remapped buffer as one physically contiguous run, and a scattered one is not modelled");
            }

            k = next;
        }

        var ioSize = domain.Align(size);
        var limit = Math.Min(Math.Min(DefaultCoherentMask, env.Layout.DmaLimit), IommuDomain.ApertureEnd);
        domain = domain with { Iova = domain.Iova.AllocFast(ioSize >> domain.Iova.Shift, limit >> domain.Iova.Shift, true, out var iovaPfn) };
        if (iovaPfn is not { } allocated)
        {
            for (var j = count; j-- > 0;)
            {
                k = k.FreePages(first + j, 0, owner, "__iommu_dma_free_pages", ops, null);
            }

            return WithDomain(s with { Kernel = k }, domain);
        }

        if (!dev.Coherent)
        {
            // for_each_sg(sgt->sgl, sg, sgt->orig_nents, i) arch_dma_prep_coherent(sg_page(sg), sg->length): one element for a contiguous run.
            ArchDmaPrepCoherent(env, k, first, count << PlatformLayout.PageShift, ops);
        }

        var iova = allocated << domain.Iova.Shift;
        domain = domain.Map(iova, PlatformLayout.PfnToPhys(first), ioSize, DmaInfoToProt(DmaDirection.DMA_BIDIRECTIONAL, dev.Coherent));
        handle = iova;
        var type = DmaPgprot(dev, attrs);
        k = k.Vmap(first, count, type, $"dma_alloc_coherent({dev.Name}) iommu remap",
            $"iommu_dma_alloc_remap: dma_common_pages_remap (vmap with dma_pgprot: {(type == MemoryType.NormalNonCacheable ? "Normal-NC" : "PAGE_KERNEL")})", ops, out cpuAddr);
        var record = new CoherentAllocation(dev.Name, cpuAddr, handle, count << PlatformLayout.PageShift, first, 0, CoherentSource.IommuRemap);
        return WithDomain(s with { Kernel = k, Coherent = s.Coherent.Add(record) }, domain);
    }

    /// <summary>
    /// iommu_dma_free (v6.12): __iommu_dma_unmap of the handle for size, then __iommu_dma_free: for a vmalloc address
    /// whose area has pages (dma_common_find_pages: an iommu_dma_alloc_remap buffer) dma_common_free_remap and
    /// __iommu_dma_free_pages, each page freed on its own, the last first. Any other cpu_addr (the pool, a linear address, a vmalloc
    /// address without pages) is not modelled.
    /// </summary>
    private static DmaState IommuDmaFree(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, List<HwOp> ops, List<Finding> findings)
    {
        const string via = "dma_free_attrs → iommu_dma_free";
        var domain = DomainOf(env, s, dev, "dma_free_attrs");
        var record = s.Coherent.FirstOrDefault(c => c.Source == CoherentSource.IommuRemap && c.CpuAddr == cpuAddr);
        if (record is null)
        {
            throw new NotModelledException($"{via}: cpu_addr 0x{cpuAddr:x} is not the start of a live iommu_dma_alloc_remap buffer; what __iommu_dma_free does with it (dma_free_from_pool, vmalloc_to_page, virt_to_page) is not modelled");
        }

        s = IommuDmaUnmap(s, domain, dev, handle, size, via, findings);
        var k = s.Kernel.Vunmap(cpuAddr, $"{via}: dma_common_free_remap", ops);
        var count = PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift;
        if (count != record.Size >> PlatformLayout.PageShift)
        {
            throw new NotModelledException($"{via}: a free of {size} bytes for a buffer of {record.Size}: __iommu_dma_free_pages of another count than was allocated is not modelled");
        }

        for (var i = count; i-- > 0;)
        {
            // __iommu_dma_free_pages: while (count--) __free_page(pages[count]), the last page first.
            k = k.FreePages(record.Pfn + i, 0, OwnerName(dev, DmaAttrs.None), "__iommu_dma_free_pages", ops, findings);
        }

        return s with { Kernel = k, Coherent = s.Coherent.Remove(record) };
    }

    /// <summary>
    /// The pages iommu_dma_mmap and iommu_dma_get_sgtable (v6.12) take for cpu_addr: for a vmalloc address,
    /// dma_common_find_pages (the remap's page array: vm_map_pages, sg_alloc_table_from_pages); other addresses
    /// (vmalloc_to_pfn of a pool buffer, virt_to_page of a linear one) are not modelled, as no such buffer is made.
    /// </summary>
    private static ulong IommuBufferPages(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, string function)
    {
        DomainOf(env, s, dev, function);
        return s.Coherent.FirstOrDefault(c => c.Source == CoherentSource.IommuRemap && c.CpuAddr == cpuAddr) is { } record
            ? record.Pfn
            : throw new NotModelledException($"{function}: cpu_addr 0x{cpuAddr:x} is not a live iommu_dma_alloc_remap buffer; {(env.Layout.IsVmallocAddr(cpuAddr) ? "vmalloc_to_pfn" : "virt_to_page")} of it is not modelled");
    }
}
