using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The 32-bit powerpc data cache range operations the non-coherent DMA code calls (arch/powerpc/include/asm/cacheflush.h
/// and kernel/misc_32.S, v5.x): the start is rounded down to L1_CACHE_BYTES and one instruction is issued per line up to
/// the end, so every line the range touches is maintained whole. clean_dcache_range: dcbst (write back, keep);
/// flush_dcache_range: dcbf (write back, invalidate); invalidate_dcache_range: dcbi (invalidate, dirty data discarded).
/// </summary>
public static class PpcCache
{
    /// <summary>clean_dcache_range(start, end): dcbst on every line.</summary>
    public static void CleanDcacheRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.Clean, start, end, origin + ": clean_dcache_range (dcbst)", ops);

    /// <summary>flush_dcache_range(start, end): dcbf on every line.</summary>
    public static void FlushDcacheRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.CleanInvalidate, start, end, origin + ": flush_dcache_range (dcbf)", ops);

    /// <summary>invalidate_dcache_range(start, end): dcbi on every line, partly covered edge lines included.</summary>
    public static void InvalidateDcacheRange(KernelState k, ulong start, ulong end, string origin, List<HwOp> ops) =>
        k.DcacheOp(LineOpKind.Invalidate, start, end, origin + ": invalidate_dcache_range (dcbi)", ops);
}
