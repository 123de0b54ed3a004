using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// Boot-time memory initialisation switches of the page allocator (mm/page_alloc.c, v5.3+):
/// init_on_alloc= and init_on_free= (defaults from CONFIG_INIT_ON_ALLOC_DEFAULT_ON / CONFIG_INIT_ON_FREE_DEFAULT_ON).
/// </summary>
/// <param name="DmaApiDebug">CONFIG_DMA_API_DEBUG and dmacheck's ownership checks (on by default: a checker should say what the option would).</param>
public sealed record KernelConfig(bool InitOnAlloc = false, bool InitOnFree = false, bool DmaApiDebug = true)
{
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
