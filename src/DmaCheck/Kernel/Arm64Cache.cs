using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The arm64 D-cache maintenance routines of arch/arm64/mm/cache.S (names as of v5.14+; earlier
/// __dma_clean_area / __dma_flush_area / __dma_inv_area). Each works by VA on every line that [start, end)
/// touches and ends with DSB SY, which the model needs no step for (operations complete in program order).
/// </summary>
public static class Arm64Cache
{
    /// <summary>dcache_clean_poc(start, end): DC CVAC on every line.</summary>
    public static void DcacheCleanPoc(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.Clean, start, end, origin + ": dcache_clean_poc", ops);

    /// <summary>dcache_clean_inval_poc(start, end): DC CIVAC on every line.</summary>
    public static void DcacheCleanInvalPoc(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.CleanInvalidate, start, end, origin + ": dcache_clean_inval_poc", ops);

    /// <summary>
    /// dcache_inval_poc(start, end), following the assembly exactly: if end is not line aligned, DC CIVAC the line
    /// holding end and round end down; if start is not line aligned, DC CIVAC the line holding start and continue
    /// from the next line, otherwise DC IVAC the line at start; then DC IVAC each further line below end. Partial
    /// edge lines are therefore written back, never discarded. "Line" is dcache_line_size: CTR_EL0.DminLine, the smallest
    /// line of any level (<see cref="HardwareConfig.DminLine"/>). Where a level beyond L1 has longer lines, a range aligned
    /// to DminLine can still cover part of a longer line, and DC IVAC discards that whole line.
    /// </summary>
    public static void DcacheInvalPoc(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops)
    {
        var line = (ulong)k.Hardware.DminLine;
        var mask = line - 1;
        var name = origin + ": dcache_inval_poc";
        if ((end & mask) != 0)
        {
            end &= ~mask;
            k.DcacheOp(LineOpKind.CleanInvalidate, end, end + line, name + " (partial last line)", ops);
        }

        var x = start & ~mask;
        if ((start & mask) != 0)
        {
            k.DcacheOp(LineOpKind.CleanInvalidate, x, x + line, name + " (partial first line)", ops);
            x += line;
        }
        else
        {
            // The loop is a do-while: the first (aligned) line is invalidated before end is compared.
            k.DcacheOp(LineOpKind.Invalidate, x, x + line, name, ops);
            x += line;
        }

        if (x < end)
        {
            k.DcacheOp(LineOpKind.Invalidate, x, end, name, ops);
        }
    }
}
