using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The ARMv7 D-cache maintenance routines of arch/arm/mm/cache-v7.S that the DMA code calls through dmac_* (v5.10..v5.15),
/// each by MVA on every line [start, end) touches, and the outer-cache range operations of arch/arm/include/asm/outercache.h
/// (outer_clean_range, outer_inv_range, outer_flush_range), by physical address. The outer ones are no-ops unless the
/// board has an outer cache (<see cref="HardwareConfig.OuterCache"/>: the PL310 / L2C-310 of the i.MX6 layout, whose
/// l2x0 driver fills outer_cache at boot); the Cortex-A72 boards (Raspberry Pi 4) have none, and outer_cache.*_range
/// stays NULL there.
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

    /// <summary>
    /// outer_inv_range(start, end) (arch/arm/include/asm/outercache.h, v5.x) = l2c210_inv_range for an L2C-310 of r3p0 or
    /// later (arch/arm/mm/cache-l2x0.c, v5.x; the r2p0 and earlier errata variants are not modelled): a partly covered
    /// first line and a partly covered last line are cleaned and invalidated (Clean and Invalidate Line by PA), and every
    /// line between is invalidated (Invalidate Line by PA), then cache_sync. A no-op without an outer cache.
    /// </summary>
    public static void OuterInvRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops)
    {
        if (!k.Hardware.OuterCache || end <= start)
        {
            return;
        }

        var line = (ulong)k.Hardware.OuterLine; // CACHE_LINE_SIZE (32) in cache-l2x0.c
        var mask = line - 1;
        var r0 = start;
        if ((r0 & mask) != 0)
        {
            r0 &= ~mask;
            OuterOp(LineOpKind.OuterCleanInvalidate, r0, line, origin + ": outer_inv_range → l2c210_inv_range (partial first line: clean+invalidate by PA)", ops);
            r0 += line;
        }

        var r1 = end;
        if ((r1 & mask) != 0)
        {
            r1 &= ~mask;
            OuterOp(LineOpKind.OuterCleanInvalidate, r1, line, origin + ": outer_inv_range → l2c210_inv_range (partial last line: clean+invalidate by PA)", ops);
        }

        if (r0 < r1)
        {
            OuterOp(LineOpKind.OuterInvalidate, r0, r1 - r0, origin + ": outer_inv_range → l2c210_inv_range (invalidate by PA)", ops);
        }
    }

    /// <summary>
    /// outer_clean_range(start, end) = l2c210_clean_range (arch/arm/mm/cache-l2x0.c, v5.x): start rounded down to a line,
    /// Clean Line by PA on every line the range touches, then cache_sync. A no-op without an outer cache.
    /// </summary>
    public static void OuterCleanRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops)
    {
        if (k.Hardware.OuterCache && end > start)
        {
            OuterOp(LineOpKind.OuterClean, start, end - start, origin + ": outer_clean_range → l2c210_clean_range (clean by PA)", ops);
        }
    }

    /// <summary>
    /// outer_flush_range(start, end) = l2c210_flush_range (arch/arm/mm/cache-l2x0.c, v5.x): Clean and Invalidate Line by
    /// PA on every line the range touches, then cache_sync. A no-op without an outer cache.
    /// </summary>
    public static void OuterFlushRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops)
    {
        if (k.Hardware.OuterCache && end > start)
        {
            OuterOp(LineOpKind.OuterCleanInvalidate, start, end - start, origin + ": outer_flush_range → l2c210_flush_range (clean+invalidate by PA)", ops);
        }
    }

    private static void OuterOp(LineOpKind kind, ulong pa, ulong length, string origin, List<HwOp> ops) =>
        ops.Add(new MemoryOp(origin, pa, length, LineOp.Maintenance(kind), null));
}
