using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The hooks the DMA API front end (<see cref="DmaMapping{TDebug}"/>) calls around the backends, one per debug_dma_*
/// function that kernel/dma/mapping.c and include/linux/dma-mapping.h call (kernel/dma/debug.h since v5.15,
/// include/linux/dma-debug.h before). The Debug layer implements them over its own state
/// (<typeparamref name="TDebug"/>), which this layer does not know; <see cref="NoDmaDebugHooks{TDebug}"/> is the
/// set of empty stubs a kernel without CONFIG_DMA_API_DEBUG compiles in.
/// </summary>
/// <typeparam name="TDebug">The debug layer's state.</typeparam>
public interface IDmaDebugHooks<TDebug>
{
    /// <summary>debug_dma_alloc_coherent, after the backend's alloc.</summary>
    TDebug AllocCoherent(TDebug s, DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, int line, DmaAttrs attrs, List<Finding> findings);

    /// <summary>debug_dma_free_coherent, before the backend's free (only for a non-NULL cpu_addr).</summary>
    TDebug FreeCoherent(TDebug s, DmaState dma, DmaDevice dev, ulong size, ulong cpu, ulong handle, List<Finding> findings);

    /// <summary>
    /// debug_dma_map_page, after the backend's map: for a successful map of a known page, check_for_stack and
    /// check_for_illegal_area, then the entry. <paramref name="pfn"/> is null when the mapped page is not known (a
    /// dma_map_single of an address outside the linear map).
    /// </summary>
    TDebug MapPage(TDebug s, DmaState dma, DmaDevice dev, ulong? pfn, ulong offset, ulong size, DmaDirection dir, ulong handle, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings);

    /// <summary>debug_dma_unmap_page, after the backend's unmap.</summary>
    TDebug UnmapPage(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<Finding> findings);

    /// <summary>debug_dma_sync_single_for_cpu / for_device, after the backend's sync.</summary>
    TDebug SyncSingle(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, bool toCpu, string function, List<Finding> findings);

    /// <summary>debug_dma_map_sg, after a backend map_sg that mapped <paramref name="mapped"/> &gt; 0 entries.</summary>
    TDebug MapSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, int mapped, DmaDirection dir, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings);

    /// <summary>debug_dma_unmap_sg, before the backend's unmap_sg.</summary>
    TDebug UnmapSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<Finding> findings);

    /// <summary>debug_dma_sync_sg_for_cpu / for_device, after the backend's sync.</summary>
    TDebug SyncSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, bool toCpu, string function, List<Finding> findings);

    /// <summary>debug_dma_map_resource (debug_dma_map_phys since the dma_map_phys rework), after the backend.</summary>
    TDebug MapResource(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong phys, ulong size, DmaDirection dir, int line, List<Finding> findings);

    /// <summary>debug_dma_unmap_resource, after the backend (dma-direct has no unmap_resource).</summary>
    TDebug UnmapResource(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, List<Finding> findings);

    /// <summary>debug_dma_mapping_error, from dma_mapping_error().</summary>
    TDebug MappingError(TDebug s, DmaDevice dev, ulong handle);
}

/// <summary>
/// The do-nothing hooks of a kernel built without CONFIG_DMA_API_DEBUG: the static inline stubs of
/// kernel/dma/debug.h (v5.15+; include/linux/dma-debug.h before), which leave every state as it is.
/// </summary>
public sealed class NoDmaDebugHooks<TDebug> : IDmaDebugHooks<TDebug>
{
    public static NoDmaDebugHooks<TDebug> Instance { get; } = new();

    public TDebug AllocCoherent(TDebug s, DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, int line, DmaAttrs attrs, List<Finding> findings) => s;

    public TDebug FreeCoherent(TDebug s, DmaState dma, DmaDevice dev, ulong size, ulong cpu, ulong handle, List<Finding> findings) => s;

    public TDebug MapPage(TDebug s, DmaState dma, DmaDevice dev, ulong? pfn, ulong offset, ulong size, DmaDirection dir, ulong handle, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings) => s;

    public TDebug UnmapPage(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<Finding> findings) => s;

    public TDebug SyncSingle(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, bool toCpu, string function, List<Finding> findings) => s;

    public TDebug MapSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, int mapped, DmaDirection dir, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings) => s;

    public TDebug UnmapSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<Finding> findings) => s;

    public TDebug SyncSg(TDebug s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, bool toCpu, string function, List<Finding> findings) => s;

    public TDebug MapResource(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong phys, ulong size, DmaDirection dir, int line, List<Finding> findings) => s;

    public TDebug UnmapResource(TDebug s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, List<Finding> findings) => s;

    public TDebug MappingError(TDebug s, DmaDevice dev, ulong handle) => s;
}
