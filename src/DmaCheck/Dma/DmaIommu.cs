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
    /// iommu_dma_map_page (drivers/iommu/dma-iommu.c, v6.12): a mapping dev_use_swiotlb says may bounce, and that is not
    /// granule-aligned at both ends, goes through swiotlb first (not modelled yet: the run stops there). Then
    /// arch_sync_dma_for_device on the buffer for a non-coherent device unless DMA_ATTR_SKIP_CPU_SYNC, and
    /// __iommu_dma_map: the IOVA space is the granule-aligned span of the buffer (iova_align(size + iova_offset)),
    /// allocated by iommu_dma_alloc_iova (alloc_iova_fast below min(dma_mask, the aperture)), mapped with
    /// dma_info_to_prot's permissions; the handle is the IOVA plus the buffer's offset in its granule. No IOVA space:
    /// DMA_MAPPING_ERROR, without a message.
    /// </summary>
    private static DmaState IommuDmaMapPage(DmaEnvironment env, DmaState s, DmaDevice dev, ulong pfn, ulong offset, ulong size, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        var via = IommuVia(function, "iommu_dma_map_page");
        var domain = DomainOf(env, s, dev, function);
        var phys = PlatformLayout.PfnToPhys(pfn) + offset;
        if (DevUseSwiotlb(s.Kernel, dev, size, dir) && domain.Offset(phys | size) != 0)
        {
            var why = dev.Iommu is { Untrusted: true } ? "an untrusted device's mapping that does not fill whole IOVA granules" : "dma_kmalloc_needs_bounce, v6.5";
            throw new NotModelledException($"{via}: {size} bytes at PA 0x{phys:x} for {dev.Name} would bounce through swiotlb (dev_use_swiotlb: {why}); swiotlb bouncing under iommu-dma (swiotlb_tbl_map_single with the granule's alignment, padding zeroing) is not modelled yet");
        }

        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, via, ops);
        }

        // __iommu_dma_map
        if (dev.MinAlignMask > domain.Granule - 1)
        {
            findings.Add(new Finding(FindingKinds.IommuUnsupportedAlignment, via, pfn, s.OwnerOf(pfn), Severity.ContractViolation,
                $"{dev.Name}: Unsupported alignment constraint (dev_WARN_ONCE in __iommu_dma_map): min_align_mask 0x{dev.MinAlignMask:x} is more than the IOVA granule's 0x{domain.Granule - 1:x}; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return s;
        }

        var ioOff = domain.Offset(phys);
        var span = domain.Align(size + ioOff);
        var limit = Math.Min(Math.Min(dev.DmaMask, env.Layout.DmaLimit), IommuDomain.ApertureEnd);
        domain = domain with { Iova = domain.Iova.AllocFast(span >> domain.Iova.Shift, limit >> domain.Iova.Shift, true, out var iovaPfn) };
        if (iovaPfn is not { } allocated)
        {
            handle = DmaMappingError;
            return WithDomain(s, domain);
        }

        var iovaBase = allocated << domain.Iova.Shift;
        domain = domain.Map(iovaBase, phys - ioOff, span, DmaInfoToProt(dir, dev.Coherent));
        handle = iovaBase + ioOff;
        return RecordMapping(WithDomain(s, domain), new StreamingMapping(dev.Name, handle, phys, size, dir, function));
    }

    /// <summary>
    /// iommu_dma_unmap_page (v6.12): phys = iommu_iova_to_phys(handle), and WARN_ON(!phys) returns at once (an IOVA
    /// with no translation: never mapped, or unmapped already); arch_sync_dma_for_cpu on phys for a non-coherent device
    /// unless DMA_ATTR_SKIP_CPU_SYNC; then __iommu_dma_unmap.
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

        if (!dev.Coherent && (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            ArchSyncDmaForCpu(env, s.Kernel, phys, size, dir, via, ops);
        }

        return ForgetMapping(IommuDmaUnmap(s, domain, dev, handle, size, via, findings), dev, handle);
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
        if (domain.Iova.Find(iova >> domain.Iova.Shift) is { } lo &&
            IovaDomain.OrderBaseTwo(span >> domain.Iova.Shift) != IovaDomain.OrderBaseTwo(domain.Iova.Ranges[lo] - lo + 1))
        {
            throw new NotModelledException($"{via}: the unmap's {size} bytes span {span >> domain.Iova.Shift} IOVA page(s), of another size order than the range the map allocated: free_iova_fast would cache the range under the wrong order, which is not modelled");
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
    /// iommu_dma_sync_single_for_cpu (v6.12): nothing for a coherent device that does not bounce; else phys =
    /// iommu_iova_to_phys(handle) and arch_sync_dma_for_cpu on it for a non-coherent device (then the swiotlb copy for
    /// a bounce address, which does not occur yet). A sync of an IOVA with no translation would maintain phys 0's
    /// linear alias, which is not modelled.
    /// </summary>
    private static void IommuDmaSyncSingleForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
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
    }

    /// <summary>iommu_dma_sync_single_for_device (v6.12): as for the CPU, with the swiotlb copy before arch_sync_dma_for_device.</summary>
    private static void IommuDmaSyncSingleForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, string function, List<HwOp> ops)
    {
        var via = IommuVia(function, "iommu_dma_sync_single_for_device");
        var domain = DomainOf(env, s, dev, function);
        if (dev.Coherent && !DevUseSwiotlb(s.Kernel, dev, size, dir))
        {
            return;
        }

        var phys = IommuSyncPhys(domain, dev, handle, via);
        if (!dev.Coherent)
        {
            ArchSyncDmaForDevice(env, s.Kernel, phys, size, dir, via, ops);
        }
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
