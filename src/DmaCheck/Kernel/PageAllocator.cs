using System.Collections.Immutable;

namespace DmaCheck.Kernel;

/// <summary>A block of 2^Order page frames handed out by the page allocator, and to whom.</summary>
public sealed record PageBlock(ulong Pfn, int Order, string Owner)
{
    public ulong Pages => 1UL << Order;

    public bool Contains(ulong pfn) => pfn >= Pfn && pfn < Pfn + Pages;
}

/// <summary>
/// The page allocator's bookkeeping (mm/page_alloc.c), immutable. Version 1 is deterministic and simple, not a
/// buddy allocator: a freed block is reused first (last freed, first reused) by a request of the same order,
/// otherwise fresh frames come from a rising frontier. Which frames a buffer gets changes no verdict in
/// version 1, since fresh frames all start in the same state.
/// </summary>
public sealed record PageAllocatorState(ulong NextPfn, ImmutableList<PageBlock> FreeBlocks, ImmutableSortedDictionary<ulong, PageBlock> Allocated)
{
    public static PageAllocatorState Boot(PlatformLayout layout) =>
        new(layout.FirstFreePfn, [], ImmutableSortedDictionary<ulong, PageBlock>.Empty);

    public PageBlock? OwnerOf(ulong pfn)
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
}
