using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The 32-bit arm streaming maintenance (arch/arm/mm/dma-mapping.c, v5.10..v5.15) on an ARMv7 core:
/// arch_sync_dma_for_device (LPAE, dma-direct) and arm_dma_map_page / arm_dma_sync_single_for_device (arm_dma_ops) →
/// __dma_page_cpu_to_dev = dmac_map_area (v7_dma_map_area) on the inner cache, then outer_inv_range (FROM_DEVICE) or
/// outer_clean_range (otherwise); arch_sync_dma_for_cpu and arm_dma_unmap_page / arm_dma_sync_single_for_cpu →
/// __dma_page_dev_to_cpu = for every direction but TO_DEVICE, outer_inv_range first, then dmac_unmap_area
/// (v7_dma_unmap_area). The inner table (reference §4.3.4): map TO_DEVICE and BIDIRECTIONAL clean, FROM_DEVICE
/// invalidate; unmap FROM_DEVICE and BIDIRECTIONAL invalidate, TO_DEVICE nothing. arm32 never took arm64's c50f11c6196f.
/// The outer operations are no-ops on a board without an outer cache. That order (inner before outer towards the
/// device, outer before inner towards the CPU) is already v3.0's (___dma_single_cpu_to_dev / ___dma_single_dev_to_cpu)
/// and unchanged through the versions modelled, so it is not a switch. Highmem pages (kmapped one at a time by dma_cache_maint_page) are not
/// modelled. The PG_dcache_clean marking of whole pages only spares later flush_dcache_page work and has no effect here.
/// </summary>
public static class Arm32DmaHooks
{
    /// <summary>__dma_page_cpu_to_dev(page, off, size, dir) (arch/arm/mm/dma-mapping.c, v5.13): inner map area, then the outer range op.</summary>
    public static void ArchSyncDmaForDevice(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        var start = LowmemVirt(k, paddr, size, caller);
        var origin = $"{caller}: __dma_page_cpu_to_dev({dir}) → v7_dma_map_area";
        if (dir == DmaDirection.DMA_FROM_DEVICE)
        {
            Arm32Cache.DmaInvRange(k, start, start + size, k.Hardware.DminLine, origin, ops);
            Arm32Cache.OuterInvRange(k, paddr, paddr + size, $"{caller}: __dma_page_cpu_to_dev({dir})", ops);
        }
        else
        {
            Arm32Cache.DmaCleanRange(k, start, start + size, origin, ops);
            Arm32Cache.OuterCleanRange(k, paddr, paddr + size, $"{caller}: __dma_page_cpu_to_dev({dir})", ops);
        }
    }

    /// <summary>
    /// __dma_page_dev_to_cpu(page, off, size, dir) (arch/arm/mm/dma-mapping.c, v5.13): nothing for TO_DEVICE, else
    /// outer_inv_range, then the inner unmap area. With <see cref="Switches.Arm32DevToCpu"/> = none (kernels before the
    /// v2.6.34 speculative-prefetch rework), nothing at all: the unmap and sync-for-CPU side did no maintenance.
    /// </summary>
    public static void ArchSyncDmaForCpu(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (dir == DmaDirection.DMA_TO_DEVICE || env.Arm32DevToCpu == Arm32DevToCpuMode.None)
        {
            return;
        }

        var start = LowmemVirt(k, paddr, size, caller);
        Arm32Cache.OuterInvRange(k, paddr, paddr + size, $"{caller}: __dma_page_dev_to_cpu({dir})", ops);
        Arm32Cache.DmaInvRange(k, start, start + size, k.Hardware.DminLine, $"{caller}: __dma_page_dev_to_cpu({dir}) → v7_dma_unmap_area", ops);
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
