using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// The dma-direct atomic pool (kernel/dma/pool.c).
public static partial class DmaApi
{
    /// <summary>
    /// The dma-direct atomic pool (kernel/dma/pool.c, v5.8+): created at boot by atomic_pool_expand (alloc_pages,
    /// arch_dma_prep_coherent, a pgprot_dmacoherent vmap, gen_pool_add_virt), default size 128 KiB per GiB of RAM
    /// (at least 128 KiB, at most one MAX_ORDER block). The model creates it at its first use, which is
    /// equivalent: nothing else touches its pages in between. One pool stands for the per-zone pools.
    /// </summary>
    private static DmaState EnsureDirectPool(DmaEnvironment env, DmaState s, List<HwOp> ops)
    {
        if (s.Pool is not null)
        {
            return s;
        }

        var layout = env.Layout;
        var ramPages = layout.Banks.Aggregate(0UL, (sum, b) => sum + (b.Size >> PlatformLayout.PageShift));
        var pages = Math.Min(ramPages / ((1UL << 30) / (128UL << 10)), 1UL << KernelState.MaxOrder);
        var poolSize = Math.Max(pages << PlatformLayout.PageShift, 128UL << 10);
        var order = PlatformLayout.GetOrder(poolSize);
        var k = s.Kernel.TryAllocPages(Gfp.GFP_KERNEL, order, "the atomic DMA pool", ops, out var pfn)
            ?? throw new NotModelledException("the atomic pool's pages do not fit in this layout");
        ArchDmaPrepCoherent(env, k, pfn, poolSize, ops);
        k = k.Vmap(pfn, poolSize / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, "atomic DMA pool", "atomic_pool_expand (at boot): dma_common_contiguous_remap with pgprot_dmacoherent", ops, out var va);
        return s with { Kernel = k, Pool = new AtomicPool(va, pfn, poolSize, ImmutableSortedDictionary<ulong, ulong>.Empty) };
    }

    /// <summary>
    /// dma_direct_alloc_from_pool → dma_alloc_from_pool (v5.10+): gen_pool_alloc, then memset(ptr, 0, size) through the
    /// pool's non-cacheable alias. "Failed to get suitable pool" gives NULL.
    /// </summary>
    private static DmaState DmaDirectAllocFromPool(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        s = EnsureDirectPool(env, s, ops);
        if (s.Pool!.Alloc(size, out var offset) is not { } pool)
        {
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        cpuAddr = pool.Va + offset;
        s.Kernel.CpuStore(cpuAddr, size, WriterTable.Zero, "dma_alloc_from_pool: memset(ptr, 0, size) through the pool's NC alias", ops);
        var pfn = pool.Pfn + (offset >> PlatformLayout.PageShift);
        handle = env.Layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
        return Record(s with { Pool = pool }, dev, cpuAddr, handle, size, pfn, CoherentSource.DirectPool);
    }
}
