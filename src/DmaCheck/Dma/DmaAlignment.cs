using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The kernel's cache constants for DMA on a profile's architecture and version (arch/*/include/asm/cache.h,
/// include/linux/dma-mapping.h, mm/slab_common.c), and the minimum kmalloc alignment that follows from them.
/// </summary>
public static class DmaAlignment
{
    /// <summary>
    /// L1_CACHE_SHIFT, ARCH_DMA_MINALIGN and dma_get_cache_alignment() of <paramref name="profile"/>. arm64:
    /// L1_CACHE_SHIFT 6 and ARCH_DMA_MINALIGN 128 (arch/arm64/include/asm/cache.h, v5.x..v6.x), dma_get_cache_alignment()
    /// by the switch arm64.dma_cache_alignment. 32-bit arm: L1_CACHE_SHIFT = CONFIG_ARM_L1_CACHE_SHIFT, 6 for CPU_V7
    /// (ARM_L1_CACHE_SHIFT_6, arch/arm/mm/Kconfig), so 64 even on a Cortex-A9 with 32-byte lines, 5 on ARMv5 (the layout's
    /// <see cref="PlatformLayout.L1CacheShift"/>), and ARCH_DMA_MINALIGN =
    /// L1_CACHE_BYTES (arch/arm/include/asm/cache.h). x86_64: L1_CACHE_SHIFT 6 and no ARCH_DMA_MINALIGN, so
    /// dma_get_cache_alignment() is 1. 32-bit MIPS: L1_CACHE_SHIFT = CONFIG_MIPS_L1_CACHE_SHIFT, 5 (the Kconfig default,
    /// taken for both bundled cores; not checked per board) and ARCH_DMA_MINALIGN = L1_CACHE_BYTES. 64-bit RISC-V with
    /// RISCV_DMA_NONCOHERENT (v6.0..v6.1): L1_CACHE_SHIFT 6 and ARCH_DMA_MINALIGN = L1_CACHE_BYTES. 32-bit powerpc 8xx:
    /// L1_CACHE_SHIFT 4 (PPC_8xx) and, with NOT_COHERENT_CACHE, ARCH_DMA_MINALIGN = L1_CACHE_BYTES (16).
    /// </summary>
    public static CacheGeometry For(KernelProfile profile) => profile.Arch switch
    {
        Arch.Arm64 => new CacheGeometry(6, 128, SwitchValues.DmaCacheAlignment.Of(profile)),
        Arch.Arm32 => new CacheGeometry(profile.Layout.L1CacheShift, 1 << profile.Layout.L1CacheShift, DmaCacheAlignmentSource.ArchDmaMinalign),
        Arch.Mips32 => new CacheGeometry(5, 32, DmaCacheAlignmentSource.ArchDmaMinalign),
        Arch.RiscV64 => new CacheGeometry(6, 64, DmaCacheAlignmentSource.ArchDmaMinalign),
        Arch.Ppc32 => new CacheGeometry(4, 16, DmaCacheAlignmentSource.ArchDmaMinalign),
        _ => new CacheGeometry(6, 0, DmaCacheAlignmentSource.ArchDmaMinalign),
    };

    /// <summary>
    /// __kmalloc_minalign() (mm/slab_common.c, v6.5) and ARCH_KMALLOC_MINALIGN before it: ARCH_KMALLOC_MINALIGN (8 on
    /// arm64 since v6.5, 8 = ARCH_SLAB_MINALIGN on x86_64) once CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC has a
    /// swiotlb pool to bounce through, else dma_get_cache_alignment() on arm64 (128 before v6.5, the writeback granule
    /// since), ARCH_DMA_MINALIGN (64) on 32-bit arm, and 8 on x86_64, which defines no ARCH_DMA_MINALIGN.
    /// </summary>
    public static int KmallocMinalign(KernelProfile profile, KernelConfig config, HardwareConfig hardware)
    {
        if (config.KmallocBounce && config.SwiotlbMode(profile.Layout) != SwiotlbBoot.Off)
        {
            return 8;
        }

        var cache = config.CacheConstants;
        return profile.Arch switch
        {
            Arch.Arm64 => cache.DmaGetCacheAlignment(hardware),
            Arch.Arm32 or Arch.Mips32 or Arch.RiscV64 or Arch.Ppc32 => cache.ArchDmaMinalign, // ARCH_KMALLOC_MINALIGN = ARCH_DMA_MINALIGN
            _ => 8,
        };
    }
}
