using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The MIPS DMA cache routines that arch/mips/mm/c-r4k.c installs at boot for a non-coherent system (r4k_cache_init,
/// v3.x..v6.x): _dma_cache_wback_inv = r4k_dma_cache_wback_inv, _dma_cache_wback = r4k_dma_cache_wback_inv too (the r4k
/// code has no write-back-only DMA routine), _dma_cache_inv = r4k_dma_cache_inv. Each works by hit on every line the
/// range [addr, addr + size) touches (blast_dcache_range / blast_inv_dcache_range, or blast_scache_range /
/// blast_inv_scache_range on a core whose primary caches are included in its secondary cache, as the BMIPS5000's), so a
/// partly covered edge line is discarded whole by the invalidation. The index-based whole-cache variants taken for a range
/// at least the cache's size, and the size == 0 WARN, are not modelled (a range that large stops as not modelled).
/// </summary>
public static class MipsCache
{
    /// <summary>The smallest data cache of the modelled cores (the 24Kc's and BMIPS5000's L1 are 32 KiB or more): a range this large or larger would take the index-based path.</summary>
    private const ulong IndexPathSize = 32UL << 10;

    /// <summary>dma_cache_wback_inv(addr, size) = r4k_dma_cache_wback_inv: Hit_Writeback_Inv on every line.</summary>
    public static void DmaCacheWbackInv(KernelState k, ulong addr, ulong size, string origin, List<HwOp> ops)
    {
        RequireHitPath(addr, size, origin);
        k.DcacheOp(LineOpKind.CleanInvalidate, addr, addr + size, origin + ": r4k_dma_cache_wback_inv (Hit_Writeback_Inv)", ops);
    }

    /// <summary>dma_cache_wback(addr, size): r4k_dma_cache_wback_inv as well (c-r4k.c sets _dma_cache_wback to it).</summary>
    public static void DmaCacheWback(KernelState k, ulong addr, ulong size, string origin, List<HwOp> ops)
    {
        RequireHitPath(addr, size, origin);
        k.DcacheOp(LineOpKind.CleanInvalidate, addr, addr + size, origin + ": dma_cache_wback = r4k_dma_cache_wback_inv (Hit_Writeback_Inv)", ops);
    }

    /// <summary>dma_cache_inv(addr, size) = r4k_dma_cache_inv: Hit_Invalidate on every line, dirty data discarded.</summary>
    public static void DmaCacheInv(KernelState k, ulong addr, ulong size, string origin, List<HwOp> ops)
    {
        RequireHitPath(addr, size, origin);
        k.DcacheOp(LineOpKind.Invalidate, addr, addr + size, origin + ": r4k_dma_cache_inv (Hit_Invalidate)", ops);
    }

    private static void RequireHitPath(ulong addr, ulong size, string origin)
    {
        if (size >= IndexPathSize)
        {
            throw new NotModelledException($"{origin}: a MIPS DMA cache operation of {size} bytes at 0x{addr:x}: at or above the cache's size r4k_dma_cache_* blast the whole cache by index (r4k_blast_dcache / r4k_blast_scache), which is not modelled");
        }
    }
}
