using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The 32-bit arm streaming maintenance (arch/arm/mm/dma-mapping.c, v5.10..v5.15) on an ARMv7 core with no outer
/// cache: arch_sync_dma_for_device / arm_dma_map_page → __dma_page_cpu_to_dev → dmac_map_area = v7_dma_map_area, and
/// arch_sync_dma_for_cpu / arm_dma_unmap_page → __dma_page_dev_to_cpu → dmac_unmap_area = v7_dma_unmap_area. The
/// resulting table (reference §4.3.4): map TO_DEVICE and BIDIRECTIONAL clean, FROM_DEVICE invalidate; unmap FROM_DEVICE
/// and BIDIRECTIONAL invalidate, TO_DEVICE nothing. arm32 never took arm64's c50f11c6196f. Highmem pages (kmapped one
/// at a time by dma_cache_maint_page) are not modelled.
/// </summary>
public static class Arm32DmaHooks
{
    public static void ArchSyncDmaForDevice(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        var start = LowmemVirt(k, paddr, size, caller);
        var origin = $"{caller}: __dma_page_cpu_to_dev({dir}) → v7_dma_map_area";
        if (dir == DmaDirection.DMA_FROM_DEVICE)
        {
            Arm32Cache.DmaInvRange(k, start, start + size, k.Hardware.LineSize, origin, ops);
        }
        else
        {
            Arm32Cache.DmaCleanRange(k, start, start + size, origin, ops);
        }
    }

    public static void ArchSyncDmaForCpu(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (dir == DmaDirection.DMA_TO_DEVICE)
        {
            return;
        }

        var start = LowmemVirt(k, paddr, size, caller);
        Arm32Cache.DmaInvRange(k, start, start + size, k.Hardware.LineSize, $"{caller}: __dma_page_dev_to_cpu({dir}) → v7_dma_unmap_area", ops);
    }

    private static ulong LowmemVirt(KernelState k, ulong paddr, ulong size, string caller)
    {
        var layout = k.Layout;
        if (size == 0 || !layout.IsLowmemPfn(paddr >> PlatformLayout.PageShift) || !layout.IsLowmemPfn((paddr + size - 1) >> PlatformLayout.PageShift))
        {
            throw new NotModelledException($"{caller}: maintenance of a highmem page on 32-bit arm (dma_cache_maint_page kmaps one page at a time) is not modelled");
        }

        return layout.PhysToVirt(paddr);
    }
}
