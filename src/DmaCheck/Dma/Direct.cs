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

        if (layout.Arch == Arch.Arm32 && (!dev.Coherent || env.Profile.ArmDmaOps))
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
    /// dma_map_page_attrs() → dma_direct_map_page() (v5.10..v6.4) on arm64: with swiotlb=force every mapping bounces;
    /// otherwise dma_addr = phys_to_dma(phys), and an address the device cannot reach (dma_capable() false) bounces
    /// through swiotlb when there is a pool, or fails ("DMA addr ... overflow", DMA_MAPPING_ERROR) when there is none.
    /// A non-coherent device then gets arch_sync_dma_for_device unless DMA_ATTR_SKIP_CPU_SYNC.
    /// In a Xen dom0 the map goes to xen_swiotlb_map_page instead (drivers/xen/swiotlb-xen.c, v5.10..v6.x; see
    /// <see cref="XenVia"/>): the same decisions for the dom0's own, 1:1-mapped pages, without v6.5's kmalloc bounce.
    /// </summary>
    public static DmaState DmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        CheckDirection(dir, function);
        CheckStreamingModelled(env, s, function);
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        var dma = env.Layout.PhysToDma(phys);
        var xen = env.Profile.XenDom0;
        if (s.Swiotlb is { ForceBounce: true } || !DmaCapable(env, dev, dma, size) || MapBouncesForCacheSafety(env, s.Kernel, dev, size, dir))
        {
            if (xen && s.Swiotlb is null)
            {
                throw new NotModelledException($"{function} → xen_swiotlb_map_page must bounce {size} bytes at PA 0x{phys:x} for {dev.Name}, but the scenario has no swiotlb pool: a Xen dom0 always sets up swiotlb-xen's (xen_mm_init → xen_swiotlb_init), which this model reserves only with `set swiotlb = on`");
            }

            if (s.Swiotlb is not { } pool)
            {
                // dma_direct_map_page: no pool to bounce through.
                findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                    $"DMA addr 0x{dma:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the buffer and there is no swiotlb pool; the map returns DMA_MAPPING_ERROR"));
                handle = DmaMappingError;
                return s;
            }

            return SwiotlbMap(env, s, pool, dev, phys, size, dir, attrs, function, ops, findings, out handle);
        }

        handle = dma;
        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, XenVia(env, function, "xen_swiotlb_map_page"), ops);
        }

        return s with { Mappings = CanonicalList.Insert(s.Mappings, new StreamingMapping(dev.Name, handle, phys, size, dir, function), StreamingMapping.Order) };
    }

    /// <summary>
    /// The part of dma_direct_map_page's bounce test (v6.5) that depends on the buffer alone, not on where it is: the
    /// kmalloc bounce (<see cref="DmaKmallocNeedsBounce"/>), which xen_swiotlb_map_page does not make. The other reasons
    /// to bounce (swiotlb=force, dma_capable) depend on the boot options and the address.
    /// </summary>
    public static bool MapBouncesForCacheSafety(DmaEnvironment env, KernelState k, DmaDevice dev, ulong size, DmaDirection dir) =>
        !env.Profile.XenDom0 && DmaKmallocNeedsBounce(k, dev, size, dir);

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

    /// <summary>
    /// Streaming calls under arm_dma_ops (arm_dma_map_page, arm_dma_unmap_page, arm_dma_sync_single_for_*, v5.13) take the
    /// same steps as dma-direct here: the page's bus address, no dma_capable check (every page of the bundled arm_dma_ops
    /// board is below its 32-bit masks) and __dma_page_cpu_to_dev / __dma_page_dev_to_cpu for a non-coherent device.
    /// Without LPAE there is no swiotlb (and dmabounce is not modelled), so a pool there is refused.
    /// </summary>
    private static void CheckStreamingModelled(DmaEnvironment env, DmaState s, string function)
    {
        if (env.Profile.ArmDmaOps && s.Swiotlb is not null)
        {
            throw new NotModelledException($"{function} under arm_dma_ops on {env.Layout.Name} with a swiotlb pool: arm_dma_ops never bounces (dmabounce is not modelled)");
        }
    }

    /// <summary>arch_sync_dma_for_device: arm64's (<see cref="Arm64DmaHooks"/>) or 32-bit arm's (<see cref="Arm32DmaHooks"/>).</summary>
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
            default:
                throw new InvalidOperationException($"{caller}: {env.Layout.Arch} has no arch_sync_dma_for_device: its devices are coherent");
        }
    }

    /// <summary>arch_sync_dma_for_cpu: arm64's or 32-bit arm's.</summary>
    private static void ArchSyncDmaForCpu(DmaEnvironment env, KernelState k, ulong paddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        switch (env.Layout.Arch)
        {
            case Arch.Arm64:
                Arm64DmaHooks.ArchSyncDmaForCpu(k, paddr, size, dir, caller, ops);
                break;
            case Arch.Arm32:
                Arm32DmaHooks.ArchSyncDmaForCpu(k, paddr, size, dir, caller, ops);
                break;
            default:
                throw new InvalidOperationException($"{caller}: {env.Layout.Arch} has no arch_sync_dma_for_cpu: its devices are coherent");
        }
    }

    /// <summary>
    /// dma_unmap_page_attrs() → dma_direct_unmap_page(): unless DMA_ATTR_SKIP_CPU_SYNC, dma_direct_sync_single_for_cpu
    /// (which for a bounce address copies the slots back for DMA_FROM_DEVICE and DMA_BIDIRECTIONAL); then a bounce
    /// address's slots are released (swiotlb_tbl_unmap_single with DMA_ATTR_SKIP_CPU_SYNC: no second copy).
    /// </summary>
    public static DmaState DmaUnmap(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        if ((attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            SyncForCpu(env, s, dev, handle, size, dir, function, ops, findings, forUnmap: true);
        }

        var record = s.Mappings.FirstOrDefault(m => m.Device == dev.Name && m.Handle == handle);
        var next = record is null ? s : s with { Mappings = s.Mappings.Remove(record) };
        var tlb = env.Layout.DmaToPhys(handle);
        if (next.Swiotlb is { } pool && pool.Contains(tlb) && pool.AllocationAt(tlb) is { } slots)
        {
            next = next with { Swiotlb = pool.Release(slots, tlb) };
        }

        return next;
    }

    /// <summary>
    /// dma_sync_single_for_cpu() → dma_direct_sync_single_for_cpu(): arch_sync_dma_for_cpu for a non-coherent device
    /// (on the bounce slots when bouncing), then, for a bounce address, swiotlb_sync_single_for_cpu: DMA_FROM_DEVICE and
    /// DMA_BIDIRECTIONAL copy the slots back into the buffer.
    /// </summary>
    /// <param name="forUnmap">Part of an unmap: in a Xen dom0 that is xen_swiotlb_unmap_page, whose copy back is swiotlb_tbl_unmap_single's, not xen_swiotlb_sync_single_for_cpu's swiotlb_sync_single_for_cpu.</param>
    public static void SyncForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings,
        bool forUnmap = false)
    {
        CheckDirection(dir, function);
        CheckStreamingModelled(env, s, function);
        var paddr = env.Layout.DmaToPhys(handle);
        var caller = XenVia(env, function, forUnmap ? "xen_swiotlb_unmap_page" : "xen_swiotlb_sync_single_for_cpu");
        if (!dev.Coherent)
        {
            ArchSyncDmaForCpu(env, s.Kernel, paddr, size, dir, caller, ops);
        }

        if (s.Swiotlb is { } pool && pool.Contains(paddr) && dir is DmaDirection.DMA_FROM_DEVICE or DmaDirection.DMA_BIDIRECTIONAL)
        {
            var copy = env.Profile.XenDom0 && forUnmap ? "swiotlb_tbl_unmap_single" : "swiotlb_sync_single_for_cpu";
            if (SwiotlbBounce.Bounce(s, pool, paddr, size, DmaDirection.DMA_FROM_DEVICE, $"{caller}: {copy}", ops, findings, env.SwiotlbSyncOffset) is { } copied)
            {
                StaleBytes(s, copied.Orig, copied.Size, function, findings);
            }
        }
    }

    /// <summary>
    /// dma_sync_single_for_device() → dma_direct_sync_single_for_device(): for a bounce address,
    /// swiotlb_sync_single_for_device first (copies the buffer into the slots for the directions
    /// <see cref="Switches.SwiotlbSyncForDeviceBounce"/> names), then arch_sync_dma_for_device for a non-coherent device.
    /// </summary>
    public static DmaState SyncForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        CheckStreamingModelled(env, s, function);
        var paddr = env.Layout.DmaToPhys(handle);
        var next = s;
        if (s.Swiotlb is { } pool && pool.Contains(paddr) &&
            (env.SwiotlbSyncForDeviceAlwaysBounces || dir is DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL))
        {
            SwiotlbBounce.Bounce(s, pool, paddr, size, DmaDirection.DMA_TO_DEVICE,
                $"{XenVia(env, function, "xen_swiotlb_sync_single_for_device")}: swiotlb_sync_single_for_device [{Switches.SwiotlbSyncForDeviceBounce.Key}={(env.SwiotlbSyncForDeviceAlwaysBounces ? "always" : "by_direction")}]", ops, findings, env.SwiotlbSyncOffset);
            next = Filled(s, paddr, size);
        }

        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, paddr, size, dir, XenVia(env, function, "xen_swiotlb_sync_single_for_device"), ops);
        }

        return next;
    }

    /// <summary>
    /// dma_map_sg_attrs(dev, sg, nents, dir, attrs) / dma_map_sgtable → __dma_map_sg_attrs → dma_direct_map_sg
    /// (kernel/dma/direct.c, v5.10..v6.5): entry by entry, sg-&gt;dma_address = dma_direct_map_page(dev, sg_page(sg),
    /// sg-&gt;offset, sg-&gt;length, dir, attrs) (so each entry bounces and gets arch_sync_dma_for_device on its own;
    /// dma-direct merges nothing) and sg_dma_len(sg) = sg-&gt;length. When an entry fails, the entries already mapped
    /// are unmapped with DMA_ATTR_SKIP_CPU_SYNC and the call fails (-EIO since v5.16, 0 from dma_map_sg before);
    /// the result is the number of entries mapped (nents) or 0.
    /// </summary>
    public static DmaState DmaMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped)
    {
        CheckDirection(dir, function);
        CheckSgList(table, nents, function);
        var k = s.Kernel;
        for (var i = 0; i < nents; i++)
        {
            var e = k.SgTables[table.Id].Entries[i];
            if (e.Pfn is not { } pfn)
            {
                throw new KernelBugException(function, $"entry {i} of the table has no page (no sg_set_buf or sg_set_page): sg_page() is NULL and dma_direct_map_page dereferences it");
            }

            s = DmaMapPage(env, s with { Kernel = k }, dev, pfn, e.Offset, e.Length, dir, attrs, function, ops, findings, out var handle);
            if (handle == DmaMappingError)
            {
                // out_unmap: dma_direct_unmap_sg(dev, sgl, i, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC).
                s = UnmapSgEntries(env, s, dev, s.Kernel.SgTables[table.Id], i, dir, attrs | DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, function, ops, findings);
                mapped = 0;
                return s;
            }

            k = Scatterlist.SetDma(s.Kernel, s.Kernel.SgTables[table.Id], i, handle, e.Length, function, ops);
        }

        mapped = nents;
        return s with { Kernel = k };
    }

    /// <summary>
    /// dma_unmap_sg_attrs → dma_direct_unmap_sg (v5.10..v6.5): dma_direct_unmap_page(dev, sg-&gt;dma_address,
    /// sg_dma_len(sg), dir, attrs) for each of the first nents entries (each syncs for the CPU unless
    /// DMA_ATTR_SKIP_CPU_SYNC, and releases its bounce slots).
    /// </summary>
    public static DmaState DmaUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckDirection(dir, function);
        CheckSgList(table, nents, function);
        return UnmapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings);
    }

    private static DmaState UnmapSgEntries(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            s = DmaUnmap(env, s, dev, e.DmaAddress, e.DmaLength, dir, attrs, function, ops, findings);
        }

        return s;
    }

    /// <summary>
    /// dma_sync_sg_for_cpu → dma_direct_sync_sg_for_cpu (v5.10..v6.5): for each entry, arch_sync_dma_for_cpu on
    /// dma_to_phys(sg_dma_address(sg)) for sg-&gt;length bytes (a non-coherent device), then the swiotlb copy back; and
    /// arch_sync_dma_for_cpu_all once (nothing on arm64 and arm).
    /// </summary>
    public static void SyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckSgList(table, nents, function);
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            SyncForCpu(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
        }
    }

    /// <summary>
    /// dma_sync_sg_for_device → dma_direct_sync_sg_for_device (v5.10..v6.5): for each entry, the swiotlb copy into
    /// the slots first, then arch_sync_dma_for_device on sg-&gt;length bytes (a non-coherent device).
    /// </summary>
    public static DmaState SyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        CheckSgList(table, nents, function);
        for (var i = 0; i < nents; i++)
        {
            var e = table.Entries[i];
            s = SyncForDevice(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
        }

        return s;
    }

    /// <summary>
    /// dma_map_resource(dev, phys_addr, size, dir, attrs) (kernel/dma/mapping.c) → dma_direct_map_resource: the DMA
    /// address is the physical address itself (no phys_to_dma, no cache maintenance: it is meant for MMIO), refused with
    /// "DMA addr ... overflow" when the device cannot reach it. Before that, a RAM address is handled as
    /// <see cref="Switches.MapResourceRamCheck"/> says: BUG_ON(pfn_valid) up to v5.0, WARN_ON_ONCE(pfn_valid) and
    /// DMA_MAPPING_ERROR from v5.1 to a9c38c5d267c (v5.16), nothing since (the 2026 dma-debug report is the Debug layer's).
    /// </summary>
    public static DmaState DmaMapResource(DmaEnvironment env, DmaState s, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, string function, List<Finding> findings, out ulong handle)
    {
        CheckDirection(dir, function);
        CheckStreamingModelled(env, s, function);
        var pfn = phys >> PlatformLayout.PageShift;
        if (env.MapResourceRamCheck == MapResourceRamCheckMode.BugOn && env.Layout.PfnValid(pfn))
        {
            // v4.9..v5.0: "Don't allow RAM to be mapped" was a BUG_ON.
            throw new KernelBugException(function, $"BUG_ON(pfn_valid(PHYS_PFN(0x{phys:x}))) [{Switches.MapResourceRamCheck.Key}=bug_on]: dma_map_resource does not allow RAM to be mapped, and this kernel oopses");
        }

        if (env.MapResourceRamCheck == MapResourceRamCheckMode.WarnFail && env.Layout.PfnValid(pfn))
        {
            findings.Add(new Finding(FindingKinds.MapResourceRam, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"WARN_ON_ONCE(pfn_valid(PHYS_PFN(0x{phys:x}))) [{Switches.MapResourceRamCheck.Key}=warn_fail]: dma_map_resource does not allow RAM to be mapped and returns DMA_MAPPING_ERROR (use dma_map_single or dma_map_page for RAM)"));
            handle = DmaMappingError;
            return s;
        }

        // dma_direct_map_resource: dma_capable(dev, paddr, size, false), else dev_err_once "DMA addr ... overflow" + WARN.
        if (!DmaCapable(env, dev, phys, size))
        {
            findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"DMA addr 0x{phys:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the resource; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return s;
        }

        handle = phys;
        return s;
    }
}
