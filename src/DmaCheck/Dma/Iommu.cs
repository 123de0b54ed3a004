using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>The IOMMU API's page protection flags (include/linux/iommu.h): IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE.</summary>
[Flags]
public enum IommuProt : byte
{
    None = 0,

    /// <summary>IOMMU_READ: the device may read (a DMA_TO_DEVICE or DMA_BIDIRECTIONAL mapping).</summary>
    Read = 1,

    /// <summary>IOMMU_WRITE: the device may write (DMA_FROM_DEVICE, DMA_BIDIRECTIONAL).</summary>
    Write = 2,

    /// <summary>IOMMU_CACHE: cacheable, snooping transactions; dma_info_to_prot sets it only for a coherent device.</summary>
    Cache = 4,
}

/// <summary>The type of a device's default domain (iommu_def_domain_type; iommu.passthrough and iommu.strict on the command line).</summary>
public enum IommuDomainType
{
    /// <summary>IOMMU_DOMAIN_IDENTITY (iommu.passthrough=1): the SMMU bypasses; the device uses dma-direct and physical addresses.</summary>
    Identity,

    /// <summary>IOMMU_DOMAIN_DMA (iommu.strict=1): every unmap invalidates the IOTLB before the IOVA is freed.</summary>
    Dma,

    /// <summary>IOMMU_DOMAIN_DMA_FQ (iommu.strict=0): unmaps are invalidated later, in batches, by the flush queue.</summary>
    DmaFq,
}

/// <summary>
/// A device behind an IOMMU: DT's <c>iommus = &lt;&amp;smmu ...&gt;</c>, and the default domain the command line gives
/// it. <paramref name="Granule"/> is the IOMMU page size iommu-dma uses (the smallest of the domain's pgsize_bitmap).
/// <paramref name="Untrusted"/> is pci_dev-&gt;untrusted (an external-facing port: Thunderbolt, USB4): such a device
/// always gets a strict DMA domain (iommu_get_def_domain_type), and iommu-dma bounces its sub-granule mappings.
/// </summary>
public sealed record DeviceIommu(string Smmu, IommuDomainType Type, ulong Granule, bool Untrusted = false);

/// <summary>One leaf entry of the domain's page table: the granule-aligned physical address and the permissions.</summary>
public sealed record IoPte(ulong Pa, IommuProt Prot);

/// <summary>An IOVA range in a lazy domain's flush queue (struct iova_fq_entry: iova_pfn, pages).</summary>
public sealed record QueuedIova(ulong Pfn, ulong Pages);

/// <summary>
/// A device's IOMMU DMA domain (drivers/iommu/iommu.c, dma-iommu.c, io-pgtable-arm.c, v6.12): its IOVA allocator
/// (<see cref="IovaDomain"/>) and its page table, one leaf per IOVA page of the granule. The page table is kernel
/// state, not memory: the SMMU's table walks are taken to be coherent (io-pgtable's cache maintenance for a
/// non-coherent walker is not modelled), and there is no IOTLB state: a strict domain's unmap invalidates before it
/// returns, so the device always sees the table as it is. Immutable.
/// </summary>
/// <param name="PageTable">IOVA page number (IOVA / granule) → leaf.</param>
/// <param name="StaleTlb">
/// A lazy domain's leaves unmapped since the last IOTLB invalidation, by IOVA page number: the IOTLB may still hold
/// them (the SMMU may cache any valid translation it has walked or prefetched), so a device may still go through them
/// until the flush queue invalidates. The model takes the worst case, a hit, and lets the explorer place the flush.
/// </param>
/// <param name="Queued">A lazy domain's IOVA ranges waiting in the flush queue (queue_iova), not yet free.</param>
public sealed record IommuDomain(string Device, IommuDomainType Type, IovaDomain Iova, ImmutableSortedDictionary<ulong, IoPte> PageTable,
    ImmutableSortedDictionary<ulong, IoPte>? StaleTlb = null, ImmutableList<QueuedIova>? Queued = null)
{
    /// <summary>IOVA_FQ_SIZE (v6.12): a flush queue ring's entries; a full ring flushes at once, which is not modelled.</summary>
    public const int FlushQueueSize = 256;

    /// <summary>The SMMUv3 input address size for a stage-1 domain of a VA_BITS=48 kernel: the aperture ends at 2^48 - 1.</summary>
    public const ulong ApertureEnd = (1UL << 48) - 1;

    public ulong Granule => Iova.Granule;

    /// <summary>iova_offset(iovad, addr).</summary>
    public ulong Offset(ulong addr) => addr & (Granule - 1);

    /// <summary>iova_align(iovad, size).</summary>
    public ulong Align(ulong size) => (size + Granule - 1) & ~(Granule - 1);

    /// <summary>
    /// iommu_setup_dma_ops → iommu_dma_init_domain (v6.12) for a DT platform device: base 0, so start_pfn is 1 (IOVA 0
    /// is never handed out). SMMUv3's software MSI window (MSI_IOVA_BASE) is an IOMMU_RESV_SW_MSI region, which
    /// iova_reserve_iommu_regions skips; a platform device has no PCI windows to reserve.
    /// </summary>
    public static IommuDomain Init(DmaDevice dev, DeviceIommu iommu) =>
        new(dev.Name, iommu.Type, IovaDomain.Init(iommu.Granule, 1), ImmutableSortedDictionary<ulong, IoPte>.Empty);

    /// <summary>
    /// iommu_map(domain, iova, paddr, size, prot) (drivers/iommu/iommu.c → arm_lpae_map_pages): one leaf per granule.
    /// A leaf already there makes arm_lpae_init_pte fail with -EEXIST (and WARN), which iommu-dma's own allocator never
    /// lets happen; the model refuses it.
    /// </summary>
    public IommuDomain Map(ulong iova, ulong pa, ulong size, IommuProt prot)
    {
        var table = PageTable.ToBuilder();
        for (var off = 0UL; off < size; off += Granule)
        {
            if (!table.TryAdd((iova + off) / Granule, new IoPte(pa + off, prot)))
            {
                throw new NotModelledException($"iommu_map of IOVA 0x{iova + off:x}, which still has a leaf (a granule an earlier unmap left mapped): io-pgtable's -EEXIST and the failed map are not modelled");
            }
        }

        return this with { PageTable = table.ToImmutable() };
    }

    /// <summary>
    /// iommu_unmap_fast(domain, iova, size, gather) (v6.12 __iommu_unmap): leaf by leaf from <paramref name="iova"/>,
    /// stopping at the first IOVA page with no leaf (arm_lpae_unmap returns 0 there); <paramref name="unmapped"/> is
    /// the bytes unmapped.
    /// </summary>
    public IommuDomain UnmapFast(ulong iova, ulong size, out ulong unmapped, out ImmutableSortedDictionary<ulong, IoPte> removed)
    {
        var table = PageTable;
        removed = ImmutableSortedDictionary<ulong, IoPte>.Empty;
        unmapped = 0;
        while (unmapped < size && table.TryGetValue((iova + unmapped) / Granule, out var pte))
        {
            removed = removed.Add((iova + unmapped) / Granule, pte);
            table = table.Remove((iova + unmapped) / Granule);
            unmapped += Granule;
        }

        return this with { PageTable = table };
    }

    /// <summary>iommu_iova_to_phys(domain, iova): the leaf's address plus the offset, or 0 when there is no leaf.</summary>
    public ulong IovaToPhys(ulong iova) => PageTable.TryGetValue(iova / Granule, out var pte) ? pte.Pa + Offset(iova) : 0;
}

// The IOMMU domains of the DMA state, and what a device's access through its domain reaches.
public static partial class DmaApi
{
    /// <summary>
    /// The default DMA domain of <paramref name="dev"/>: the one in <paramref name="s"/>, or the one
    /// iommu_dma_init_domain set up at probe (the model makes it at first use, which is the same).
    /// </summary>
    private static IommuDomain DomainOf(DmaEnvironment env, DmaState s, DmaDevice dev, string function)
    {
        var iommu = dev.Iommu ?? throw new InvalidOperationException($"{dev.Name} is not behind an IOMMU");
        CheckIommuModelled(env, dev, iommu, function);
        return s.IommuDomains?.GetValueOrDefault(dev.Name) ?? IommuDomain.Init(dev, iommu);
    }

    private static DmaState WithDomain(DmaState s, IommuDomain domain) =>
        s with { IommuDomains = (s.IommuDomains ?? ImmutableSortedDictionary<string, IommuDomain>.Empty).SetItem(domain.Device, domain) };

    /// <summary>What of the IOMMU the model covers: arm64 (an SMMUv3 under iommu-dma), no bus offset, a granule of PAGE_SIZE.</summary>
    private static void CheckIommuModelled(DmaEnvironment env, DmaDevice dev, DeviceIommu iommu, string function)
    {
        if (env.Layout.Arch != Arch.Arm64)
        {
            throw new NotModelledException($"{function}: {dev.Name} is behind an IOMMU on {env.Layout.Arch}; only arm64's iommu-dma (an SMMU) is modelled (32-bit arm's arm_iommu and x86's IOMMUs are not)");
        }

        if (env.Layout.PhysToDma(0x1000) != 0x1000)
        {
            throw new NotModelledException($"{function}: {dev.Name} is behind an IOMMU on {env.Layout.Name}, which has a DMA offset (dma-ranges); how the SMMU's output addresses meet the bus offset is not modelled");
        }

        if (iommu.Granule != PlatformLayout.PageSize)
        {
            throw new NotModelledException($"{function}: an IOMMU granule of {iommu.Granule / 1024} KiB with this model's 4 KiB kernel pages: init_iova_domain has BUG_ON(granule > PAGE_SIZE), so such a granule needs a kernel with {iommu.Granule / 1024} KiB pages, which is not modelled");
        }
    }

    /// <summary>
    /// The physical address a DMA access by <paramref name="dev"/> to [<paramref name="dma"/>, +<paramref name="length"/>)
    /// reaches. Without an IOMMU, or in an identity domain (iommu.passthrough=1: the SMMU bypasses), dma_to_phys. Behind
    /// a DMA domain, the SMMU's translation: each IOVA page's leaf, which must allow the access (IOMMU_READ for a read,
    /// IOMMU_WRITE for a write). An IOVA page with no leaf is a translation fault, a leaf without the permission a
    /// permission fault: the SMMU records the event and terminates the transaction, and the device's agent stops there.
    /// </summary>
    /// <param name="how">For an IOMMU translation, what the access went through, for the operation's label; null otherwise.</param>
    /// <param name="findings">Where an access through a stale IOTLB entry (a lazy domain, before the flush queue ran) is reported.</param>
    public static ulong DeviceAddressToPhys(DmaEnvironment env, DmaState s, DmaDevice? dev, ulong dma, ulong length, bool write, string agent, List<Finding> findings, out string? how)
    {
        how = null;
        if (dev?.Iommu is not { Type: not IommuDomainType.Identity } iommu)
        {
            return env.Layout.DmaToPhys(dma);
        }

        var domain = DomainOf(env, s, dev, agent);
        var first = dma & ~(domain.Granule - 1); // the IOVA page of dma
        var pa = 0UL;
        for (var page = first; page < dma + Math.Max(length, 1); page += domain.Granule)
        {
            var verb = write ? "write" : "read";
            var stale = false;
            if (!domain.PageTable.TryGetValue(page / domain.Granule, out var pte) && domain.StaleTlb?.TryGetValue(page / domain.Granule, out pte) == true)
            {
                stale = true;
            }

            if (pte is null)
            {
                var cached = domain.Iova.IsCached(page >> domain.Iova.Shift) ? " (its IOVA range sits freed in the IOVA cache, waiting for the next map of its size)" : string.Empty;
                throw new FatalFindingException(new Finding(FindingKinds.IommuTranslationFault, agent, null, new PageOwner(OwnerKind.Free, string.Empty), Severity.Fault,
                    $"{agent} ({dev.Name}) {verb}s IOVA 0x{Math.Max(page, dma):x}, which {iommu.Smmu} has no translation for in {dev.Name}'s domain{cached}: a translation fault (F_TRANSLATION); the SMMU terminates the transaction, and dmacheck stops {agent} here. The device used an IOVA that was never mapped or was already unmapped",
                    Fatal: true));
            }

            var need = write ? IommuProt.Write : IommuProt.Read;
            if ((pte.Prot & need) == 0)
            {
                var pfn = pte.Pa >> PlatformLayout.PageShift;
                throw new FatalFindingException(new Finding(FindingKinds.IommuPermissionFault, agent, pfn, s.OwnerOf(pfn), Severity.Fault,
                    $"{agent} ({dev.Name}) {verb}s IOVA 0x{Math.Max(page, dma):x}, which {dev.Name}'s domain maps {(pte.Prot & (IommuProt.Read | IommuProt.Write)) switch { IommuProt.Read => "read-only (a DMA_TO_DEVICE mapping)", IommuProt.Write => "write-only (a DMA_FROM_DEVICE mapping)", _ => "with no access" }}: a permission fault (F_PERMISSION); the SMMU terminates the transaction, and dmacheck stops {agent} here",
                    Fatal: true));
            }

            if (stale)
            {
                var pfn = pte.Pa >> PlatformLayout.PageShift;
                var owner = s.OwnerOf(pfn);
                findings.Add(new Finding(FindingKinds.IommuStaleIotlb, agent, pfn, owner, write ? Severity.Corruption : Severity.InformationLeak,
                    $"{agent} ({dev.Name}) {verb}s IOVA 0x{Math.Max(page, dma):x} after it was unmapped: {dev.Name}'s domain is lazy (iommu.strict=0), so the unmap left the IOTLB entry in place until the flush queue runs, and the {verb} reaches PA 0x{pte.Pa:x}, {(owner.Kind == OwnerKind.Free ? "which is free" : $"which now belongs to {owner.Describe()}")}"));
            }

            var at = pte.Pa + (page < dma ? dma - page : 0);
            if (page == first)
            {
                pa = at;
            }
            else if (at != pa + (page - dma))
            {
                throw new NotModelledException($"{agent}: one access over IOVA 0x{dma:x}..0x{dma + length:x} reaches physical pages that are not contiguous; split the access at the IOVA page boundary");
            }
        }

        how = $"IOVA 0x{dma:x} → PA 0x{pa:x} through {iommu.Smmu}{(domain.PageTable.ContainsKey(first / domain.Granule) ? string.Empty : "'s stale IOTLB entry")}";
        return pa;
    }
}
