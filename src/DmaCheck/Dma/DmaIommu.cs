using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// iommu-dma (drivers/iommu/dma-iommu.c, v6.12): the streaming calls of a device in an IOMMU DMA domain. Since v6.10
// mapping.c calls these directly when use_dma_iommu(dev) holds; before, they were iommu_dma_ops. The handle is an IOVA.
public static partial class DmaApi
{
    private static string IommuVia(string function, string iommuFunction) => $"{function} → {iommuFunction}";

    /// <summary>
    /// dma_info_to_prot(dir, coherent, attrs) (v6.12): IOMMU_CACHE for a coherent device only; IOMMU_READ for
    /// DMA_TO_DEVICE, IOMMU_WRITE for DMA_FROM_DEVICE, both for DMA_BIDIRECTIONAL.
    /// </summary>
    public static IommuProt DmaInfoToProt(DmaDirection dir, bool coherent) =>
        (coherent ? IommuProt.Cache : IommuProt.None) | dir switch
        {
            DmaDirection.DMA_BIDIRECTIONAL => IommuProt.Read | IommuProt.Write,
            DmaDirection.DMA_TO_DEVICE => IommuProt.Read,
            DmaDirection.DMA_FROM_DEVICE => IommuProt.Write,
            _ => IommuProt.None,
        };

    /// <summary>
    /// dev_use_swiotlb(dev, size, dir) (v6.5..v6.12): an untrusted device (pci_dev-&gt;untrusted), or a mapping
    /// dma_kmalloc_needs_bounce says must bounce (v6.5, 861370f49ce4).
    /// </summary>
    private static bool DevUseSwiotlb(KernelState k, DmaDevice dev, ulong size, DmaDirection dir) =>
        dev.Iommu is { Untrusted: true } || DmaKmallocNeedsBounce(k, dev, size, dir);

    /// <summary>
    /// iommu_dma_map_page (drivers/iommu/dma-iommu.c, v6.12): a mapping dev_use_swiotlb picks that is not
    /// granule-aligned at both ends bounces first (<see cref="IommuDmaMapSwiotlb"/>), and from then on the bounce slot
    /// is the physical address used. Then arch_sync_dma_for_device for a non-coherent device unless
    /// DMA_ATTR_SKIP_CPU_SYNC, on the address <see cref="Switches.IommuBounceMapSync"/> says (the bounce slot since
    /// 06e620345d54), and __iommu_dma_map: the IOVA space is the granule-aligned span of that address
    /// (iova_align(size + iova_offset)), allocated by iommu_dma_alloc_iova (alloc_iova_fast below min(dma_mask, the
    /// aperture)), mapped with dma_info_to_prot's permissions; the handle is the IOVA plus the offset in its granule.
    /// No IOVA space: DMA_MAPPING_ERROR, without a message (and the bounce slots go back: swiotlb_tbl_unmap_single).
    /// </summary>
    private static DmaState IommuDmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var via = IommuVia(function, "iommu_dma_map_page");
        var domain = DomainOf(env, s, dev, function);
        var orig = PlatformLayout.PfnToPhys(pfn) + offset;
        var phys = orig;
        var mapSync = env.IommuBounceMapSync ?? IommuBounceMapSyncMode.Bounce;
        var skip = (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) != 0;
        StreamingMapping? bounceRecord = null;
        if (mapSync != IommuBounceMapSyncMode.None && DevUseSwiotlb(s.Kernel, dev, size, dir) && domain.Offset(phys | size) != 0)
        {
            s = IommuDmaMapSwiotlb(env, s, domain, dev, phys, size, dir, attrs, function, via, ops, findings, out bounceRecord);
            if (bounceRecord?.Tlb is not { } tlb)
            {
                handle = DmaMappingError;
                return s;
            }

            phys = tlb;
        }

        var syncAt = mapSync == IommuBounceMapSyncMode.Original ? orig : phys;
        if (!dev.Coherent && !skip)
        {
            ArchSyncDmaForDevice(env, s.Kernel, syncAt, size, dir, bounceRecord is null ? via : $"{via} [{Switches.IommuBounceMapSync.Key}={env.Profile.Value(Switches.IommuBounceMapSync)}]", ops);
        }

        // __iommu_dma_map
        if (dev.MinAlignMask > domain.Granule - 1)
        {
            findings.Add(new Finding(FindingKinds.IommuUnsupportedAlignment, via, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"{dev.Name}: Unsupported alignment constraint (dev_WARN_ONCE in __iommu_dma_map): min_align_mask 0x{dev.MinAlignMask:x} is more than the IOVA granule's 0x{domain.Granule - 1:x}; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return bounceRecord?.Tlb is { } bounced && s.Swiotlb is { } slots
                ? SwiotlbTblUnmapSingle(env, s, slots, bounced, size, dir, attrs, via, function, ops, findings)
                : s;
        }

        // The size handed to __iommu_dma_map: a bounced mapping's was iova_align(size) until 2cbc61a1b166.
        var mapSize = bounceRecord is not null && env.IommuBounceMapSize == IommuBounceMapSizeMode.Aligned ? domain.Align(size) : size;
        var ioOff = domain.Offset(phys);
        var span = domain.Align(mapSize + ioOff);

        var limit = Math.Min(Math.Min(dev.DmaMask, env.Layout.DmaLimit), IommuDomain.ApertureEnd);
        domain = domain with { Iova = domain.Iova.AllocFast(span >> domain.Iova.Shift, limit >> domain.Iova.Shift, true, out var iovaPfn) };
        if (iovaPfn is not { } allocated)
        {
            handle = DmaMappingError;
            s = WithDomain(s, domain);
            return bounceRecord?.Tlb is { } slot && s.Swiotlb is { } pool
                ? SwiotlbTblUnmapSingle(env, s, pool, slot, size, dir, attrs, via, function, ops, findings)
                : s;
        }

        var iovaBase = allocated << domain.Iova.Shift;
        domain = domain.Map(iovaBase, phys - ioOff, span, DmaInfoToProt(dir, dev.Coherent));
        handle = iovaBase + ioOff;
        var record = bounceRecord is null ? new StreamingMapping(dev.Name, handle, orig, size, dir, function) : bounceRecord with { Handle = handle };
        return RecordMapping(WithDomain(s, domain), record);
    }

    /// <summary>
    /// The bounce branch of iommu_dma_map_page (v6.12; iommu_dma_map_swiotlb from v6.13): swiotlb_tbl_map_single(dev,
    /// phys, size, iova_mask(iovad), dir, attrs), which takes whole IOVA granules of slots aligned to the granule
    /// (<see cref="SwiotlbPool.AllocateAligned"/>) and copies the buffer in as <see cref="Switches.SwiotlbMapBounce"/>
    /// says; then the padding is cleared through the linear map as <see cref="Switches.IommuBouncePadding"/> says,
    /// since the IOMMU lets the device reach the whole granule. A device's min_align_mask is honoured as v6.9's
    /// swiotlb_tbl_map_single does: the bounce address keeps the original's offset under the mask within the granule
    /// (so the handle's offset in its IOVA page is the buffer's; whole slots of that offset are pad slots). Without a
    /// swiotlb pool (is_swiotlb_active false), a seg_boundary_mask, or a profile whose slot search predates v6.9's, the run
    /// stops as not modelled. <paramref name="record"/> is the mapping's record with its bounce slot, or null when the map
    /// fails ("swiotlb buffer is full").
    /// </summary>
    private static DmaState IommuDmaMapSwiotlb(DmaEnvironment env, DmaState s, IommuDomain domain, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, DmaAttrs attrs, string function, string via, List<HwOp> ops, List<Finding> findings, out StreamingMapping? record)
    {
        record = null;
        var why = dev.Iommu is { Untrusted: true } ? "an untrusted device's mapping that does not fill whole IOVA granules" : "dma_kmalloc_needs_bounce, v6.5";
        if (s.Swiotlb is not { } pool)
        {
            throw new NotModelledException($"{via}: {size} bytes at PA 0x{phys:x} for {dev.Name} would bounce (dev_use_swiotlb: {why}), but this configuration has no swiotlb pool; is_swiotlb_active() false (\"DMA bounce buffers are inactive\") is not modelled");
        }

        if (env.SwiotlbSlotSearch != SwiotlbSlotSearchMode.PageUnlessMinAlign)
        {
            throw new NotModelledException($"{via}: a bounce with alloc_align_mask = iova_mask under {Switches.SwiotlbSlotSearch.Key}={env.Profile.Value(Switches.SwiotlbSlotSearch)}: the slot search of kernels before v6.9 (e81e99bacc9f's stride, 0eee5ae10256's mask, the double allocation fixed by 04867a7a3332) with an alloc_align_mask is not modelled");
        }

        if (dev.SegBoundaryMask != ulong.MaxValue)
        {
            throw new NotModelledException($"{via}: {dev.Name} sets seg_boundary_mask 0x{dev.SegBoundaryMask:x}, which swiotlb's slot search honours; that part of the search is not modelled");
        }

        var owner = $"{function}({dev.Name}) of PA 0x{phys:x}";
        var map = $"{via}: swiotlb_tbl_map_single (bounce: {why})";
        if (pool.AllocateAligned(dev, phys, size, domain.Granule - 1, owner, out var slots) is not { } allocated)
        {
            if ((attrs & DmaAttrs.DMA_ATTR_NO_WARN) == 0)
            {
                findings.Add(new Finding(FindingKinds.SwiotlbFull, function, null, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                    $"swiotlb_tbl_map_single: swiotlb buffer is full (sz: {size} bytes), total {pool.Slots} (slots), used {pool.UsedSlots} (slots); iommu_dma_map_page returns DMA_MAPPING_ERROR"));
            }

            return s;
        }

        var tlb = allocated.SlotAddress(slots.Index + slots.PadSlots) + slots.Offset;
        var skip = (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) != 0;
        var copyIn = env.SwiotlbMapBounce switch
        {
            SwiotlbMapBounceMode.ToDeviceOnly => !skip && dir is DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL,
            SwiotlbMapBounceMode.UnlessOverwrite => !skip && ((attrs & DmaAttrs.DMA_ATTR_OVERWRITE) == 0 || dir != DmaDirection.DMA_FROM_DEVICE),
            SwiotlbMapBounceMode.Always => true,
            _ => throw new InvalidOperationException($"{Switches.SwiotlbMapBounce.Key}: no behaviour for {env.SwiotlbMapBounce}"),
        };
        var next = s with { Swiotlb = allocated };
        var mapping = new StreamingMapping(dev.Name, 0, phys, size, dir, function, tlb, [(0UL, size)]);
        if (copyIn)
        {
            SwiotlbBounce.Bounce(next, allocated, tlb, size, DmaDirection.DMA_TO_DEVICE, $"{map} [{Switches.SwiotlbMapBounce.Key}={env.Profile.Value(Switches.SwiotlbMapBounce)}]", ops, findings, env.SwiotlbSyncOffset);
            mapping = mapping.Filled(0, size);
        }

        // The padding: the rest of the granules the IOMMU maps around the bounce slot.
        var padding = $"[{Switches.IommuBouncePadding.Key}={env.Profile.Value(Switches.IommuBouncePadding)}]";
        if (env.IommuBouncePadding == IommuBouncePaddingMode.FromBounce)
        {
            // 82612d66d51d..v6.9: from the bounce address, iova_align(size) bytes, less the buffer when it was copied in.
            var start = tlb;
            var length = domain.Align(size);
            if (!skip && dir is DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL)
            {
                start += size;
                length -= size;
            }

            ZeroThroughLinearMap(env, next.Kernel, start, length, $"{via}: memset(padding_start, 0, padding_size) {padding}", ops);
            if (start == tlb && length > 0)
            {
                mapping = mapping.Filled(0, Math.Min(size, length));
            }
        }
        else if (dev.Iommu is { Untrusted: true })
        {
            // 2650073f1b58: the pre-padding and the post-padding, for an untrusted device only.
            var pre = tlb & ~(domain.Granule - 1);
            ZeroThroughLinearMap(env, next.Kernel, pre, tlb - pre, $"{via}: memset of the pre-padding {padding}", ops);
            var post = tlb + size;
            ZeroThroughLinearMap(env, next.Kernel, post, domain.Align(post) - post, $"{via}: memset of the post-padding {padding}", ops);
        }

        record = mapping;
        return next;
    }

    private static void ZeroThroughLinearMap(DmaEnvironment env, KernelState k, ulong pa, ulong length, string origin, List<HwOp> ops)
    {
        if (length > 0)
        {
            k.CpuStore(env.Layout.PhysToVirt(pa), length, WriterTable.Zero, origin, ops);
        }
    }

    /// <summary>
    /// iommu_dma_unmap_page (v6.12): phys = iommu_iova_to_phys(handle), and WARN_ON(!phys) returns at once (an IOVA
    /// with no translation: never mapped, or unmapped already); arch_sync_dma_for_cpu on phys for a non-coherent device
    /// unless DMA_ATTR_SKIP_CPU_SYNC; __iommu_dma_unmap; and for a bounce slot swiotlb_tbl_unmap_single, which copies
    /// back (once, since ee9d4097cc14, v5.16-rc1; before it a bounced mapping also went through
    /// iommu_dma_sync_single_for_cpu first and was copied back twice, which is not a switch: both copies happen in
    /// one call, so no result can tell them apart).
    /// </summary>
    private static DmaState IommuDmaUnmapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        var via = IommuVia(function, "iommu_dma_unmap_page");
        var domain = DomainOf(env, s, dev, function);
        var phys = domain.IovaToPhys(handle);
        if (phys == 0)
        {
            findings.Add(new Finding(FindingKinds.IommuUnmapUnmapped, via, null, new PageOwner(OwnerKind.Free, string.Empty), Severity.ContractViolation,
                $"WARN_ON(!phys) in iommu_dma_unmap_page: IOVA 0x{handle:x} has no translation in {dev.Name}'s domain (never mapped, or unmapped already); nothing is synced or unmapped"));
            return s;
        }

        var skip = (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) != 0;
        var pool = s.Swiotlb is { } p && p.Contains(phys) ? p : null;
        if (!dev.Coherent && !skip)
        {
            ArchSyncDmaForCpu(env, s.Kernel, phys, size, dir, via, ops);
        }

        s = IommuDmaUnmap(s, domain, dev, handle, size, via, findings);
        if (pool is not null)
        {
            s = SwiotlbTblUnmapSingle(env, s, pool, phys, size, dir, attrs, via, function, ops, findings);
        }

        return ForgetMapping(s, dev, handle);
    }

    /// <summary>
    /// __iommu_dma_unmap(dev, dma_addr, size) (v6.12): the granule-aligned span is unmapped with iommu_unmap_fast
    /// (WARN_ON when less than the span was mapped). A strict domain syncs the IOTLB at once (iommu_iotlb_sync) and
    /// frees the IOVA range (iommu_dma_free_iova → free_iova_fast: into the IOVA cache of its order). A lazy domain
    /// (iotlb_gather.queued) does neither: the leaves may live on in the IOTLB and the range goes into the flush queue
    /// (queue_iova), both until <see cref="IommuFlushQueue"/>.
    /// </summary>
    private static DmaState IommuDmaUnmap(DmaState s, IommuDomain domain, DmaDevice dev, ulong dmaAddr, ulong size, string via, List<Finding> findings)
    {
        var ioOff = domain.Offset(dmaAddr);
        var iova = dmaAddr - ioOff;
        var span = domain.Align(size + ioOff);
        // An unmap of fewer IOVA pages than the map took (a bounce mapped with iova_align(size) before 2cbc61a1b166)
        // caches the range under the smaller order: the tree keeps the whole range, as free_iova_fast does. A larger one
        // would hand out pages of a neighbouring range with the range, which is not modelled.
        if (domain.Iova.Find(iova >> domain.Iova.Shift) is { } lo &&
            IovaDomain.OrderBaseTwo(span >> domain.Iova.Shift) > IovaDomain.OrderBaseTwo(domain.Iova.Ranges[lo] - lo + 1))
        {
            throw new NotModelledException($"{via}: the unmap's {size} bytes span {span >> domain.Iova.Shift} IOVA page(s), of a larger size order than the range the map allocated: free_iova_fast would cache the range under the wrong order, which is not modelled");
        }

        domain = domain.UnmapFast(iova, span, out var unmapped, out var removed);
        if (unmapped != span)
        {
            findings.Add(new Finding(FindingKinds.IommuUnmapUnmapped, via, null, new PageOwner(OwnerKind.Free, string.Empty), Severity.ContractViolation,
                $"WARN_ON(unmapped != size) in __iommu_dma_unmap: {span} bytes from IOVA 0x{iova:x} in {dev.Name}'s domain, of which only {unmapped} were mapped (the unmap's size is larger than the map's)"));
        }

        if (domain.Type == IommuDomainType.DmaFq)
        {
            var queued = domain.Queued ?? [];
            if (queued.Count >= IommuDomain.FlushQueueSize)
            {
                throw new NotModelledException($"{via}: {dev.Name}'s flush queue holds {IommuDomain.FlushQueueSize} ranges: a full queue flushes at once (fq_full), which is not modelled");
            }

            return WithDomain(s, domain with
            {
                StaleTlb = (domain.StaleTlb ?? ImmutableSortedDictionary<ulong, IoPte>.Empty).SetItems(removed),
                Queued = queued.Add(new QueuedIova(iova >> domain.Iova.Shift, span >> domain.Iova.Shift)),
            });
        }

        domain = domain with { Iova = domain.Iova.FreeFast(iova >> domain.Iova.Shift, span >> domain.Iova.Shift) };
        return WithDomain(s, domain);
    }

    /// <summary>
    /// The flush queue's work for a lazy domain (drivers/iommu/dma-iommu.c, v6.12: fq_flush_timeout, every
    /// IOVA_FQ_TIMEOUT = 10 ms, → fq_flush_iotlb = iommu_flush_iotlb_all, then fq_ring_free → free_iova_fast of each
    /// queued range, oldest first). Its timing against the driver's and the device's steps is the explorer's to choose
    /// (docs/iommu.md): nothing happens when nothing is queued.
    /// </summary>
    public static DmaState IommuFlushQueue(DmaEnvironment env, DmaState s, DmaDevice dev)
    {
        if (s.IommuDomains?.GetValueOrDefault(dev.Name) is not { } domain || ((domain.Queued?.IsEmpty ?? true) && (domain.StaleTlb?.IsEmpty ?? true)))
        {
            return s;
        }

        var iova = domain.Iova;
        foreach (var q in domain.Queued ?? [])
        {
            iova = iova.FreeFast(q.Pfn, q.Pages);
        }

        return WithDomain(s, domain with { Iova = iova, StaleTlb = null, Queued = null });
    }

    /// <summary>
    /// iommu_dma_sync_single_for_cpu (v6.12): nothing for a coherent device that dev_use_swiotlb does not pick; else
    /// phys = iommu_iova_to_phys(handle), arch_sync_dma_for_cpu on it for a non-coherent device, and for a bounce slot
    /// swiotlb_sync_single_for_cpu (the copy back). A sync of an IOVA with no translation would maintain phys 0's
    /// linear alias, which is not modelled.
    /// </summary>
    private static void IommuDmaSyncSingleForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var via = IommuVia(function, "iommu_dma_sync_single_for_cpu");
        var domain = DomainOf(env, s, dev, function);
        if (dev.Coherent && !DevUseSwiotlb(s.Kernel, dev, size, dir))
        {
            return;
        }

        var phys = IommuSyncPhys(domain, dev, handle, via);
        if (!dev.Coherent)
        {
            ArchSyncDmaForCpu(env, s.Kernel, phys, size, dir, via, ops);
        }

        if (s.Swiotlb is { } pool && pool.Contains(phys))
        {
            SwiotlbSyncSingleForCpu(env, s, pool, phys, size, dir, via, function, ops, findings);
        }
    }

    /// <summary>iommu_dma_sync_single_for_device (v6.12): as for the CPU, with the swiotlb copy into the slot (swiotlb_sync_single_for_device) before arch_sync_dma_for_device.</summary>
    private static DmaState IommuDmaSyncSingleForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops, List<Finding> findings)
    {
        var via = IommuVia(function, "iommu_dma_sync_single_for_device");
        var domain = DomainOf(env, s, dev, function);
        if (dev.Coherent && !DevUseSwiotlb(s.Kernel, dev, size, dir))
        {
            return s;
        }

        var phys = IommuSyncPhys(domain, dev, handle, via);
        var next = s.Swiotlb is { } pool && pool.Contains(phys) ? SwiotlbSyncSingleForDevice(env, s, pool, phys, size, dir, via, ops, findings) : s;
        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, via, ops);
        }

        return next;
    }

    private static ulong IommuSyncPhys(IommuDomain domain, DmaDevice dev, ulong handle, string via)
    {
        var phys = domain.IovaToPhys(handle);
        return phys != 0 ? phys : throw new NotModelledException($"{via}: IOVA 0x{handle:x} has no translation in {dev.Name}'s domain, so iommu_iova_to_phys gives 0 and the sync maintains physical address 0's alias; that is not modelled");
    }

    /// <summary>The calls of a device in an IOMMU DMA domain that the model does not cover yet.</summary>
    private static NotModelledException IommuNotModelled(DmaDevice dev, string function, string iommuFunction) =>
        new($"{function} → {iommuFunction}: {dev.Name} is behind an IOMMU, and {iommuFunction} is not modelled yet (docs/iommu.md)");
}
