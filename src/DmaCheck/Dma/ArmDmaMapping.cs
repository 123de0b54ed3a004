using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// arm_dma_ops and the arm32 arch_dma_alloc / arch_dma_free (arch/arm/mm/dma-mapping.c).
public static partial class DmaApi
{
    /// <summary>
    /// arm32 arch_dma_alloc → __dma_alloc (arch/arm/mm/dma-mapping.c, v5.10..v5.15): the allocator is cma if the
    /// gfp allows blocking and the device has a CMA area (none on these boards), simple for a coherent device,
    /// remap if the gfp allows blocking, pool otherwise.
    /// </summary>
    private static DmaState ArmDmaAlloc(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        cpuAddr = 0;
        handle = DmaMappingError;
        var layout = env.Layout;
        gfp &= ~Gfp.__GFP_COMP;
        if (dev.Coherent)
        {
            // simple_allocator → __dma_alloc_buffer(COHERENT): cleared through the linear map, no flush; the linear-map address.
            if (AllocPagesForDma(env, s.Kernel, dev, size, gfp, $"dma_alloc_coherent({dev.Name})", ops, out var spfn) is not { } sk)
            {
                return s;
            }

            cpuAddr = layout.LinearAddress(spfn);
            sk.CpuStore(cpuAddr, size, WriterTable.Zero, "__dma_clear_buffer: memset(ptr, 0, size) through the linear map (coherent: no flush)", ops);
            handle = layout.PhysToDma(PlatformLayout.PfnToPhys(spfn));
            return Record(s with { Kernel = sk }, dev, cpuAddr, handle, size, spfn, CoherentSource.ArmSimple);
        }

        if (gfp.AllowsBlocking())
        {
            // remap_allocator → __alloc_remap_buffer: __dma_alloc_buffer(NORMAL) clears the pages through the linear
            // map and flushes them (dmac_flush_range, outer_flush_range), then dma_common_contiguous_remap.
            if (AllocPagesForDma(env, s.Kernel, dev, size, gfp, $"dma_alloc_coherent({dev.Name})", ops, out var pfn) is not { } k)
            {
                return s;
            }

            var lm = layout.LinearAddress(pfn);
            k.CpuStore(lm, size, WriterTable.Zero, "__dma_clear_buffer: memset(ptr, 0, size) through the linear map", ops);
            Arm32Cache.DmacFlushRange(k, lm, lm + size, "__dma_clear_buffer", ops);
            Arm32Cache.OuterFlushRange(k, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PfnToPhys(pfn) + size, "__dma_clear_buffer", ops);
            k = k.Vmap(pfn, size / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, $"dma_alloc_coherent({dev.Name}) NC remap",
                "__alloc_remap_buffer: dma_common_contiguous_remap with pgprot_dmacoherent (bufferable: Normal-NC)", ops, out cpuAddr);
            handle = layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
            return Record(s with { Kernel = k }, dev, cpuAddr, handle, size, pfn, CoherentSource.ArmRemap);
        }

        // pool_allocator → __alloc_from_pool: gen_pool_alloc and nothing else; the memory is not cleared again.
        s = EnsureArmPool(env, s, ops);
        if (s.Pool!.Alloc(PlatformLayout.PageAlign(size), out var offset) is not { } pool)
        {
            return s; // "coherent pool exhausted" path: NULL
        }

        cpuAddr = pool.Va + offset;
        var ppfn = pool.Pfn + (offset >> PlatformLayout.PageShift);
        handle = layout.PhysToDma(PlatformLayout.PfnToPhys(ppfn));
        return Record(s with { Pool = pool }, dev, cpuAddr, handle, size, ppfn, CoherentSource.ArmPool);
    }

    /// <summary>
    /// arm32 atomic_pool_init (postcore_initcall): DEFAULT_DMA_COHERENT_POOL_SIZE (256 KiB) from CMA if there is a
    /// default area (none here), else __alloc_remap_buffer with GFP_KERNEL | GFP_DMA: cleared, flushed and remapped
    /// non-cacheable once, at boot. Created at first use, which is equivalent.
    /// </summary>
    private static DmaState EnsureArmPool(DmaEnvironment env, DmaState s, List<HwOp> ops)
    {
        if (s.Pool is not null)
        {
            return s;
        }

        const ulong poolSize = 256UL << 10;
        var k = s.Kernel.TryAllocPages(Gfp.GFP_KERNEL | Gfp.GFP_DMA, PlatformLayout.GetOrder(poolSize), "the atomic DMA pool", ops, out var pfn)
            ?? throw new NotModelledException("the atomic pool's pages do not fit in this layout");
        var lm = env.Layout.LinearAddress(pfn);
        k.CpuStore(lm, poolSize, WriterTable.Zero, "atomic_pool_init (at boot): __dma_clear_buffer memset through the linear map", ops);
        Arm32Cache.DmacFlushRange(k, lm, lm + poolSize, "atomic_pool_init (at boot): __dma_clear_buffer", ops);
        Arm32Cache.OuterFlushRange(k, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PfnToPhys(pfn) + poolSize, "atomic_pool_init (at boot): __dma_clear_buffer", ops);
        k = k.Vmap(pfn, poolSize / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, "atomic DMA pool", "atomic_pool_init (at boot): dma_common_contiguous_remap", ops, out var va);
        return s with { Kernel = k, Pool = new AtomicPool(va, pfn, poolSize, ImmutableSortedDictionary<ulong, ulong>.Empty) };
    }

    /// <summary>
    /// arm32 arch_dma_free → __arm_dma_free: the page from the handle (pfn_to_page(dma_to_pfn)), the buffer record
    /// from cpu_addr (arm_dma_buffer_find; "Freeing invalid buffer!" and a leak if there is none), then the
    /// allocator's free: remap → dma_common_free_remap (vunmap) and __dma_free_buffer; pool → gen_pool_free.
    /// </summary>
    private static DmaState ArmDmaFree(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, List<HwOp> ops, List<Finding> findings)
    {
        var record = s.Coherent.FirstOrDefault(c => c.CpuAddr == cpuAddr && c.Source is CoherentSource.ArmRemap or CoherentSource.ArmPool or CoherentSource.ArmSimple);
        if (record is null)
        {
            throw new KernelBugException("__arm_dma_free", $"WARN: Freeing invalid buffer! (0x{cpuAddr:x} is not a buffer __dma_alloc handed out); the pages leak");
        }

        if (record.Source == CoherentSource.ArmPool)
        {
            return Forget(s with { Pool = s.Pool!.Free(cpuAddr - s.Pool.Va, size, "__free_from_pool") }, record);
        }

        var k = record.Source == CoherentSource.ArmRemap ? s.Kernel.Vunmap(cpuAddr, "dma_common_free_remap: vunmap", ops) : s.Kernel;
        var pfn = env.Layout.DmaToPhys(handle) >> PlatformLayout.PageShift;
        k = k.FreePages(pfn, PlatformLayout.GetOrder(PlatformLayout.PageAlign(size)), ExpectedOwner(k, record, pfn, dev, DmaAttrs.None), "__dma_free_buffer", ops, findings);
        return Forget(s with { Kernel = k }, record);
    }

    /// <summary>
    /// The swiotlb pool under arm_dma_ops: 32-bit arm without LPAE has no swiotlb (ARM_LPAE selects it), and
    /// arm_dma_ops never bounce (dmabounce is not modelled), so a scenario that sets one up there stops at its first
    /// streaming call.
    /// </summary>
    private static void ArmCheckNoSwiotlb(DmaEnvironment env, DmaState s, string function)
    {
        if (s.Swiotlb is not null)
        {
            throw new NotModelledException($"{function} under arm_dma_ops on {env.Layout.Name} with a swiotlb pool: arm_dma_ops never bounces (dmabounce is not modelled)");
        }
    }

    /// <summary>
    /// arm_dma_map_page / arm_coherent_dma_map_page (arch/arm/mm/dma-mapping.c, v5.10..v5.18): unless
    /// DMA_ATTR_SKIP_CPU_SYNC, __dma_page_cpu_to_dev for a non-coherent device (arm_coherent_dma_map_page does no
    /// maintenance); the handle is pfn_to_dma(page_to_pfn(page)) + offset. No dma_capable test and no bounce: a mask that
    /// does not cover the board's memory is refused earlier, by dma_set_mask (arm_dma_supported), which the model does
    /// not run, so such a device stops the run as not modelled.
    /// </summary>
    private static DmaState ArmDmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        ArmCheckNoSwiotlb(env, s, function);
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        handle = env.Layout.PhysToDma(phys);
        if (!DmaCapable(env, dev, handle, size))
        {
            throw new NotModelledException($"{function} → arm_dma_map_page: {dev.Name}'s DMA mask 0x{dev.DmaMask:x} does not reach PA 0x{phys:x}; arm_dma_ops never check it at map time, because dma_set_mask (arm_dma_supported) refuses a mask that does not cover the DMA zone, and that refusal is not modelled");
        }

        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            Arm32DmaHooks.ArchSyncDmaForDevice(s.Kernel, phys, size, dir, function, ops);
        }

        return RecordMapping(s, new StreamingMapping(dev.Name, handle, phys, size, dir, function));
    }

    /// <summary>
    /// arm_dma_unmap_page (v5.10..v5.18): unless DMA_ATTR_SKIP_CPU_SYNC, __dma_page_dev_to_cpu on
    /// pfn_to_page(dma_to_pfn(handle)) + (handle &amp; ~PAGE_MASK). arm_coherent_dma_ops has no .unmap_page, so
    /// dma_unmap_page_attrs does nothing for a coherent device.
    /// </summary>
    private static DmaState ArmDmaUnmapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        ArmCheckNoSwiotlb(env, s, function);
        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            Arm32DmaHooks.ArchSyncDmaForCpu(env, s.Kernel, env.Layout.DmaToPhys(handle), size, dir, function, ops);
        }

        return ForgetMapping(s, dev, handle);
    }

    /// <summary>arm_dma_sync_single_for_cpu (v5.10..v5.18): __dma_page_dev_to_cpu; arm_coherent_dma_ops has no such op.</summary>
    private static void ArmDmaSyncSingleForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        ArmCheckNoSwiotlb(env, s, function);
        if (!dev.Coherent)
        {
            Arm32DmaHooks.ArchSyncDmaForCpu(env, s.Kernel, env.Layout.DmaToPhys(handle), size, dir, function, ops);
        }
    }

    /// <summary>arm_dma_sync_single_for_device (v5.10..v5.18): __dma_page_cpu_to_dev; arm_coherent_dma_ops has no such op.</summary>
    private static void ArmDmaSyncSingleForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        ArmCheckNoSwiotlb(env, s, function);
        if (!dev.Coherent)
        {
            Arm32DmaHooks.ArchSyncDmaForDevice(s.Kernel, env.Layout.DmaToPhys(handle), size, dir, function, ops);
        }
    }

    /// <summary>
    /// arm_dma_map_sg (v5.10..v5.18; arm_coherent_dma_ops' too): ops-&gt;map_page for each entry, sg_dma_len(s) =
    /// s-&gt;length (the model writes both fields after the map). On a failed entry the ones before are unmapped with
    /// the caller's attrs and the result is 0; arm_dma_map_page cannot fail, so that path is not reached.
    /// </summary>
    private static DmaState ArmDmaMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped) =>
        MapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, ArmDmaMapPage, "arm_dma_map_page", ArmDmaUnmapPage, DmaAttrs.None, out mapped);

    /// <summary>arm_dma_unmap_sg (v5.10..v5.18): ops-&gt;unmap_page(dev, sg_dma_address(s), sg_dma_len(s), dir, attrs) for each entry.</summary>
    private static DmaState ArmDmaUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings) =>
        UnmapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, ArmDmaUnmapPage);

    /// <summary>arm_dma_sync_sg_for_cpu (v5.10..v5.18): ops-&gt;sync_single_for_cpu(dev, sg_dma_address(s), s-&gt;length, dir) for each entry.</summary>
    private static void ArmDmaSyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops)
    {
        for (var i = 0; i < nents; i++)
        {
            ArmDmaSyncSingleForCpu(env, s, dev, table.Entries[i].DmaAddress, table.Entries[i].Length, dir, function, ops);
        }
    }

    /// <summary>arm_dma_sync_sg_for_device (v5.10..v5.18): ops-&gt;sync_single_for_device for each entry.</summary>
    private static void ArmDmaSyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops)
    {
        for (var i = 0; i < nents; i++)
        {
            ArmDmaSyncSingleForDevice(env, s, dev, table.Entries[i].DmaAddress, table.Entries[i].Length, dir, function, ops);
        }
    }
}
