using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>The arm64 arch hooks of the DMA layer (arch/arm64/mm/dma-mapping.c). All maintenance is done through the linear-map alias.</summary>
public static class Arm64DmaHooks
{
    /// <summary>
    /// arch_dma_prep_coherent(page, size): maintenance of the linear-map alias of the pages, per
    /// <see cref="Switches.PrepCoherent"/>: clean+invalidate (v5.0..v6.0, v6.1..v6.3) or clean only (v6.4+).
    /// </summary>
    public static void ArchDmaPrepCoherent(DmaEnvironment env, KernelState k, ulong pfn, ulong size, List<HwOp> ops)
    {
        var start = k.Layout.LinearAddress(pfn);
        var origin = $"arch_dma_prep_coherent [{Switches.PrepCoherent.Key}={env.Profile.Value(Switches.PrepCoherent)}]";
        if (env.PrepCoherentInvalidates)
        {
            Arm64Cache.DcacheCleanInvalPoc(k, start, start + size, origin, ops);
        }
        else
        {
            Arm64Cache.DcacheCleanPoc(k, start, start + size, origin, ops);
        }
    }

    /// <summary>
    /// arch_sync_dma_for_device(paddr, size, dir): since v5.19 (c50f11c6196f) dcache_clean_poc for every
    /// direction; before, dcache_inval_poc for DMA_FROM_DEVICE.
    /// </summary>
    public static void ArchSyncDmaForDevice(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        var start = k.Layout.PhysToVirt(paddr);
        var origin = $"{caller}: arch_sync_dma_for_device({dir})";
        if (dir == DmaDirection.DMA_FROM_DEVICE && env.FromDeviceMapInvalidates)
        {
            Arm64Cache.DcacheInvalPoc(k, start, start + size, origin + $" [{Switches.SyncForDeviceFromDevice.Key}=inval]", ops);
        }
        else
        {
            Arm64Cache.DcacheCleanPoc(k, start, start + size, origin, ops);
        }
    }

    /// <summary>arch_sync_dma_for_cpu(paddr, size, dir): nothing for DMA_TO_DEVICE, else dcache_inval_poc.</summary>
    public static void ArchSyncDmaForCpu(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (dir == DmaDirection.DMA_TO_DEVICE)
        {
            return;
        }

        var start = k.Layout.PhysToVirt(paddr);
        Arm64Cache.DcacheInvalPoc(k, start, start + size, $"{caller}: arch_sync_dma_for_cpu({dir})", ops);
    }
}
