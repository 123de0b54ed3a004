using System.Collections.Immutable;
using System.Numerics;
using DmaCheck.Hardware;

namespace DmaCheck.Dma;

/// <summary>
/// An IOVA domain (drivers/iommu/iova.c, v6.12; the allocator's logic is the same since the retry walk of v5.11,
/// 4e89dce72521, and iova_find_limit of v5.15): the allocated ranges in IOVA pages of <see cref="Granule"/> bytes,
/// with the anchor node at IOVA_ANCHOR (~0UL) always present; the two cached nodes the top-down search starts from
/// (cached32_node for limits within 32 bits, cached_node above); max32_alloc_size, the size below which a 32-bit
/// search is known to fail; and the per-size IOVA caches. Immutable.
/// </summary>
/// <remarks>
/// The IOVA caches (iova_rcache) are per CPU with a shared depot in the kernel; the model has one CPU's: per size
/// order (0..IOVA_RANGE_CACHE_MAX_SIZE-1) the loaded magazine, last freed on top. A freed range stays allocated in
/// the tree while it sits in a magazine, and comes back only to an allocation of the same order, as in the kernel.
/// More than IOVA_MAG_SIZE cached ranges of one order (the prev magazine and the depot) are not modelled.
/// </remarks>
/// <param name="Ranges">pfn_lo → pfn_hi of every node, the anchor included.</param>
/// <param name="Cached32">pfn_lo of cached32_node.</param>
/// <param name="Cached">pfn_lo of cached_node.</param>
/// <param name="Magazines">For each size order, the loaded magazine's pfns, bottom first.</param>
public sealed record IovaDomain(ulong Granule, ulong StartPfn, ImmutableSortedDictionary<ulong, ulong> Ranges, ulong Cached32, ulong Cached, ulong Max32AllocSize,
    ImmutableArray<ImmutableList<ulong>> Magazines)
{
    /// <summary>IOVA_ANCHOR: the pfn of the anchor node, above every allocation.</summary>
    public const ulong Anchor = ulong.MaxValue;

    /// <summary>IOVA_RANGE_CACHE_MAX_SIZE: ranges of order 0..5 (up to 32 IOVA pages) are cached on free.</summary>
    public const int RangeCacheMaxSize = 6;

    /// <summary>IOVA_MAG_SIZE (v6.12): a magazine holds this many pfns.</summary>
    public const int MagazineSize = 127;

    /// <summary>iova_shift(iovad).</summary>
    public int Shift => BitOperations.TrailingZeroCount(Granule);

    /// <summary>iovad-&gt;dma_32bit_pfn: 1UL &lt;&lt; (32 - iova_shift(iovad)).</summary>
    public ulong Dma32BitPfn => 1UL << (32 - Shift);

    /// <summary>
    /// init_iova_domain(iovad, granule, start_pfn) (v6.12): only the anchor in the tree, both cached nodes on it,
    /// max32_alloc_size = dma_32bit_pfn, empty caches. The granule is a power of two no larger than PAGE_SIZE
    /// (BUG_ON otherwise): the caller checks that.
    /// </summary>
    public static IovaDomain Init(ulong granule, ulong startPfn)
    {
        if (!BitOperations.IsPow2(granule))
        {
            throw new ArgumentException($"IOVA granule {granule} is not a power of two", nameof(granule));
        }

        var shift = BitOperations.TrailingZeroCount(granule);
        return new IovaDomain(granule, startPfn, ImmutableSortedDictionary<ulong, ulong>.Empty.Add(Anchor, Anchor), Anchor, Anchor, 1UL << (32 - shift),
            [.. Enumerable.Repeat(ImmutableList<ulong>.Empty, RangeCacheMaxSize)]);
    }

    /// <summary>
    /// alloc_iova_fast(iovad, size, limit_pfn, flush_rcache) (v6.12): a size below 32 pages is rounded up to a power of
    /// two; the IOVA cache of its order is tried first (a pfn that fits below the limit, <see cref="MagazinePop"/>), then
    /// the tree, top-down and size-aligned (<see cref="AllocIova"/>). When the tree is full and
    /// <paramref name="flushRcache"/>, the cached ranges are freed back to the tree and the tree is tried once more.
    /// Returns the new domain (changed even by a failure: max32_alloc_size, the flushed caches) and the first pfn, null
    /// (0 in the kernel) when nothing fits.
    /// </summary>
    public IovaDomain AllocFast(ulong size, ulong limitPfn, bool flushRcache, out ulong? pfn)
    {
        if (size < 1UL << (RangeCacheMaxSize - 1))
        {
            size = BitOperations.RoundUpToPowerOf2(size);
        }

        var order = OrderBaseTwo(size);
        if (order < RangeCacheMaxSize && limitPfn + 1 >= size && MagazinePop(Magazines[order], limitPfn + 1 - size) is { } index)
        {
            var mag = Magazines[order];
            pfn = mag[index];
            // iova_magazine_pop swaps the top into the popped slot.
            mag = index == mag.Count - 1 ? mag.RemoveAt(index) : mag.SetItem(index, mag[^1]).RemoveAt(mag.Count - 1);
            return this with { Magazines = Magazines.SetItem(order, mag) };
        }

        var tree = AllocIova(size, limitPfn, true, out pfn);
        if (pfn is not null || !flushRcache || Magazines.All(m => m.IsEmpty))
        {
            return tree;
        }

        // free_cpu_cached_iovas + free_global_cached_iovas: every cached range goes back to the tree.
        var flushed = tree;
        foreach (var mag in Magazines)
        {
            foreach (var cached in mag)
            {
                flushed = flushed.FreeIova(cached);
            }
        }

        flushed = flushed with { Magazines = [.. Enumerable.Repeat(ImmutableList<ulong>.Empty, RangeCacheMaxSize)] };
        return flushed.AllocIova(size, limitPfn, true, out pfn);
    }

    /// <summary>
    /// iova_magazine_pop(mag, limit_pfn): from the top down, the first pfn not above <paramref name="limitPfn"/>;
    /// null when there is none (the kernel then falls back to the tree).
    /// </summary>
    private static int? MagazinePop(ImmutableList<ulong> mag, ulong limitPfn)
    {
        for (var i = mag.Count - 1; i >= 0; i--)
        {
            if (mag[i] <= limitPfn)
            {
                return i;
            }
        }

        return null;
    }

    /// <summary>
    /// alloc_iova(iovad, size, limit_pfn, size_aligned) → __alloc_and_insert_iova_range(iovad, size, limit_pfn + 1,
    /// ...) (v6.12): walking down from the cached node for the limit, the highest free range of <paramref name="size"/>
    /// pages below the limit, its start aligned to the size rounded up to a power of two when
    /// <paramref name="sizeAligned"/>; when the walk from the cached node finds nothing, once more between the cached
    /// node and the limit (from iova_find_limit). On failure (<paramref name="pfn"/> null) max32_alloc_size remembers the size.
    /// </summary>
    public IovaDomain AllocIova(ulong size, ulong limitPfn, bool sizeAligned, out ulong? pfn)
    {
        pfn = null;
        limitPfn = unchecked(limitPfn + 1);
        var alignMask = ulong.MaxValue;
        if (sizeAligned)
        {
            alignMask <<= 64 - BitOperations.LeadingZeroCount(size - 1); // fls_long(size - 1)
        }

        var highPfn = limitPfn;
        var lowPfn = StartPfn;
        if (limitPfn <= Dma32BitPfn && size >= Max32AllocSize)
        {
            return this; // iova32_full
        }

        var curr = (ulong?)(limitPfn <= Dma32BitPfn ? Cached32 : Cached);
        var retryPfn = Ranges[curr.Value];
        ulong newPfn;
        while (true)
        {
            do
            {
                highPfn = Math.Min(highPfn, curr!.Value);
                newPfn = unchecked(highPfn - size) & alignMask;
                curr = Previous(curr.Value);
            }
            while (curr is { } c && newPfn <= Ranges[c] && newPfn >= lowPfn);

            if (highPfn < size || newPfn < lowPfn)
            {
                if (lowPfn == StartPfn && retryPfn < limitPfn)
                {
                    highPfn = limitPfn;
                    lowPfn = retryPfn + 1;
                    curr = FindLimit(limitPfn);
                    continue;
                }

                return this with { Max32AllocSize = size };
            }

            break;
        }

        pfn = newPfn;
        var next = this with { Ranges = Ranges.Add(newPfn, newPfn + size - 1) };
        // __cached_rbnode_insert_update
        return newPfn + size - 1 < Dma32BitPfn ? next with { Cached32 = newPfn } : next with { Cached = newPfn };
    }

    /// <summary>rb_prev: the node just below the one starting at <paramref name="pfnLo"/>, or null.</summary>
    private ulong? Previous(ulong pfnLo)
    {
        ulong? best = null;
        foreach (var lo in Ranges.Keys)
        {
            if (lo >= pfnLo)
            {
                break;
            }

            best = lo;
        }

        return best;
    }

    /// <summary>rb_next: the node just above the one starting at <paramref name="pfnLo"/> (the anchor at the top).</summary>
    private ulong Next(ulong pfnLo) => Ranges.Keys.First(lo => lo > pfnLo);

    /// <summary>
    /// iova_find_limit(iovad, limit_pfn) (v5.15+): the anchor for a limit above 32 bits, else the lowest node that
    /// reaches the limit (the walk down from there meets every node below it in order).
    /// </summary>
    private ulong FindLimit(ulong limitPfn) =>
        limitPfn > Dma32BitPfn ? Anchor : Ranges.First(r => r.Value >= limitPfn).Key;

    /// <summary>
    /// free_iova_fast(iovad, pfn, size) (v6.12): the range goes into the IOVA cache of its size's order
    /// (order_base_2(size)) and stays allocated in the tree; a range of order 6 or more is freed to the tree.
    /// </summary>
    public IovaDomain FreeFast(ulong pfn, ulong size)
    {
        var order = OrderBaseTwo(size);
        if (order >= RangeCacheMaxSize)
        {
            return FreeIova(pfn);
        }

        if (Magazines[order].Count >= MagazineSize)
        {
            throw new NotModelledException($"more than {MagazineSize} IOVA ranges of order {order} in the IOVA cache: the prev magazine and the depot (iova_rcache) are not modelled");
        }

        return this with { Magazines = Magazines.SetItem(order, Magazines[order].Add(pfn)) };
    }

    /// <summary>
    /// free_iova(iovad, pfn) → remove_iova (v6.12): the node holding <paramref name="pfn"/> leaves the tree; a cached
    /// node at or below it moves up to its successor (__cached_rbnode_delete_update), and freeing within 32 bits resets
    /// max32_alloc_size. A pfn in no node frees nothing.
    /// </summary>
    public IovaDomain FreeIova(ulong pfn)
    {
        if (Find(pfn) is not { } lo || lo == Anchor)
        {
            return this;
        }

        var hi = Ranges[lo];
        var next = this;
        if (Cached32 == lo || (hi < Dma32BitPfn && lo >= Cached32))
        {
            next = next with { Cached32 = Next(lo) };
        }

        if (lo < Dma32BitPfn)
        {
            next = next with { Max32AllocSize = Dma32BitPfn };
        }

        if (lo >= Cached)
        {
            next = next with { Cached = Next(lo) };
        }

        return next with { Ranges = Ranges.Remove(lo) };
    }

    /// <summary>find_iova: the pfn_lo of the node holding <paramref name="pfn"/>, or null.</summary>
    public ulong? Find(ulong pfn)
    {
        foreach (var (lo, hi) in Ranges)
        {
            if (lo > pfn)
            {
                break;
            }

            if (pfn <= hi)
            {
                return lo;
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="pfn"/> sits in an IOVA cache (freed by its user, still reserved in the tree).</summary>
    public bool IsCached(ulong pfn) => Magazines.Any(m => m.Contains(pfn));

    /// <summary>order_base_2(n): the order of the smallest power of two at least <paramref name="n"/>.</summary>
    public static int OrderBaseTwo(ulong n) => n <= 1 ? 0 : 64 - BitOperations.LeadingZeroCount(n - 1);
}
