using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The DMA API front end (kernel/dma/mapping.c, include/linux/dma-mapping.h) over dma-direct (kernel/dma/direct.c)
/// with the arm64 hooks. Pure: every call takes a state and returns a new one, appending the hardware operations
/// it performs to <c>ops</c>. Follows v6.3/v6.4 except where a switch says otherwise.
/// </summary>
public static class DmaApi
{
    /// <summary>DMA_MAPPING_ERROR: (dma_addr_t)~0.</summary>
    public const ulong DmaMappingError = ulong.MaxValue;

    /// <summary>
    /// dma_alloc_attrs(dev, size, &amp;handle, gfp, attrs) with no per-device coherent pool and no IOMMU, so it reaches
    /// dma_direct_alloc(). Rejects __GFP_COMP; strips __GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM (zone choice belongs
    /// to the implementation). Returns cpu address 0 (NULL) on failure.
    /// </summary>
    public static DmaState DmaAllocAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        if ((gfp & Gfp.__GFP_COMP) != 0)
        {
            // WARN_ON_ONCE(flag & __GFP_COMP) and return NULL.
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        gfp &= ~(Gfp.__GFP_DMA | Gfp.__GFP_DMA32 | Gfp.__GFP_HIGHMEM);
        return DmaDirectAlloc(env, s, dev, size, gfp, ops, out cpuAddr, out handle);
    }

    /// <summary>
    /// dma_direct_alloc() (kernel/dma/direct.c, v6.3/v6.4) on arm64: DMA_DIRECT_REMAP, no ARCH_HAS_DMA_SET_UNCACHED,
    /// no memory encryption, no restricted pool, no CMA area. The order of steps is the kernel's (reference §1.3).
    /// </summary>
    public static DmaState DmaDirectAlloc(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        size = PlatformLayout.PageAlign(size);
        var remap = !dev.Coherent; // arm64 selects DMA_DIRECT_REMAP; only non-coherent devices need the uncached remap
        if (remap && !gfp.AllowsBlocking())
        {
            throw new NotModelledException("dma_direct_alloc with a non-blocking gfp on a non-coherent device takes the atomic pool (dma_direct_alloc_from_pool), which this version does not model");
        }

        // __dma_direct_alloc_pages(dev, size, gfp & ~__GFP_ZERO, true): no CMA area on this platform, so alloc_pages_node.
        var order = PlatformLayout.GetOrder(size);
        if (s.Kernel.TryAllocPages(gfp & ~Gfp.__GFP_ZERO, order, $"dma_alloc_coherent({dev.Name})", ops, out var pfn) is not { } k)
        {
            // No CMA area here, so a request above MAX_ORDER (or past the end of DRAM) fails: NULL.
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        if (remap)
        {
            // prot = dma_pgprot(dev, PAGE_KERNEL, attrs) = pgprot_dmacoherent: Normal-NC on arm64.
            Arm64DmaHooks.ArchDmaPrepCoherent(env, k, pfn, size, ops);
            k = k.Vmap(pfn, size / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, $"dma_alloc_coherent({dev.Name}) NC remap",
                "dma_common_contiguous_remap: vmap with pgprot_dmacoherent (Normal-NC)", ops, out cpuAddr);
        }
        else
        {
            cpuAddr = k.Layout.PageAddress(pfn);
        }

        k.CpuStore(cpuAddr, size, WriterTable.Zero, remap ? "dma_direct_alloc: memset(ret, 0, size) through the NC remap" : "dma_direct_alloc: memset(ret, 0, size) through the linear map", ops);
        handle = PhysToDma(PlatformLayout.PfnToPhys(pfn));
        return s with { Kernel = k, Coherent = s.Coherent.Add(new CoherentAllocation(dev.Name, cpuAddr, handle, size, pfn, order)) };
    }

    /// <summary>
    /// dma_free_attrs() → dma_direct_free() (v6.3/v6.4): a vmalloc cpu address is vunmapped (no cache maintenance);
    /// the pages are found from the DMA handle (dma_direct_to_page), never from cpu_addr, and freed.
    /// </summary>
    public static DmaState DmaFreeAttrs(DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, List<HwOp> ops)
    {
        if (cpuAddr == 0)
        {
            return s; // a NULL cpu_addr is a no-op
        }

        var k = s.Kernel;
        if (k.Layout.IsVmallocAddr(cpuAddr))
        {
            k = k.Vunmap(cpuAddr, "dma_direct_free: vunmap", ops);
        }

        var pfn = DmaToPhys(handle) >> PlatformLayout.PageShift;
        k = k.FreePages(pfn, PlatformLayout.GetOrder(PlatformLayout.PageAlign(size)), ops);
        var record = s.Coherent.FirstOrDefault(c => c.Device == dev.Name && c.Handle == handle);
        return s with { Kernel = k, Coherent = record is null ? s.Coherent : s.Coherent.Remove(record) };
    }

    /// <summary>
    /// dma_map_single_attrs(dev, ptr, size, dir, attrs): rejects vmalloc addresses ("rejecting DMA map of vmalloc
    /// memory", DMA_MAPPING_ERROR), then dma_map_page_attrs(virt_to_page(ptr), offset_in_page(ptr)).
    /// </summary>
    public static DmaState DmaMapSingle(DmaEnvironment env, DmaState s, DmaDevice dev, ulong ptr, ulong size, DmaDirection dir, List<HwOp> ops, out ulong handle)
    {
        var layout = s.Kernel.Layout;
        if (layout.IsVmallocAddr(ptr))
        {
            handle = DmaMappingError;
            return s;
        }

        if (!layout.IsLinearMapAddr(ptr))
        {
            throw new NotModelledException($"dma_map_single on 0x{ptr:x}, which is not a linear-map address: virt_to_page would compute a bogus page");
        }

        return DmaMapPage(env, s, dev, layout.VirtToPfn(ptr), ptr & (PlatformLayout.PageSize - 1), size, dir, "dma_map_single", ops, out handle);
    }

    /// <summary>
    /// dma_map_page_attrs() → dma_direct_map_page() (v6.3/v6.4): dma_addr = phys_to_dma(phys); the device can
    /// address all of DRAM here, so no bounce; a non-coherent device gets arch_sync_dma_for_device.
    /// </summary>
    public static DmaState DmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, string function, List<HwOp> ops, out ulong handle)
    {
        CheckDirection(dir, function);
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        if (phys >= 1UL << 32 || size > (1UL << 32) - phys)
        {
            throw new NotModelledException("a streaming mapping above the 32-bit DMA mask needs swiotlb bouncing, which this version does not model");
        }

        handle = PhysToDma(phys);
        if (!dev.Coherent)
        {
            Arm64DmaHooks.ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, function, ops);
        }

        return s with { Mappings = s.Mappings.Add(new StreamingMapping(dev.Name, handle, phys, size, dir, function)) };
    }

    /// <summary>dma_unmap_page_attrs() → dma_direct_unmap_page(): dma_direct_sync_single_for_cpu, then the mapping is gone.</summary>
    public static DmaState DmaUnmap(DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        CheckDirection(dir, function);
        SyncForCpu(s, dev, handle, size, dir, function, ops);
        var record = s.Mappings.FirstOrDefault(m => m.Device == dev.Name && m.Handle == handle);
        return record is null ? s : s with { Mappings = s.Mappings.Remove(record) };
    }

    /// <summary>dma_sync_single_for_cpu() → dma_direct_sync_single_for_cpu(): arch_sync_dma_for_cpu for a non-coherent device.</summary>
    public static void SyncForCpu(DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        CheckDirection(dir, function);
        if (!dev.Coherent)
        {
            Arm64DmaHooks.ArchSyncDmaForCpu(s.Kernel, DmaToPhys(handle), size, dir, function, ops);
        }
    }

    /// <summary>dma_sync_single_for_device() → dma_direct_sync_single_for_device(): arch_sync_dma_for_device for a non-coherent device.</summary>
    public static void SyncForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        CheckDirection(dir, function);
        if (!dev.Coherent)
        {
            Arm64DmaHooks.ArchSyncDmaForDevice(env, s.Kernel, DmaToPhys(handle), size, dir, function, ops);
        }
    }

    /// <summary>dma_mapping_error(dev, addr): addr == DMA_MAPPING_ERROR.</summary>
    public static bool DmaMappingErrorCheck(ulong handle) => handle == DmaMappingError;

    /// <summary>phys_to_dma(): this platform has no DMA offset (dma-ranges identity).</summary>
    public static ulong PhysToDma(ulong phys) => phys;

    /// <summary>dma_to_phys().</summary>
    public static ulong DmaToPhys(ulong dma) => dma;

    private static void CheckDirection(DmaDirection dir, string function)
    {
        // BUG_ON(!valid_dma_direction(dir)) in the map and sync entry points.
        if (dir == DmaDirection.DMA_NONE)
        {
            throw new KernelBugException(function, "BUG_ON(!valid_dma_direction(dir)): DMA_NONE");
        }
    }
}
