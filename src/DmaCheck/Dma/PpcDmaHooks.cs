using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The 32-bit powerpc hooks for a non-coherent cache (arch/powerpc/mm/dma-noncoherent.c, v5.1..v5.4):
/// arch_sync_dma_for_device and arch_sync_dma_for_cpu are the same function, __dma_sync_page → __dma_sync on the
/// lowmem address: DMA_TO_DEVICE clean_dcache_range, DMA_BIDIRECTIONAL flush_dcache_range, DMA_FROM_DEVICE
/// invalidate_dcache_range, or, since 03d70617b8a7 (<see cref="Switches.PpcFromDeviceUnaligned"/>), flush_dcache_range when
/// the start or the end is not L1_CACHE_BYTES aligned. Highmem (__dma_sync_page_highmem) is not modelled; the bundled
/// 8xx layout has none. L1_CACHE_BYTES is the layout's line (16 on the 8xx).
/// </summary>
public static class PpcDmaHooks
{
    /// <summary>arch_sync_dma_for_device(dev, paddr, size, dir) = __dma_sync_page(paddr, size, dir).</summary>
    public static void ArchSyncDmaForDevice(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops) =>
        DmaSync(env, k, paddr, size, dir, $"{caller}: arch_sync_dma_for_device({dir}) → __dma_sync", ops);

    /// <summary>arch_sync_dma_for_cpu(dev, paddr, size, dir) = __dma_sync_page(paddr, size, dir), the same operations.</summary>
    public static void ArchSyncDmaForCpu(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops) =>
        DmaSync(env, k, paddr, size, dir, $"{caller}: arch_sync_dma_for_cpu({dir}) → __dma_sync", ops);

    private static void DmaSync(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string origin, List<HwOp> ops)
    {
        var layout = k.Layout;
        if (size == 0 || !layout.IsLowmemPfn(paddr >> PlatformLayout.PageShift) || !layout.IsLowmemPfn((paddr + size - 1) >> PlatformLayout.PageShift))
        {
            throw new NotModelledException($"{origin}: powerpc maintenance of an empty range or of a highmem page (__dma_sync_page_highmem) is not modelled");
        }

        var start = layout.PhysToVirt(paddr);
        var end = start + size;
        switch (dir)
        {
            case DmaDirection.DMA_FROM_DEVICE:
                var unaligned = ((start | end) & ((ulong)layout.L1LineSize - 1)) != 0;
                if (unaligned && env.PpcFromDeviceUnaligned == PpcFromDeviceUnalignedMode.Flush)
                {
                    PpcCache.FlushDcacheRange(k, start, end, origin + $" (FROM_DEVICE, not cache-line aligned) [{Switches.PpcFromDeviceUnaligned.Key}=flush]", ops);
                }
                else
                {
                    PpcCache.InvalidateDcacheRange(k, start, end, origin + " (FROM_DEVICE)" + (unaligned ? $" [{Switches.PpcFromDeviceUnaligned.Key}=invalidate]" : string.Empty), ops);
                }

                break;
            case DmaDirection.DMA_TO_DEVICE:
                PpcCache.CleanDcacheRange(k, start, end, origin + " (TO_DEVICE)", ops);
                break;
            case DmaDirection.DMA_BIDIRECTIONAL:
                PpcCache.FlushDcacheRange(k, start, end, origin + " (BIDIRECTIONAL)", ops);
                break;
            default:
                throw new KernelBugException("__dma_sync", $"BUG() for direction {dir}");
        }
    }
}
