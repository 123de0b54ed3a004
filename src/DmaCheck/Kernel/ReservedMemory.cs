using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// A DT <c>reserved-memory</c> child node the scenario declares (<c>reserved NAME { size = N, no-map = true }</c>): a
/// dynamically placed region (a <c>size</c> property, no <c>reg</c>) with or without <c>no-map</c>.
/// </summary>
public sealed record ReservedMemorySpec(string Name, ulong Size, bool NoMap);

/// <summary>Where a reserved-memory region was placed at boot: [Pa, Pa+Size), and whether the linear map leaves it out.</summary>
public sealed record ReservedRegion(string Name, ulong Pa, ulong Size, bool NoMap)
{
    public bool Contains(ulong pa, ulong size) => pa >= Pa && size <= Size && pa - Pa <= Size - size;

    public bool Overlaps(ulong pa, ulong size) => pa < Pa + Size && Pa < pa + size;

    /// <summary>The owner its frames have: no page allocator ever hands them out.</summary>
    public string Owner => $"reserved-memory node {Name}";
}

/// <summary>
/// drivers/of/of_reserved_mem.c and arm64's memblock setup (v6.4): reserved-memory regions are taken at boot, before
/// CMA and swiotlb (early_init_fdt_scan_reserved_mem runs in arm64_memblock_init); a <c>no-map</c> region is marked
/// MEMBLOCK_NOMAP, so the linear map leaves it out (map_mem skips nomap memblocks, 68709f45385a, v4.5) and no
/// cacheable alias of it exists, which is what keeps speculative linefills away from memory another master owns.
/// </summary>
/// <remarks>
/// The model places each region itself, in the lowmem frames the page allocator would otherwise hand out first (the
/// real placement follows the node's <c>reg</c>, or memblock's top-down search for <c>size</c>/<c>alignment</c>); only
/// regions of at most 4 MiB (one buddy block) are taken, and <c>reusable</c> regions (CMA) are not modelled.
/// </remarks>
public static class ReservedMemory
{
    /// <summary>The largest region the model places: one block of MAX_ORDER.</summary>
    public const ulong MaxSize = PlatformLayout.PageSize << KernelState.MaxOrder;

    /// <summary>Takes the declared regions at boot and cuts the no-map ones out of the linear map.</summary>
    public static KernelState Reserve(KernelState k, IReadOnlyList<ReservedMemorySpec> specs)
    {
        var regions = k.ReservedMemory;
        var alloc = k.Allocator;
        var mmu = k.Mmu;
        foreach (var spec in specs)
        {
            var order = PlatformLayout.GetOrder(PlatformLayout.PageAlign(spec.Size));
            alloc = alloc.Take(k.Layout, false, order, out var pfn)
                ?? throw new NotModelledException($"reserved-memory node {spec.Name}: {spec.Size} bytes do not fit in lowmem");
            var region = new ReservedRegion(spec.Name, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PageAlign(spec.Size), spec.NoMap);
            alloc = alloc with { Allocated = alloc.Allocated.Add(pfn, new PageBlock(pfn, order, region.Owner)) };
            regions = regions.Add(spec.Name, region);
            if (spec.NoMap)
            {
                mmu = CutOutOfLinearMap(k.Layout, mmu, region.Pa, region.Size);
            }
        }

        return k with { Allocator = alloc, Mmu = mmu, ReservedMemory = regions };
    }

    /// <summary>The linear map with [pa, pa+size) left out: the alias covering it is replaced by the pieces on either side.</summary>
    private static Mmu CutOutOfLinearMap(PlatformLayout layout, Mmu mmu, ulong pa, ulong size)
    {
        var linear = mmu.Aliases.FirstOrDefault(a => a.Name == KernelState.LinearMapName && a.ContainsPa(pa))
            ?? throw new NotModelledException($"a no-map region at PA 0x{pa:x} outside the linear map (highmem)");
        mmu = mmu.Unmap(linear);
        if (pa > linear.Pa)
        {
            mmu = mmu.Map(linear with { Size = pa - linear.Pa });
        }

        var end = pa + size;
        if (end < linear.Pa + linear.Size)
        {
            mmu = mmu.Map(new Alias(KernelState.LinearMapName, layout.PhysToVirt(end), end, linear.Pa + linear.Size - end, linear.Type));
        }

        return mmu;
    }

    /// <summary>The region holding all of [pa, pa+size), if one does.</summary>
    public static ReservedRegion? At(KernelState k, ulong pa, ulong size) => k.ReservedMemory.Values.FirstOrDefault(r => r.Contains(pa, size));

    public static ImmutableSortedDictionary<string, ReservedRegion> None { get; } = ImmutableSortedDictionary.Create<string, ReservedRegion>(StringComparer.Ordinal);
}

/// <summary>memremap's flags (include/linux/io.h): the mapping types a caller accepts, tried in the order WB, WT, WC.</summary>
[Flags]
public enum MemremapFlags
{
    None = 0,
    MEMREMAP_WB = 1 << 0,
    MEMREMAP_WT = 1 << 1,
    MEMREMAP_WC = 1 << 2,
}

/// <summary>kernel/iomem.c (v6.4) memremap and memunmap, over arm64's ioremap_cache, ioremap_wt and ioremap_wc.</summary>
public static class Memremap
{
    /// <summary>The name of an alias memremap makes, for traces.</summary>
    public static string AliasName(ulong pa, MemoryType type) => $"memremap of PA 0x{pa:x} ({type.Describe()})";

    /// <summary>
    /// memremap(offset, size, flags): "System RAM" (DRAM in the linear map, region_intersects with
    /// IORESOURCE_SYSTEM_RAM) with MEMREMAP_WB gives its linear-map address (try_ram_remap: pfn_valid, not highmem,
    /// arch_memremap_can_ram_remap); any other flag on System RAM is refused with a WARN and NULL ("memremap attempted
    /// on ram"), as is a range that is partly System RAM ("mixed range"). Anything else gets a new mapping in the
    /// vmalloc area: MEMREMAP_WB through arch_memremap_wb → ioremap_cache (Normal-WB), MEMREMAP_WT through ioremap_wt
    /// and MEMREMAP_WC through ioremap_wc (both Normal-NC on arm64). Returns the address, or 0 with
    /// <paramref name="warning"/> set.
    /// </summary>
    public static KernelState Map(KernelState k, ulong pa, ulong size, MemremapFlags flags, string origin, List<HwOp> ops, out ulong va, out string? warning)
    {
        va = 0;
        warning = null;
        if (flags == MemremapFlags.None)
        {
            warning = "memremap with no flags returns NULL";
            return k;
        }

        var layout = k.Layout;
        if (!layout.IsRam(pa, size))
        {
            throw new NotModelledException($"memremap of PA 0x{pa:x}..0x{pa + size:x}, outside the DRAM the model knows (MMIO and firmware memory outside the layout are not modelled)");
        }

        var systemRam = SystemRamBytes(k, pa, size);
        if (systemRam != 0 && systemRam != size)
        {
            warning = $"WARN: memremap attempted on mixed range 0x{pa:x} size: 0x{size:x} (part System RAM, part reserved no-map): memremap returns NULL";
            return k;
        }

        if (systemRam == size)
        {
            if ((flags & MemremapFlags.MEMREMAP_WB) != 0 && pa + size <= layout.LowmemLimit)
            {
                va = layout.PhysToVirt(pa); // try_ram_remap: the existing linear address
                return k;
            }

            warning = $"WARN: memremap attempted on ram 0x{pa:x} size: 0x{size:x}: memremap returns NULL (a second mapping of System RAM with other attributes is refused)";
            return k;
        }

        var type = (flags & MemremapFlags.MEMREMAP_WB) != 0 ? MemoryType.NormalWriteBack : MemoryType.NormalNonCacheable;
        var first = pa & ~(PlatformLayout.PageSize - 1);
        var pages = (PlatformLayout.PageAlign(pa + size) - first) >> PlatformLayout.PageShift;
        k = k.Vmap(first >> PlatformLayout.PageShift, pages, type, AliasName(first, type), origin, ops, out var area);
        va = area + (pa - first);
        return k;
    }

    /// <summary>memunmap(addr): iounmap of an ioremap address (is_ioremap_addr); nothing for a linear-map address.</summary>
    public static KernelState Unmap(KernelState k, ulong va, string origin, List<HwOp> ops) =>
        k.Layout.IsVmallocAddr(va) ? k.Vunmap(va & ~(PlatformLayout.PageSize - 1), origin, ops) : k;

    /// <summary>How many bytes of [pa, pa+size) are System RAM: DRAM that no no-map region takes.</summary>
    private static ulong SystemRamBytes(KernelState k, ulong pa, ulong size)
    {
        var nomap = 0UL;
        foreach (var r in k.ReservedMemory.Values)
        {
            if (r.NoMap && r.Overlaps(pa, size))
            {
                nomap += Math.Min(pa + size, r.Pa + r.Size) - Math.Max(pa, r.Pa);
            }
        }

        return size - nomap;
    }
}
