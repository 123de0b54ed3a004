namespace DmaCheck.Kernel;

/// <summary>
/// The kernel's view of physical and virtual memory on one platform, and the address arithmetic of
/// arch/arm64/include/asm/memory.h for the linear map. Version 1 models arm64 with 48-bit VAs and 4 KiB
/// pages, in the layout used since v5.4 (linear map at the bottom of the kernel half).
/// </summary>
/// <param name="PageOffset">PAGE_OFFSET: the VA of the start of the linear map.</param>
/// <param name="PhysOffset">PHYS_OFFSET (memstart_addr): the PA the linear map starts at.</param>
/// <param name="RamBase">The first byte of DRAM.</param>
/// <param name="RamSize">Bytes of DRAM.</param>
/// <param name="VmallocStart">VMALLOC_START.</param>
/// <param name="VmallocEnd">VMALLOC_END.</param>
/// <param name="FirstFreePfn">The first page frame the page allocator hands out; frames below hold the kernel image.</param>
public sealed record PlatformLayout(
    string Name,
    ulong PageOffset,
    ulong PhysOffset,
    ulong RamBase,
    ulong RamSize,
    ulong VmallocStart,
    ulong VmallocEnd,
    ulong FirstFreePfn)
{
    public const int PageShift = 12;
    public const ulong PageSize = 1UL << PageShift;

    /// <summary>
    /// arm64, VA_BITS=48, 4 KiB pages, 1 GiB of DRAM at 0x80000000 (as on sc7180-class Qualcomm boards), no
    /// KASAN and no KASLR of the linear map. VMALLOC_START = MODULES_END with the 128 MiB module region of
    /// v5.16..v6.4 (v6.5's 3e35d303ab7d grows it to 2 GiB); VMALLOC_END = VMEMMAP_START - SZ_256M. The arm64
    /// layouts of other versions come with the platform work (issue 3).
    /// </summary>
    public static PlatformLayout Arm64Va48 { get; } = new(
        Name: "arm64-va48-4k",
        PageOffset: 0xffff_0000_0000_0000,
        PhysOffset: 0x8000_0000,
        RamBase: 0x8000_0000,
        RamSize: 1UL << 30,
        VmallocStart: 0xffff_8000_0800_0000,
        VmallocEnd: 0xffff_fbff_f000_0000,
        FirstFreePfn: (0x8000_0000UL + (16UL << 20)) >> PageShift);

    public ulong RamEnd => RamBase + RamSize;

    /// <summary>__pa / virt_to_phys for a linear-map address: (va - PAGE_OFFSET) + PHYS_OFFSET. Pure arithmetic, like the kernel's.</summary>
    public ulong VirtToPhys(ulong va) => unchecked(va - PageOffset + PhysOffset);

    /// <summary>__va / phys_to_virt: (pa - PHYS_OFFSET) + PAGE_OFFSET.</summary>
    public ulong PhysToVirt(ulong pa) => unchecked(pa - PhysOffset + PageOffset);

    /// <summary>virt_to_pfn: the linear-map arithmetic, whatever the address.</summary>
    public ulong VirtToPfn(ulong va) => VirtToPhys(va) >> PageShift;

    /// <summary>page_to_phys for a page frame number.</summary>
    public static ulong PfnToPhys(ulong pfn) => pfn << PageShift;

    /// <summary>page_address for a lowmem page: its linear-map VA.</summary>
    public ulong PageAddress(ulong pfn) => PhysToVirt(PfnToPhys(pfn));

    /// <summary>pfn_valid: the frame is backed by DRAM.</summary>
    public bool PfnValid(ulong pfn) => PfnToPhys(pfn) >= RamBase && PfnToPhys(pfn) < RamEnd;

    /// <summary>is_vmalloc_addr: VMALLOC_START &lt;= va &lt; VMALLOC_END.</summary>
    public bool IsVmallocAddr(ulong va) => va >= VmallocStart && va < VmallocEnd;

    /// <summary>Whether <paramref name="va"/> lies in the linear map of DRAM (virt_addr_valid for lowmem).</summary>
    public bool IsLinearMapAddr(ulong va) => va >= PageOffset && va < PageOffset + RamSize && PfnValid(VirtToPfn(va));

    /// <summary>get_order(size): the smallest order whose block holds <paramref name="size"/> bytes (0 for size 0).</summary>
    public static int GetOrder(ulong size) =>
        size <= PageSize ? 0 : 64 - System.Numerics.BitOperations.LeadingZeroCount((size - 1) >> PageShift);

    public static ulong PageAlign(ulong size) => (size + PageSize - 1) & ~(PageSize - 1);
}
