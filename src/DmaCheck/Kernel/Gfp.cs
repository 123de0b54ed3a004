namespace DmaCheck.Kernel;

/// <summary>
/// GFP flags (include/linux/gfp_types.h). Bit positions here are our own; the names and the composite masks
/// follow the kernel (v6.x): GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS, GFP_ATOMIC = __GFP_HIGH |
/// __GFP_KSWAPD_RECLAIM, GFP_NOWAIT = __GFP_KSWAPD_RECLAIM.
/// </summary>
[Flags]
public enum Gfp : uint
{
    None = 0,
    __GFP_DMA = 1 << 0,
    __GFP_HIGHMEM = 1 << 1,
    __GFP_DMA32 = 1 << 2,
    __GFP_HIGH = 1 << 5,
    __GFP_IO = 1 << 6,
    __GFP_FS = 1 << 7,
    __GFP_ZERO = 1 << 8,
    __GFP_DIRECT_RECLAIM = 1 << 10,
    __GFP_KSWAPD_RECLAIM = 1 << 11,
    __GFP_NOWARN = 1 << 13,
    __GFP_COMP = 1 << 18,
    __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM,
    GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS,
    GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM,
    GFP_NOWAIT = __GFP_KSWAPD_RECLAIM,
    GFP_DMA = __GFP_DMA,
    GFP_DMA32 = __GFP_DMA32,
}

public static class GfpExtensions
{
    /// <summary>gfpflags_allow_blocking(): true when __GFP_DIRECT_RECLAIM is set.</summary>
    public static bool AllowsBlocking(this Gfp gfp) => (gfp & Gfp.__GFP_DIRECT_RECLAIM) != 0;

    /// <summary>The flag names a scenario may use, with their values.</summary>
    public static IReadOnlyDictionary<string, Gfp> Names { get; } = new Dictionary<string, Gfp>(StringComparer.Ordinal)
    {
        ["GFP_KERNEL"] = Gfp.GFP_KERNEL,
        ["GFP_ATOMIC"] = Gfp.GFP_ATOMIC,
        ["GFP_NOWAIT"] = Gfp.GFP_NOWAIT,
        ["GFP_DMA"] = Gfp.GFP_DMA,
        ["GFP_DMA32"] = Gfp.GFP_DMA32,
        ["__GFP_ZERO"] = Gfp.__GFP_ZERO,
        ["__GFP_NOWARN"] = Gfp.__GFP_NOWARN,
        ["__GFP_HIGHMEM"] = Gfp.__GFP_HIGHMEM,
        ["__GFP_COMP"] = Gfp.__GFP_COMP,
    };

    public static string Format(this Gfp gfp)
    {
        foreach (var composite in new[] { Gfp.GFP_KERNEL, Gfp.GFP_ATOMIC })
        {
            if ((gfp & composite) == composite)
            {
                var rest = gfp & ~composite;
                return rest == Gfp.None ? composite.ToString() : $"{composite}|{rest}".Replace(", ", "|", StringComparison.Ordinal);
            }
        }

        return gfp.ToString().Replace(", ", "|", StringComparison.Ordinal);
    }
}
