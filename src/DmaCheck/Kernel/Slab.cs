using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>One kmalloc cache: its object size, the slab page objects are carved from, and its freelist (LIFO, as SLUB's).</summary>
/// <param name="ObjectSize">The size of each object: the kmalloc size class rounded up to the minimum alignment.</param>
/// <param name="SlabVa">The linear-map address of the current slab, or 0 before the first.</param>
/// <param name="Next">The next never-used object of the current slab.</param>
public sealed record KmallocCache(ulong ObjectSize, ulong SlabVa, ulong Next, ImmutableStack<ulong> Free);

/// <summary>
/// The kmalloc caches (mm/slab_common.c and SLUB, v6.4..v6.5): immutable. Sizes up to 8 KiB (KMALLOC_MAX_CACHE_SIZE
/// with SLUB) come from kmalloc-8 .. kmalloc-8k, with 96 and 192 as in kmalloc_info; new_kmalloc_cache rounds each
/// class up to __kmalloc_minalign() (<see cref="KernelConfig.KmallocMinalign"/>), so with a 128-byte minimum the
/// kmalloc-8 .. kmalloc-128 objects are all 128 bytes apart and kmalloc-192 is 256. Each slab is one page (two for
/// 8 KiB objects) from the page allocator, carved in address order; freed objects are reused last-in first-out.
/// </summary>
public sealed record SlabState(ImmutableSortedDictionary<ulong, KmallocCache> Caches, ImmutableSortedDictionary<ulong, ulong> Live)
{
    public static SlabState Empty { get; } = new(ImmutableSortedDictionary<ulong, KmallocCache>.Empty, ImmutableSortedDictionary<ulong, ulong>.Empty);

    /// <summary>KMALLOC_MAX_CACHE_SIZE with SLUB: two pages. Larger requests go to the page allocator (kmalloc_large).</summary>
    public const ulong MaxCacheSize = 2 * PlatformLayout.PageSize;

    private static readonly ulong[] Classes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

    /// <summary>kmalloc_size_roundup(size) for sizes a cache serves: the object size kmalloc would hand out.</summary>
    public static ulong SizeRoundup(ulong size, int minalign)
    {
        foreach (var c in Classes)
        {
            var aligned = AlignUp(c, (ulong)minalign);
            if (aligned >= size)
            {
                return aligned;
            }
        }

        return PlatformLayout.PageSize << PlatformLayout.GetOrder(size); // kmalloc_large: whole pages of an order
    }

    private static ulong AlignUp(ulong value, ulong align) => (value + align - 1) / align * align;
}

/// <summary>kmalloc and kfree on <see cref="KernelState"/>.</summary>
public static class Kmalloc
{
    /// <summary>
    /// kmalloc(size, gfp): an object of the size class's cache, or kmalloc_large's pages above
    /// <see cref="SlabState.MaxCacheSize"/>; 0 (NULL) when memory runs out. A new slab page comes from alloc_pages
    /// (post_alloc_hook clears it under init_on_alloc); the object itself is cleared through the linear map by
    /// slab_post_alloc_hook for init_on_alloc or __GFP_ZERO.
    /// </summary>
    public static KernelState Alloc(KernelState k, ulong size, Gfp gfp, List<HwOp> ops, out ulong va)
    {
        va = 0;
        gfp &= ~Gfp.__GFP_HIGHMEM;
        if (size > SlabState.MaxCacheSize)
        {
            var order = size > PlatformLayout.PageSize << KernelState.MaxOrder ? KernelState.MaxOrder + 1 : PlatformLayout.GetOrder(size);
            if (k.TryAllocPages(gfp, order, "kmalloc", ops, out var pfn) is not { } large)
            {
                return k;
            }

            va = large.Layout.LinearAddress(pfn);
            return large;
        }

        var objectSize = SlabState.SizeRoundup(size, k.Config.KmallocMinalign);
        var cache = k.Slab.Caches.TryGetValue(objectSize, out var known) ? known : new KmallocCache(objectSize, 0, 0, []);
        var slabBytes = Math.Max(PlatformLayout.PageSize, objectSize);
        if (!cache.Free.IsEmpty)
        {
            cache = cache with { Free = cache.Free.Pop(out va) };
        }
        else
        {
            if (cache.SlabVa == 0 || cache.Next + objectSize > slabBytes)
            {
                if (k.TryAllocPages(gfp & ~Gfp.__GFP_ZERO, PlatformLayout.GetOrder(slabBytes), SlabOwner(objectSize), ops, out var pfn) is not { } grown)
                {
                    return k;
                }

                k = grown;
                cache = cache with { SlabVa = k.Layout.LinearAddress(pfn), Next = 0 };
            }

            va = cache.SlabVa + cache.Next;
            cache = cache with { Next = cache.Next + objectSize };
        }

        var next = k with { Slab = new SlabState(k.Slab.Caches.SetItem(objectSize, cache), k.Slab.Live.Add(va, objectSize)) };
        if (k.Config.WantInitOnAlloc(gfp))
        {
            next.CpuStore(va, objectSize, WriterTable.Zero, $"slab_post_alloc_hook: memset of the kmalloc-{objectSize} object ({(k.Config.InitOnAlloc ? "init_on_alloc" : "__GFP_ZERO")})", ops);
        }

        return next;
    }

    /// <summary>The owner name of a kmalloc cache's slab pages.</summary>
    private static string SlabOwner(ulong objectSize) => $"kmalloc-{objectSize} slab";

    /// <summary>
    /// Whether no byte of PA [pa, pa+length) can be handed out by a later allocation unless something is freed first:
    /// each byte lies in a live kmalloc object, or in an allocated page block that is not a slab (a slab page's other
    /// bytes are free objects or never-used space). Memory not allocated at all counts as free (reserved memory too: the
    /// answer only has to be safe).
    /// </summary>
    public static bool IsSettled(KernelState k, ulong pa, ulong length)
    {
        var at = pa;
        var end = pa + length;
        while (at < end)
        {
            var pfn = at >> PlatformLayout.PageShift;
            if (k.Allocator.BlockOf(pfn) is not { } block)
            {
                return false;
            }

            if (!block.Owner.StartsWith("kmalloc-", StringComparison.Ordinal) || !block.Owner.EndsWith(" slab", StringComparison.Ordinal))
            {
                at = Math.Min(end, (block.Pfn + block.Pages) << PlatformLayout.PageShift);
                continue;
            }

            var va = k.Layout.LinearAddress(pfn) + (at & (PlatformLayout.PageSize - 1));
            var covered = false;
            foreach (var (objectVa, size) in k.Slab.Live)
            {
                if (objectVa <= va && va - objectVa < size)
                {
                    at = Math.Min(end, at + (objectVa + size - va));
                    covered = true;
                    break;
                }
            }

            if (!covered)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The object size of the live kmalloc object at <paramref name="va"/>, if there is one.</summary>
    public static ulong? ObjectSize(KernelState k, ulong va) => k.Slab.Live.TryGetValue(va, out var size) ? size : null;

    /// <summary>
    /// kfree(p): a slab object goes back on its cache's freelist (cleared first under init_on_free, by
    /// slab_free_hook); kmalloc_large pages go back to the page allocator. Freeing an address that is not a live
    /// object is a double free or a bad pointer, which the page allocator's checks then report.
    /// </summary>
    public static KernelState Free(KernelState k, ulong va, ulong requested, List<HwOp> ops, List<Finding> findings)
    {
        if (k.Slab.Live.TryGetValue(va, out var objectSize))
        {
            if (k.Config.WantInitOnFree())
            {
                k.CpuStore(va, objectSize, WriterTable.Zero, $"slab_free_hook: memset of the kmalloc-{objectSize} object (init_on_free)", ops);
            }

            var cache = k.Slab.Caches[objectSize];
            return k with { Slab = new SlabState(k.Slab.Caches.SetItem(objectSize, cache with { Free = cache.Free.Push(va) }), k.Slab.Live.Remove(va)) };
        }

        if (requested <= SlabState.MaxCacheSize && k.Slab.Caches.Values.Any(c => c.SlabVa != 0 && va >= c.SlabVa && va < c.SlabVa + Math.Max(PlatformLayout.PageSize, c.ObjectSize)))
        {
            var pfn = k.Layout.VirtToPfn(va);
            throw new FatalFindingException(new Finding(FindingKinds.DoubleFree, "kfree", pfn, k.OwnerOf(pfn), Severity.Corruption,
                $"kfree of 0x{va:x}, which is not a live kmalloc object (freed already, or not the start of one): SLUB's freelist is corrupted", Fatal: true));
        }

        return k.FreePages(k.Layout.VirtToPfn(va), PlatformLayout.GetOrder(requested), "kmalloc", "kfree", ops, findings);
    }
}
