using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The ARMv7 D-cache maintenance routines of arch/arm/mm/cache-v7.S that the DMA code calls through dmac_* (v5.10..v5.15).
/// Each works by MVA on every line [start, end) touches. No outer (L2x0) cache is modelled: the boards of the
/// bundled layouts (Cortex-A72) have none, so outer_*_range are no-ops.
/// </summary>
public static class Arm32Cache
{
    /// <summary>dmac_flush_range = v7_dma_flush_range(start, end): DCCIMVAC (clean and invalidate to PoC) on every line.</summary>
    public static void DmacFlushRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.CleanInvalidate, start, end, origin + ": dmac_flush_range (v7_dma_flush_range)", ops);
}
