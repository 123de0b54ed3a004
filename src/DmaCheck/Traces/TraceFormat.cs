namespace DmaCheck.Traces;

/// <summary>
/// Recognises which kernel's dma:* format a trace is in, from the event names and fields it holds
/// (include/trace/events/dma.h; docs/trace.md cites each change):
/// dma_map_page/dma_unmap_page and dma_map_resource (v6.12..v6.17) against dma_map_phys/dma_unmap_phys (v6.18+);
/// dma_alloc without dir= (v6.12) or with it (v6.13+); dma_alloc_pages, dma_*_sgt and the *_err events (v6.13+);
/// dma_map_sg with nents=/ents= and [TRUNCATED] (v6.19, and 6.12.y stable backports).
/// </summary>
public sealed class TraceFormat
{
    public bool MapPage { get; private set; }

    public bool MapPhys { get; private set; }

    /// <summary>dma_alloc/dma_free seen with (true) or without (false) dir=; null when none was seen.</summary>
    public bool? AllocDir { get; private set; }

    /// <summary>dma_map_sg seen with (true) or without (false) nents=/ents=; null when none was seen.</summary>
    public bool? SgCounts { get; private set; }

    /// <summary>dma_alloc_pages, dma_free_pages, dma_alloc_sgt, dma_free_sgt, dma_map_sg_err or dma_alloc_sgt_err seen (v6.13+).</summary>
    public bool V613Events { get; private set; }

    public bool Swiotlb { get; private set; }

    public void See(TraceEvent e)
    {
        switch (e.Kind)
        {
            case TraceEventKind.Map or TraceEventKind.Unmap:
                if (e.Name.EndsWith("_phys", StringComparison.Ordinal))
                {
                    MapPhys = true;
                }
                else
                {
                    MapPage = true;
                }

                break;
            case TraceEventKind.MapResource or TraceEventKind.UnmapResource:
                MapPage = true; // dma_map_resource is traced as dma_map_phys with DMA_ATTR_MMIO since v6.18
                break;
            case TraceEventKind.Alloc or TraceEventKind.Free:
                AllocDir = (AllocDir ?? false) || e.DirText is not null;
                break;
            case TraceEventKind.MapSg:
                SgCounts = (SgCounts ?? false) || e.HasCounts;
                break;
            case TraceEventKind.AllocPages or TraceEventKind.FreePages or TraceEventKind.AllocSgt or TraceEventKind.FreeSgt
                or TraceEventKind.MapSgErr or TraceEventKind.AllocSgtErr:
                V613Events = true;
                break;
            case TraceEventKind.SwiotlbBounced:
                Swiotlb = true;
                break;
        }
    }

    /// <summary>Whether the trace is from before v6.13's alloc tracing (dma_alloc without dir=): on v6.12.0..47, dma_alloc_pages shows as dma_map_page.</summary>
    public bool Pre613Alloc => AllocDir == false || (MapPage && AllocDir is null && !V613Events && SgCounts != true);

    /// <summary>Whether dma_alloc's dir= may be garbage: v6.13 added the field to dma_alloc without assigning it (dma_free was assigned).</summary>
    public bool AllocDirUntrusted => AllocDir == true && !MapPhys;

    /// <summary>The features seen, each with the kernels that print it.</summary>
    public IReadOnlyList<string> Features
    {
        get
        {
            var list = new List<string>();
            if (MapPhys)
            {
                list.Add("dma_map_phys (v6.18+)");
            }

            if (MapPage)
            {
                list.Add("dma_map_page/dma_map_resource (v6.12..v6.17)");
            }

            if (AllocDir is { } dir)
            {
                list.Add(dir ? "dma_alloc with dir= (v6.13+)" : "dma_alloc without dir= (v6.12)");
            }

            if (V613Events)
            {
                list.Add("dma_alloc_pages/_sgt/_err events (v6.13+)");
            }

            if (SgCounts is { } counts)
            {
                list.Add(counts ? "dma_map_sg with nents=/ents= (daafcc0ef0b3: v6.19, and stable backports)" : "dma_map_sg without nents= (v6.12..v6.18)");
            }

            if (Swiotlb)
            {
                list.Add("swiotlb_bounced");
            }

            return list;
        }
    }

    /// <summary>The kernels whose format this is, as far as the events seen tell.</summary>
    public string Kernel
    {
        get
        {
            if (MapPhys)
            {
                return SgCounts == true ? "v6.19 or later, or a 6.18.y with daafcc0ef0b3" : SgCounts == false ? "v6.18" : "v6.18 or later";
            }

            if (!MapPage && AllocDir is null && SgCounts is null && !V613Events)
            {
                return "unknown (no map or alloc events)";
            }

            if (AllocDir == false)
            {
                return SgCounts == true ? "a 6.12.y stable with daafcc0ef0b3 (nents=) but not the v6.13 alloc tracing" : "v6.12";
            }

            if (SgCounts == true)
            {
                return "a 6.12.y stable with daafcc0ef0b3 (nents=) backported, or a v6.13..v6.17 stable with it";
            }

            return AllocDir == true || V613Events ? "v6.13..v6.17, or a 6.12.y stable with the v6.13 alloc tracing backport" : "v6.12..v6.17";
        }
    }
}
