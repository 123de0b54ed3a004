using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// Boot-time memory initialisation switches of the page allocator (mm/page_alloc.c, v5.3+):
/// init_on_alloc= and init_on_free= (defaults from CONFIG_INIT_ON_ALLOC_DEFAULT_ON / CONFIG_INIT_ON_FREE_DEFAULT_ON).
/// </summary>
/// <param name="DmaApiDebug">CONFIG_DMA_API_DEBUG and dmacheck's ownership checks (on by default: a checker should say what the option would).</param>
/// <param name="Swiotlb">The swiotlb= boot option: no pool, a pool for addresses devices cannot reach, or force bouncing; null for the layout's default.</param>
/// <param name="SwiotlbSlots">The pool's size in 2 KiB slots (swiotlb=N; IO_TLB_DEFAULT_SIZE, 64 MiB, is 32768).</param>
/// <param name="SwiotlbResidue">The writer whose bytes the pool's slots hold at boot: whoever used them last.</param>
public sealed record KernelConfig(bool InitOnAlloc = false, bool InitOnFree = false, bool DmaApiDebug = true, SwiotlbBoot? Swiotlb = null,
    int SwiotlbSlots = KernelConfig.DefaultSwiotlbSlots, string SwiotlbResidue = "old")
{
    /// <summary>IO_TLB_DEFAULT_SIZE (64 MiB) in IO_TLB_SIZE (2 KiB) slots.</summary>
    public const int DefaultSwiotlbSlots = 32768;

    /// <summary>
    /// Whether the pool exists: as asked, or by default when some DRAM lies beyond what a device with a 32-bit DMA
    /// mask reaches (arm64 mem_init: swiotlb when max_pfn is above the DMA zone's limit).
    /// </summary>
    public SwiotlbBoot SwiotlbMode(PlatformLayout layout) =>
        Swiotlb ?? (layout.PhysToDma(layout.RamEnd - 1) > Math.Min(layout.DmaLimit, 0xffff_ffffUL) ? SwiotlbBoot.On : SwiotlbBoot.Off);

    /// <summary>want_init_on_alloc(gfp): the init_on_alloc key, or __GFP_ZERO in the request.</summary>
    public bool WantInitOnAlloc(Gfp gfp) => InitOnAlloc || (gfp & Gfp.__GFP_ZERO) != 0;

    /// <summary>want_init_on_free().</summary>
    public bool WantInitOnFree() => InitOnFree;

    /// <summary>
    /// What free pages hold when the scenario starts. With init_on_free every free page was cleared through the
    /// linear map when it was freed, boot memory included (memblock_free_pages → __free_pages_core →
    /// free_pages_prepare), so the last data written is zero, possibly still dirty over the previous owner's.
    /// </summary>
    public HardwareConfig FreshPages(HardwareConfig hardware) =>
        InitOnFree ? hardware with { InitialData = WriterTable.Zero, InitialRamBehind = WriterTable.Old } : hardware;
}

/// <summary>The swiotlb= boot option.</summary>
public enum SwiotlbBoot
{
    /// <summary>No bounce pool (swiotlb=noforce, or DRAM all within reach).</summary>
    Off,

    /// <summary>A pool, used for addresses a device cannot reach (dma_capable() false).</summary>
    On,

    /// <summary>swiotlb=force: every streaming mapping bounces (io_tlb_mem.force_bounce).</summary>
    Force,
}
