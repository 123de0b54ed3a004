using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>The kernel architecture whose address arithmetic a layout follows.</summary>
public enum Arch
{
    /// <summary>arm64 with SPARSEMEM_VMEMMAP and !CONFIG_DEBUG_VIRTUAL (arch/arm64/include/asm/memory.h).</summary>
    Arm64,

    /// <summary>32-bit arm with FLATMEM and a 3G/1G split (arch/arm/include/asm/memory.h).</summary>
    Arm32,

    /// <summary>x86_64 with 4-level paging, SPARSEMEM_VMEMMAP and no KASLR (Documentation/x86/x86_64/mm.rst). DMA is cache-coherent.</summary>
    X86_64,

    /// <summary>
    /// 32-bit MIPS (arch/mips/include/asm/addrspace.h, mach-generic/spaces.h): lowmem is KSEG0, the cached unmapped
    /// window at PAGE_OFFSET 0x80000000 onto the first 512 MiB of PA; KSEG1 (UNCAC_BASE 0xa0000000) is the uncached
    /// window onto the same memory; vmalloc from KSEG2 (VMALLOC_START = MAP_BASE 0xc0000000). Non-coherent DMA through
    /// arch/mips/mm/dma-noncoherent.c.
    /// </summary>
    Mips32,

    /// <summary>
    /// 64-bit RISC-V with Sv39 (Documentation/riscv/vm-layout.rst, v5.17+): the linear map at PAGE_OFFSET
    /// 0xffffffd800000000 from the start of DRAM, vmalloc 0xffffffc800000000..0xffffffd800000000, vmemmap at
    /// 0xffffffc700000000. Non-coherent DMA through arch/riscv/mm/dma-noncoherent.c.
    /// </summary>
    RiscV64,

    /// <summary>
    /// 32-bit powerpc with a non-coherent cache (CONFIG_NOT_COHERENT_CACHE: 8xx, 4xx): lowmem at PAGE_OFFSET 0xc0000000
    /// from PA 0, FLATMEM; DMA maintenance through arch/powerpc/mm/dma-noncoherent.c.
    /// </summary>
    Ppc32,
}

/// <summary>
/// The CPU core of a board, where the kernel's cache maintenance or its choice of maintenance depends on it (MIPS
/// boot_cpu_type() in cpu_needs_post_dma_flush; the RISC-V alternatives that patch ALT_CMO_OP for a T-Head core).
/// </summary>
public enum CpuKind
{
    /// <summary>Nothing the DMA code asks about (every Arm and x86_64 layout).</summary>
    Generic,

    /// <summary>MIPS32 24Kc (CPU_24K): in-order, no MAARs, no speculative or prefetch fills.</summary>
    Mips24K,

    /// <summary>Broadcom BMIPS5000 ("Zephyr", CPU_BMIPS5000): speculates, and may prefetch lines into its L2 at any time.</summary>
    Bmips5000,

    /// <summary>A RISC-V hart with the Zicbom extension (cbo.clean, cbo.inval, cbo.flush on riscv,cbom-block-size blocks).</summary>
    RiscVZicbom,

    /// <summary>
    /// A T-Head C9xx hart (ERRATA_THEAD_CMO: vendor id THEAD, arch and imp id 0): no Zicbom; ALT_CMO_OP is patched to the
    /// vendor's dcache.* instructions by VA (arch/riscv/include/asm/errata_list.h).
    /// </summary>
    THeadC9xx,

    /// <summary>A Freescale MPC8xx (PowerQUICC I) core: 16-byte data cache lines (L1_CACHE_SHIFT 4), no DMA coherence.</summary>
    Mpc8xx,
}

/// <summary>One range of DRAM, as a /memory node's reg entry describes it.</summary>
public sealed record MemoryBank(ulong Base, ulong Size)
{
    public ulong End => Base + Size;

    public bool Contains(ulong pa) => pa >= Base && pa - Base < Size;
}

/// <summary>
/// The kernel's view of physical and virtual memory on one board under one kernel version: the address arithmetic of
/// <c>virt_to_phys</c>, <c>virt_to_page</c>, <c>page_to_pfn</c>, <c>pfn_valid</c>, <c>page_address</c> and
/// <c>is_vmalloc_addr</c>, computed as the kernel computes it, wrong answers included: none of these checks that an
/// address is really in the linear map, and neither does the kernel.
/// </summary>
/// <param name="PageOffset">PAGE_OFFSET: the VA of the start of the linear map.</param>
/// <param name="PhysOffset">PHYS_OFFSET: memstart_addr on arm64, the start of RAM on arm32.</param>
/// <param name="Banks">DRAM.</param>
/// <param name="LowmemLimit">The first PA the linear map does not cover: arm_lowmem_limit on arm32 (the rest is highmem), the end of DRAM on arm64.</param>
/// <param name="VmallocStart">VMALLOC_START.</param>
/// <param name="VmallocEnd">VMALLOC_END.</param>
/// <param name="StructPageBase">Where struct page of pfn 0 would sit: vmemmap on arm64, mem_map - ARCH_PFN_OFFSET on arm32 (for display).</param>
/// <param name="StructPageSize">sizeof(struct page): 64 on arm64, 32 on arm32.</param>
/// <param name="DmaOffset">What the bus adds to a PA (dma-ranges): phys_to_dma(pa) = pa + offset.</param>
/// <param name="DmaLimit">The highest bus address the devices' bus carries (bus_dma_limit), or ulong.MaxValue.</param>
/// <param name="FirstFreePfn">The first page frame the page allocator hands out; frames from the start of RAM below it hold the kernel image.</param>
/// <param name="UserBase">Where this model places user-space mappings (an mmap address in the process).</param>
/// <param name="UserEnd">The end of the range this model uses for user-space mappings (below TASK_SIZE).</param>
/// <param name="PkmapBase">PKMAP_BASE on arm32 (kmap of highmem pages); unused on arm64.</param>
public sealed record PlatformLayout(
    string Name,
    Arch Arch,
    string Description,
    ulong PageOffset,
    ulong PhysOffset,
    ImmutableArray<MemoryBank> Banks,
    ulong LowmemLimit,
    ulong VmallocStart,
    ulong VmallocEnd,
    ulong StructPageBase,
    ulong StructPageSize,
    ulong DmaOffset,
    ulong DmaLimit,
    ulong FirstFreePfn,
    ulong UserBase,
    ulong UserEnd,
    ulong PkmapBase = 0)
{
    public const int PageShift = 12;
    public const ulong PageSize = 1UL << PageShift;

    /// <summary>
    /// The board has an outer (L2) cache controller that the kernel maintains through outer_cache (arm32's PL310 /
    /// L2C-310); it sets <see cref="Hardware.HardwareConfig.OuterCache"/> for scenarios on this layout.
    /// </summary>
    public bool OuterCache { get; init; }

    /// <summary>
    /// The board's L1 data cache line in bytes, the default of <c>set cache.line</c>: 64 for the Cortex-A53/A57/A72 and
    /// x86_64 boards, 32 for the i.MX6's Cortex-A9 (Cortex-A9 TRM: 32-byte data cache lines).
    /// </summary>
    public int L1LineSize { get; init; } = 64;

    /// <summary>
    /// The line of the board's outer cache when it has one of its own size, the default of <c>set cache.outer_line</c>;
    /// 0 for none. The i.MX6's PL310 has 32-byte lines (L2C-310 TRM; arch/arm/mm/cache-l2x0.c, CACHE_LINE_SIZE 32).
    /// </summary>
    public int OuterLineSize { get; init; }

    /// <summary>
    /// The CPU fills lines on its own (speculation, prefetch), the default of <see cref="Hardware.HardwareConfig.SpeculativeFill"/>:
    /// true for every core modelled except the in-order MIPS 24Kc.
    /// </summary>
    public bool SpeculativeFill { get; init; } = true;

    /// <summary>The CPU core, where the kernel's DMA maintenance depends on it.</summary>
    public CpuKind Cpu { get; init; }

    /// <summary>riscv_cbom_block_size (the DT's riscv,cbom-block-size, read by riscv_init_cbo_blocksizes), on RISC-V layouts; 0 elsewhere.</summary>
    public int CbomBlockSize { get; init; }

    /// <summary>Whether virtual addresses are 32 bits wide (unsigned long arithmetic wraps at 2^32).</summary>
    public bool Is32Bit => Arch is Arch.Arm32 or Arch.Mips32 or Arch.Ppc32;

    /// <summary>arm64 PAGE_OFFSET for VA_BITS=48 since v5.4 (14c127c957c1 flipped the kernel VA space): -(1 &lt;&lt; 48).</summary>
    public const ulong Arm64PageOffsetVa48 = 0xffff_0000_0000_0000;

    /// <summary>arm64 PAGE_END for VA_BITS_MIN=48: -(1 &lt;&lt; 47); the linear map is [PAGE_OFFSET, PAGE_END).</summary>
    public const ulong Arm64PageEndVa48 = 0xffff_8000_0000_0000;

    /// <summary>arm32 PAGE_OFFSET with CONFIG_VMSPLIT_3G.</summary>
    public const ulong Arm32PageOffset3G = 0xc000_0000;

    /// <summary>arm32 VMALLOC_END (arch/arm/include/asm/pgtable.h).</summary>
    public const ulong Arm32VmallocEnd = 0xff80_0000;

    /// <summary>arm32 VMALLOC_OFFSET: the 8 MiB gap between high_memory and VMALLOC_START.</summary>
    public const ulong Arm32VmallocOffset = 8UL << 20;

    /// <summary>
    /// arm64 vmemmap base for VA_BITS=48 with 4 KiB pages and a 64-byte struct page (v5.11+: VMEMMAP_START =
    /// -(1 &lt;&lt; (VA_BITS - VMEMMAP_SHIFT)) with VMEMMAP_SHIFT = PAGE_SHIFT - STRUCT_PAGE_MAX_SHIFT = 6).
    /// </summary>
    public const ulong Arm64VmemmapStartVa48 = 0xffff_fc00_0000_0000;

    /// <summary>
    /// arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000 (as on sc7180-class Qualcomm boards), no
    /// KASAN and no KASLR of the linear map. VMALLOC_START = MODULES_END with the 128 MiB module region of
    /// v5.17..v6.4 (b89ddf4cca43, v5.17-rc1, removed the BPF JIT region below it; v6.5's 3e35d303ab7d grows the module
    /// region to 2 GiB: <see cref="Arm64Va48V65"/>); VMALLOC_END = VMEMMAP_START - SZ_256M.
    /// </summary>
    public static PlatformLayout Arm64Va48 { get; } = Arm64(
        "arm64-va48-4k",
        "arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000, no DMA offset; vmalloc from MODULES_END (v5.17..v6.4)",
        [new MemoryBank(0x8000_0000, 1UL << 30)],
        vmallocStart: 0xffff_8000_0800_0000,
        dmaOffset: 0,
        dmaLimit: ulong.MaxValue);

    /// <summary>
    /// The same board under arm64 v6.5+: 3e35d303ab7d 'arm64: module: rework module VA range selection' (v6.5) makes
    /// MODULES_VSIZE 2 GiB, so VMALLOC_START = MODULES_END = 0xffff800080000000; VMALLOC_END and VMEMMAP_START as before.
    /// </summary>
    public static PlatformLayout Arm64Va48V65 { get; } = Arm64(
        "arm64-va48-4k-v6.5",
        "arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000, no DMA offset; vmalloc from MODULES_END above the 2 GiB module region (v6.5+)",
        [new MemoryBank(0x8000_0000, 1UL << 30)],
        vmallocStart: 0xffff_8000_8000_0000,
        dmaOffset: 0,
        dmaLimit: ulong.MaxValue);

    /// <summary>arm64 VMEMMAP_START for VA_BITS=48 in v5.4..v5.10: -VMEMMAP_SIZE - SZ_2M with VMEMMAP_SIZE = 2^47 &gt;&gt; 6.</summary>
    public const ulong Arm64VmemmapStartVa48V510 = 0xffff_fdff_ffe0_0000;

    /// <summary>
    /// The same board under an arm64 kernel of v5.4..v5.10: VMALLOC_START = MODULES_END = 0xffff800010000000, above
    /// the 128 MiB BPF JIT region and the 128 MiB module region that sit at PAGE_END; VMALLOC_END = -PUD_SIZE -
    /// VMEMMAP_SIZE - SZ_64K; VMEMMAP_START = -VMEMMAP_SIZE - SZ_2M (arch/arm64/include/asm/memory.h, pgtable.h v5.10).
    /// </summary>
    public static PlatformLayout Arm64Va48V5 { get; } = Arm64(
        "arm64-va48-4k-v5.10",
        "arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000, no DMA offset; v5.4..v5.10 kernel layout (vmalloc from MODULES_END above the BPF JIT region, vmemmap at 0xfffffdffffe00000)",
        [new MemoryBank(0x8000_0000, 1UL << 30)],
        vmallocStart: 0xffff_8000_1000_0000,
        dmaOffset: 0,
        dmaLimit: ulong.MaxValue,
        vmemmapStart: Arm64VmemmapStartVa48V510,
        vmallocEnd: 0xffff_fdff_bfff_0000);

    /// <summary>
    /// The 1 GiB board of <see cref="Arm64Va48"/> under an arm64 kernel of v5.11..v5.16: VMALLOC_START = MODULES_END =
    /// 0xffff800010000000 (the 128 MiB BPF JIT region and the 128 MiB module region above PAGE_END, until b89ddf4cca43
    /// in v5.17-rc1), with the v5.11+ VMEMMAP_START and VMALLOC_END = VMEMMAP_START - SZ_256M.
    /// </summary>
    public static PlatformLayout Arm64Va48V511 { get; } = Arm64(
        "arm64-va48-4k-v5.11",
        "arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000, no DMA offset; v5.11..v5.16 kernel layout (vmalloc from MODULES_END above the BPF JIT region, v5.11+ vmemmap)",
        [new MemoryBank(0x8000_0000, 1UL << 30)],
        vmallocStart: 0xffff_8000_1000_0000,
        dmaOffset: 0,
        dmaLimit: ulong.MaxValue);

    /// <summary>
    /// A Raspberry Pi 4-like board under an arm64 kernel of v5.11..v5.14 (the vmemmap formulas of v5.11+), booted with
    /// cma=0 so that no CMA area exists (with one, multi-page coherent buffers come from CMA, still remapped): DRAM at PA 0 in two banks around the
    /// firmware's GPU carve-out (0x3b400000..0x40000000), up to 0xfc000000 (the 4 GiB model, peripherals above);
    /// the legacy DMA masters see the first GiB at bus address 0xc0000000 (dma-ranges = &lt;0xc0000000 0x0 0x0
    /// 0x40000000&gt;), so phys_to_dma adds 0xc0000000 and they reach only PA &lt; 1 GiB. VMALLOC_START = MODULES_END
    /// = 0xffff800010000000: the 128 MiB BPF JIT region then the 128 MiB module region sit above PAGE_END
    /// (the BPF JIT region is there until b89ddf4cca43, v5.17-rc1); VMEMMAP_START = -(1 &lt;&lt; (VA_BITS - VMEMMAP_SHIFT))
    /// and VMALLOC_END = VMEMMAP_START - SZ_256M (v5.11+). See docs/kernel-checks-seed2.md for what was checked.
    /// </summary>
    public static PlatformLayout Arm64Rpi4 { get; } = Arm64(
        "arm64-va48-rpi4",
        "Raspberry Pi 4 (4 GiB) under arm64 v5.11+, VA_BITS=48, 4 KiB pages, booted with cma=0: DRAM at PA 0 with the firmware carve-out at 0x3b400000..0x40000000 outside Linux's memory; DMA address = PA + 0xc0000000 for the first GiB",
        [new MemoryBank(0, 0x3b40_0000), new MemoryBank(0x4000_0000, 0xbc00_0000)],
        vmallocStart: 0xffff_8000_1000_0000,
        dmaOffset: 0xc000_0000,
        dmaLimit: 0xffff_ffff);

    /// <summary>
    /// The same Raspberry Pi 4-like board under a 32-bit arm kernel with LPAE and the 3G/1G split (bcm2711_defconfig),
    /// booted with cma=0: without a CMA area __dma_alloc uses its remap and pool allocators, the vmap paths of the
    /// thread (with the default CMA area, lowmem buffers come back as linear-map addresses and the bug does not show):
    /// PAGE_OFFSET 0xc0000000, PHYS_OFFSET 0. With the default vmalloc area (vmalloc_min = VMALLOC_END - 240 MiB -
    /// VMALLOC_OFFSET = 0xf0000000) lowmem is the first 768 MiB of RAM, high_memory = 0xf0000000, VMALLOC_START =
    /// 0xf0800000 and everything above PA 0x30000000 is highmem. FLATMEM: mem_map covers every pfn up to max_pfn.
    /// </summary>
    public static PlatformLayout Arm32Rpi4 { get; } = Arm32(
        "arm32-lpae-rpi4",
        "Raspberry Pi 4 (4 GiB) under 32-bit arm, LPAE, VMSPLIT_3G, booted with cma=0: lowmem = PA 0..0x30000000 at VA 0xc0000000, highmem above, vmalloc 0xf0800000..0xff800000; DMA address = PA + 0xc0000000 for the first GiB",
        [new MemoryBank(0, 0x3b40_0000), new MemoryBank(0x4000_0000, 0xbc00_0000)],
        dmaOffset: 0xc000_0000,
        dmaLimit: 0xffff_ffff);

    /// <summary>
    /// An i.MX6Quad-like board under a 32-bit arm kernel without LPAE (imx_v6_v7_defconfig), booted with cma=0: 1 GiB of
    /// DRAM at PA 0x10000000, PAGE_OFFSET 0xc0000000, PHYS_OFFSET 0x10000000, so lowmem is PA 0x10000000..0x40000000
    /// and the top 256 MiB is highmem. Devices get arm_dma_ops / arm_coherent_dma_ops, not dma-direct. The Cortex-A9 cluster
    /// sits above an Arm L2C-310 (PL310) outer cache (imx6qdl.dtsi: "arm,pl310-cache"), which l2x0_of_init installs as
    /// outer_cache at boot; the DMA masters reach DDR around it (no ACP). Both levels have 32-byte lines (Cortex-A9 L1
    /// data cache; the PL310's CACHE_LINE_SIZE in arch/arm/mm/cache-l2x0.c), while the kernel's L1_CACHE_BYTES and
    /// ARCH_DMA_MINALIGN are 64 (CONFIG_ARM_L1_CACHE_SHIFT_6 for CPU_V7).
    /// </summary>
    public static PlatformLayout Arm32Imx6 { get; } = Arm32(
        "arm32-imx6q-1g",
        "i.MX6Quad-like board under 32-bit arm without LPAE, VMSPLIT_3G, booted with cma=0: 1 GiB at PA 0x10000000, lowmem up to PA 0x40000000 at VA 0xc0000000, highmem above, vmalloc 0xf0800000..0xff800000; no DMA offset; an L2C-310 (PL310) outer cache that the DMA masters bypass",
        [new MemoryBank(0x1000_0000, 1UL << 30)],
        dmaOffset: 0,
        dmaLimit: 0xffff_ffff,
        outerCache: true,
        l1LineSize: 32,
        outerLineSize: 32);

    /// <summary>x86_64 direct map base with 4-level paging and no KASLR (page_offset_base).</summary>
    public const ulong X86PageOffset = 0xffff_8880_0000_0000;

    /// <summary>
    /// A PC under x86_64 with 4-level paging and no KASLR: page_offset_base 0xffff888000000000 (a 64 TiB direct map),
    /// vmalloc_base 0xffffc90000000000 (32 TiB), vmemmap_base 0xffffea0000000000, PHYS_OFFSET 0; 4 GiB of DRAM from
    /// 1 MiB (the first MiB is the BIOS's) with the PCI hole at 3..4 GiB, so the last GiB is above 4 GiB. The kernel
    /// is loaded at 16 MiB (CONFIG_PHYSICAL_START) and the allocator starts above it. No DMA offset. This model's page
    /// allocator hands out memory bottom-up, so GFP_KERNEL pages come from below 4 GiB first, where Linux would prefer
    /// ZONE_NORMAL above it: scenarios that care where a buffer lands should say so (a tenant filling low memory).
    /// </summary>
    public static PlatformLayout X86_64Pc { get; } = new(
        "x86_64-4level-pc",
        Arch.X86_64,
        "x86_64 PC, 4-level paging, no KASLR: direct map at 0xffff888000000000, vmalloc from 0xffffc90000000000, vmemmap at 0xffffea0000000000; 4 GiB of DRAM with the PCI hole at 3..4 GiB; DMA is cache-coherent",
        PageOffset: X86PageOffset,
        PhysOffset: 0,
        Banks: [new MemoryBank(0x10_0000, 0xc000_0000 - 0x10_0000), new MemoryBank(0x1_0000_0000, 0x4000_0000)],
        LowmemLimit: 0x1_4000_0000,
        VmallocStart: 0xffff_c900_0000_0000,
        VmallocEnd: 0xffff_e900_0000_0000,
        StructPageBase: 0xffff_ea00_0000_0000,
        StructPageSize: 64,
        DmaOffset: 0,
        DmaLimit: ulong.MaxValue,
        FirstFreePfn: 0x3000,
        UserBase: 0x0000_0010_0000_0000,
        UserEnd: 0x0000_7fff_0000_0000);

    /// <summary>
    /// The same board with <paramref name="bytes"/> of DRAM in its one bank (the <c>dram</c> setting), for arm64 layouts
    /// of one bank, whose linear map simply grows; null, with the reason, for any other layout (their banks, holes and
    /// lowmem limits are the board's own).
    /// </summary>
    public PlatformLayout? WithDram(ulong bytes, out string? why)
    {
        why = null;
        if (Arch != Arch.Arm64 || Banks.Length != 1)
        {
            why = $"dram can be set on arm64 layouts with one DRAM bank only; layout {Name} is {Arch} with {Banks.Length} bank(s)";
            return null;
        }

        var bank = Banks[0] with { Size = bytes };
        if (bank.Base + (16UL << 20) >= bank.End)
        {
            why = $"dram {bytes >> 20}M leaves no memory above the kernel image in layout {Name}";
            return null;
        }

        return this with
        {
            Banks = [bank],
            LowmemLimit = bank.End,
            Description = Description + $"; the board's DRAM set to {bytes >> 20} MiB (PA 0x{bank.Base:x}..0x{bank.End:x})",
        };
    }

    /// <summary>MIPS KSEG0 base, PAGE_OFFSET on 32-bit MIPS (CAC_BASE in mach-generic/spaces.h).</summary>
    public const ulong Mips32PageOffset = 0x8000_0000;

    /// <summary>
    /// A MIPS Malta board with a 24Kc core under a 32-bit kernel (malta_defconfig-like, no highmem): 256 MiB of DRAM at
    /// PA 0, all of it in KSEG0 at 0x80000000; vmalloc from KSEG2 (MAP_BASE 0xc0000000) up to below the fixmap (VMALLOC_END = FIXADDR_START - 2 pages; 0xfe000000 is taken here, FIXADDR_SIZE not being pinned down, and only vmalloc placement uses it); no DMA offset;
    /// FLATMEM with mem_map in lowmem. The 24Kc's L1 data cache has 32-byte lines (Config1.DL), it executes in order
    /// and has neither a prefetcher nor MAARs, so it never fills a line on its own (<see cref="SpeculativeFill"/> false).
    /// Its VIPT data cache can alias (way size above the page size); that is not modelled (one alias per page here).
    /// </summary>
    public static PlatformLayout Mips32Malta24Kc { get; } = Mips32(
        "mips32-malta-24kc",
        "MIPS Malta with a 24Kc core, 32-bit kernel: 256 MiB at PA 0 in KSEG0 (0x80000000), vmalloc from KSEG2 (0xc0000000); 32-byte lines; an in-order core that never fills a line on its own",
        [new MemoryBank(0, 256UL << 20)],
        CpuKind.Mips24K,
        speculativeFill: false);

    /// <summary>
    /// A Broadcom set-top-box board with a BMIPS5000 core under a 32-bit kernel (bmips_stb-like): 256 MiB of DRAM at PA 0
    /// in KSEG0, no DMA offset. The core speculates and may prefetch a line into its (inclusive) L2 at any time, including
    /// a line a device is writing (f86f55d3ad21's message); the model tracks one level with 32-byte lines, which
    /// r4k_dma_cache_inv / r4k_dma_cache_wback_inv maintain together (blast_*scache_range on inclusive caches). The L2's
    /// own line size is not modelled (docs/semantics.md).
    /// </summary>
    public static PlatformLayout Mips32Bmips5000 { get; } = Mips32(
        "mips32-bmips5000",
        "Broadcom STB-like board with a BMIPS5000 core, 32-bit kernel: 256 MiB at PA 0 in KSEG0 (0x80000000), vmalloc from KSEG2 (0xc0000000); 32-byte lines; a core that speculates and prefetches",
        [new MemoryBank(0, 256UL << 20)],
        CpuKind.Bmips5000,
        speculativeFill: true);

    /// <summary>RISC-V Sv39 PAGE_OFFSET (v5.17+, with the 64-bit kernel's runtime choice of Sv39).</summary>
    public const ulong RiscVPageOffsetSv39 = 0xffff_ffd8_0000_0000;

    /// <summary>
    /// A RISC-V board whose harts implement Zicbom, under a 64-bit Sv39 kernel: 1 GiB of DRAM at PA 0x80000000, no DMA
    /// offset, no outer cache the kernel maintains apart; riscv,cbom-block-size 64; 64-byte lines.
    /// </summary>
    public static PlatformLayout RiscV64Zicbom { get; } = RiscV64(
        "riscv64-sv39-zicbom",
        "RISC-V board with Zicbom harts, Sv39: 1 GiB at PA 0x80000000, linear map at 0xffffffd800000000, vmalloc 0xffffffc800000000..0xffffffd800000000; cbom block 64 bytes",
        [new MemoryBank(0x8000_0000, 1UL << 30)],
        CpuKind.RiscVZicbom,
        outerCache: false);

    /// <summary>
    /// A T-Head TH1520-like board (C910 cluster, as the LicheePi 4A and BeagleV-Ahead) under a 64-bit Sv39 kernel: 1 GiB
    /// of DRAM at PA 0 (the board has more; one GiB is modelled), no DMA offset. The C910 cores share a unified L2 behind
    /// their L1 data caches; both have 64-byte lines and riscv,cbom-block-size is 64. The vendor dcache.* instructions
    /// act by VA on L1 and, except dcache.cval1, on L2 too; the DMA masters are not coherent with either level.
    /// </summary>
    public static PlatformLayout RiscV64Th1520 { get; } = RiscV64(
        "riscv64-sv39-th1520",
        "T-Head TH1520-like board (C910 harts, no Zicbom: T-Head vendor CMOs), Sv39: 1 GiB at PA 0, linear map at 0xffffffd800000000; L1 and a shared L2, 64-byte lines, that non-coherent DMA bypasses",
        [new MemoryBank(0, 1UL << 30)],
        CpuKind.THeadC9xx,
        outerCache: true);

    private static PlatformLayout Mips32(string name, string description, ImmutableArray<MemoryBank> banks, CpuKind cpu, bool speculativeFill) =>
        new(name, Arch.Mips32, description,
            PageOffset: Mips32PageOffset,
            PhysOffset: 0,
            Banks: banks,
            LowmemLimit: banks[^1].End,
            VmallocStart: 0xc000_0000,
            VmallocEnd: 0xfe00_0000,
            StructPageBase: 0x8100_0000, // mem_map is a lowmem allocation; its address only shows in messages
            StructPageSize: 32,
            DmaOffset: 0,
            DmaLimit: 0xffff_ffff,
            FirstFreePfn: (banks[0].Base + (16UL << 20)) >> PageShift,
            UserBase: 0x1000_0000,
            UserEnd: 0x7fff_0000)
        {
            L1LineSize = 32,
            Cpu = cpu,
            SpeculativeFill = speculativeFill,
        };

    private static PlatformLayout RiscV64(string name, string description, ImmutableArray<MemoryBank> banks, CpuKind cpu, bool outerCache)
    {
        var physBase = banks[0].Base; // phys_ram_base: the linear map starts at the first DRAM byte
        return new PlatformLayout(name, Arch.RiscV64, description,
            PageOffset: RiscVPageOffsetSv39,
            PhysOffset: physBase,
            Banks: banks,
            LowmemLimit: banks[^1].End,
            VmallocStart: 0xffff_ffc8_0000_0000,
            VmallocEnd: RiscVPageOffsetSv39,
            StructPageBase: unchecked(0xffff_ffc7_0000_0000 - ((physBase >> PageShift) * 64)), // vmemmap - (phys_ram_base >> PAGE_SHIFT)
            StructPageSize: 64,
            DmaOffset: 0,
            DmaLimit: ulong.MaxValue,
            FirstFreePfn: (physBase + (16UL << 20)) >> PageShift,
            UserBase: 0x0000_0010_0000_0000,
            UserEnd: 0x0000_003f_0000_0000)
        {
            L1LineSize = 64,
            OuterCache = outerCache,
            OuterLineSize = outerCache ? 64 : 0,
            Cpu = cpu,
            CbomBlockSize = 64,
        };
    }

    /// <summary>
    /// A Freescale MPC885-like board (8xx core) under a 32-bit powerpc kernel (mpc885_ads-like): 128 MiB of DRAM at PA
    /// 0, all lowmem at PAGE_OFFSET 0xc0000000, no DMA offset, FLATMEM. vmalloc from high_memory rounded up past the
    /// 16 MiB VMALLOC_OFFSET (0xc9000000) to below ioremap_bot (0xf0000000 is taken here; only vmalloc placement uses
    /// it). 16-byte data cache lines (L1_CACHE_SHIFT 4). Whether the core fills lines on its own is not checked here:
    /// the fill is left on, the choice that hides no behaviour.
    /// </summary>
    public static PlatformLayout Ppc32Mpc8xx { get; } = new(
        "ppc32-mpc8xx",
        Arch.Ppc32,
        "MPC885-like board (powerpc 8xx, non-coherent DMA): 128 MiB at PA 0, lowmem at 0xc0000000, vmalloc from 0xc9000000; 16-byte cache lines",
        PageOffset: 0xc000_0000,
        PhysOffset: 0,
        Banks: [new MemoryBank(0, 128UL << 20)],
        LowmemLimit: 128UL << 20,
        VmallocStart: 0xc900_0000,
        VmallocEnd: 0xf000_0000,
        StructPageBase: 0xc100_0000, // mem_map is a lowmem allocation; its address only shows in messages
        StructPageSize: 32,
        DmaOffset: 0,
        DmaLimit: 0xffff_ffff,
        FirstFreePfn: (16UL << 20) >> PageShift,
        UserBase: 0x1000_0000,
        UserEnd: 0x7fff_0000)
    {
        L1LineSize = 16,
        Cpu = CpuKind.Mpc8xx,
    };

    /// <summary>
    /// An Atmel AT91SAM9G20-EK-like board under a 32-bit arm kernel (at91_dt_defconfig, ARCH_MULTI_V5, no LPAE): 64 MiB of SDRAM
    /// at PA 0x20000000, all lowmem, so high_memory = 0xc4000000 and VMALLOC_START = 0xc4800000. The ARM926EJ-S core has a
    /// 32 KiB VIVT data cache with 32-byte lines and no outer cache, and does not prefetch data; CONFIG_ARM_L1_CACHE_SHIFT is 5
    /// (CPU_V7 is not selected), so L1_CACHE_BYTES and ARCH_DMA_MINALIGN are 32. Devices get arm_dma_ops; its dmac_* are
    /// arm926's (arch/arm/mm/proc-arm926.S: arm926_dma_inv_range cleans partly covered edge lines and invalidates the rest,
    /// arm926_dma_clean_range cleans), which the model runs as the v7 routines of the same effect.
    /// </summary>
    public static PlatformLayout Arm32At91Sam9 { get; } = Arm32(
        "arm32-at91sam9g20",
        "AT91SAM9G20-EK-like board under 32-bit arm (ARMv5, no LPAE): 64 MiB at PA 0x20000000, all lowmem at VA 0xc0000000, vmalloc from 0xc4800000; no DMA offset; an ARM926EJ-S with a VIVT data cache of 32-byte lines and no outer cache",
        [new MemoryBank(0x2000_0000, 64UL << 20)],
        dmaOffset: 0,
        dmaLimit: 0xffff_ffff,
        l1LineSize: 32) with
    { DcacheIndexing = DcacheIndexing.Vivt, L1CacheShift = 5 };

    public static IReadOnlyList<PlatformLayout> All { get; } = [Arm64Va48, Arm64Va48V65, Arm64Va48V5, Arm64Va48V511, Arm64Rpi4, Arm32Rpi4, Arm32Imx6, Arm32At91Sam9, X86_64Pc, Mips32Malta24Kc, Mips32Bmips5000, RiscV64Zicbom, RiscV64Th1520, Ppc32Mpc8xx];

    private static PlatformLayout Arm64(string name, string description, ImmutableArray<MemoryBank> banks, ulong vmallocStart, ulong dmaOffset, ulong dmaLimit,
        ulong vmemmapStart = Arm64VmemmapStartVa48, ulong vmallocEnd = Arm64VmemmapStartVa48 - (256UL << 20))
    {
        // memstart_addr: the start of DRAM rounded down to ARM64_MEMSTART_ALIGN (1 GiB with 4 KiB pages and VA_BITS=48).
        var memstart = banks[0].Base & ~((1UL << 30) - 1);
        return new PlatformLayout(name, Arch.Arm64, description,
            PageOffset: Arm64PageOffsetVa48,
            PhysOffset: memstart,
            Banks: banks,
            LowmemLimit: banks[^1].End,
            VmallocStart: vmallocStart,
            VmallocEnd: vmallocEnd,
            StructPageBase: unchecked(vmemmapStart - ((memstart >> PageShift) * 64)),
            StructPageSize: 64,
            DmaOffset: dmaOffset,
            DmaLimit: dmaLimit,
            FirstFreePfn: (banks[0].Base + (16UL << 20)) >> PageShift,
            UserBase: 0x0000_0010_0000_0000,
            UserEnd: 0x0000_ff00_0000_0000);
    }


    /// <summary>How the board's L1 data cache is indexed, the default of <c>set cache.aliasing</c> (<see cref="Hardware.DcacheIndexing"/>).</summary>
    public DcacheIndexing DcacheIndexing { get; init; }

    /// <summary>CONFIG_ARM_L1_CACHE_SHIFT of the board's 32-bit arm kernel: 6 where CPU_V7 selects ARM_L1_CACHE_SHIFT_6, 5 on ARMv5.</summary>
    public int L1CacheShift { get; init; } = 6;

    private static PlatformLayout Arm32(string name, string description, ImmutableArray<MemoryBank> banks, ulong dmaOffset, ulong dmaLimit, bool outerCache = false, int l1LineSize = 64, int outerLineSize = 0)
    {
        var physOffset = banks[0].Base;
        var vmallocMin = Arm32VmallocEnd - (240UL << 20) - Arm32VmallocOffset;                  // arch/arm/mm/mmu.c: vmalloc_min
        var lowmemLimit = Math.Min(vmallocMin - Arm32PageOffset3G + physOffset, banks[^1].End); // arm_lowmem_limit = __pa(vmalloc_min - 1) + 1, or the end of RAM
        var highMemory = lowmemLimit - physOffset + Arm32PageOffset3G;                          // high_memory = __va(arm_lowmem_limit - 1) + 1
        return new PlatformLayout(name, Arch.Arm32, description,
            PageOffset: Arm32PageOffset3G,
            PhysOffset: physOffset,
            Banks: banks,
            LowmemLimit: lowmemLimit,
            VmallocStart: (highMemory + Arm32VmallocOffset) & ~(Arm32VmallocOffset - 1),
            VmallocEnd: Arm32VmallocEnd,
            StructPageBase: 0xef00_0000, // mem_map is itself a lowmem allocation; its address only shows in messages
            StructPageSize: 32,
            DmaOffset: dmaOffset,
            DmaLimit: dmaLimit,
            FirstFreePfn: (physOffset + (16UL << 20)) >> PageShift,
            UserBase: 0x1000_0000,
            UserEnd: Arm32PageOffset3G - (16UL << 20), // TASK_SIZE = PAGE_OFFSET - 16 MiB (the module area)
            PkmapBase: Arm32PageOffset3G - (2UL << 20))
        {
            OuterCache = outerCache,
            L1LineSize = l1LineSize,
            OuterLineSize = outerLineSize,
        };
    }

    public ulong RamBase => Banks[0].Base;

    /// <summary>The end of the highest bank (max_pfn &lt;&lt; PAGE_SHIFT).</summary>
    public ulong RamEnd => Banks[^1].End;

    public bool HasHighmem => LowmemLimit < RamEnd;

    /// <summary>The end of the linear map's VA range: PAGE_END on arm64, 4 GiB on arm32, page_offset_base + 64 TiB on x86_64.</summary>
    public ulong LinearMapEnd => Arch switch
    {
        Arch.Arm64 => Arm64PageEndVa48,
        Arch.X86_64 => PageOffset + (64UL << 40),
        Arch.Mips32 => Mips32PageOffset + (512UL << 20), // KSEG0 is 512 MiB
        Arch.RiscV64 => 0xffff_fff7_0000_0000,          // the end of the Sv39 direct map (124 GiB)
        Arch.Ppc32 => PageOffset + (768UL << 20),      // CONFIG_LOWMEM_SIZE 0x30000000
        _ => 1UL << 32,
    };

    /// <summary>The width of a virtual address: arithmetic on arm32 wraps at 2^32 (unsigned long).</summary>
    private ulong VaMask => Is32Bit ? 0xffff_ffffUL : ulong.MaxValue;

    /// <summary>
    /// __virt_to_phys for the linear map: (va - PAGE_OFFSET) + PHYS_OFFSET, in unsigned long arithmetic on arm32
    /// (arch/arm/include/asm/memory.h __virt_to_phys_nodebug) and on arm64 (__lm_to_phys). Pure arithmetic,
    /// whatever the address: the kernel checks nothing either.
    /// </summary>
    public ulong VirtToPhys(ulong va) => unchecked(((va - PageOffset) & VaMask) + PhysOffset);

    /// <summary>__va / phys_to_virt: (pa - PHYS_OFFSET) + PAGE_OFFSET.</summary>
    public ulong PhysToVirt(ulong pa) => unchecked((pa - PhysOffset + PageOffset) & VaMask);

    /// <summary>
    /// virt_to_pfn / the pfn behind virt_to_page(va):
    /// arm64 (SPARSEMEM_VMEMMAP, !DEBUG_VIRTUAL): idx = (va - PAGE_OFFSET) / PAGE_SIZE, page = vmemmap + idx with
    /// vmemmap = VMEMMAP_START - (memstart_addr &gt;&gt; PAGE_SHIFT), so page_to_pfn = idx + PHYS_PFN_OFFSET;
    /// arm32: ((va - PAGE_OFFSET) &gt;&gt; PAGE_SHIFT) + PHYS_PFN_OFFSET. Either way the linear-map formula, applied
    /// to any address.
    /// </summary>
    public ulong VirtToPfn(ulong va) => VirtToPhys(va) >> PageShift;

    /// <summary>The address of the struct page virt_to_page/pfn_to_page computes for <paramref name="pfn"/> (vmemmap or mem_map arithmetic).</summary>
    public ulong StructPageAddress(ulong pfn) => unchecked(StructPageBase + (pfn * StructPageSize));

    /// <summary>
    /// Whether the struct page of <paramref name="pfn"/> exists in memory, so that reading or writing page-&gt;flags
    /// does not fault: on arm64 the vmemmap is populated only for present memory sections (here: the banks); on
    /// arm32 FLATMEM's mem_map covers every pfn from ARCH_PFN_OFFSET up to max_pfn, holes included.
    /// </summary>
    public bool StructPageExists(ulong pfn) => Arch == Arch.Arm32
        ? pfn >= RamBase >> PageShift && pfn < RamEnd >> PageShift
        : PfnValid(pfn);

    /// <summary>PFN_PHYS / page_to_phys for a page frame number.</summary>
    public static ulong PfnToPhys(ulong pfn) => pfn << PageShift;

    /// <summary>pfn_valid: the frame is backed by DRAM (memblock_is_map_memory).</summary>
    public bool PfnValid(ulong pfn)
    {
        if (pfn > ulong.MaxValue >> PageShift)
        {
            return false;
        }

        var pa = PfnToPhys(pfn);
        foreach (var b in Banks)
        {
            if (b.Contains(pa))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether every byte of [pa, pa+size) is DRAM, within one bank.</summary>
    public bool IsRam(ulong pa, ulong size)
    {
        foreach (var b in Banks)
        {
            if (b.Contains(pa) && size <= b.End - pa)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether <paramref name="pfn"/> is a lowmem frame: covered by the linear map (!PageHighMem).</summary>
    public bool IsLowmemPfn(ulong pfn) => PfnValid(pfn) && PfnToPhys(pfn) < LowmemLimit;

    /// <summary>
    /// page_address(page) for a lowmem page: its linear-map VA. On arm64 (no highmem) page_to_virt is the inverse
    /// vmemmap arithmetic and returns PAGE_OFFSET + idx * PAGE_SIZE even for a bogus page; on arm32 a highmem page
    /// that is not kmapped has no address (NULL).
    /// </summary>
    public ulong? PageAddress(ulong pfn) =>
        Arch != Arch.Arm32 || (PfnToPhys(pfn) >= PhysOffset && PfnToPhys(pfn) < LowmemLimit) ? PhysToVirt(PfnToPhys(pfn)) : null;

    /// <summary>The linear-map VA of a frame the caller knows is lowmem.</summary>
    public ulong LinearAddress(ulong pfn) => PhysToVirt(PfnToPhys(pfn));

    /// <summary>is_vmalloc_addr: VMALLOC_START &lt;= va &lt; VMALLOC_END.</summary>
    public bool IsVmallocAddr(ulong va) => va >= VmallocStart && va < VmallocEnd;

    /// <summary>
    /// The kernel image's .text (_stext.._etext) and .rodata (__start_rodata..__end_rodata) as kernel virtual addresses,
    /// on 32-bit arm only, where the image is loaded at PHYS_OFFSET + TEXT_OFFSET (0x8000) and reached through the linear
    /// map, so that page_address() of its pages gives these addresses back. The bounds are illustrative, not a build's
    /// System.map: .text from TEXT_OFFSET to 8 MiB, .rodata from 8 MiB to 10 MiB, inside the 16 MiB below
    /// <see cref="FirstFreePfn"/>. On arm64 and x86_64 the image is mapped outside the linear map (KIMAGE_VADDR,
    /// __START_KERNEL_map), so a linear-map address is never in these sections; null there.
    /// </summary>
    public ((ulong Start, ulong End) Text, (ulong Start, ulong End) Rodata)? KernelImageSections =>
        Arch == Arch.Arm32 ? ((PageOffset + 0x8000, PageOffset + (8UL << 20)), (PageOffset + (8UL << 20), PageOffset + (10UL << 20))) : null;

    /// <summary>The kernel image section (".text" or ".rodata") that [va, va + length) overlaps, if any (check_for_illegal_area's overlap test).</summary>
    public string? KernelImageSectionAt(ulong va, ulong length)
    {
        if (KernelImageSections is not { } sections || length == 0)
        {
            return null;
        }

        static bool Overlaps(ulong a, ulong len, (ulong Start, ulong End) r) => a < r.End && a + len > r.Start;
        return Overlaps(va, length, sections.Text) ? ".text" : Overlaps(va, length, sections.Rodata) ? ".rodata" : null;
    }

    /// <summary>Whether <paramref name="va"/> lies in the linear map of lowmem DRAM (virt_addr_valid).</summary>
    public bool IsLinearMapAddr(ulong va) =>
        va >= PageOffset && va < LinearMapEnd && VirtToPhys(va) >= PhysOffset && VirtToPhys(va) < LowmemLimit && PfnValid(VirtToPfn(va));

    /// <summary>phys_to_dma(dev, pa): the bus address of a PA (dma-ranges offset).</summary>
    public ulong PhysToDma(ulong pa) => unchecked(pa + DmaOffset);

    /// <summary>dma_to_phys(dev, dma).</summary>
    public ulong DmaToPhys(ulong dma) => unchecked(dma - DmaOffset);

    /// <summary>The struct page's description for messages: its address and what backs it.</summary>
    public string DescribePage(ulong pfn) =>
        $"struct page 0x{StructPageAddress(pfn):x} (pfn 0x{pfn:x}, PA 0x{unchecked(pfn << PageShift):x})";

    /// <summary>get_order(size): the smallest order whose block holds <paramref name="size"/> bytes (0 for size 0).</summary>
    public static int GetOrder(ulong size) =>
        size <= PageSize ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount((size - 1) >> PageShift);

    public static ulong PageAlign(ulong size) => (size + PageSize - 1) & ~(PageSize - 1);
}
