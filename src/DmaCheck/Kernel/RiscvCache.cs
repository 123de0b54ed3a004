using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>What a T-Head core's THEAD_clean_A0 is (arch/riscv/include/asm/errata_list.h).</summary>
public enum THeadClean
{
    /// <summary>0x0245000b, which is dcache.cval1: clean to L1's next level only (the encoding used until 8eb8fe67e2c8).</summary>
    Cval1,

    /// <summary>0x0255000b, dcache.cva: clean by VA through every level to memory (8eb8fe67e2c8, v6.6-rc2).</summary>
    Cva,
}

/// <summary>
/// ALT_CMO_OP(op, start, size, riscv_cbom_block_size) (arch/riscv/include/asm/errata_list.h, v6.0..v6.6): a loop over
/// the blocks from start rounded down to the block size up to start + size, one instruction per block, patched at boot
/// by the alternatives: on a Zicbom hart cbo.clean / cbo.inval / cbo.flush (to the point of coherency: every level); on a
/// T-Head C9xx (ERRATA_THEAD_CMO) the vendor's THEAD_clean_A0 / THEAD_inval_A0 (dcache.iva) / THEAD_flush_A0
/// (dcache.civa) by VA, followed by THEAD_SYNC_S (sync.s), which the model needs no step for.
/// </summary>
public static class RiscvCache
{
    /// <summary>ALT_CMO_OP(clean, vaddr, size): cbo.clean, or the T-Head clean of <paramref name="thead"/>.</summary>
    public static void Clean(KernelState k, ulong vaddr, ulong size, THeadClean thead, string origin, List<HwOp> ops)
    {
        if (k.Layout.Cpu == CpuKind.THeadC9xx && thead == THeadClean.Cval1)
        {
            // dcache.cval1: the L1 line is cleaned into L2, which keeps it dirty; memory is not written.
            Op(k, LineOpKind.Clean, vaddr, size, origin + ": ALT_CMO_OP(clean) → THEAD_clean_A0 = dcache.cval1 (L1 only)", ops);
            return;
        }

        Op(k, LineOpKind.CleanAllLevels, vaddr, size, origin + (k.Layout.Cpu == CpuKind.THeadC9xx ? ": ALT_CMO_OP(clean) → THEAD_clean_A0 = dcache.cva" : ": ALT_CMO_OP(clean) → cbo.clean"), ops);
    }

    /// <summary>ALT_CMO_OP(inval, vaddr, size): cbo.inval, or dcache.iva on a T-Head core.</summary>
    public static void Inval(KernelState k, ulong vaddr, ulong size, string origin, List<HwOp> ops) =>
        Op(k, LineOpKind.InvalidateAllLevels, vaddr, size, origin + (k.Layout.Cpu == CpuKind.THeadC9xx ? ": ALT_CMO_OP(inval) → THEAD_inval_A0 = dcache.iva" : ": ALT_CMO_OP(inval) → cbo.inval"), ops);

    /// <summary>ALT_CMO_OP(flush, vaddr, size): cbo.flush, or dcache.civa on a T-Head core.</summary>
    public static void Flush(KernelState k, ulong vaddr, ulong size, string origin, List<HwOp> ops) =>
        Op(k, LineOpKind.CleanInvalidateAllLevels, vaddr, size, origin + (k.Layout.Cpu == CpuKind.THeadC9xx ? ": ALT_CMO_OP(flush) → THEAD_flush_A0 = dcache.civa" : ": ALT_CMO_OP(flush) → cbo.flush"), ops);

    private static void Op(KernelState k, LineOpKind kind, ulong vaddr, ulong size, string origin, List<HwOp> ops)
    {
        var block = (ulong)k.Layout.CbomBlockSize;
        if (block == 0 || block % (ulong)k.Hardware.LineSize != 0)
        {
            throw new NotModelledException($"{origin}: riscv,cbom-block-size {block} against the modelled {k.Hardware.LineSize}-byte line");
        }

        var start = vaddr & ~(block - 1);
        var end = vaddr + size;
        k.DcacheOp(kind, start, end, origin, ops);
    }
}
