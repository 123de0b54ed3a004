using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// arm_dma_ops and the arm32 arch_dma_alloc / arch_dma_free (arch/arm/mm/dma-mapping.c).
public static partial class DmaApi
{
    /// <summary>
    /// arm32 arch_dma_alloc → __dma_alloc (arch/arm/mm/dma-mapping.c, v5.10..v5.15): the allocator is cma if the
    /// gfp allows blocking and the device has a CMA area (none on these boards), simple for a coherent device,
    /// remap if the gfp allows blocking, pool otherwise.
    /// </summary>
    private static DmaState ArmDmaAlloc(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        cpuAddr = 0;
        handle = DmaMappingError;
        var layout = env.Layout;
        gfp &= ~Gfp.__GFP_COMP;
        if (dev.Coherent)
        {
            // simple_allocator → __dma_alloc_buffer(COHERENT): cleared through the linear map, no flush; the linear-map address.
            if (AllocPagesForDma(env, s.Kernel, dev, size, gfp, $"dma_alloc_coherent({dev.Name})", ops, out var spfn) is not { } sk)
            {
                return s;
            }

            cpuAddr = layout.LinearAddress(spfn);
            sk.CpuStore(cpuAddr, size, WriterTable.Zero, "__dma_clear_buffer: memset(ptr, 0, size) through the linear map (coherent: no flush)", ops);
            handle = layout.PhysToDma(PlatformLayout.PfnToPhys(spfn));
            return Record(s with { Kernel = sk }, dev, cpuAddr, handle, size, spfn, CoherentSource.ArmSimple);
        }

        if (gfp.AllowsBlocking())
        {
            // remap_allocator → __alloc_remap_buffer: __dma_alloc_buffer(NORMAL) clears the pages through the linear
            // map and flushes them (dmac_flush_range, outer_flush_range), then dma_common_contiguous_remap.
            if (AllocPagesForDma(env, s.Kernel, dev, size, gfp, $"dma_alloc_coherent({dev.Name})", ops, out var pfn) is not { } k)
            {
                return s;
            }

            var lm = layout.LinearAddress(pfn);
            k.CpuStore(lm, size, WriterTable.Zero, "__dma_clear_buffer: memset(ptr, 0, size) through the linear map", ops);
            Arm32Cache.DmacFlushRange(k, lm, lm + size, "__dma_clear_buffer", ops);
            Arm32Cache.OuterFlushRange(k, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PfnToPhys(pfn) + size, "__dma_clear_buffer", ops);
            k = k.Vmap(pfn, size / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, $"dma_alloc_coherent({dev.Name}) NC remap",
                "__alloc_remap_buffer: dma_common_contiguous_remap with pgprot_dmacoherent (bufferable: Normal-NC)", ops, out cpuAddr);
            handle = layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
            return Record(s with { Kernel = k }, dev, cpuAddr, handle, size, pfn, CoherentSource.ArmRemap);
        }

        // pool_allocator → __alloc_from_pool: gen_pool_alloc and nothing else; the memory is not cleared again.
        s = EnsureArmPool(env, s, ops);
        if (s.Pool!.Alloc(PlatformLayout.PageAlign(size), out var offset) is not { } pool)
        {
            return s; // "coherent pool exhausted" path: NULL
        }

        cpuAddr = pool.Va + offset;
        var ppfn = pool.Pfn + (offset >> PlatformLayout.PageShift);
        handle = layout.PhysToDma(PlatformLayout.PfnToPhys(ppfn));
        return Record(s with { Pool = pool }, dev, cpuAddr, handle, size, ppfn, CoherentSource.ArmPool);
    }

    /// <summary>
    /// arm32 atomic_pool_init (postcore_initcall): DEFAULT_DMA_COHERENT_POOL_SIZE (256 KiB) from CMA if there is a
    /// default area (none here), else __alloc_remap_buffer with GFP_KERNEL | GFP_DMA: cleared, flushed and remapped
    /// non-cacheable once, at boot. Created at first use, which is equivalent.
    /// </summary>
    private static DmaState EnsureArmPool(DmaEnvironment env, DmaState s, List<HwOp> ops)
    {
        if (s.Pool is not null)
        {
            return s;
        }

        const ulong poolSize = 256UL << 10;
        var k = s.Kernel.TryAllocPages(Gfp.GFP_KERNEL | Gfp.GFP_DMA, PlatformLayout.GetOrder(poolSize), "the atomic DMA pool", ops, out var pfn)
            ?? throw new NotModelledException("the atomic pool's pages do not fit in this layout");
        var lm = env.Layout.LinearAddress(pfn);
        k.CpuStore(lm, poolSize, WriterTable.Zero, "atomic_pool_init (at boot): __dma_clear_buffer memset through the linear map", ops);
        Arm32Cache.DmacFlushRange(k, lm, lm + poolSize, "atomic_pool_init (at boot): __dma_clear_buffer", ops);
        Arm32Cache.OuterFlushRange(k, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PfnToPhys(pfn) + poolSize, "atomic_pool_init (at boot): __dma_clear_buffer", ops);
        k = k.Vmap(pfn, poolSize / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, "atomic DMA pool", "atomic_pool_init (at boot): dma_common_contiguous_remap", ops, out var va);
        return s with { Kernel = k, Pool = new AtomicPool(va, pfn, poolSize, ImmutableSortedDictionary<ulong, ulong>.Empty) };
    }

    /// <summary>
    /// arm32 arch_dma_free → __arm_dma_free: the page from the handle (pfn_to_page(dma_to_pfn)), the buffer record
    /// from cpu_addr (arm_dma_buffer_find; "Freeing invalid buffer!" and a leak if there is none), then the
    /// allocator's free: remap → dma_common_free_remap (vunmap) and __dma_free_buffer; pool → gen_pool_free.
    /// </summary>
    private static DmaState ArmDmaFree(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, List<HwOp> ops, List<Finding> findings)
    {
        var record = s.Coherent.FirstOrDefault(c => c.CpuAddr == cpuAddr && c.Source is CoherentSource.ArmRemap or CoherentSource.ArmPool or CoherentSource.ArmSimple);
        if (record is null)
        {
            throw new KernelBugException("__arm_dma_free", $"WARN: Freeing invalid buffer! (0x{cpuAddr:x} is not a buffer __dma_alloc handed out); the pages leak");
        }

        if (record.Source == CoherentSource.ArmPool)
        {
            return Forget(s with { Pool = s.Pool!.Free(cpuAddr - s.Pool.Va, size, "__free_from_pool") }, record);
        }

        var k = record.Source == CoherentSource.ArmRemap ? s.Kernel.Vunmap(cpuAddr, "dma_common_free_remap: vunmap", ops) : s.Kernel;
        var pfn = env.Layout.DmaToPhys(handle) >> PlatformLayout.PageShift;
        k = k.FreePages(pfn, PlatformLayout.GetOrder(PlatformLayout.PageAlign(size)), ExpectedOwner(k, record, pfn, dev, DmaAttrs.None), "__dma_free_buffer", ops, findings);
        return Forget(s with { Kernel = k }, record);
    }
}
