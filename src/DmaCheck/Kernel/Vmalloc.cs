using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The vmalloc area's allocators (mm/vmalloc.c: vmalloc, vmap, vm_map_ram) and the cache maintenance that aliasing data
/// caches need around them (arch/arm/include/asm/cacheflush.h and arch/arm/mm/flush.c, v5.4..v6.6: flush_cache_vmap,
/// flush_kernel_vmap_range, invalidate_kernel_vmap_range, flush_dcache_page). On a physically indexed data cache (every
/// arm64, x86_64 and ARMv7 board) the maintenance is a no-op: the generic versions in include/linux/highmem.h and
/// include/asm-generic/cacheflush.h are empty, and arm's test cache_is_vivt() || cache_is_vipt_aliasing() fails.
/// </summary>
public static class Vmalloc
{
    /// <summary>
    /// vmalloc(size) (mm/vmalloc.c, v5.x, __vmalloc_node_range → __vmalloc_area_node): one order-0 page at a time
    /// (GFP_KERNEL, not zeroed), mapped PAGE_KERNEL (Normal-WB) one after another at the next free range of the vmalloc
    /// area, a guard page after it; vmap_pages_range then calls flush_cache_vmap. Null (NULL) when a page cannot be had.
    /// </summary>
    public static KernelState? Alloc(KernelState k, ulong size, string origin, List<HwOp> ops, out ulong va)
    {
        va = 0;
        var pages = PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift;
        var pfns = new List<ulong>();
        var kernel = k;
        for (var i = 0UL; i < pages; i++)
        {
            if (kernel.TryAllocPages(Gfp.GFP_KERNEL, 0, "vmalloc", ops, out var pfn) is not { } next)
            {
                return null; // __vmalloc_area_node frees what it got and vmalloc returns NULL; the pages stay allocated here (not modelled: the driver gives up)
            }

            kernel = next;
            pfns.Add(pfn);
        }

        var start = kernel.VmallocNext;
        if (start + ((pages + 1) << PlatformLayout.PageShift) > k.Layout.VmallocEnd)
        {
            throw new NotModelledException("vmalloc space exhausted");
        }

        // One alias per run of consecutive frames (the page tables map page by page; an alias here is a run of them that
        // translates linearly), so a CPU access stays within one alias wherever the frames allow.
        var mmu = kernel.Mmu;
        var areas = kernel.VmapAreas;
        for (var i = 0; i < pfns.Count;)
        {
            var run = 1;
            while (i + run < pfns.Count && pfns[i + run] == pfns[i] + (ulong)run)
            {
                run++;
            }

            var alias = new Alias($"vmalloc area 0x{start:x} page {i}", start + ((ulong)i << PlatformLayout.PageShift), PlatformLayout.PfnToPhys(pfns[i]), (ulong)run << PlatformLayout.PageShift, MemoryType.NormalWriteBack);
            ops.Add(new MapOp(origin, alias));
            mmu = mmu.Map(alias);
            areas = areas.Add(alias.Va, alias);
            i += run;
        }

        kernel = kernel with { Mmu = mmu, VmapAreas = areas, VmallocNext = start + ((pages + 1) << PlatformLayout.PageShift) };
        FlushCacheVmap(kernel, pfns.Select(p => (PlatformLayout.PfnToPhys(p), PlatformLayout.PageSize)), origin, ops);
        va = start;
        return kernel;
    }

    /// <summary>
    /// vmap(pages, count, VM_MAP, PAGE_KERNEL) and vm_map_ram(pages, count, node) (mm/vmalloc.c, v5.x) of <paramref name="count"/>
    /// consecutive frames from <paramref name="pfn"/>: a Normal-WB alias at the next free range of the vmalloc area
    /// (vm_map_ram takes small counts from a per-CPU vmap block; this model places both the same way), then flush_cache_vmap.
    /// </summary>
    public static KernelState Map(KernelState k, ulong pfn, ulong count, string function, string origin, List<HwOp> ops, out ulong va)
    {
        var kernel = k.Vmap(pfn, count, MemoryType.NormalWriteBack, $"{function} of pfn 0x{pfn:x}", origin, ops, out va);
        FlushCacheVmap(kernel, [(PlatformLayout.PfnToPhys(pfn), count << PlatformLayout.PageShift)], origin, ops);
        return kernel;
    }

    /// <summary>
    /// vunmap(addr), vm_unmap_ram(addr, count) and vfree(addr) (mm/vmalloc.c, v5.x) of the area of <paramref name="size"/> bytes
    /// at <paramref name="va"/>: flush_cache_vunmap (on 32-bit arm flush_cache_all unless VIPT non-aliasing: every copy of the
    /// area's lines is cleaned and invalidated, so dirty data at the alias's colour reaches RAM), then the page tables are cleared;
    /// vfree (<paramref name="freePages"/>) then gives the pages back. A kernel bug when no area starts at <paramref name="va"/>.
    /// </summary>
    public static KernelState Unmap(KernelState k, ulong va, ulong size, bool freePages, string function, string origin, List<HwOp> ops, List<Finding> findings)
    {
        var end = va + PlatformLayout.PageAlign(size);
        var aliases = k.VmapAreas.Values.Where(a => a.Va >= va && a.Va < end && a.Type == MemoryType.NormalWriteBack).OrderBy(a => a.Va).ToList();
        if (aliases.Count == 0 || aliases[0].Va != va)
        {
            throw new KernelBugException(function, $"0x{va:x} is not the start of a vmalloc or vmap area: {function} WARNs (\"Trying to vfree() nonexistent vm area\") or unmaps nothing");
        }

        FlushCacheVunmap(k, aliases.Select(a => (a.Pa, a.Size)), origin, ops);
        var kernel = k;
        foreach (var a in aliases)
        {
            ops.Add(new UnmapOp(origin, a));
            kernel = kernel with { Mmu = kernel.Mmu.Unmap(a), VmapAreas = kernel.VmapAreas.Remove(a.Va) };
        }

        if (freePages)
        {
            foreach (var a in aliases)
            {
                for (var pa = a.Pa; pa < a.Pa + a.Size; pa += PlatformLayout.PageSize)
                {
                    kernel = kernel.FreePages(pa >> PlatformLayout.PageShift, 0, "vmalloc", function, ops, findings);
                }
            }
        }

        return kernel;
    }

    /// <summary>flush_cache_vunmap(start, end) on 32-bit arm (arch/arm/include/asm/cacheflush.h, v5.x): as <see cref="FlushCacheVmap"/>.</summary>
    public static void FlushCacheVunmap(KernelState k, IEnumerable<(ulong Pa, ulong Size)> ranges, string origin, List<HwOp> ops)
    {
        if (!k.Hardware.Aliasing)
        {
            return;
        }

        foreach (var (pa, size) in ranges)
        {
            ops.Add(new MemoryOp(origin + ": flush_cache_vunmap → flush_cache_all", pa, size, LineOp.Maintenance(LineOpKind.CleanInvalidate) with { Colour = LineOp.AllColours }, null));
        }
    }

    /// <summary>
    /// flush_cache_vmap(start, end) on 32-bit arm (arch/arm/include/asm/cacheflush.h, v5.x): flush_cache_all() unless the
    /// cache is VIPT non-aliasing, so no line of the pages, at any colour, can later be written back over what is stored
    /// through the new alias. The model cleans and invalidates every copy of the mapped pages' lines; the rest of the cache,
    /// which flush_cache_all also cleans, is left to the spontaneous write-backs and evictions, which include that outcome.
    /// </summary>
    public static void FlushCacheVmap(KernelState k, IEnumerable<(ulong Pa, ulong Size)> ranges, string origin, List<HwOp> ops)
    {
        if (!k.Hardware.Aliasing)
        {
            return;
        }

        foreach (var (pa, size) in ranges)
        {
            ops.Add(new MemoryOp(origin + ": flush_cache_vmap → flush_cache_all", pa, size, LineOp.Maintenance(LineOpKind.CleanInvalidate) with { Colour = LineOp.AllColours }, null));
        }
    }

    /// <summary>
    /// flush_kernel_vmap_range(addr, size) and invalidate_kernel_vmap_range(addr, size) on 32-bit arm (arch/arm/include/asm/cacheflush.h,
    /// v5.x): when cache_is_vivt() || cache_is_vipt_aliasing(), __cpuc_flush_dcache_area(addr, size), a clean and invalidate by
    /// VA of every line the range touches (arm926_flush_kern_dcache_area, v6_flush_kern_dcache_area): both functions do the
    /// same on arm. Elsewhere a no-op. The range is maintained through the aliases that map it, so on an aliasing cache the
    /// copies at the vmap alias's colour are the ones cleaned.
    /// </summary>
    public static void KernelVmapRange(KernelState k, ulong va, ulong size, string function, string origin, List<HwOp> ops)
    {
        if (!k.Hardware.Aliasing || size == 0)
        {
            return;
        }

        var line = (ulong)k.Hardware.L1Line;
        var start = va & ~(line - 1);
        var end = checked(va + size + line - 1) & ~(line - 1);
        for (var at = start; at < end;)
        {
            var next = Math.Min(end, (at | (PlatformLayout.PageSize - 1)) + 1);
            k.DcacheOp(LineOpKind.CleanInvalidate, at, next, $"{origin}: {function} → __cpuc_flush_dcache_area (clean+invalidate by VA)", ops);
            at = next;
        }
    }

    /// <summary>
    /// flush_dcache_page(page) on 32-bit arm (arch/arm/mm/flush.c, v5.x) for a page with no page-cache mapping (a driver's
    /// page): on a VIPT non-aliasing cache only PG_dcache_clean is cleared; otherwise __flush_dcache_page cleans and invalidates
    /// the kernel's linear-map copy of the page (__cpuc_flush_dcache_area(page_address(page), PAGE_SIZE)). Copies at other
    /// colours (a vmap alias) are not touched: that is what flush_kernel_vmap_range is for. A highmem page (kmap_high_get) is not
    /// modelled.
    /// </summary>
    public static void FlushDcachePage(KernelState k, ulong pfn, string origin, List<HwOp> ops)
    {
        if (!k.Hardware.Aliasing)
        {
            return;
        }

        var va = k.Layout.PageAddress(pfn) ?? throw new NotModelledException($"flush_dcache_page of highmem pfn 0x{pfn:x} on an aliasing data cache (kmap_high_get and the kmap alias's colour)");
        k.DcacheOp(LineOpKind.CleanInvalidate, va, va + PlatformLayout.PageSize, $"{origin}: flush_dcache_page → __flush_dcache_page (clean+invalidate the linear map's copy)", ops);
    }
}
