using DmaCheck.Dma;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

/// <summary>
/// A device access that leaves the memory the driver gave its device: bytes outside the mapping (or coherent buffer)
/// the device computed its address from, or outside every live mapping and coherent buffer of the device. Nothing in
/// the kernel sees it (dma-direct has no translation to fault, and an IOMMU maps whole pages): the bytes land in
/// whatever the physical address holds, and the finding names that victim, down to the scenario's allocation.
/// </summary>
public static class DeviceBounds
{
    /// <summary>Reports <see cref="FindingKinds.DeviceOutsideMapping"/> for the access at DMA address <paramref name="dmaStart"/> (PA <paramref name="pa"/>), when it leaves its bounds.</summary>
    /// <param name="given">The handle variable the address was computed from, with its DMA address and size, if it was.</param>
    public static void Check(StepContext c, AccessStmt a, (string Name, ulong Start, ulong Size)? given, ulong dmaStart, ulong pa, ulong length, List<Finding> findings)
    {
        var program = c.Program;
        var device = program.Device!;
        var dma = c.S.Dma;
        var end = dmaStart + length;
        string? why = null;
        var outside = new List<(ulong Lo, ulong Hi)>();
        if (given is { } g && (dmaStart < g.Start || end - g.Start > g.Size))
        {
            var gEnd = g.Start + g.Size;
            why = dmaStart < g.Start
                ? $"starts {g.Start - dmaStart} bytes before '{g.Name}' (0x{g.Start:x}, {g.Size} bytes)"
                : $"runs {end - Math.Max(dmaStart, gEnd)} bytes past the end of '{g.Name}' (0x{g.Start:x}, {g.Size} bytes)";
            if (dmaStart < g.Start)
            {
                outside.Add((dmaStart, Math.Min(end, g.Start)));
            }

            if (end > gEnd)
            {
                outside.Add((Math.Max(dmaStart, gEnd), end));
            }
        }
        else if (!(given is { } r && FromMapResource(c, r.Name)) && !Covered(dma, device, dmaStart, length))
        {
            why = $"is covered by no live mapping or coherent buffer of {device}";
            outside.Add((dmaStart, end));
        }

        if (why is null)
        {
            return;
        }

        // One finding per victim: each allocation (or page) the bytes outside land in, in address order.
        var verb = a.IsWrite ? "writes" : "reads";
        var victims = 0;
        foreach (var (lo, hi) in outside)
        {
            var at = lo;
            while (at < hi && victims < MaxVictims)
            {
                var victimPa = pa + (at - dmaStart);
                var (owner, victim, extent) = Victim(c, victimPa);
                var bytes = Math.Min(hi - at, extent);
                findings.Add(new Finding(FindingKinds.DeviceOutsideMapping, program.Name, victimPa >> PlatformLayout.PageShift, owner,
                    a.IsWrite ? Severity.Corruption : Severity.InformationLeak,
                    $"{program.Name} ({device}) {verb} DMA 0x{dmaStart:x}..0x{end:x} (PA 0x{pa:x}), which {why}: its {bytes} bytes at PA 0x{victimPa:x} belong to {victim}"));
                victims++;
                at += bytes;
            }
        }
    }

    /// <summary>
    /// Whether a <c>kfree</c> of <paramref name="variable"/> has run: its object may since belong to a later kmalloc, which
    /// is then the victim's name (a variable keeps its value after the free).
    /// </summary>
    private static bool Kfreed(StepContext c, string variable)
    {
        for (var agent = 0; agent < c.Scenario.Agents.Count; agent++)
        {
            var index = c.Scenario.Agents[agent];
            var body = c.Scenario.Programs[index].Body;
            var state = c.S.Agents[agent];
            var pc = state.Frames.FirstOrDefault(f => f.Program == index)?.Pc ?? (state.Stopped is null ? body.Count : 0);
            for (var i = 0; i < Math.Min(pc, body.Count); i++)
            {
                if (body[i] is KfreeStmt { Pointer: { Var: var v, Constant: 0, Field: null } } && v == variable)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The most victims one access names (a runaway device crosses many pages).</summary>
    public const int MaxVictims = 8;

    /// <summary>
    /// Whether <paramref name="variable"/> is a handle from dma_map_resource, which dma-direct returns without recording
    /// a mapping (only dma-debug keeps an entry): an access inside it is not checked against the live mappings.
    /// </summary>
    private static bool FromMapResource(StepContext c, string variable) =>
        c.Scenario.Programs.SelectMany(p => p.Body).OfType<ResourceStmt>().Any(r => !r.IsUnmap && r.Target == variable);

    /// <summary>Whether a live streaming mapping or coherent buffer of <paramref name="device"/> holds the whole DMA range.</summary>
    private static bool Covered(DmaState dma, string device, ulong start, ulong length) =>
        dma.Mappings.Any(m => m.Device == device && m.Handle <= start && start + length - m.Handle <= m.Size)
        || dma.Coherent.Any(b => b.Device == device && b.Handle <= start && start + length - b.Handle <= PlatformLayout.PageAlign(b.Size));

    /// <summary>
    /// Who the byte at <paramref name="pa"/> belongs to: the scenario's live allocation that holds it (a kmalloc object,
    /// a coherent buffer, pages, another mapping's swiotlb slots), named by the variable its call assigned; otherwise the
    /// page's owner.
    /// </summary>
    /// <returns>The owner, as reports name it; a description; and how many bytes from <paramref name="pa"/> on are that owner's.</returns>
    public static (PageOwner Owner, string Description, ulong Extent) Victim(StepContext c, ulong pa)
    {
        var s = c.S;
        var layout = s.Dma.Kernel.Layout;
        foreach (var b in c.Scenario.Placed)
        {
            if (pa - b.Pa < b.Size)
            {
                return (new PageOwner(OwnerKind.Allocation, b.Name), $"'{b.Name}', a {b.Size}-byte buffer placed at PA 0x{b.Pa:x}", b.Size - (pa - b.Pa));
            }
        }

        foreach (var stmt in c.Scenario.Programs.SelectMany(p => p.Body))
        {
            switch (stmt)
            {
                case KmallocStmt k when !Kfreed(c, k.Target) && s.Vars.GetValueOrDefault(k.Target) is KernelPointer p && Kmalloc.ObjectSize(s.Dma.Kernel, p.Va) is { } size
                                        && layout.IsLinearMapAddr(p.Va) && pa - layout.VirtToPhys(p.Va) < size:
                    return (new PageOwner(OwnerKind.Allocation, k.Target), $"'{k.Target}', a {size}-byte kmalloc object at 0x{p.Va:x}", size - (pa - layout.VirtToPhys(p.Va)));
                case AllocCoherentStmt k when s.Vars.GetValueOrDefault(k.Target) is CoherentBuffer b
                                              && s.Dma.Coherent.FirstOrDefault(x => x.CpuAddr == b.Cpu && x.Handle == b.Dma) is { } live
                                              && pa - PlatformLayout.PfnToPhys(live.Pfn) < PlatformLayout.PageAlign(live.Size):
                    return (new PageOwner(OwnerKind.Allocation, k.Target), $"'{k.Target}', a {live.Size}-byte coherent buffer of {live.Device}",
                        PlatformLayout.PageAlign(live.Size) - (pa - PlatformLayout.PfnToPhys(live.Pfn)));
                case AllocPagesStmt k when s.Vars.GetValueOrDefault(k.Target) is PageRef g && s.Dma.Kernel.Allocator.Allocated.ContainsKey(g.Pfn)
                                           && pa - PlatformLayout.PfnToPhys(g.Pfn) < PlatformLayout.PageSize << g.Order:
                    return (new PageOwner(OwnerKind.Allocation, k.Target), $"'{k.Target}', {1 << g.Order} page(s) from alloc_pages at pfn 0x{g.Pfn:x}",
                        (PlatformLayout.PageSize << g.Order) - (pa - PlatformLayout.PfnToPhys(g.Pfn)));
                case MapStmt k when s.Vars.GetValueOrDefault(k.Target) is DmaHandle h
                                    && s.Dma.Mappings.FirstOrDefault(m => m.Handle == h.Dma && m.Tlb is not null) is { Tlb: { } tlb } bounced
                                    && pa - tlb < bounced.Size:
                    return (new PageOwner(OwnerKind.Allocation, k.Target), $"the swiotlb slots of mapping '{k.Target}' ({bounced.Size} bytes at PA 0x{tlb:x})",
                        bounced.Size - (pa - tlb));
            }
        }

        // Memory no allocation of the scenario holds: the rest of its page, whoever owns that (a slab's free space,
        // the swiotlb pool, free pages, a tenant).
        var owner = s.Dma.OwnerOf(pa >> PlatformLayout.PageShift);
        return (owner, owner.Describe(), PlatformLayout.PageSize - (pa & (PlatformLayout.PageSize - 1)));
    }
}
