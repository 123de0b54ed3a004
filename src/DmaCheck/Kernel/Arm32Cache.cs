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

    /// <summary>
    /// v7_dma_inv_range(start, end) (arch/arm/mm/cache-v7.S, v5.x): a partly covered first line is cleaned and
    /// invalidated (DCCIMVAC) and skipped, a partly covered last line is cleaned and invalidated, and every line
    /// between is invalidated (DCIMVAC): bytes outside the range that share its edge lines are written back, not lost.
    /// </summary>
    public static void DmaInvRange(KernelState k, ulong start, ulong end, int lineSize, string origin, List<HwOp> ops)
    {
        var mask = (ulong)lineSize - 1;
        var r0 = start & ~mask;
        if ((start & mask) != 0)
        {
            k.DcacheOp(LineOpKind.CleanInvalidate, r0, r0 + (ulong)lineSize, origin + ": v7_dma_inv_range (partial first line: DCCIMVAC)", ops);
            r0 += (ulong)lineSize;
        }

        var r1 = end & ~mask;
        if ((end & mask) != 0)
        {
            k.DcacheOp(LineOpKind.CleanInvalidate, r1, r1 + (ulong)lineSize, origin + ": v7_dma_inv_range (partial last line: DCCIMVAC)", ops);
        }

        if (r0 < r1)
        {
            k.DcacheOp(LineOpKind.Invalidate, r0, r1, origin + ": v7_dma_inv_range (DCIMVAC)", ops);
        }
    }

    /// <summary>v7_dma_clean_range(start, end): DCCMVAC on every line the range touches.</summary>
    public static void DmaCleanRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.Clean, start, end, origin + ": v7_dma_clean_range (DCCMVAC)", ops);
}
