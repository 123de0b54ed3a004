using DmaCheck.Dma;
using DmaCheck.Kernel;

namespace DmaCheck.Debug;

/// <summary>
/// The dma-debug hooks of a kernel with CONFIG_DMA_API_DEBUG (kernel/dma/debug.c, v5.10..v6.x) over
/// <see cref="DebugState"/>: what <see cref="DmaMapping{TDebug}"/> calls around the backends.
/// </summary>
/// <param name="config">The kernel configuration: CONFIG_DMA_API_DEBUG_SG (<see cref="KernelConfig.DebugSg"/>).</param>
public sealed class DmaDebugHooks(DmaEnvironment env, KernelConfig config) : IDmaDebugHooks<DebugState>
{
    /// <summary>debug_dma_alloc_coherent: the coherent entry goes through add_dma_entry, so its cacheline is tracked too.</summary>
    public DebugState AllocCoherent(DebugState s, DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, int line, DmaAttrs attrs, List<Finding> findings) =>
        DmaDebug.AllocCoherent(s, dma, dev, cpu, handle, size, line, findings, attrs);

    public DebugState FreeCoherent(DebugState s, DmaState dma, DmaDevice dev, ulong size, ulong cpu, ulong handle, List<Finding> findings) =>
        DmaDebug.Unmap(s, dma, dev, handle, size, DebugType.Coherent, DmaDirection.DMA_BIDIRECTIONAL, cpu, "dma_free_coherent", findings);

    /// <summary>debug_dma_map_page: check_for_stack, then check_for_illegal_area, before the entry is added; the entry records the buffer's physical address and, when bouncing, the slots the device reaches.</summary>
    public DebugState MapPage(DebugState s, DmaState dma, DmaDevice dev, ulong? pfn, ulong offset, ulong size, DmaDirection dir, ulong handle, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings)
    {
        if (!DmaApi.DmaMappingErrorCheck(handle) && pfn is { } pagePfn)
        {
            DmaDebug.CheckForStack(dma, dev, current, pagePfn, offset, function, findings);
            DmaDebug.CheckForIllegalArea(dma, dev, pagePfn, offset, size, function, findings);
        }

        var mapped = dma.Mappings.LastOrDefault(x => x.Handle == handle && x.Device == dev.Name);
        return DmaDebug.Map(s, dma, dev, handle, mapped?.Phys ?? dma.Kernel.Layout.DmaToPhys(handle), size, dir, function, line, findings, mapped?.Tlb, attrs);
    }

    public DebugState UnmapPage(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<Finding> findings) =>
        DmaDebug.Unmap(s, dma, dev, handle, size, DebugType.Single, dir, null, function, findings);

    public DebugState SyncSingle(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, bool toCpu, string function, List<Finding> findings) =>
        DmaDebug.Sync(s, dma, dev, handle, size, dir, toCpu, function, findings);

    public DebugState MapSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nents, int mapped, DmaDirection dir, DmaAttrs attrs, string function, int line, TaskStack? current, List<Finding> findings) =>
        DmaDebug.MapSg(s, dma, dev, table, nents, mapped, dir, attrs, config.DebugSg, function, line, findings, current);

    public DebugState UnmapSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<Finding> findings) =>
        DmaDebug.UnmapSg(s, dma, dev, table, nents, dir, function, findings);

    public DebugState SyncSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nents, DmaDirection dir, bool toCpu, string function, List<Finding> findings) =>
        DmaDebug.SyncSg(s, dma, dev, table, nents, dir, toCpu, function, findings);

    /// <summary>debug_dma_map_resource; its RAM report exists only in kernels with <see cref="Switches.MapResourceRamCheck"/>=debug_report.</summary>
    public DebugState MapResource(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong phys, ulong size, DmaDirection dir, int line, List<Finding> findings) =>
        DmaDebug.MapResource(s, dma, dev, handle, phys, size, dir, env.MapResourceRamCheck == MapResourceRamCheckMode.DebugReport, line, findings);

    public DebugState UnmapResource(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, List<Finding> findings) =>
        DmaDebug.Unmap(s, dma, dev, handle, size, DebugType.Resource, dir, null, "dma_unmap_resource", findings);

    public DebugState MappingError(DebugState s, DmaDevice dev, ulong handle) => DmaDebug.MappingError(s, dev, handle);
}
