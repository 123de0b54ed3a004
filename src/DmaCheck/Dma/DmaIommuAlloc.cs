using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// iommu-dma's coherent allocations (drivers/iommu/dma-iommu.c, v6.12): iommu_dma_alloc's remap path, its free, and the
// mmap and get_sgtable of such a buffer. Since v6.10 dma_alloc_attrs and friends call these directly when
// use_dma_iommu(dev).
public static partial class DmaApi
{
    /// <summary>
    /// iommu_dma_alloc (v6.12): gfp |= __GFP_ZERO; a gfp that cannot block or DMA_ATTR_FORCE_CONTIGUOUS takes
    /// <see cref="IommuDmaAllocContiguous"/>; otherwise iommu_dma_alloc_remap → __iommu_dma_alloc_noncontiguous. __iommu_dma_alloc_pages takes PAGE_ALIGN(size) pages,
    /// order 0 each below the domain's next page size (2 MiB), zeroed by the page allocator through the linear map; the
    /// IOVA range of iova_align(size) comes from iommu_dma_alloc_iova below the coherent DMA mask; for a device without
    /// IOMMU_CACHE arch_dma_prep_coherent runs on each element of the page list; iommu_map_sg maps the pages with
    /// IOMMU_READ | IOMMU_WRITE; the handle is the IOVA; and dma_common_pages_remap vmaps the pages with
    /// dma_pgprot(dev, PAGE_KERNEL, attrs) (Normal-NC for a non-coherent device). There is no memset through the
    /// remap. The model keeps one coherent record per buffer, so pages that do not come out physically consecutive
    /// stop the run as not modelled; the transient sg table of sg_alloc_table_from_pages is not modelled as memory.
    /// DMA_ATTR_NO_KERNEL_MAPPING stops as not modelled.
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

        if (!gfp.AllowsBlocking() || (attrs & DmaAttrs.DMA_ATTR_FORCE_CONTIGUOUS) != 0)
        {
            return IommuDmaAllocContiguous(env, s, domain, dev, size, gfp | Gfp.__GFP_ZERO, attrs, ops, out cpuAddr, out handle);
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
    /// The rest of iommu_dma_alloc (v6.12), for a gfp that cannot block or DMA_ATTR_FORCE_CONTIGUOUS: a non-coherent
    /// device with a gfp that cannot block takes PAGE_ALIGN(size) from the atomic pool (dma_alloc_from_pool: the pool of
    /// kernel/dma/pool.c, already cleaned and mapped Normal-NC at boot, cleared with memset through that alias); anything
    /// else takes iommu_dma_alloc_pages: dma_alloc_contiguous (the default CMA area for more than a page when the gfp
    /// may block, aligned to min(get_order, CONFIG_CMA_ALIGNMENT)), else one alloc_pages block of get_order(size)
    /// (zeroed by __GFP_ZERO through the linear map); for a non-coherent device dma_common_contiguous_remap with
    /// dma_pgprot and then arch_dma_prep_coherent(page, size), for a coherent one page_address; then memset of the whole
    /// PAGE_ALIGN(size) through the CPU address. Last, __iommu_dma_map(dev, page_to_phys(page), size, ioprot,
    /// coherent_dma_mask) maps one IOVA range (IOMMU_READ | IOMMU_WRITE, IOMMU_CACHE for a coherent device), whose
    /// start is the handle; when it fails, __iommu_dma_free gives the memory back and the result is NULL.
    /// </summary>
    private static DmaState IommuDmaAllocContiguous(DmaEnvironment env, DmaState s, IommuDomain domain, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        const string via = "dma_alloc_attrs → iommu_dma_alloc";
        cpuAddr = 0;
        handle = DmaMappingError;
        var allocSize = PlatformLayout.PageAlign(size);
        var count = allocSize >> PlatformLayout.PageShift;
        var owner = OwnerName(dev, attrs);
        ulong pfn;
        CoherentSource source;
        if (!gfp.AllowsBlocking() && !dev.Coherent)
        {
            s = EnsureDirectPool(env, s, ops);
            if (s.Pool!.Alloc(allocSize, out var offset) is not { } pool)
            {
                return s;
            }

            cpuAddr = pool.Va + offset;
            s.Kernel.CpuStore(cpuAddr, allocSize, WriterTable.Zero, $"{via} → dma_alloc_from_pool: memset(ptr, 0, size) through the pool's NC alias", ops);
            pfn = pool.Pfn + (offset >> PlatformLayout.PageShift);
            s = s with { Pool = pool };
            source = CoherentSource.IommuPool;
        }
        else
        {
            // iommu_dma_alloc_pages
            var k = s.Kernel;
            KernelState? next = null;
            pfn = 0;
            if (gfp.AllowsBlocking() && allocSize > PlatformLayout.PageSize)
            {
                next = Cma.Alloc(k, count, Math.Min(PlatformLayout.GetOrder(allocSize), CmaArea.MaxAlignmentOrder), owner, ops, out pfn);
            }

            if (next is null)
            {
                var order = PlatformLayout.GetOrder(allocSize);
                if (order > KernelState.MaxOrder || k.TryAllocPages(gfp, order, owner, ops, out pfn) is not { } block)
                {
                    return s;
                }

                next = block;
            }

            k = next;
            if (!dev.Coherent)
            {
                var type = DmaPgprot(dev, attrs);
                k = k.Vmap(pfn, count, type, $"dma_alloc_coherent({dev.Name}) iommu contiguous remap",
                    $"{via} → iommu_dma_alloc_pages: dma_common_contiguous_remap (vmap with dma_pgprot: {(type == MemoryType.NormalNonCacheable ? "Normal-NC" : "PAGE_KERNEL")})", ops, out cpuAddr);
                ArchDmaPrepCoherent(env, k, pfn, size, ops);
            }
            else
            {
                cpuAddr = env.Layout.PhysToVirt(PlatformLayout.PfnToPhys(pfn));
            }

            k.CpuStore(cpuAddr, allocSize, WriterTable.Zero, $"{via} → iommu_dma_alloc_pages: memset(cpu_addr, 0, alloc_size)", ops);
            s = s with { Kernel = k };
            source = CoherentSource.IommuPages;
        }

        var record = new CoherentAllocation(dev.Name, cpuAddr, 0, allocSize, pfn, PlatformLayout.GetOrder(allocSize), source);

        // __iommu_dma_map(dev, page_to_phys(page), size, ioprot, dev->coherent_dma_mask)
        var ioSize = domain.Align(size);
        var limit = Math.Min(Math.Min(DefaultCoherentMask, env.Layout.DmaLimit), IommuDomain.ApertureEnd);
        domain = domain with { Iova = domain.Iova.AllocFast(ioSize >> domain.Iova.Shift, limit >> domain.Iova.Shift, true, out var iovaPfn) };
        if (dev.MinAlignMask > domain.Granule - 1 || iovaPfn is not { } allocated)
        {
            if (dev.MinAlignMask > domain.Granule - 1)
            {
                throw new NotModelledException($"{via}: {dev.Name}'s min_align_mask 0x{dev.MinAlignMask:x} is more than the IOVA granule's; __iommu_dma_map's \"Unsupported alignment constraint\" on a coherent allocation (and __iommu_dma_free of it) is not modelled");
            }

            cpuAddr = 0;
            return IommuDmaFreeMemory(WithDomain(s, domain), dev, record, "dma_alloc_attrs → iommu_dma_alloc → __iommu_dma_free", ops, null);
        }

        var iova = allocated << domain.Iova.Shift;
        domain = domain.Map(iova, PlatformLayout.PfnToPhys(pfn), ioSize, DmaInfoToProt(DmaDirection.DMA_BIDIRECTIONAL, dev.Coherent));
        handle = iova;
        return WithDomain(s with { Coherent = s.Coherent.Add(record with { Handle = iova }) }, domain);
    }

    /// <summary>
    /// __iommu_dma_free's release of the memory of a buffer that is not a remap (v6.12): dma_free_from_pool
    /// (gen_pool_free) for the atomic pool; otherwise dma_common_free_remap of a vmalloc address and vmalloc_to_page,
    /// or virt_to_page of a linear one, and dma_free_contiguous (cma_release, or __free_pages of get_order(size)).
    /// </summary>
    private static DmaState IommuDmaFreeMemory(DmaState s, DmaDevice dev, CoherentAllocation record, string via, List<HwOp> ops, List<Finding>? findings)
    {
        if (record.Source == CoherentSource.IommuPool)
        {
            return s with { Pool = s.Pool!.Free(record.CpuAddr - s.Pool.Va, record.Size, $"{via}: dma_free_from_pool") };
        }

        var k = s.Kernel;
        if (k.Layout.IsVmallocAddr(record.CpuAddr))
        {
            k = k.Vunmap(record.CpuAddr, $"{via}: dma_common_free_remap", ops);
        }

        k = k.DmaFreeContiguous(record.Pfn, record.Size, OwnerName(dev, DmaAttrs.None), $"{via}: dma_free_contiguous", ops, findings);
        return s with { Kernel = k };
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
        var record = s.Coherent.FirstOrDefault(c => c.Source is CoherentSource.IommuRemap or CoherentSource.IommuPool or CoherentSource.IommuPages && c.CpuAddr == cpuAddr);
        if (record is null)
        {
            throw new NotModelledException($"{via}: cpu_addr 0x{cpuAddr:x} is not the start of a live iommu_dma_alloc buffer; what __iommu_dma_free does with it (dma_free_from_pool, vmalloc_to_page, virt_to_page of memory it did not allocate) is not modelled");
        }

        s = IommuDmaUnmap(s, domain, dev, handle, size, via, findings);
        if (record.Source != CoherentSource.IommuRemap)
        {
            if (PlatformLayout.PageAlign(size) != record.Size)
            {
                throw new NotModelledException($"{via}: a free of {size} bytes for a buffer of {record.Size}: __iommu_dma_free of another size than was allocated is not modelled");
            }

            return IommuDmaFreeMemory(s, dev, record, via, ops, findings) with { Coherent = s.Coherent.Remove(record) };
        }

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
    /// The pages iommu_dma_mmap and iommu_dma_get_sgtable (v6.12) take for cpu_addr: for a remap buffer,
    /// dma_common_find_pages (its page array: vm_map_pages, sg_alloc_table_from_pages of size bytes); for the atomic
    /// pool's or iommu_dma_alloc_pages' buffers, vmalloc_to_pfn / virt_to_page of cpu_addr, the first of their
    /// contiguous pages (remap_pfn_range; a one-entry table of PAGE_ALIGN(size)). Any other address is not modelled.
    /// <paramref name="remap"/> says which.
    /// </summary>
    private static ulong IommuBufferPages(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, string function, out bool remap)
    {
        DomainOf(env, s, dev, function);
        var record = s.Coherent.FirstOrDefault(c => c.Source is CoherentSource.IommuRemap or CoherentSource.IommuPool or CoherentSource.IommuPages && c.CpuAddr == cpuAddr)
            ?? throw new NotModelledException($"{function}: cpu_addr 0x{cpuAddr:x} is not a live iommu_dma_alloc buffer; {(env.Layout.IsVmallocAddr(cpuAddr) ? "vmalloc_to_pfn" : "virt_to_page")} of it is not modelled");
        remap = record.Source == CoherentSource.IommuRemap;
        return record.Pfn;
    }
}
