using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The RISC-V arch hooks of dma-direct (arch/riscv/mm/dma-noncoherent.c, v6.0..v6.1, 1631ba1259d6), all on
/// phys_to_virt(paddr) through ALT_CMO_OP (<see cref="RiscvCache"/>): arch_sync_dma_for_device cleans for DMA_TO_DEVICE
/// and DMA_FROM_DEVICE and flushes for DMA_BIDIRECTIONAL; arch_sync_dma_for_cpu does nothing for DMA_TO_DEVICE and
/// flushes (clean and invalidate) for the other two. The later tables (invalidate instead of flush after the transfer,
/// the noncoherent_cache_ops of RISCV_NONSTANDARD_CACHE_OPS) are not modelled.
/// </summary>
public static class RiscvDmaHooks
{
    /// <summary>arch_sync_dma_for_device(paddr, size, dir).</summary>
    public static void ArchSyncDmaForDevice(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        var vaddr = Linear(k, paddr, size, caller);
        var origin = $"{caller}: arch_sync_dma_for_device({dir})";
        var thead = env.RiscvTheadClean ?? THeadClean.Cva;
        if (k.Layout.Cpu == CpuKind.THeadC9xx && env.RiscvTheadClean is null)
        {
            throw new InvalidOperationException($"profile {env.Profile.Name} has no {Switches.RiscvTheadClean.Key}");
        }

        switch (dir)
        {
            case DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_FROM_DEVICE:
                RiscvCache.Clean(k, vaddr, size, thead, origin + (k.Layout.Cpu == CpuKind.THeadC9xx ? $" [{Switches.RiscvTheadClean.Key}={Switches.RiscvTheadClean.Values[(int)thead].Name}]" : ""), ops);
                break;
            case DmaDirection.DMA_BIDIRECTIONAL:
                RiscvCache.Flush(k, vaddr, size, origin, ops);
                break;
        }
    }

    /// <summary>arch_sync_dma_for_cpu(paddr, size, dir).</summary>
    public static void ArchSyncDmaForCpu(KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (dir == DmaDirection.DMA_TO_DEVICE)
        {
            return;
        }

        RiscvCache.Flush(k, Linear(k, paddr, size, caller), size, $"{caller}: arch_sync_dma_for_cpu({dir})", ops);
    }

    private static ulong Linear(KernelState k, ulong paddr, ulong size, string caller)
    {
        if (size == 0 || !k.Layout.IsRam(paddr, size))
        {
            throw new NotModelledException($"{caller}: RISC-V maintenance of PA 0x{paddr:x}+{size} outside the linear map's DRAM");
        }

        return k.Layout.PhysToVirt(paddr);
    }
}
