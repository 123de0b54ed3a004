using System.Collections.Immutable;

namespace DmaCheck.Kernel;

/// <summary>Who a page frame belongs to.</summary>
public enum OwnerKind
{
    /// <summary>No DRAM at this frame: pfn_valid() is false.</summary>
    NoRam,

    /// <summary>The kernel image and boot-time allocations, below the first frame the allocator hands out.</summary>
    KernelImage,

    /// <summary>Free in the page allocator.</summary>
    Free,

    /// <summary>Handed out by the page allocator to a kernel user named in the scenario.</summary>
    Allocation,

    /// <summary>Another tenant of the machine, declared by the scenario with its own data.</summary>
    Tenant,
}

/// <summary>The owner of a page frame, as a report names it.</summary>
/// <param name="Data">The writer name of the data this owner's pages hold (a tenant's secret), if any.</param>
public sealed record PageOwner(OwnerKind Kind, string Name, string? Data = null)
{
    public string Describe() => Kind switch
    {
        OwnerKind.Tenant => $"tenant {Name}" + (Data is null ? string.Empty : $" (holds '{Data}')"),
        OwnerKind.Free => Name.Length == 0 ? "nobody (free)" : $"nobody (free; last used by {Name})",
        _ => Name,
    };
}

/// <summary>A block of 2^Order page frames handed out by the page allocator, and to whom.</summary>
/// <param name="Tenant">Whether the owner is a declared tenant rather than the scenario's own code.</param>
/// <param name="Data">A tenant's data writer name.</param>
public sealed record PageBlock(ulong Pfn, int Order, string Owner, bool Tenant = false, string? Data = null)
{
    public ulong Pages => Count ?? (1UL << Order);

    /// <summary>For a boot-time memblock reservation: its size in frames, which need not be a power of two.</summary>
    public ulong? Count { get; init; }

    public bool Contains(ulong pfn) => pfn >= Pfn && pfn - Pfn < Pages;

    public PageOwner AsOwner() => new(Tenant ? OwnerKind.Tenant : OwnerKind.Allocation, Owner, Data);
}

/// <summary>
/// The page allocator's bookkeeping (mm/page_alloc.c), immutable. Deterministic and simple, not a buddy allocator:
/// a freed block is reused first (last freed, first reused) by a request of the same order and zone, otherwise fresh
/// frames come from a rising frontier per zone: lowmem from just above the kernel image, highmem (arm32, for
/// __GFP_HIGHMEM requests) from the bottom of highmem. A block never straddles a hole between DRAM banks.
/// </summary>
public sealed record PageAllocatorState(
    ulong NextPfn,
    ulong NextHighPfn,
    ImmutableList<PageBlock> FreeBlocks,
    ImmutableSortedDictionary<ulong, PageBlock> Allocated)
{
    /// <summary>Blocks memblock reserved at boot above the frontiers (the swiotlb pool, the CMA area), in ascending order; never handed out.</summary>
    public ImmutableList<PageBlock> Reserved { get; init; } = [];

    /// <summary>The default CMA area, when the command line asked for one (<c>cma=</c>); its live allocations are in <see cref="Allocated"/>.</summary>
    public CmaArea? Cma { get; init; }

    public static PageAllocatorState Boot(PlatformLayout layout) =>
        new(layout.FirstFreePfn, layout.HasHighmem ? layout.LowmemLimit >> PlatformLayout.PageShift : 0, [], ImmutableSortedDictionary<ulong, PageBlock>.Empty);

    /// <summary>The allocated block holding <paramref name="pfn"/>, if any.</summary>
    public PageBlock? BlockOf(ulong pfn)
    {
        foreach (var block in Allocated.Values)
        {
            if (block.Contains(pfn))
            {
                return block;
            }
        }

        return null;
    }

    /// <summary>Who owns <paramref name="pfn"/> right now.</summary>
    public PageOwner OwnerOf(PlatformLayout layout, ulong pfn)
    {
        if (!layout.PfnValid(pfn))
        {
            return new PageOwner(OwnerKind.NoRam, "no DRAM (pfn_valid() is false)");
        }

        if (BlockOf(pfn) is { } block)
        {
            return block.AsOwner();
        }

        if (pfn >= layout.RamBase >> PlatformLayout.PageShift && pfn < layout.FirstFreePfn)
        {
            return new PageOwner(OwnerKind.KernelImage, "the kernel image");
        }

        var freed = Cma is { } cma && cma.Contains(pfn) ? cma.Released.LastOrDefault(b => b.Contains(pfn)) : FreeBlocks.LastOrDefault(b => b.Contains(pfn));
        return new PageOwner(OwnerKind.Free, freed?.Owner ?? string.Empty);
    }

    /// <summary>Takes 2^order frames from the free list or a frontier; null when the zone is exhausted.</summary>
    public PageAllocatorState? Take(PlatformLayout layout, bool highmem, int order, out ulong pfn)
    {
        highmem &= layout.HasHighmem;
        var pages = 1UL << order;
        var reuse = FreeBlocks.FindLastIndex(b => b.Order == order && layout.IsLowmemPfn(b.Pfn) != highmem);
        if (reuse >= 0)
        {
            pfn = FreeBlocks[reuse].Pfn;
            return this with { FreeBlocks = FreeBlocks.RemoveAt(reuse) };
        }

        var next = highmem ? NextHighPfn : NextPfn;
        foreach (var bank in layout.Banks)
        {
            var first = bank.Base >> PlatformLayout.PageShift;
            var end = bank.End >> PlatformLayout.PageShift;
            if (!highmem)
            {
                end = Math.Min(end, layout.LowmemLimit >> PlatformLayout.PageShift);
            }

            var start = Math.Max(next, first);
            foreach (var reserved in Reserved)
            {
                // Memory memblock handed out at boot above the frontier: step over it.
                if (start < reserved.Pfn + reserved.Pages && reserved.Pfn < start + pages)
                {
                    start = reserved.Pfn + reserved.Pages;
                }
            }

            if (start < end && pages <= end - start)
            {
                pfn = start;
                return highmem ? this with { NextHighPfn = start + pages } : this with { NextPfn = start + pages };
            }
        }

        pfn = 0;
        return null;
    }
}
