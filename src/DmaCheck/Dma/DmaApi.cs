using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// The DMA API front end (kernel/dma/mapping.c, include/linux/dma-mapping.h) over dma-direct (kernel/dma/direct.c),
/// the atomic pool (kernel/dma/pool.c), arm32's __dma_alloc (arch/arm/mm/dma-mapping.c) and xen-swiotlb
/// (drivers/xen/swiotlb-xen.c). Pure: every call takes a state and returns a new one, appending the hardware
/// operations it performs to <c>ops</c>. The version followed is the profile's (v5.8..v6.4); what changed in that
/// span is a switch. docs/kernel-checks.md and docs/kernel-checks-seed2.md say what was checked against which source.
/// </summary>
public static class DmaApi
{
    /// <summary>DMA_MAPPING_ERROR: (dma_addr_t)~0.</summary>
    public const ulong DmaMappingError = ulong.MaxValue;

    /// <summary>The default coherent_dma_mask, DMA_BIT_MASK(32).</summary>
    public const ulong DefaultCoherentMask = 0xffff_ffff;

    /// <summary>
    /// dma_alloc_attrs(dev, size, &amp;handle, gfp, attrs) with no per-device coherent pool and no IOMMU. Rejects
    /// __GFP_COMP; strips __GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM; dispatches to xen_swiotlb_alloc_coherent in a
    /// Xen dom0, else dma_direct_alloc. Returns cpu address 0 (NULL) on failure.
    /// </summary>
    public static DmaState DmaAllocAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        if ((gfp & Gfp.__GFP_COMP) != 0)
        {
            // WARN_ON_ONCE(flag & __GFP_COMP) and return NULL.
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        gfp &= ~(Gfp.__GFP_DMA | Gfp.__GFP_DMA32 | Gfp.__GFP_HIGHMEM);
        if (env.Profile.ArmDmaOps)
        {
            // arm_dma_alloc / arm_coherent_dma_alloc → __dma_alloc(..., is_coherent, attrs).
            if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
            {
                throw new NotModelledException("__dma_alloc with DMA_ATTR_NO_KERNEL_MAPPING (want_vaddr false) under arm_dma_ops is not modelled");
            }

            return ArmDmaAlloc(env, s, dev, PlatformLayout.PageAlign(size), gfp, ops, out cpuAddr, out handle);
        }

        return env.Profile.XenDom0
            ? XenSwiotlbAllocCoherent(env, s, dev, size, gfp, attrs, ops, out cpuAddr, out handle)
            : DmaDirectAlloc(env, s, dev, size, gfp, attrs, ops, out cpuAddr, out handle);
    }

    /// <summary>Overload without attributes, for callers of dma_alloc_coherent().</summary>
    public static DmaState DmaAllocAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, List<HwOp> ops, out ulong cpuAddr, out ulong handle) =>
        DmaAllocAttrs(env, s, dev, size, gfp, DmaAttrs.None, ops, out cpuAddr, out handle);

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
    /// The dma-direct atomic pool (kernel/dma/pool.c, v5.8+): created at boot by atomic_pool_expand (alloc_pages,
    /// arch_dma_prep_coherent, a pgprot_dmacoherent vmap, gen_pool_add_virt), default size 128 KiB per GiB of RAM
    /// (at least 128 KiB, at most one MAX_ORDER block). The model creates it at its first use, which is
    /// equivalent: nothing else touches its pages in between. One pool stands for the per-zone pools.
    /// </summary>
    private static DmaState EnsureDirectPool(DmaEnvironment env, DmaState s, List<HwOp> ops)
    {
        if (s.Pool is not null)
        {
            return s;
        }

        var layout = env.Layout;
        var ramPages = layout.Banks.Aggregate(0UL, (sum, b) => sum + (b.Size >> PlatformLayout.PageShift));
        var pages = Math.Min(ramPages / ((1UL << 30) / (128UL << 10)), 1UL << KernelState.MaxOrder);
        var poolSize = Math.Max(pages << PlatformLayout.PageShift, 128UL << 10);
        var order = PlatformLayout.GetOrder(poolSize);
        var k = s.Kernel.TryAllocPages(Gfp.GFP_KERNEL, order, "the atomic DMA pool", ops, out var pfn)
            ?? throw new NotModelledException("the atomic pool's pages do not fit in this layout");
        ArchDmaPrepCoherent(env, k, pfn, poolSize, ops);
        k = k.Vmap(pfn, poolSize / PlatformLayout.PageSize, MemoryType.NormalNonCacheable, "atomic DMA pool", "atomic_pool_expand (at boot): dma_common_contiguous_remap with pgprot_dmacoherent", ops, out var va);
        return s with { Kernel = k, Pool = new AtomicPool(va, pfn, poolSize, ImmutableSortedDictionary<ulong, ulong>.Empty) };
    }

    /// <summary>
    /// dma_direct_alloc_from_pool → dma_alloc_from_pool (v5.10+): gen_pool_alloc, then memset(ptr, 0, size) through the
    /// pool's non-cacheable alias. "Failed to get suitable pool" gives NULL.
    /// </summary>
    private static DmaState DmaDirectAllocFromPool(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        s = EnsureDirectPool(env, s, ops);
        if (s.Pool!.Alloc(size, out var offset) is not { } pool)
        {
            cpuAddr = 0;
            handle = DmaMappingError;
            return s;
        }

        cpuAddr = pool.Va + offset;
        s.Kernel.CpuStore(cpuAddr, size, WriterTable.Zero, "dma_alloc_from_pool: memset(ptr, 0, size) through the pool's NC alias", ops);
        var pfn = pool.Pfn + (offset >> PlatformLayout.PageShift);
        handle = env.Layout.PhysToDma(PlatformLayout.PfnToPhys(pfn));
        return Record(s with { Pool = pool }, dev, cpuAddr, handle, size, pfn, CoherentSource.DirectPool);
    }

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
    /// xen_swiotlb_alloc_coherent (drivers/xen/swiotlb-xen.c, v5.8..v5.18 on ARM): the size is rounded to a Xen page
    /// order, __GFP_DMA and __GFP_HIGHMEM are stripped, xen_alloc_coherent_pages = dma_direct_alloc does the work,
    /// phys comes from the handle (never from the returned address), and the buffer is cleared again through ret.
    /// In a dom0 with a 1:1 physical map the machine address is in the mask and contiguous, so no exchange happens.
    /// </summary>
    private static DmaState XenSwiotlbAllocCoherent(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, Gfp gfp, DmaAttrs attrs, List<HwOp> ops, out ulong cpuAddr, out ulong handle)
    {
        if ((attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0)
        {
            throw new NotModelledException("xen_swiotlb_alloc_coherent with DMA_ATTR_NO_KERNEL_MAPPING (it would memset the page cookie)");
        }

        var order = PlatformLayout.GetOrder(size);
        size = PlatformLayout.PageSize << order;
        s = DmaDirectAlloc(env, s, dev, size, gfp & ~(Gfp.__GFP_DMA | Gfp.__GFP_HIGHMEM), attrs, ops, out cpuAddr, out handle);
        if (cpuAddr == 0)
        {
            return s;
        }

        if (handle + size - 1 > DefaultCoherentMask)
        {
            throw new NotModelledException("xen_create_contiguous_region (a machine address beyond the coherent mask) is not modelled");
        }

        s.Kernel.CpuStore(cpuAddr, size, WriterTable.Zero, "xen_swiotlb_alloc_coherent: memset(ret, 0, size)", ops);
        return s;
    }

    /// <summary>
    /// dma_free_attrs(): a NULL cpu_addr is a no-op; xen_swiotlb_free_coherent in a Xen dom0, else dma_direct_free.
    /// </summary>
    public static DmaState DmaFreeAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong cpuAddr, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        if (cpuAddr == 0)
        {
            return s;
        }

        if (env.Profile.ArmDmaOps)
        {
            return ArmDmaFree(env, s, dev, size, cpuAddr, handle, ops, findings); // arm_dma_free → __arm_dma_free
        }

        return env.Profile.XenDom0
            ? XenSwiotlbFreeCoherent(env, s, dev, size, cpuAddr, handle, attrs, ops, findings)
            : DmaDirectFree(env, s, dev, size, cpuAddr, handle, attrs, ops, findings);
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
    /// xen_swiotlb_free_coherent (v5.8..v5.18 on ARM): phys from the handle; the struct page of vaddr, found per
    /// <see cref="Switches.XenFreeCoherentPage"/>, has its PG_xen_remapped bit tested and cleared
    /// (TestClearPageXenRemapped: an atomic read-modify-write of page-&gt;flags); then xen_free_coherent_pages =
    /// dma_direct_free with the handle.
    /// </summary>
    private static DmaState XenSwiotlbFreeCoherent(DmaEnvironment env, DmaState s, DmaDevice dev, ulong size, ulong vaddr, ulong handle, DmaAttrs attrs, List<HwOp> ops, List<Finding> findings)
    {
        const string function = "xen_swiotlb_free_coherent";
        var layout = env.Layout;
        var order = PlatformLayout.GetOrder(size);
        size = PlatformLayout.PageSize << order;
        var how = env.XenFreeIsVmallocAware && layout.IsVmallocAddr(vaddr) ? "vmalloc_to_page" : "virt_to_page";
        var pfn = how == "vmalloc_to_page"
            ? s.Kernel.VmallocToPfn(vaddr) ?? throw new KernelBugException(function, $"vmalloc_to_page(0x{vaddr:x}) is NULL: nothing is mapped there")
            : layout.VirtToPfn(vaddr);
        var record = FindBuffer(s, handle, vaddr);
        CheckPageFlagsAccess(s.Kernel, pfn, record, function, $"TestClearPageXenRemapped({how}(0x{vaddr:x}))", findings);
        return DmaDirectFree(env, s, dev, size, vaddr, handle, attrs, ops, findings);
    }

    /// <summary>
    /// A read-modify-write of page-&gt;flags of <paramref name="pfn"/>'s struct page by <paramref name="function"/>:
    /// an oops if that struct page does not exist, memory corruption if it belongs to a page the buffer does not own.
    /// </summary>
    private static void CheckPageFlagsAccess(KernelState k, ulong pfn, CoherentAllocation? buffer, string function, string expression, List<Finding> findings)
    {
        var layout = k.Layout;
        var owner = k.OwnerOf(pfn);
        if (!layout.StructPageExists(pfn))
        {
            throw new FatalFindingException(new Finding(FindingKinds.BogusStructPage, function, pfn, owner, Severity.Fault,
                $"{expression} touches {layout.DescribePage(pfn)}, which does not exist (no DRAM there, so no memmap): the kernel oopses with \"Unable to handle kernel paging request at virtual address 0x{layout.StructPageAddress(pfn):x}\"",
                Fatal: true));
        }

        if (buffer is null || pfn < buffer.Pfn || pfn - buffer.Pfn >= (PlatformLayout.PageAlign(buffer.Size) >> PlatformLayout.PageShift))
        {
            findings.Add(new Finding(FindingKinds.ForeignPageFlags, function, pfn, owner, Severity.Corruption,
                $"{expression} test-and-clears PG_xen_remapped (an alias of PG_owner_priv_1) in {layout.DescribePage(pfn)}, owned by {owner.Describe()}, not by the buffer: if its owner uses that bit (PG_checked, PG_swapcache, PG_pinned...), it is lost, and xen_destroy_contiguous_region runs on the buffer"));
        }
    }

    /// <summary>The memory type of a user mapping of a coherent buffer: dma_pgprot(dev, vma-&gt;vm_page_prot, attrs).</summary>
    public static MemoryType DmaPgprot(DmaDevice dev, DmaAttrs attrs) =>
        dev.Coherent ? MemoryType.NormalWriteBack : MemoryType.NormalNonCacheable; // pgprot_dmacoherent / pgprot_writecombine: Normal-NC on arm64 and arm (bufferable)

    /// <summary>
    /// dma_mmap_attrs(dev, vma, cpu_addr, dma_addr, size, attrs) for a whole-buffer vma (vm_pgoff 0): dma_direct_mmap
    /// (the pfn from the handle) without dma_map_ops, else ops-&gt;mmap, which for xen_swiotlb_dma_ops is
    /// dma_common_mmap (the page from cpu_addr, per <see cref="Switches.CommonVaddrToPage"/>). Either way
    /// remap_pfn_range maps whatever pfn it is given; the findings say when that pfn is not the buffer's.
    /// </summary>
    public static DmaState DmaMmapAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, ulong handle, ulong size, DmaAttrs attrs, string buffer,
        List<HwOp> ops, List<Finding> findings, out ulong userVa)
    {
        var layout = env.Layout;
        var count = PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift;
        var direct = !env.Profile.XenDom0;
        var function = env.Profile.ArmDmaOps ? (dev.Coherent ? "arm_coherent_dma_mmap" : "arm_dma_mmap") : direct ? "dma_direct_mmap" : "dma_common_mmap";
        var (pfn, how) = direct
            ? (layout.DmaToPhys(handle) >> PlatformLayout.PageShift, env.Profile.ArmDmaOps ? $"dma_to_pfn(0x{handle:x})" : $"PHYS_PFN(dma_to_phys(0x{handle:x}))")
            : CommonVaddrToPage(env, s.Kernel, cpuAddr, function);
        var record = FindBuffer(s, handle, cpuAddr);
        // The mapping is the buffer's only if it maps the buffer's pages; a use-after-free check makes sense only then.
        var intended = record is not null && pfn == record.Pfn ? s.OwnerOf(record.Pfn) : null;
        CheckExportedPages(s.Kernel, pfn, count, record, function, how, $"the user mapping of {buffer}", FindingKinds.UserMappingForeignPage, FindingKinds.UserMappingOutsideRam,
            "user space can read and write it", "the process takes a fault when it touches the mapping (nothing answers at that physical address)", findings);
        var k = s.Kernel.MapUser(pfn, count, DmaPgprot(dev, attrs), $"user mapping of {buffer} ({function})", intended, ops, out userVa);
        return s with { Kernel = k };
    }

    /// <summary>
    /// dma_get_sgtable_attrs for a coherent buffer: dma_direct_get_sgtable (the page from the handle) without
    /// dma_map_ops, else ops-&gt;get_sgtable = dma_common_get_sgtable, which puts the page of cpu_addr (per
    /// <see cref="Switches.CommonVaddrToPage"/>) in a one-entry table of PAGE_ALIGN(size) bytes.
    /// </summary>
    public static (ulong Pfn, ulong Length) DmaGetSgtableAttrs(DmaEnvironment env, DmaState s, DmaDevice dev, ulong cpuAddr, ulong handle, ulong size, string buffer, List<Finding> findings)
    {
        var layout = env.Layout;
        var length = PlatformLayout.PageAlign(size);
        var direct = !env.Profile.XenDom0;
        var function = env.Profile.ArmDmaOps ? "arm_dma_get_sgtable" : direct ? "dma_direct_get_sgtable" : "dma_common_get_sgtable";
        var (pfn, how) = direct
            ? (layout.DmaToPhys(handle) >> PlatformLayout.PageShift, env.Profile.ArmDmaOps ? $"pfn_to_page(dma_to_pfn(0x{handle:x}))" : $"pfn_to_page(PHYS_PFN(dma_to_phys(0x{handle:x})))")
            : CommonVaddrToPage(env, s.Kernel, cpuAddr, function);
        var record = FindBuffer(s, handle, cpuAddr);
        CheckExportedPages(s.Kernel, pfn, length >> PlatformLayout.PageShift, record, function, how, $"the sg table of {buffer}", FindingKinds.SgForeignPage, FindingKinds.SgPageOutsideRam,
            "an importer reads and writes it", "an importer that uses its physical address (sg_phys, dma_map_sg) reaches no memory; one that touches the struct page faults (on arm64, page_address() arithmetic happens to give back the vmalloc address)", findings);
        return (pfn, length);
    }

    /// <summary>dma_common_vaddr_to_page (v5.14+) or virt_to_page (before), per the switch: the pfn, and how it was computed.</summary>
    private static (ulong Pfn, string How) CommonVaddrToPage(DmaEnvironment env, KernelState k, ulong cpuAddr, string function)
    {
        if (env.CommonVaddrToPageIsVmallocAware && k.Layout.IsVmallocAddr(cpuAddr))
        {
            return (k.VmallocToPfn(cpuAddr) ?? throw new KernelBugException(function, $"vmalloc_to_page(0x{cpuAddr:x}) is NULL: nothing is mapped there"),
                $"vmalloc_to_page(0x{cpuAddr:x})");
        }

        return (k.Layout.VirtToPfn(cpuAddr), $"virt_to_page(0x{cpuAddr:x})");
    }

    /// <summary>Findings for exporting frames [pfn, pfn+count) as the buffer's, when they are not the buffer's.</summary>
    private static void CheckExportedPages(KernelState k, ulong pfn, ulong count, CoherentAllocation? buffer, string function, string how, string what,
        string foreignKind, string outsideKind, string leakConsequence, string faultConsequence, List<Finding> findings)
    {
        var layout = k.Layout;
        var bufferPages = buffer is null ? 0 : PlatformLayout.PageAlign(buffer.Size) >> PlatformLayout.PageShift;
        for (var i = 0UL; i < count; i++)
        {
            var p = unchecked(pfn + i);
            if (!layout.PfnValid(p))
            {
                findings.Add(new Finding(outsideKind, function, p, k.OwnerOf(p), Severity.Fault,
                    $"{how} gives pfn 0x{pfn:x} (PA 0x{unchecked(pfn << PlatformLayout.PageShift):x}), outside the RAM Linux manages: {what} points at no memory of its own, and {faultConsequence}"));
                return;
            }

            var owner = k.OwnerOf(p);
            if (buffer is null || p < buffer.Pfn || p - buffer.Pfn >= bufferPages)
            {
                var beyond = buffer is not null && pfn == buffer.Pfn ? $" ({count} pages from the buffer's first page, which has {bufferPages})" : string.Empty;
                findings.Add(new Finding(foreignKind, function, p, owner, Severity.InformationLeak,
                    $"{how} gives pfn 0x{pfn:x}; {what} covers pfn 0x{p:x}{beyond}, owned by {owner.Describe()}: {leakConsequence}"));
                return;
            }
        }
    }

    /// <summary>
    /// dma_map_single_attrs(dev, ptr, size, dir, attrs) (include/linux/dma-mapping.h, since 4544b9f25e70 in v5.5, so in
    /// every modelled profile): a vmalloc address is refused first, with dev_WARN_ONCE "rejecting DMA map of vmalloc
    /// memory" and DMA_MAPPING_ERROR, before debug_dma_map_single runs; then dma_map_page_attrs(virt_to_page(ptr),
    /// offset_in_page(ptr)).
    /// </summary>
    public static DmaState DmaMapSingle(DmaEnvironment env, DmaState s, DmaDevice dev, ulong ptr, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var layout = s.Kernel.Layout;
        if (layout.IsVmallocAddr(ptr))
        {
            findings.Add(new Finding(FindingKinds.MapSingleVmalloc, function, null, new PageOwner(OwnerKind.Allocation, "a vmalloc area"), Severity.ContractViolation,
                $"{dev.Name}: rejecting DMA map of vmalloc memory (0x{ptr:x}, {size} bytes; dev_WARN_ONCE in dma_map_single_attrs, 4544b9f25e70): the map returns DMA_MAPPING_ERROR. A vmalloc buffer is mapped page by page with vmalloc_to_page and dma_map_page, or allocated with kmalloc"));
            handle = DmaMappingError;
            return s;
        }

        if (!layout.IsLinearMapAddr(ptr))
        {
            throw new NotModelledException($"dma_map_single on 0x{ptr:x}, which is not a linear-map address: virt_to_page would compute a bogus page");
        }

        return DmaMapPage(env, s, dev, layout.VirtToPfn(ptr), ptr & (PlatformLayout.PageSize - 1), size, dir, attrs, function, ops, findings, out handle);
    }

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
        if (s.Swiotlb is { ForceBounce: true } || !DmaCapable(env, dev, dma, size) || (!xen && DmaKmallocNeedsBounce(s.Kernel, dev, size, dir)))
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

        return s with { Mappings = s.Mappings.Add(new StreamingMapping(dev.Name, handle, phys, size, dir, function)) };
    }

    /// <summary>
    /// The caller's name for the maintenance a streaming call does, with the swiotlb-xen function in between in a Xen
    /// dom0. xen_swiotlb_dma_ops (drivers/xen/swiotlb-xen.c, v5.10..v6.x) make the same decisions as dma-direct for the
    /// dom0's own pages, which Xen on arm maps 1:1: a page is bounced when !dma_capable or swiotlb=force
    /// (range_straddles_page_boundary and xen_arch_need_swiotlb are false for a local, contiguous page), and its cache
    /// maintenance is arch_sync_dma_for_* because pfn_valid(dma_to_phys(handle)) holds (foreign pages, synced by the
    /// GNTTABOP_cache_flush hypercall, do not occur here). Unmap does arch_sync_dma_for_cpu and then
    /// swiotlb_tbl_unmap_single, whose copy back equals dma-direct's sync then release; the translation is
    /// phys_to_dma, as since the v5.9 fix-rpi4 series (the only earlier profile, v5.8 on arm64, has no DMA offset).
    /// </summary>
    private static string XenVia(DmaEnvironment env, string function, string xenFunction) =>
        env.Profile.XenDom0 ? $"{function} → {xenFunction}" : function;

    /// <summary>
    /// dma_kmalloc_needs_bounce(dev, size, dir) (include/linux/dma-map-ops.h, v6.5): with
    /// CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC, a non-coherent mapping that is not DMA_TO_DEVICE bounces unless its size is
    /// at least 2 * ARCH_DMA_MINALIGN or kmalloc_size_roundup(size) is a multiple of dma_get_cache_alignment(). The
    /// pointer is not looked at: a buffer embedded in a structure is the caller's business.
    /// </summary>
    public static bool DmaKmallocNeedsBounce(KernelState k, DmaDevice dev, ulong size, DmaDirection dir)
    {
        if (!k.Config.KmallocBounce || dev.Coherent || dir == DmaDirection.DMA_TO_DEVICE)
        {
            return false;
        }

        var cacheAlign = (ulong)k.Hardware.LineSize;
        return !(size >= 2 * 128 || SlabState.SizeRoundup(size, k.Config.KmallocMinalign) % cacheAlign == 0);
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
    /// swiotlb_map() → swiotlb_tbl_map_single() (v6.4, one area): find slots, record the original address, copy the
    /// buffer into the slots as <see cref="Switches.SwiotlbMapBounce"/> says; the handle is phys_to_dma of the bounce
    /// address, refused ("swiotlb addr ... overflow") when the device cannot reach it; a non-coherent device gets
    /// arch_sync_dma_for_device on the bounce slots unless DMA_ATTR_SKIP_CPU_SYNC.
    /// </summary>
    private static DmaState SwiotlbMap(DmaEnvironment env, DmaState s, SwiotlbPool pool, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        if (dev.SegBoundaryMask != ulong.MaxValue)
        {
            throw new NotModelledException($"{function}: {dev.Name} sets seg_boundary_mask 0x{dev.SegBoundaryMask:x}, which swiotlb's slot search honours (dma_get_seg_boundary); that part of the search is not modelled");
        }

        var owner = $"{function}({dev.Name}) of PA 0x{phys:x}";
        if (pool.Allocate(dev, phys, size, owner, out var slots) is not { } allocated)
        {
            if ((attrs & DmaAttrs.DMA_ATTR_NO_WARN) == 0)
            {
                findings.Add(new Finding(FindingKinds.SwiotlbFull, function, null, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                    $"swiotlb_tbl_map_single: swiotlb buffer is full (sz: {size} bytes), total {pool.Slots} (slots), used {pool.UsedSlots} (slots); the mapping fails with DMA_MAPPING_ERROR"));
            }

            handle = DmaMappingError;
            return s;
        }

        var tlb = allocated.SlotAddress(slots.Index) + slots.Offset;
        var skip = (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) != 0;
        var bounce = env.SwiotlbMapBounce switch
        {
            "to_device_only" => !skip && dir is DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL,
            "unless_overwrite" => !skip && ((attrs & DmaAttrs.DMA_ATTR_OVERWRITE) == 0 || dir != DmaDirection.DMA_FROM_DEVICE),
            _ => true,
        };
        var next = s with { Swiotlb = allocated };
        var mapping = new StreamingMapping(dev.Name, env.Layout.PhysToDma(tlb), phys, size, dir, function, tlb, [(0UL, size)]);
        if (bounce)
        {
            SwiotlbBounce.Bounce(next, allocated, tlb, size, DmaDirection.DMA_TO_DEVICE, $"{XenVia(env, function, "xen_swiotlb_map_page")}: swiotlb_tbl_map_single [{Switches.SwiotlbMapBounce.Key}={env.SwiotlbMapBounce}]", ops, findings);
            mapping = mapping.Filled(0, size);
        }

        if (!DmaCapable(env, dev, mapping.Handle, size))
        {
            // swiotlb_map: swiotlb_tbl_unmap_single(..., DMA_ATTR_SKIP_CPU_SYNC), then the WARN.
            findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, tlb >> PlatformLayout.PageShift, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                $"swiotlb addr 0x{mapping.Handle:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the bounce slots either; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return s with { Swiotlb = allocated.Release(slots) };
        }

        handle = mapping.Handle;
        if (!dev.Coherent && !skip)
        {
            ArchSyncDmaForDevice(env, next.Kernel, tlb, size, dir, XenVia(env, function, "xen_swiotlb_map_page"), ops);
        }

        return next with { Mappings = next.Mappings.Add(mapping) };
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
            if (SwiotlbBounce.Bounce(s, pool, paddr, size, DmaDirection.DMA_FROM_DEVICE, $"{caller}: {copy}", ops, findings) is { } copied)
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
                $"{XenVia(env, function, "xen_swiotlb_sync_single_for_device")}: swiotlb_sync_single_for_device [{Switches.SwiotlbSyncForDeviceBounce.Key}={(env.SwiotlbSyncForDeviceAlwaysBounces ? "always" : "by_direction")}]", ops, findings);
            next = Filled(s, paddr, size);
        }

        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, paddr, size, dir, XenVia(env, function, "xen_swiotlb_sync_single_for_device"), ops);
        }

        return next;
    }

    /// <summary>A device wrote [pa, pa+length): bounce slots it covers no longer hold stale bytes.</summary>
    public static DmaState DeviceWrote(DmaState s, ulong pa, ulong length) => s.Swiotlb is { } pool && pool.Contains(pa) ? Filled(s, pa, length) : s;

    private static DmaState Filled(DmaState s, ulong pa, ulong length)
    {
        var mappings = s.Mappings;
        foreach (var m in s.Mappings)
        {
            if (m.Tlb is { } tlb && pa < tlb + m.Size && tlb < pa + length)
            {
                var lo = Math.Max(pa, tlb) - tlb;
                var hi = Math.Min(pa + length, tlb + m.Size) - tlb;
                mappings = mappings.Replace(m, m.Filled(lo, hi));
            }
        }

        return s with { Mappings = mappings };
    }

    /// <summary>
    /// A copy back from bounce slots that still hold bytes from before the mapping (not copied in at map, not written by
    /// the device) puts the pool's previous contents (another user's bounce data) into the buffer: an information leak.
    /// </summary>
    private static void StaleBytes(DmaState s, ulong orig, ulong size, string function, List<Finding> findings)
    {
        foreach (var m in s.Mappings)
        {
            if (m.Tlb is not { } tlb || m.Stale is null || orig < m.Phys || orig >= m.Phys + m.Size)
            {
                continue;
            }

            var lo = orig - m.Phys;
            var hi = Math.Min(m.Size, lo + size);
            foreach (var (a, b) in m.Stale)
            {
                var from = Math.Max(a, lo);
                var to = Math.Min(b, hi);
                if (from < to)
                {
                    findings.Add(new Finding(FindingKinds.SwiotlbStaleBytes, function, (m.Phys + from) >> PlatformLayout.PageShift, s.OwnerOf((m.Phys + from) >> PlatformLayout.PageShift), Severity.InformationLeak,
                        $"bytes {from}..{to} of {m.Function}'s {m.Direction} mapping are copied back from bounce slots at 0x{tlb + from:x} that neither the map nor the device wrote: the buffer receives whatever the swiotlb pool held before (another user's data)"));
                    return;
                }
            }
        }
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

    /// <summary>for_each_sg(sgl, sg, nents, i) walks sg_next: past the table's end marker it returns NULL, which the loop then dereferences.</summary>
    public static void CheckSgList(SgTable table, int nents, string function)
    {
        if (table.Freed)
        {
            throw new KernelBugException(function, "the sg table was freed by sg_free_table: its scatterlist is freed memory (use after free)");
        }

        if (nents > table.OrigNents)
        {
            throw new KernelBugException(function, $"nents {nents} runs past the table's {table.OrigNents} entries: sg_next() returns NULL at the end marker and for_each_sg dereferences it");
        }
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
        if (env.Profile.Value(Switches.MapResourceRamCheck) == "bug_on" && env.Layout.PfnValid(pfn))
        {
            // v4.9..v5.0: "Don't allow RAM to be mapped" was a BUG_ON.
            throw new KernelBugException(function, $"BUG_ON(pfn_valid(PHYS_PFN(0x{phys:x}))) [{Switches.MapResourceRamCheck.Key}=bug_on]: dma_map_resource does not allow RAM to be mapped, and this kernel oopses");
        }

        if (env.Profile.Value(Switches.MapResourceRamCheck) == "warn_fail" && env.Layout.PfnValid(pfn))
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

    /// <summary>dma_mapping_error(dev, addr): addr == DMA_MAPPING_ERROR.</summary>
    public static bool DmaMappingErrorCheck(ulong handle) => handle == DmaMappingError;

    private static void CheckDirection(DmaDirection dir, string function)
    {
        // BUG_ON(!valid_dma_direction(dir)) in the map and sync entry points.
        if (dir == DmaDirection.DMA_NONE)
        {
            throw new KernelBugException(function, "BUG_ON(!valid_dma_direction(dir)): DMA_NONE");
        }
    }
}
