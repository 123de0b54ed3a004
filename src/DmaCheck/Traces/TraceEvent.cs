using DmaCheck.Dma;

namespace DmaCheck.Traces;

/// <summary>
/// The dma:* and swiotlb:* tracepoints dmacheck reads (include/trace/events/dma.h since v6.12, 038eb433dc14;
/// include/trace/events/swiotlb.h). docs/trace.md gives each one's format string at each kernel version.
/// </summary>
public enum TraceEventKind
{
    /// <summary>dma_map_page (v6.12..v6.17; on v6.12.0..47 also dma_alloc_pages), dma_map_phys (v6.18+).</summary>
    Map,

    /// <summary>dma_map_resource (v6.12..v6.17).</summary>
    MapResource,

    /// <summary>dma_unmap_page (v6.12..v6.17; on v6.12.0..47 also dma_free_pages), dma_unmap_phys (v6.18+).</summary>
    Unmap,

    /// <summary>dma_unmap_resource.</summary>
    UnmapResource,

    /// <summary>dma_map_sg: dma_addrs, sizes and phys_addrs of the list; nents=/ents= counts and [TRUNCATED] since v6.19 and 6.12.y backports.</summary>
    MapSg,

    /// <summary>dma_map_sg_err (v6.13+): a failed dma_map_sg; its "dma_addrs=" holds physical addresses.</summary>
    MapSgErr,

    /// <summary>dma_unmap_sg: only the physical start of each element.</summary>
    UnmapSg,

    SyncSingleForCpu,
    SyncSingleForDevice,
    SyncSgForCpu,
    SyncSgForDevice,

    /// <summary>dma_alloc (dma_alloc_attrs; "dir=" since v6.13).</summary>
    Alloc,

    /// <summary>dma_free (dma_free_attrs).</summary>
    Free,

    /// <summary>dma_alloc_pages (v6.13+; before, the kernel traced it as dma_map_page).</summary>
    AllocPages,

    /// <summary>dma_free_pages (v6.13+).</summary>
    FreePages,

    /// <summary>dma_alloc_sgt (dma_alloc_noncontiguous, v6.13+).</summary>
    AllocSgt,

    /// <summary>dma_free_sgt (v6.13+).</summary>
    FreeSgt,

    /// <summary>dma_alloc_sgt_err (v6.13+): a failed dma_alloc_noncontiguous.</summary>
    AllocSgtErr,

    /// <summary>swiotlb_bounced (swiotlb_map): the map that follows bounces; dev_addr is phys_to_dma of the original buffer.</summary>
    SwiotlbBounced,
}

/// <summary>
/// One parsed dma:* or swiotlb:* event. Addresses are as printed (%llx); <see cref="Direction"/> is null when the
/// event has no dir= field (v6.12.0's dma_alloc) or the value is not a direction (dma_alloc's uninitialised dir on
/// v6.13..v6.17), <see cref="DirText"/> keeps what was printed.
/// </summary>
public sealed class TraceEvent
{
    public required TraceEventKind Kind { get; init; }

    /// <summary>The event name as printed (dma_map_page, dma_map_phys, ...).</summary>
    public required string Name { get; init; }

    public required long Line { get; init; }

    /// <summary>The timestamp as printed (seconds, usually with microseconds).</summary>
    public required string Timestamp { get; init; }

    public required double Seconds { get; init; }

    public required string Device { get; init; }

    public DmaDirection? Direction { get; init; }

    public string? DirText { get; init; }

    public ulong DmaAddr { get; init; }

    public ulong Size { get; init; }

    public ulong? Phys { get; init; }

    public string Attrs { get; init; } = "";

    /// <summary>dma_alloc's gfp flags as show_gfp_flags prints them (e.g. GFP_KERNEL|__GFP_ZERO), or null.</summary>
    public string? Flags { get; init; }

    public string? VirtAddr { get; init; }

    /// <summary>dma_map_sg, dma_sync_sg_*: the DMA addresses (of the mapped elements).</summary>
    public ulong[] DmaAddrs { get; init; } = [];

    /// <summary>dma_map_sg, dma_sync_sg_*: the DMA lengths.</summary>
    public ulong[] Sizes { get; init; } = [];

    /// <summary>dma_map_sg, dma_unmap_sg, dma_map_sg_err, dma_*_sgt: sg_phys of each element.</summary>
    public ulong[] PhysAddrs { get; init; } = [];

    /// <summary>dma_map_sg: the nents passed (full count; from nents=a/b when printed, else the phys_addrs count).</summary>
    public int Nents { get; init; }

    /// <summary>dma_map_sg: the mapped count (full count; from ents=a/b when printed, else the dma_addrs count).</summary>
    public int Ents { get; init; }

    /// <summary>dma_map_sg: whether the counts were printed (v6.19, 6.12.y backport).</summary>
    public bool HasCounts { get; init; }

    /// <summary>dma_map_sg: " [TRUNCATED]": only the first 128 elements were recorded.</summary>
    public bool Truncated { get; init; }

    /// <summary>swiotlb_bounced: FORCE or NORMAL.</summary>
    public string? Force { get; init; }

    public bool HasAttr(string name) => Attrs.Split('|').Contains(name);
}

/// <summary>A line dmacheck cannot read: file, line, column (1-based), the plain message and the line's text.</summary>
public sealed class TraceInputException(string file, long line, int column, string message, string text) : Exception(message)
{
    public string File { get; } = file;

    public long Line { get; } = line;

    public int Column { get; } = column;

    public string Text { get; } = text;
}
