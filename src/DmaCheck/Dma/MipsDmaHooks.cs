using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The MIPS arch hooks of dma-direct for a non-coherent system (arch/mips/mm/dma-noncoherent.c, v5.8; the same table as
/// dma-default.c's mips_dma_map_ops before v4.20): dma_sync_phys → dma_sync_virt on the KSEG0 (linear-map) address, which
/// for DMA_TO_DEVICE calls dma_cache_wback, for DMA_FROM_DEVICE dma_cache_inv and for DMA_BIDIRECTIONAL
/// dma_cache_wback_inv (<see cref="MipsCache"/>). arch_sync_dma_for_device always does it; arch_sync_dma_for_cpu only
/// when cpu_needs_post_dma_flush(), for every direction (dma-direct calls it for DMA_TO_DEVICE too, which then writes
/// back and invalidates once more). Highmem pages (kmap_atomic one page at a time) and arch_sync_dma_for_cpu_all are not
/// modelled; no bundled MIPS layout has highmem.
/// </summary>
public static class MipsDmaHooks
{
    /// <summary>arch_sync_dma_for_device(paddr, size, dir) = dma_sync_phys.</summary>
    public static void ArchSyncDmaForDevice(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops) =>
        DmaSyncVirt(k, Kseg0(k, paddr, size, caller), size, dir, $"{caller}: arch_sync_dma_for_device({dir}) → dma_sync_phys", ops);

    /// <summary>arch_sync_dma_for_cpu(paddr, size, dir): dma_sync_phys only when <see cref="CpuNeedsPostDmaFlush"/>.</summary>
    public static void ArchSyncDmaForCpu(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (!CpuNeedsPostDmaFlush(env, k.Layout))
        {
            return; // cpu_needs_post_dma_flush() is false: nothing
        }

        DmaSyncVirt(k, Kseg0(k, paddr, size, caller), size, dir, $"{caller}: arch_sync_dma_for_cpu({dir}) [cpu_needs_post_dma_flush] → dma_sync_phys", ops);
    }

    /// <summary>
    /// cpu_needs_post_dma_flush() for the layout's core: true for a BMIPS5000 once f86f55d3ad21 named it
    /// (<see cref="Switches.MipsPostDmaFlush"/>); false for the 24Kc, which is none of R10000, R12000, BMIPS5000 or
    /// LOONGSON2EF and has no MAARs.
    /// </summary>
    public static bool CpuNeedsPostDmaFlush(DmaEnvironment env, PlatformLayout layout) => layout.Cpu switch
    {
        CpuKind.Bmips5000 => env.MipsPostDmaFlush == MipsPostDmaFlushMode.Bmips5000,
        CpuKind.Mips24K => false,
        _ => throw new NotModelledException($"cpu_needs_post_dma_flush() for a {layout.Cpu} core on {layout.Name}"),
    };

    private static void DmaSyncVirt(KernelState k, ulong addr, ulong size, DmaDirection dir, string origin, List<HwOp> ops)
    {
        switch (dir)
        {
            case DmaDirection.DMA_TO_DEVICE:
                MipsCache.DmaCacheWback(k, addr, size, origin + " → dma_sync_virt(TO_DEVICE)", ops);
                break;
            case DmaDirection.DMA_FROM_DEVICE:
                MipsCache.DmaCacheInv(k, addr, size, origin + " → dma_sync_virt(FROM_DEVICE)", ops);
                break;
            case DmaDirection.DMA_BIDIRECTIONAL:
                MipsCache.DmaCacheWbackInv(k, addr, size, origin + " → dma_sync_virt(BIDIRECTIONAL)", ops);
                break;
            default:
                throw new KernelBugException("dma_sync_virt", $"BUG() for direction {dir}");
        }
    }

    private static ulong Kseg0(KernelState k, ulong paddr, ulong size, string caller)
    {
        var layout = k.Layout;
        if (size == 0 || !layout.IsLowmemPfn(paddr >> PlatformLayout.PageShift) || !layout.IsLowmemPfn((paddr + size - 1) >> PlatformLayout.PageShift))
        {
            throw new NotModelledException($"{caller}: MIPS maintenance of an empty range or of a highmem page (dma_sync_phys kmaps one page at a time) is not modelled");
        }

        return layout.PhysToVirt(paddr); // page_address(page) + offset: KSEG0
    }
}
