using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>Where the kernel's dma_get_cache_alignment() gets its answer.</summary>
public enum DmaCacheAlignmentSource
{
    /// <summary>
    /// include/linux/dma-mapping.h: ARCH_DMA_MINALIGN when the architecture defines it, else 1 (every architecture
    /// until v6.5; 32-bit arm and x86_64 still). A compile-time constant, whatever the hardware's lines.
    /// </summary>
    ArchDmaMinalign,

    /// <summary>
    /// arm64 since 9382bc44b5f5 (v6.5): dma_get_cache_alignment is cache_line_size(), which (without a DT or ACPI
    /// cache description) is cache_line_size_of_cpu(): 4 &lt;&lt; CTR_EL0.CWG, the writeback granule of the running CPU.
    /// </summary>
    CacheLineSize,
}

/// <summary>
/// The kernel's cache constants for DMA, which are not the hardware's lines (arch/*/include/asm/cache.h):
/// L1_CACHE_SHIFT (what dma-debug's active-cacheline tracking keys on), ARCH_DMA_MINALIGN (the static alignment that
/// keeps a DMA buffer out of other data's cache lines) and where dma_get_cache_alignment() comes from.
/// </summary>
/// <param name="L1CacheShift">L1_CACHE_SHIFT: 6 on arm64 (arch/arm64/include/asm/cache.h), on 32-bit arm with CPU_V7 (CONFIG_ARM_L1_CACHE_SHIFT_6, arch/arm/mm/Kconfig) and on x86_64 (CONFIG_X86_L1_CACHE_SHIFT for generic x86_64).</param>
/// <param name="ArchDmaMinalign">ARCH_DMA_MINALIGN in bytes: 128 on arm64, L1_CACHE_BYTES (64) on 32-bit arm; 0 where the architecture does not define it (x86_64).</param>
/// <param name="DmaCacheAlignment">Where dma_get_cache_alignment() comes from.</param>
public sealed record CacheGeometry(int L1CacheShift = 6, int ArchDmaMinalign = 128, DmaCacheAlignmentSource DmaCacheAlignment = DmaCacheAlignmentSource.CacheLineSize)
{
    /// <summary>L1_CACHE_BYTES.</summary>
    public int L1CacheBytes => 1 << L1CacheShift;

    /// <summary>
    /// dma_get_cache_alignment(): ARCH_DMA_MINALIGN (1 where it is not defined), or on arm64 since v6.5
    /// cache_line_size() = cache_line_size_of_cpu() = the hardware's writeback granule (<see cref="HardwareConfig.Cwg"/>).
    /// The coherency_max_size a DT or ACPI cache description may give cache_line_size() instead is not modelled.
    /// </summary>
    public int DmaGetCacheAlignment(HardwareConfig hardware) => DmaCacheAlignment switch
    {
        DmaCacheAlignmentSource.CacheLineSize => hardware.Cwg,
        _ => ArchDmaMinalign == 0 ? 1 : ArchDmaMinalign,
    };

    /// <summary>
    /// The granule of the DMA-API rule "a streaming buffer the device may write must not share a cache line with data the
    /// CPU writes" (Documentation/core-api/dma-api-howto.rst): what the kernel aligns DMA buffers to,
    /// dma_get_cache_alignment(), or the hardware's writeback granule where that is larger (the hazard is physical).
    /// </summary>
    public int SharingGranule(HardwareConfig hardware) => Math.Max(DmaGetCacheAlignment(hardware), hardware.Cwg);
}
