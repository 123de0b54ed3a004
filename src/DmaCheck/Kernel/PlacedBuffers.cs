namespace DmaCheck.Kernel;

/// <summary>
/// A buffer the scenario places at a given physical address (<c>buffer NAME { phys = PA, size = N }</c>): the bytes a
/// recorded trace's mapping had (<c>dmacheck trace --emit-scenario</c>), or any kernel buffer whose place matters.
/// </summary>
public sealed record PlacedBufferSpec(string Name, ulong Pa, ulong Size)
{
    public bool Overlaps(ulong pa, ulong size) => pa < Pa + Size && Pa < pa + size;
}

/// <summary>A placed buffer the layout or the boot reservations cannot hold: bad input at the declaration <see cref="Index"/>.</summary>
public sealed class PlacementException(int index, string message) : Exception(message)
{
    public int Index { get; } = index;
}

/// <summary>
/// Placed buffers are reserved at boot, after the DT reserved-memory nodes, CMA and the swiotlb pool, as memblock_reserve
/// of their pages would be: the page allocator never hands those pages out, and each page belongs to the first buffer
/// placed in it (two buffers may share a page, as kmalloc objects do, never a byte). The CPU reaches a buffer through
/// its linear-map address.
/// </summary>
public static class PlacedBuffers
{
    /// <summary>The largest placed buffer: one block of MAX_ORDER, as the model's other boot reservations.</summary>
    public const ulong MaxSize = PlatformLayout.PageSize << KernelState.MaxOrder;

    public static KernelState Place(KernelState k, IReadOnlyList<PlacedBufferSpec> specs)
    {
        var layout = k.Layout;
        var alloc = k.Allocator;
        var ownPages = new HashSet<ulong>();
        for (var i = 0; i < specs.Count; i++)
        {
            var s = specs[i];
            if (s.Size == 0 || s.Size > MaxSize)
            {
                throw new PlacementException(i, $"a placed buffer holds 1 byte to {MaxSize >> 20} MiB, not {s.Size}");
            }

            if (s.Pa > ulong.MaxValue - s.Size || !layout.IsRam(s.Pa, s.Size))
            {
                throw new PlacementException(i, $"PA 0x{s.Pa:x}..0x{s.Pa + s.Size:x} is not all DRAM of layout {layout.Name} ({string.Join(", ", layout.Banks.Select(b => $"0x{b.Base:x}..0x{b.End:x}"))})");
            }

            if (s.Pa + s.Size > layout.LowmemLimit)
            {
                throw new PlacementException(i, $"PA 0x{s.Pa:x}..0x{s.Pa + s.Size:x} runs above lowmem (0x{layout.LowmemLimit:x}): the buffer would have no linear-map address");
            }

            var first = s.Pa >> PlatformLayout.PageShift;
            var last = (s.Pa + s.Size - 1) >> PlatformLayout.PageShift;
            if (first < layout.FirstFreePfn)
            {
                throw new PlacementException(i, $"PA 0x{s.Pa:x} lies in the kernel image and boot allocations of layout {layout.Name} (below PA 0x{PlatformLayout.PfnToPhys(layout.FirstFreePfn):x})");
            }

            for (var j = 0; j < i; j++)
            {
                if (specs[j].Overlaps(s.Pa, s.Size))
                {
                    throw new PlacementException(i, $"PA 0x{s.Pa:x}..0x{s.Pa + s.Size:x} overlaps buffer {specs[j].Name} (0x{specs[j].Pa:x}..0x{specs[j].Pa + specs[j].Size:x})");
                }
            }

            for (var pfn = first; pfn <= last; pfn++)
            {
                if (!ownPages.Contains(pfn) && alloc.BlockOf(pfn) is { } taken)
                {
                    throw new PlacementException(i, $"PA 0x{s.Pa:x}..0x{s.Pa + s.Size:x} overlaps {taken.AsOwner().Describe()} (pfn 0x{pfn:x}), reserved at boot before placed buffers");
                }
            }

            var run = first;
            while (run <= last)
            {
                if (ownPages.Contains(run))
                {
                    run++;
                    continue;
                }

                var end = run;
                while (end + 1 <= last && !ownPages.Contains(end + 1))
                {
                    end++;
                }

                var block = new PageBlock(run, 0, s.Name) { Count = end - run + 1 };
                alloc = alloc with { Allocated = alloc.Allocated.Add(run, block), Reserved = alloc.Reserved.Add(block).Sort((a, b) => a.Pfn.CompareTo(b.Pfn)) };
                for (var p = run; p <= end; p++)
                {
                    ownPages.Add(p);
                }

                run = end + 1;
            }
        }

        return k with { Allocator = alloc };
    }
}
