using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The values of the switch dma_debug.cacheline_overlap (Dma/Switches.cs): when kernel/dma/debug.c's add_dma_entry
/// reports an -EEXIST from active_cacheline_insert (E21).
/// </summary>
public enum CachelineOverlapReport
{
    /// <summary>Counted, never reported (before 2b4bbc6231d7, v5.14).</summary>
    Silent,

    /// <summary>Always reported (2b4bbc6231d7, v5.14).</summary>
    Report,

    /// <summary>Not for DMA_ATTR_SKIP_CPU_SYNC (c2bbf9d1e9ac, v5.15).</summary>
    SkipCpuSync,

    /// <summary>Nor with CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC and a swiotlb pool (03521c892bb8, late 2025).</summary>
    KmallocBounce,

    /// <summary>Nor when dma_get_cache_alignment() is below L1_CACHE_BYTES (3d48c9fd78dd, 2026).</summary>
    CacheAlignment,
}

/// <summary>
/// Boot-time memory initialisation switches of the page allocator (mm/page_alloc.c, v5.3+):
/// init_on_alloc= and init_on_free= (defaults from CONFIG_INIT_ON_ALLOC_DEFAULT_ON / CONFIG_INIT_ON_FREE_DEFAULT_ON).
/// </summary>
/// <param name="DmaApiDebug">CONFIG_DMA_API_DEBUG and dmacheck's ownership checks (on by default: a checker should say what the option would).</param>
/// <param name="Swiotlb">The swiotlb= boot option: no pool, a pool for addresses devices cannot reach, or force bouncing; null for the layout's default.</param>
/// <param name="SwiotlbSlots">The pool's size in 2 KiB slots (swiotlb=N; IO_TLB_DEFAULT_SIZE, 64 MiB, is 32768).</param>
/// <param name="SwiotlbResidue">The writer whose bytes the pool's slots hold when the scenario starts: zero after boot (swiotlb_init_io_tlb_mem clears the pool), or the data of whoever bounced through them since.</param>
/// <param name="KmallocMinalign">__kmalloc_minalign(): the smallest kmalloc object alignment (ARCH_DMA_MINALIGN, 128, on arm64 before v6.5; ARCH_KMALLOC_MINALIGN, 8, with a swiotlb pool since).</param>
/// <param name="KmallocBounce">CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC (arm64 v6.5+): dma-direct bounces small non-coherent mappings (dma_kmalloc_needs_bounce), and boot makes a pool for it.</param>
/// <param name="DebugUnbindAtEnd">The driver is unbound when the scenario ends, so dma-debug reports what it leaked (E22).</param>
/// <param name="DebugAssertIdle">debug_dma_assert_idle() as before v5.9 (E23, optional): a CPU access to the first cache line of a live mapping that is not DMA_TO_DEVICE.</param>
/// <param name="DebugSg">CONFIG_DMA_API_DEBUG_SG: debug_dma_map_sg also runs check_sg_segment on every element (E19, E20). Off by default, as in the kernel's Kconfig.</param>
/// <param name="DebugCachelineOverlap">When add_dma_entry reports an overlapping active cache line (E21): the switch dma_debug.cacheline_overlap, by kernel version.</param>
/// <param name="Cache">The kernel's cache constants for DMA (L1_CACHE_SHIFT, ARCH_DMA_MINALIGN, dma_get_cache_alignment()), set per profile by the binder; null for the default geometry (L1_CACHE_SHIFT 6, ARCH_DMA_MINALIGN 128, dma_get_cache_alignment() the hardware's writeback granule), which a KernelConfig built by hand gets.</param>
/// <param name="IommuPassthrough">iommu.passthrough=1: devices behind an IOMMU get identity domains (the SMMU bypasses, dma-direct maps).</param>
/// <param name="IommuStrict">iommu.strict: 1 (arm64's default, CONFIG_IOMMU_DEFAULT_DMA_STRICT) invalidates at every unmap; 0 defers it to the flush queue (IOMMU_DOMAIN_DMA_FQ).</param>
/// <param name="IommuGranule">The IOMMU page size iommu-dma's domains use (the smallest of the SMMU's page sizes the driver picks).</param>
/// <param name="CmaBytes">The cma= boot option: the size of the default CMA area that dma_alloc_contiguous serves multi-page coherent buffers from; 0 (cma=0) for none, as the bundled layouts boot.</param>
public sealed record KernelConfig(bool InitOnAlloc = false, bool InitOnFree = false, bool DmaApiDebug = true, SwiotlbBoot? Swiotlb = null,
    int? SwiotlbSlots = null, string SwiotlbResidue = "zero", int KmallocMinalign = 128, bool KmallocBounce = false,
    bool DebugUnbindAtEnd = false, bool DebugAssertIdle = false, ulong CmaBytes = 0, bool DebugSg = false, CachelineOverlapReport DebugCachelineOverlap = CachelineOverlapReport.SkipCpuSync,
    CacheGeometry? Cache = null, bool IommuPassthrough = false, bool IommuStrict = true, ulong IommuGranule = 4096)
{
    /// <summary>The kernel's cache constants: <see cref="Cache"/>, or the default geometry.</summary>
    public CacheGeometry CacheConstants => Cache ?? DefaultCache;

    /// <summary>The DT reserved-memory nodes the scenario declares (<see cref="ReservedMemory"/>), in file order.</summary>
    public System.Collections.Immutable.ImmutableArray<ReservedMemorySpec> ReservedMemory { get; init; } = [];

    private static CacheGeometry DefaultCache { get; } = new();

    /// <summary>
    /// The pool's size in slots: as set, or IO_TLB_DEFAULT_SIZE, or with DMA_BOUNCE_UNALIGNED_KMALLOC 1 MiB per GiB of
    /// DRAM (arm64 mem_init, v6.5: swiotlb_adjust_size(min(default, DIV_ROUND_UP(memory, 1024)))), in whole segments.
    /// </summary>
    public int SwiotlbSlotCount(PlatformLayout layout)
    {
        if (SwiotlbSlots is { } slots)
        {
            return slots;
        }

        // arm64 mem_init shrinks the pool only when nothing else needs it (DRAM all within the DMA zone).
        if (!KmallocBounce || layout.PhysToDma(layout.RamEnd - 1) > Math.Min(layout.DmaLimit, 0xffff_ffffUL))
        {
            return DefaultSwiotlbSlots;
        }

        var ram = layout.Banks.Aggregate(0UL, (sum, b) => sum + (b.End - b.Base));
        var wanted = (int)Math.Min(DefaultSwiotlbSlots, (ram / 1024 + 2047) / 2048);
        return Math.Max(128, (wanted + 127) / 128 * 128);
    }

    /// <summary>IO_TLB_DEFAULT_SIZE (64 MiB) in IO_TLB_SIZE (2 KiB) slots.</summary>
    public const int DefaultSwiotlbSlots = 32768;

    /// <summary>
    /// Whether the pool exists: as asked, or by default when some DRAM lies beyond what a device with a 32-bit DMA
    /// mask reaches (arm64 mem_init: swiotlb when max_pfn is above the DMA zone's limit).
    /// </summary>
    public SwiotlbBoot SwiotlbMode(PlatformLayout layout) =>
        Swiotlb ?? (KmallocBounce || layout.PhysToDma(layout.RamEnd - 1) > Math.Min(layout.DmaLimit, 0xffff_ffffUL) ? SwiotlbBoot.On : SwiotlbBoot.Off);

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
