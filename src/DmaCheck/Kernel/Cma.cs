using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The default CMA area, dma_contiguous_default_area (mm/cma.c, kernel/dma/contiguous.c, v5.10..v6.4), made by the
/// <c>cma=SIZE</c> command line: frames [<see cref="BasePfn"/>, BasePfn + <see cref="Count"/>) that memblock reserved
/// at boot. The model's buddy allocator never hands them out (Linux lends free CMA pages to movable allocations and
/// migrates them away on cma_alloc; no modelled allocation is movable), so what is not allocated from the area is free.
/// </summary>
/// <param name="Released">Blocks released by cma_release, oldest first: who last used a free frame of the area.</param>
public sealed record CmaArea(ulong BasePfn, ulong Count, ImmutableList<PageBlock> Released)
{
    /// <summary>What the area's frames are called as an owner.</summary>
    public const string Owner = "the CMA area (dma_contiguous_default_area)";

    /// <summary>CONFIG_CMA_ALIGNMENT's default: allocations are aligned to at most 2^8 pages.</summary>
    public const int MaxAlignmentOrder = 8;

    /// <summary>
    /// CMA_MIN_ALIGNMENT_BYTES with 4 KiB pages (pageblock_nr_pages &lt;&lt; PAGE_SHIFT, pageblock_order 9): the alignment
    /// of the area's base and size (cma_declare_contiguous_nid).
    /// </summary>
    public const ulong MinAlignmentBytes = 2UL << 20;

    public bool Contains(ulong pfn) => pfn >= BasePfn && pfn - BasePfn < Count;

    public ulong EndPfn => BasePfn + Count;
}

/// <summary>The CMA allocator's operations on the kernel state.</summary>
public static class Cma
{
    /// <summary>
    /// dma_contiguous_reserve(limit) → cma_declare_contiguous_nid (v6.4), for a size from <c>cma=</c>: the size is
    /// aligned up to <see cref="CmaArea.MinAlignmentBytes"/>, then memblock takes it top-down below
    /// <paramref name="limit"/> (arm64: arm64_dma_phys_limit, the top of ZONE_DMA32), aligned, from the highest bank
    /// that holds it. Before swiotlb_init, so the bounce pool lands below it. Only arm64 is modelled.
    /// </summary>
    public static KernelState Reserve(KernelState k, ulong bytes, ulong limit)
    {
        if (k.Layout.Arch != Arch.Arm64)
        {
            throw new NotModelledException($"cma={bytes >> 20}M on {k.Layout.Arch}: the CMA area is modelled on arm64 only (32-bit arm's __dma_alloc cma_allocator and x86's are not)");
        }

        var size = (bytes + CmaArea.MinAlignmentBytes - 1) & ~(CmaArea.MinAlignmentBytes - 1);
        foreach (var bank in k.Layout.Banks.Reverse())
        {
            var top = Math.Min(bank.End, limit) & ~(CmaArea.MinAlignmentBytes - 1);
            var bottom = Math.Max(bank.Base, PlatformLayout.PfnToPhys(k.Allocator.NextPfn));
            if (top > bottom && top - bottom >= size)
            {
                var basePfn = (top - size) >> PlatformLayout.PageShift;
                var count = size >> PlatformLayout.PageShift;
                var reserved = new PageBlock(basePfn, 0, CmaArea.Owner) { Count = count };
                return k with
                {
                    Allocator = k.Allocator with
                    {
                        Reserved = k.Allocator.Reserved.Add(reserved).Sort((a, b) => a.Pfn.CompareTo(b.Pfn)),
                        Cma = new CmaArea(basePfn, count, []),
                    },
                };
            }
        }

        throw new NotModelledException($"cma={bytes >> 20}M: no DRAM bank of layout {k.Layout.Name} holds {size >> 20} MiB below PA 0x{limit:x} above the kernel image (the kernel would boot without a CMA area; boot with less)");
    }

    /// <summary>
    /// cma_alloc(cma, count, align) (mm/cma.c, v6.4) as cma_alloc_aligned calls it: the first free run of
    /// <paramref name="count"/> frames whose first frame is aligned to 2^<paramref name="align"/> frames
    /// (bitmap_find_next_zero_area_off over the area's bitmap, one bit a page), then alloc_contig_range, whose
    /// split_map_pages runs post_alloc_hook(page, order, __GFP_MOVABLE): the frames are cleared through the linear map
    /// only when init_on_alloc is on (the caller's __GFP_ZERO is not passed down). Null when no run is free.
    /// </summary>
    public static KernelState? Alloc(KernelState k, ulong count, int align, string owner, List<HwOp> ops, out ulong pfn)
    {
        pfn = 0;
        if (k.Allocator.Cma is not { } area || count == 0)
        {
            return null;
        }

        var step = 1UL << align;
        var used = k.Allocator.Allocated.Values.Where(b => area.Contains(b.Pfn)).OrderBy(b => b.Pfn).ToList();
        var candidate = (area.BasePfn + step - 1) & ~(step - 1);
        foreach (var block in used.Append(new PageBlock(area.EndPfn, 0, string.Empty) { Count = 0 }))
        {
            if (candidate + count <= block.Pfn)
            {
                break;
            }

            candidate = Math.Max(candidate, (block.Pfn + block.Pages + step - 1) & ~(step - 1));
        }

        if (candidate + count > area.EndPfn)
        {
            return null;
        }

        pfn = candidate;
        var taken = new PageBlock(pfn, PlatformLayout.GetOrder(count << PlatformLayout.PageShift), owner) { Count = count };
        var next = k with { Allocator = k.Allocator with { Allocated = k.Allocator.Allocated.Add(pfn, taken) } };
        if (!k.Config.WantInitOnFree() && k.Config.WantInitOnAlloc(Gfp.None)) // post_alloc_hook's gfp is __GFP_MOVABLE alone
        {
            next.CpuStore(k.Layout.LinearAddress(pfn), count << PlatformLayout.PageShift, WriterTable.Zero,
                "cma_alloc: alloc_contig_range: post_alloc_hook: kernel_init_pages (init_on_alloc)", ops);
        }

        return next;
    }

    /// <summary>
    /// cma_release(cma, pages, count) → free_contig_range (v6.4): each frame goes back through __free_page, whose
    /// free_pages_prepare clears it through the linear map with init_on_free. Releasing frames that do not start a
    /// live CMA allocation is the same corruption as a bad __free_pages (a finding, or a kernel bug without findings).
    /// </summary>
    public static KernelState Release(KernelState k, ulong pfn, ulong count, string? expectedOwner, string function, List<HwOp> ops, List<Finding>? findings)
    {
        var area = k.Allocator.Cma!;
        if (!k.Allocator.Allocated.TryGetValue(pfn, out var block) || !area.Contains(pfn) || (expectedOwner is not null && block.Owner != expectedOwner))
        {
            throw k.BadFree(pfn, function, findings);
        }

        if (block.Pages != count)
        {
            throw new KernelBugException(function, $"releases {count} pages at pfn 0x{pfn:x} of a CMA allocation of {block.Pages}");
        }

        if (k.Config.WantInitOnFree())
        {
            k.CpuStore(k.Layout.LinearAddress(pfn), count << PlatformLayout.PageShift, WriterTable.Zero,
                "cma_release: free_contig_range: free_pages_prepare: kernel_init_pages (init_on_free)", ops);
        }

        return k with
        {
            Allocator = k.Allocator with
            {
                Allocated = k.Allocator.Allocated.Remove(pfn),
                Cma = area with { Released = area.Released.Add(block) },
            },
        };
    }
}
