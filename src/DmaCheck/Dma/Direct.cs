using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// dma-direct (kernel/dma/direct.c, include/linux/dma-direct.h): the backend without dma_map_ops.
public static partial class DmaApi
{
    /// <summary>
    /// dma_direct_alloc() (kernel/dma/direct.c, v5.10..v6.4) on arm64 (DMA_DIRECT_REMAP, DMA_COHERENT_POOL) and on
    /// arm32 with LPAE (neither, so a non-coherent device goes to arch_dma_alloc = __dma_alloc). No memory encryption,
    /// no restricted pool; the default CMA area when the scenario sets <c>cma</c>. The order of steps is the kernel's
    /// (reference §1.3, §1.3.13 for v5.10).
    /// </summary>
    public static DmaState DmaDirectAlloc(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        size = PlatformLayout.PageAlign(size);
        var layout = env.Layout;
        cpuAddr = 0;
        handle = DmaMappingError;
        if (layout.Arch is Arch.Mips32 or Arch.RiscV64 or Arch.Ppc32 && !dev.Coherent)
        {
            // MIPS: ARCH_HAS_DMA_SET_UNCACHED (arch_dma_prep_coherent, then the KSEG1 address of arch_dma_set_uncached);
            // RISC-V: DMA_DIRECT_REMAP with pgprot_dmacoherent (Svpbmt NC, or the T-Head MAE page attributes);
            // powerpc: DMA_DIRECT_REMAP after arch_dma_prep_coherent's flush_dcache_range.
            throw new NotModelledException($"dma_alloc_coherent({dev.Name}) for a non-coherent device on {layout.Arch} ({layout.Name}): "
                + layout.Arch switch
                {
                    Arch.Mips32 => "the uncached KSEG1 alias of arch_dma_set_uncached",
                    Arch.RiscV64 => "the non-cacheable remap (Svpbmt or T-Head page attributes)",
                    _ => "the non-cacheable remap of the 32-bit powerpc DMA_DIRECT_REMAP",
                } + " is not modelled");
        }

        if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
        {
            env.Profile.RequireModelled(ProfileGaps.NoKernelMapping);

            // dma_direct_alloc_no_mapping (inline before v5.16): pages, prep of the lowmem alias, the page as cookie, no memset.
            if (DirectAllocPages(env, s.Kernel, dev, size, gfp, $"dma_alloc_attrs({dev.Name}, NO_KERNEL_MAPPING)", ops, out var npfn) is not { } nk)
            {
                return s;
            }

            if (layout.IsLowmemPfn(npfn))
            {
                ArchDmaPrepCoherent(env, nk, npfn, size, ops);
            }

            cpuAddr = layout.StructPageAddress(npfn);
            handle = layout.PhysToDma(PlatformLayout.PfnToPhys(npfn));
            return Record(s with { Kernel = nk }, dev, cpuAddr, handle, size, npfn, CoherentSource.NoKernelMapping);
        }

        if (layout.Arch == Arch.Arm32 && !dev.Coherent)
        {
            // !ARCH_HAS_DMA_SET_UNCACHED && !DMA_DIRECT_REMAP && !dev_is_dma_coherent(dev): arch_dma_alloc().
            return ArmDmaAlloc(env, s, dev, size, gfp, ops, out cpuAddr, out handle);
        }

        var remap = layout.Arch == Arch.Arm64 && !dev.Coherent; // DMA_DIRECT_REMAP && !dev_is_dma_coherent(dev)
        if (remap && !gfp.AllowsBlocking())
        {
            env.Profile.RequireModelled(ProfileGaps.AtomicPool);
            return DmaDirectAllocFromPool(env, s, dev, size, ops, out cpuAddr, out handle);
        }

        if (DirectAllocPages(env, s.Kernel, dev, size, gfp & ~Gfp.__GFP_ZERO, $"dma_alloc_coherent({dev.Name})", ops, out var pfn) is not { } k)
        {
            return s;
        }

        if (remap)
        {
            // prot = dma_pgprot(dev, PAGE_KERNEL, attrs) = pgprot_dmacoherent (or pgprot_writecombine): Normal-NC on arm64.
            ArchDmaPrepCoherent(env, k, pfn, size, ops);
            k = k.Vmap(pfn, size / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, $"dma_alloc_coherent({dev.Name}) NC remap",
                "dma_common_contiguous_remap: vmap with pgprot_dmacoherent (Normal-NC)", ops, out cpuAddr);
        }
        else
        {
            cpuAddr = layout.LinearAddress(pfn);
        }

        k.CpuStore(cpuAddr, size, WriterTable.Zero, remap ? "dma_direct_alloc: memset(ret, 0, size) through the NC remap" : "dma_direct_alloc: memset(ret, 0, size) through the linear map", ops);
        handle = layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
        return Record(s with { Kernel = k }, dev, cpuAddr, handle, size, pfn, CoherentSource.DirectPages);
    }

    private static DmaState Record(DmaState s, DmaDevice dev, ulong cpuAddr, ulong handle, ulong size, ulong pfn, CoherentSource source) =>
        s with { Coherent = s.Coherent.Add(new CoherentAllocation(dev.Name, cpuAddr, handle, size, pfn, PlatformLayout.GetOrder(size), source)) };

    /// <summary>
    /// __dma_direct_alloc_pages(dev, size, gfp) (kernel/dma/direct.c, v5.10..v6.4): dma_alloc_contiguous first, which
    /// serves a request of more than one page from the default CMA area when the gfp allows blocking
    /// (cma_alloc_aligned: align = min(get_order(size), CONFIG_CMA_ALIGNMENT)); a CMA page the device cannot address is
    /// released again (dma_coherent_ok); otherwise, or when the area is full, alloc_pages_node.
    /// </summary>
    private static KernelState? DirectAllocPages(DmaEnvironment env, KernelState k, DmaDevice dev, ulong size, Gfp gfp, string owner, List<HwOp> ops, out ulong pfn)
    {
        if (gfp.AllowsBlocking() && size > PlatformLayout.PageSize &&
            Cma.Alloc(k, size >> PlatformLayout.PageShift, Math.Min(PlatformLayout.GetOrder(size), CmaArea.MaxAlignmentOrder), owner, ops, out pfn) is { } fromCma)
        {
            var dma = env.Layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
            if (dma + size - 1 <= Math.Min(DefaultCoherentMask, env.Layout.DmaLimit))
            {
                return fromCma;
            }

            throw new NotModelledException($"the CMA area at pfn 0x{pfn:x} is beyond {dev.Name}'s coherent DMA mask: dma_free_contiguous and the fallback to alloc_pages_node are not modelled");
        }

        return AllocPagesForDma(env, k, dev, size, gfp, owner, ops, out pfn);
    }

    /// <summary>
    /// Page sourcing for a coherent buffer (__dma_direct_alloc_pages / __dma_alloc_buffer): alloc_pages of the order,
    /// lowmem. A result the device cannot address would be retried in a lower zone; none of the bundled layouts
    /// needs that, so it stops the run as not modelled rather than guess.
    /// </summary>
    private static KernelState? AllocPagesForDma(DmaEnvironment env, KernelState k, DmaDevice dev, ulong size, Gfp gfp, string owner, List<HwOp> ops, out ulong pfn)
    {
        var order = PlatformLayout.GetOrder(size);
        if (order > KernelState.MaxOrder)
        {
            pfn = 0;
            return null; // above MAX_ORDER only CMA could have served it
        }

        if (size != PlatformLayout.PageSize << order && env.Layout.Arch == Arch.Arm32)
        {
            throw new NotModelledException($"__dma_alloc_buffer of {size} bytes: split_page and freeing the excess pages of the order-{order} block are not modelled; use a power-of-two number of pages");
        }

        if (k.TryAllocPages(gfp & ~Gfp.__GFP_HIGHMEM, order, owner, ops, out pfn) is not { } next)
        {
            return null;
        }

        var dma = env.Layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
        if (dma + size - 1 > Math.Min(DefaultCoherentMask, env.Layout.DmaLimit))
        {
            throw new NotModelledException($"pfn 0x{pfn:x} is beyond {dev.Name}'s coherent DMA mask: the retry in ZONE_DMA/ZONE_DMA32 (dma_coherent_ok) is not modelled");
        }

        return next;
    }

    /// <summary>arch_dma_prep_coherent(page, size): the arm64 hook per its switch; arm32 has none (no ARCH_HAS_DMA_PREP_COHERENT).</summary>
    private static void ArchDmaPrepCoherent(DmaEnvironment env, KernelState k, ulong pfn, ulong size, List<HwOp> ops)
    {
        if (env.Layout.Arch == Arch.Arm64)
        {
            Arm64DmaHooks.ArchDmaPrepCoherent(env, k, pfn, size, ops);
        }
    }

    /// <summary>
    /// dma_direct_free() (v5.10..v6.4): a NO_KERNEL_MAPPING cookie goes straight back (dma_free_contiguous); arm32
    /// non-coherent buffers go to arch_dma_free; pool memory back to the pool; a vmalloc cpu address is vunmapped
    /// (no cache maintenance); the pages are found from the DMA handle (dma_direct_to_page), never from cpu_addr.
    /// </summary>
    public static DmaState DmaDirectFree(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        var layout = env.Layout;
        var order = PlatformLayout.GetOrder(PlatformLayout.PageAlign(size));
        var record = FindBuffer(s, handle, cpuAddr);
        var k = s.Kernel;
        if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
        {
            // cpu_addr is the struct page cookie: dma_free_contiguous(dev, cpu_addr, size) → __free_pages(page, order).
            var cookiePfn = unchecked(cpuAddr - layout.StructPageBase) / layout.StructPageSize;
            k = k.DmaFreeContiguous(cookiePfn, size, ExpectedOwner(k, record, cookiePfn, dev, attrs), "dma_direct_free", ops, findings);
            return Forget(s with { Kernel = k }, record);
        }

        if (layout.Arch == Arch.Arm32 && !dev.Coherent)
        {
            return ArmDmaFree(env, s, dev, size, cpuAddr, handle, ops, findings);
        }

        if (s.Pool is { } pool && pool.Contains(cpuAddr))
        {
            // dma_free_from_pool → gen_pool_free.
            return Forget(s with { Pool = pool.Free(cpuAddr - pool.Va, PlatformLayout.PageAlign(size), "dma_free_from_pool") }, record);
        }

        if (layout.IsVmallocAddr(cpuAddr))
        {
            k = k.Vunmap(cpuAddr, "dma_direct_free: vunmap", ops);
        }

        var pfn = layout.DmaToPhys(handle) >> PlatformLayout.PageShift;
        k = k.DmaFreeContiguous(pfn, size, ExpectedOwner(k, record, pfn, dev, attrs), "dma_direct_free", ops, findings);
        return Forget(s with { Kernel = k }, record);
    }

    /// <summary>The live coherent buffer a free or an mmap names, by its handle (and CPU address when given), whatever the device argument.</summary>
    private static CoherentAllocation? FindBuffer(DmaState s, ulong handle, ulong cpuAddr) =>
        s.Coherent.FirstOrDefault(c => c.Handle == handle && c.CpuAddr == cpuAddr) ?? s.Coherent.FirstOrDefault(c => c.Handle == handle);

    /// <summary>
    /// Whose pages a free of <paramref name="pfn"/> may release: the block's own owner when the frame is the start of
    /// a live buffer's pages (however the attributes were spelt), else what this device's allocation would be called.
    /// </summary>
    private static string ExpectedOwner(KernelState k, CoherentAllocation? record, ulong pfn, DmaDevice dev, DmaAttrs attrs) =>
        record is not null && record.Pfn == pfn && k.Allocator.Allocated.TryGetValue(pfn, out var block) ? block.Owner : OwnerName(dev, attrs);

    private static string OwnerName(DmaDevice dev, DmaAttrs attrs) =>
        (attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0 ? $"dma_alloc_attrs({dev.Name}, NO_KERNEL_MAPPING)" : $"dma_alloc_coherent({dev.Name})";

    private static DmaState Forget(DmaState s, CoherentAllocation? record) =>
        record is null ? s : s with { Coherent = s.Coherent.Remove(record) };

    /// <summary>
    /// dma_direct_map_page() (kernel/dma/direct.h, v5.10..v6.4): with swiotlb=force every mapping bounces; otherwise
    /// dma_addr = phys_to_dma(phys), and an address the device cannot reach (dma_capable() false) or, from v6.5, a
    /// small non-coherent kmalloc buffer (<see cref="DmaKmallocNeedsBounce"/>) bounces through swiotlb_map when there
    /// is a pool, or fails ("DMA addr ... overflow", DMA_MAPPING_ERROR) when there is none. A non-coherent device then
    /// gets arch_sync_dma_for_device unless DMA_ATTR_SKIP_CPU_SYNC. Reached from <see cref="DmaMapPage"/> when
    /// dma_map_direct() holds (no dma_map_ops).
    /// </summary>
    private static DmaState DmaDirectMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        var dma = env.Layout.PhysToDma(phys);
        if (s.Swiotlb is { ForceBounce: true } || !DmaCapable(env, dev, dma, size) || DmaKmallocNeedsBounce(s.Kernel, dev, size, dir))
        {
            if (s.Swiotlb is not { } pool)
            {
                // dma_direct_map_page: no pool to bounce through.
                findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                    $"DMA addr 0x{dma:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the buffer and there is no swiotlb pool; the map returns DMA_MAPPING_ERROR"));
                handle = DmaMappingError;
                return s;
            }

            return SwiotlbMap(env, s, pool, dev, phys, size, dir, attrs, function, function, ops, findings, out handle);
        }

        handle = dma;
        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, function, ops);
        }

        return RecordMapping(s, new StreamingMapping(dev.Name, handle, phys, size, dir, function));
    }

    /// <summary>The model's own record of a live streaming mapping (what the findings and dma-debug look at), kept by handle.</summary>
    private static DmaState RecordMapping(DmaState s, StreamingMapping mapping) =>
        s with { Mappings = CanonicalList.Insert(s.Mappings, mapping, StreamingMapping.Order) };

    /// <summary>Drops the model's record of the mapping <paramref name="handle"/> of <paramref name="dev"/>, if there is one.</summary>
    private static DmaState ForgetMapping(DmaState s, DmaDevice dev, ulong handle)
    {
        var record = s.Mappings.FirstOrDefault(m => m.Device == dev.Name && m.Handle == handle);
        return record is null ? s : s with { Mappings = s.Mappings.Remove(record) };
    }

    /// <summary>
    /// dma_kmalloc_needs_bounce(dev, size, dir) (include/linux/dma-map-ops.h, v6.5): with
    /// CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC, a non-coherent mapping that is not DMA_TO_DEVICE bounces unless its size is
    /// at least 2 * ARCH_DMA_MINALIGN or kmalloc_size_roundup(size) is a multiple of dma_get_cache_alignment()
    /// (<see cref="CacheGeometry.DmaGetCacheAlignment"/>: the writeback granule on arm64 since v6.5). The pointer is not
    /// looked at: a buffer embedded in a structure is the caller's business.
    /// </summary>
    public static bool DmaKmallocNeedsBounce(KernelState k, DmaDevice dev, ulong size, DmaDirection dir)
    {
        if (!k.Config.KmallocBounce || dev.Coherent || dir == DmaDirection.DMA_TO_DEVICE)
        {
            return false;
        }

        var cache = k.Config.CacheConstants;
        var cacheAlign = (ulong)cache.DmaGetCacheAlignment(k.Hardware);
        return !(size >= 2 * (ulong)cache.ArchDmaMinalign || SlabState.SizeRoundup(size, k.Config.KmallocMinalign) % cacheAlign == 0);
    }

    /// <summary>
    /// dma_capable(dev, addr, size, true) (include/linux/dma-direct.h): the last byte is within
    /// min_not_zero(*dev->dma_mask, dev->bus_dma_limit).
    /// </summary>
    public static bool DmaCapable(DmaEnvironment env, DmaDevice dev, ulong addr, ulong size)
    {
        if (addr == DmaMappingError)
        {
            return false;
        }

        var limit = Math.Min(dev.DmaMask, env.Layout.DmaLimit);
        return size == 0 ? addr <= limit : size - 1 <= limit && addr <= limit - (size - 1);
    }

    /// <summary>arch_sync_dma_for_device: arm64's (<see cref="Arm64DmaHooks"/>), 32-bit arm's (<see cref="Arm32DmaHooks"/>), MIPS' (<see cref="MipsDmaHooks"/>), RISC-V's (<see cref="RiscvDmaHooks"/>) or 32-bit powerpc's (<see cref="PpcDmaHooks"/>).</summary>
    private static void ArchSyncDmaForDevice(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        switch (env.Layout.Arch)
        {
            case Arch.Arm64:
                Arm64DmaHooks.ArchSyncDmaForDevice(env, k, paddr, size, dir, caller, ops);
                break;
            case Arch.Arm32:
                Arm32DmaHooks.ArchSyncDmaForDevice(k, paddr, size, dir, caller, ops);
                break;
            case Arch.Mips32:
                MipsDmaHooks.ArchSyncDmaForDevice(k, paddr, size, dir, caller, ops);
                break;
            case Arch.RiscV64:
                RiscvDmaHooks.ArchSyncDmaForDevice(env, k, paddr, size, dir, caller, ops);
                break;
            case Arch.Ppc32:
                PpcDmaHooks.ArchSyncDmaForDevice(env, k, paddr, size, dir, caller, ops);
                break;
            default:
                throw new InvalidOperationException($"{caller}: {env.Layout.Arch} has no arch_sync_dma_for_device: its devices are coherent");
        }
    }

    /// <summary>arch_sync_dma_for_cpu: arm64's, 32-bit arm's, MIPS', RISC-V's or 32-bit powerpc's.</summary>
    private static void ArchSyncDmaForCpu(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        switch (env.Layout.Arch)
        {
            case Arch.Arm64:
                Arm64DmaHooks.ArchSyncDmaForCpu(k, paddr, size, dir, caller, ops);
                break;
            case Arch.Arm32:
                Arm32DmaHooks.ArchSyncDmaForCpu(env, k, paddr, size, dir, caller, ops);
                break;
            case Arch.Mips32:
                MipsDmaHooks.ArchSyncDmaForCpu(env, k, paddr, size, dir, caller, ops);
                break;
            case Arch.RiscV64:
                RiscvDmaHooks.ArchSyncDmaForCpu(k, paddr, size, dir, caller, ops);
                break;
            case Arch.Ppc32:
                PpcDmaHooks.ArchSyncDmaForCpu(env, k, paddr, size, dir, caller, ops);
                break;
            default:
                throw new InvalidOperationException($"{caller}: {env.Layout.Arch} has no arch_sync_dma_for_cpu: its devices are coherent");
        }
    }

    /// <summary>
    /// dma_direct_unmap_page() (kernel/dma/direct.h, v5.10..v6.4): unless DMA_ATTR_SKIP_CPU_SYNC,
    /// dma_direct_sync_single_for_cpu (which for a bounce address copies the slots back for DMA_FROM_DEVICE and
    /// DMA_BIDIRECTIONAL); then a bounce address's slots are released (swiotlb_tbl_unmap_single with
    /// DMA_ATTR_SKIP_CPU_SYNC: no second copy).
    /// </summary>
    private static DmaState DmaDirectUnmapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        if ((attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            DmaDirectSyncSingleForCpu(env, s, dev, handle, size, dir, function, ops, findings);
        }

        var tlb = env.Layout.DmaToPhys(handle);
        var next = ForgetMapping(s, dev, handle);
        return next.Swiotlb is { } pool && pool.Contains(tlb)
            ? SwiotlbTblUnmapSingle(env, next, pool, tlb, size, dir, attrs | DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, function, function, ops, findings)
            : next;
    }

    /// <summary>
    /// dma_direct_sync_single_for_cpu() (kernel/dma/direct.h, v5.10..v6.4): arch_sync_dma_for_cpu for a non-coherent
    /// device (on the bounce slots when bouncing), then, for a bounce address, swiotlb_sync_single_for_cpu.
    /// </summary>
    private static void DmaDirectSyncSingleForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var paddr = env.Layout.DmaToPhys(handle);
        if (!dev.Coherent)
        {
            ArchSyncDmaForCpu(env, s.Kernel, paddr, size, dir, function, ops);
        }

        if (s.Swiotlb is { } pool && pool.Contains(paddr))
        {
            SwiotlbSyncSingleForCpu(env, s, pool, paddr, size, dir, function, function, ops, findings);
        }
    }

    /// <summary>
    /// dma_direct_sync_single_for_device() (kernel/dma/direct.h, v5.10..v6.4): for a bounce address,
    /// swiotlb_sync_single_for_device first, then arch_sync_dma_for_device for a non-coherent device.
    /// </summary>
    private static DmaState DmaDirectSyncSingleForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var paddr = env.Layout.DmaToPhys(handle);
        var next = s.Swiotlb is { } pool && pool.Contains(paddr) ? SwiotlbSyncSingleForDevice(env, s, pool, paddr, size, dir, function, ops, findings) : s;
        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, paddr, size, dir, function, ops);
        }

        return next;
    }

    /// <summary>
    /// dma_direct_map_sg (kernel/dma/direct.c, v5.10..v6.5): entry by entry, sg-&gt;dma_address =
    /// dma_direct_map_page(dev, sg_page(sg), sg-&gt;offset, sg-&gt;length, dir, attrs) (so each entry bounces and gets
    /// arch_sync_dma_for_device on its own; dma-direct merges nothing) and sg_dma_len(sg) = sg-&gt;length. When an entry
    /// fails, the entries already mapped are unmapped with DMA_ATTR_SKIP_CPU_SYNC and the call fails (-EIO since
    /// v5.16, 0 before); the result is the number of entries mapped (nents) or 0.
    /// </summary>
    private static DmaState DmaDirectMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped) =>
        MapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, DmaDirectMapPage, "dma_direct_map_page", DmaDirectUnmapPage, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, out mapped);

    /// <summary>
    /// dma_direct_unmap_sg (v5.10..v6.5): dma_direct_unmap_page(dev, sg-&gt;dma_address, sg_dma_len(sg), dir, attrs)
    /// for each of the first nents entries (each syncs for the CPU unless DMA_ATTR_SKIP_CPU_SYNC, and releases its
    /// bounce slots).
    /// </summary>
    private static DmaState DmaDirectUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings) =>
        UnmapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, DmaDirectUnmapPage);

    /// <summary>
    /// dma_direct_sync_sg_for_cpu (v5.10..v6.5): for each entry, arch_sync_dma_for_cpu on
    /// dma_to_phys(sg_dma_address(sg)) for sg-&gt;length bytes (a non-coherent device), then the swiotlb copy back; and
    /// arch_sync_dma_for_cpu_all once (nothing on arm64 and arm).
    /// </summary>
    private static void DmaDirectSyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            DmaDirectSyncSingleForCpu(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
        }
    }

    /// <summary>
    /// dma_direct_sync_sg_for_device (v5.10..v6.5): for each entry, the swiotlb copy into the slots first, then
    /// arch_sync_dma_for_device on sg-&gt;length bytes (a non-coherent device).
    /// </summary>
    private static DmaState DmaDirectSyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            s = DmaDirectSyncSingleForDevice(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
        }

        return s;
    }

    /// <summary>
    /// dma_direct_map_resource (kernel/dma/direct.c, v5.10..v6.4): the DMA address is the physical address itself (no
    /// phys_to_dma, no cache maintenance: it is meant for MMIO), refused with "DMA addr ... overflow" when the device
    /// cannot reach it. arm_dma_ops' .map_resource is this function too.
    /// </summary>
    private static DmaState DmaDirectMapResource(DmaEnvironment env, DmaState s, DmaDevice dev, ulong phys, ulong size, string function, List<Finding> findings, out ulong handle)
    {
        // dma_capable(dev, paddr, size, false), else dev_err_once "DMA addr ... overflow" + WARN.
        if (!DmaCapable(env, dev, phys, size))
        {
            var pfn = phys >> PlatformLayout.PageShift;
            findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"DMA addr 0x{phys:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the resource; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return s;
        }

        handle = phys;
        return s;
    }
}
