namespace DmaCheck.Kernel;

/// <summary>How bad a finding is, as a security or stability matter.</summary>
public enum Severity
{
    /// <summary>A process or the kernel takes a fault: a crash or a denial of service.</summary>
    Fault,

    /// <summary>Memory of another owner is corrupted, or a page is freed that the caller does not own.</summary>
    Corruption,

    /// <summary>Another owner's data becomes readable: an information leak.</summary>
    InformationLeak,

    /// <summary>The driver breaks a rule of the DMA API (what CONFIG_DMA_API_DEBUG reports, and the ownership rules it cannot check).</summary>
    ContractViolation,
}

/// <summary>
/// Something the kernel model did that is wrong whatever the caches do: a finding, reported next to the verdicts.
/// Each names the kernel function at fault, the page frame involved and who really owns it.
/// </summary>
/// <param name="Kind">A stable identifier (docs/findings.md lists them).</param>
/// <param name="Function">The kernel function at fault.</param>
/// <param name="Pfn">The page frame involved, if one is.</param>
/// <param name="Owner">Who owns that frame.</param>
/// <param name="Fatal">Whether the agent cannot go on (the kernel oopses, the process takes a fault).</param>
public sealed record Finding(string Kind, string Function, ulong? Pfn, PageOwner Owner, Severity Severity, string Message, bool Fatal = false)
{
    /// <summary>The severity as reports spell it.</summary>
    public string SeverityText => FindingKindRegistry.SeverityName(Severity);
}

/// <summary>
/// The stable finding kinds: one constant per kind, for the code that makes findings. What each kind means, its
/// class and its severities are in <see cref="FindingKindRegistry"/>, the one list every reporter and the binder use.
/// </summary>
public static class FindingKinds
{
    public const string UserMappingForeignPage = "user-mapping-foreign-page";
    public const string UserMappingOutsideRam = "user-mapping-outside-ram";
    public const string SgForeignPage = "sg-foreign-page";
    public const string SgPageOutsideRam = "sg-page-outside-ram";
    public const string BogusStructPage = "bogus-struct-page";
    public const string ForeignPageFlags = "foreign-page-flags";
    public const string FreeForeignPage = "free-foreign-page";
    public const string DoubleFree = "double-free";
    public const string UseAfterFree = "use-after-free";
    public const string AccessOutsideRam = "access-outside-ram";
    public const string DeviceOutsideMapping = "device-access-unmapped";
    public const string SwiotlbOverflow = "swiotlb-buffer-overflow";
    public const string SwiotlbStaleBytes = "swiotlb-stale-bytes";
    public const string SwiotlbFull = "swiotlb-full";
    public const string SwiotlbAccessBeforeStart = "swiotlb-access-before-start";
    public const string SwiotlbMinAlignLost = "swiotlb-min-align-lost";
    public const string DmaAddrOverflow = "dma-addr-overflow";
    public const string MapResourceRam = "map-resource-ram";
    public const string MapSingleVmalloc = "map-single-vmalloc";
    public const string IommuTranslationFault = "iommu-translation-fault";
    public const string IommuPermissionFault = "iommu-permission-fault";
    public const string IommuUnmapUnmapped = "iommu-unmap-unmapped";
    public const string IommuUnsupportedAlignment = "iommu-unsupported-alignment";
    public const string IommuStaleIotlb = "iommu-stale-iotlb";

    // What CONFIG_DMA_API_DEBUG reports (kernel/dma/debug.c), and the ownership rules it cannot check (Debug/DmaDebug.cs).
    public const string DmaApiFreeInvalid = "dma-api-free-invalid-address";
    public const string DmaApiFreeNotAllocated = "dma-api-free-not-allocated";
    public const string DmaApiFreeSize = "dma-api-free-different-size";
    public const string DmaApiFreeWrongFunction = "dma-api-free-wrong-function";
    public const string DmaApiFreeCpuAddress = "dma-api-free-different-cpu-address";
    public const string DmaApiFreeDirection = "dma-api-free-different-direction";
    public const string DmaApiMapErrorUnchecked = "dma-api-map-error-not-checked";
    public const string DmaApiSyncNotAllocated = "dma-api-sync-not-allocated";
    public const string DmaApiSyncOutside = "dma-api-sync-outside-range";
    public const string DmaApiSyncDirection = "dma-api-sync-different-direction";
    public const string DmaApiSyncReadOnlyForCpu = "dma-api-sync-read-only-for-cpu";
    public const string DmaApiSyncWriteOnlyToDevice = "dma-api-sync-write-only-to-device";
    public const string DmaApiCachelineOverlap = "dma-api-cacheline-overlap";
    public const string CpuTouchesDeviceOwned = "cpu-access-device-owned";
    public const string DeviceTouchesCpuOwned = "device-access-cpu-owned";
    public const string CpuWriteSharesLine = "cpu-write-shares-cacheline";
    public const string DmaApiLeak = "dma-api-leak";
    public const string DmaApiCpuTouchingActiveLine = "dma-api-cpu-touching-active-cacheline";
    public const string DmaApiFreeSgCount = "dma-api-free-sg-different-count";
    public const string DmaApiSyncSgCount = "dma-api-sync-sg-different-count";
    public const string DmaApiSgSegmentTooLong = "dma-api-sg-segment-too-long";
    public const string DmaApiSgSegmentAcrossBoundary = "dma-api-sg-segment-across-boundary";
    public const string DmaApiMapResourceRam = "dma-api-map-resource-ram";
    public const string DmaApiMapStack = "dma-api-map-stack";
    public const string DmaApiMapKernelImage = "dma-api-map-kernel-text";

    // What a recorded trace would risk on a non-coherent kernel profile (dmacheck trace --profile, Traces/WhatIf.cs).
    public const string BufferSharesGranule = "noncoherent-buffer-shares-granule";
    public const string MappingsShareGranule = "noncoherent-mappings-share-granule";

    /// <summary>The kinds the model itself reports (not dma-debug's), in registry order.</summary>
    public static IReadOnlyList<string> All { get; } = FindingKindRegistry.All.Where(k => k.Class == FindingKind.ModelClass).Select(k => k.Id).ToList();
}

/// <summary>One finding kind: its stable identifier, its class, the severities a finding of it can have, and what it means.</summary>
/// <param name="Class">"model" for the model's own findings; dma-debug's error class (E1..E23, reference §8.2); "ownership"; or "what-if" for the hazards a recorded trace would meet on another kernel profile.</param>
public sealed record FindingKind(string Id, string Class, IReadOnlyList<Severity> Severities, string Description)
{
    public const string ModelClass = "model";

    public const string WhatIfClass = "what-if";

    /// <summary>Whether dma-debug (CONFIG_DMA_API_DEBUG, or dmacheck's ownership checks beside it) reports it.</summary>
    public bool IsDebug => Class != ModelClass && Class != WhatIfClass;
}

/// <summary>
/// Every finding kind, in the order reports and messages list them (the model's kinds, then dma-debug's by error class):
/// the one registry the binder (<c># expect finding KIND</c>), the reports (severity names) and docs/findings.md's test
/// read.
/// </summary>
public static class FindingKindRegistry
{
    private static readonly Severity[] Leak = [Severity.InformationLeak];
    private static readonly Severity[] Fault = [Severity.Fault];
    private static readonly Severity[] Corrupt = [Severity.Corruption];
    private static readonly Severity[] Api = [Severity.ContractViolation];

    private static FindingKind Model(string id, Severity[] severities, string description) => new(id, FindingKind.ModelClass, severities, description);

    private static FindingKind Debug(string id, string cls, string description) => new(id, cls, Api, description);

    public static IReadOnlyList<FindingKind> All { get; } =
    [
        Model(FindingKinds.UserMappingForeignPage, Leak, "an mmap of a coherent buffer maps a frame the buffer does not own into user space"),
        Model(FindingKinds.UserMappingOutsideRam, Fault, "an mmap of a coherent buffer maps a pfn with no DRAM behind it"),
        Model(FindingKinds.SgForeignPage, Leak, "an exported sg table holds a page the buffer does not own"),
        Model(FindingKinds.SgPageOutsideRam, Fault, "an exported sg table holds a page with no DRAM behind it"),
        Model(FindingKinds.BogusStructPage, Fault, "the kernel touches page->flags of a struct page that does not exist (an oops)"),
        Model(FindingKinds.ForeignPageFlags, Corrupt, "an atomic read-modify-write of another owner's page->flags"),
        Model(FindingKinds.FreeForeignPage, Corrupt, "a free of a frame owned by someone else, or with no DRAM"),
        Model(FindingKinds.DoubleFree, Corrupt, "a free of a frame or object that is already free"),
        Model(FindingKinds.UseAfterFree, [Severity.InformationLeak, Severity.Corruption], "an access reaches a page after it was freed or given to another owner"),
        Model(FindingKinds.AccessOutsideRam, Fault, "an access to a physical address with no DRAM"),
        Model(FindingKinds.SwiotlbOverflow, Api, "swiotlb_bounce's \"Buffer overflow detected\": a sync past the bounce allocation"),
        Model(FindingKinds.SwiotlbStaleBytes, Leak, "a copy back from bounce slots includes bytes neither the map nor the device wrote"),
        Model(FindingKinds.SwiotlbFull, Api, "no run of free swiotlb slots fits: the map fails"),
        Model(FindingKinds.SwiotlbAccessBeforeStart, Api, "swiotlb_bounce's \"Access before mapping start detected\""),
        Model(FindingKinds.SwiotlbMinAlignLost, Corrupt, "a bounce address that does not keep the low bits of the original named by the device's min_align_mask (before 1f221a0d0dbf)"),
        Model(FindingKinds.DmaAddrOverflow, Api, "the device cannot reach the buffer or the bounce slots: the map fails"),
        Model(FindingKinds.MapResourceRam, Api, "dma_map_resource of RAM refused with a WARN (before a9c38c5d267c)"),
        Model(FindingKinds.MapSingleVmalloc, Api, "dma_map_single of a vmalloc address refused with a WARN (4544b9f25e70)"),
        Model(FindingKinds.DeviceOutsideMapping, [Severity.InformationLeak, Severity.Corruption], "a DMA engine reaches memory outside the mapping its address was computed from, or that no live mapping or coherent buffer of its device covers: the bytes land in (or come from) whoever owns that memory, which the finding names"),
        Model(FindingKinds.IommuTranslationFault, Fault, "a device reaches an IOVA its IOMMU domain has no translation for: the SMMU terminates the transaction"),
        Model(FindingKinds.IommuPermissionFault, Fault, "a device writes through a read-only IOMMU mapping, or reads through a write-only one"),
        Model(FindingKinds.IommuUnmapUnmapped, Api, "iommu-dma's WARN on an unmap of an IOVA (or part of one) that has no translation"),
        Model(FindingKinds.IommuStaleIotlb, [Severity.InformationLeak, Severity.Corruption], "in a lazy IOMMU domain, a device reaches an unmapped IOVA through the IOTLB entry the flush queue has not invalidated yet"),
        Model(FindingKinds.IommuUnsupportedAlignment, Api, "__iommu_dma_map's \"Unsupported alignment constraint\": min_align_mask beyond the IOVA granule"),
        Debug(FindingKinds.DmaApiFreeInvalid, "E1", "an unmap or free of DMA_MAPPING_ERROR"),
        Debug(FindingKinds.DmaApiFreeNotAllocated, "E2", "an unmap or free of a handle that is not mapped"),
        Debug(FindingKinds.DmaApiFreeSize, "E3", "the unmap or free size differs from the map's"),
        Debug(FindingKinds.DmaApiFreeWrongFunction, "E4", "a mapping unmapped or freed with the wrong function"),
        Debug(FindingKinds.DmaApiFreeCpuAddress, "E5", "dma_free_coherent with another CPU address"),
        Debug(FindingKinds.DmaApiFreeSgCount, "E6", "dma_unmap_sg with another nents than dma_map_sg was given"),
        Debug(FindingKinds.DmaApiFreeDirection, "E7", "the unmap direction differs from the map's"),
        Debug(FindingKinds.DmaApiMapErrorUnchecked, "E8", "unmapped without dma_mapping_error() being called on the handle"),
        Debug(FindingKinds.DmaApiSyncNotAllocated, "E9", "a sync of a range no mapping contains"),
        Debug(FindingKinds.DmaApiSyncOutside, "E10", "a sync that runs past the end of its mapping"),
        Debug(FindingKinds.DmaApiSyncDirection, "E11", "the sync direction differs from the map's"),
        Debug(FindingKinds.DmaApiSyncReadOnlyForCpu, "E12", "sync_for_cpu of a device read-only mapping"),
        Debug(FindingKinds.DmaApiSyncWriteOnlyToDevice, "E13", "sync_for_device of a device write-only mapping"),
        Debug(FindingKinds.DmaApiSyncSgCount, "E14", "dma_sync_sg_* with another nents than the map"),
        Debug(FindingKinds.DmaApiMapStack, "E15", "a map of the calling thread's own kernel stack"),
        Debug(FindingKinds.DmaApiMapKernelImage, "E16", "a map overlapping the kernel image's .text or .rodata"),
        Debug(FindingKinds.DmaApiMapResourceRam, "E18", "dma_map_resource of RAM, reported by dma-debug (af0c3f058662)"),
        Debug(FindingKinds.DmaApiSgSegmentTooLong, "E19", "an sg element longer than the device's max_seg_size"),
        Debug(FindingKinds.DmaApiSgSegmentAcrossBoundary, "E20", "an sg element crossing the device's segment boundary"),
        Debug(FindingKinds.DmaApiCachelineOverlap, "E21", "two mappings that are not TO_DEVICE start in one cache line"),
        Debug(FindingKinds.CpuTouchesDeviceOwned, "ownership", "the CPU touches a streaming buffer the device owns"),
        Debug(FindingKinds.DeviceTouchesCpuOwned, "ownership", "a DMA engine touches a mapping the CPU owns"),
        Debug(FindingKinds.CpuWriteSharesLine, "ownership", "the CPU writes bytes sharing a cache line with a mapping the device owns"),
        Debug(FindingKinds.DmaApiLeak, "E22", "mappings or coherent buffers still live when the driver is unbound"),
        Debug(FindingKinds.DmaApiCpuTouchingActiveLine, "E23", "a CPU access to the first cache line of a live mapping (debug_dma_assert_idle)"),
        new(FindingKinds.BufferSharesGranule, FindingKind.WhatIfClass, Corrupt, "replayed on a non-coherent profile, a FROM_DEVICE or BIDIRECTIONAL mapping that is not bounced there has a first or last DMA granule (dma_get_cache_alignment) holding memory outside it: too small or unaligned for the profile's kmalloc rules"),
        new(FindingKinds.MappingsShareGranule, FindingKind.WhatIfClass, Corrupt, "replayed on a non-coherent profile, two live mappings (of one device or two: dma-debug's cacheline tracking is global), not both TO_DEVICE and neither bounced there, share a DMA granule"),
    ];

    private static readonly Dictionary<string, FindingKind> ById = All.ToDictionary(k => k.Id, StringComparer.Ordinal);

    public static FindingKind? Find(string id) => ById.GetValueOrDefault(id);

    /// <summary>The severity as reports spell it.</summary>
    public static string SeverityName(Severity severity) => severity switch
    {
        Severity.InformationLeak => "information-leak",
        Severity.Corruption => "memory-corruption",
        Severity.ContractViolation => "dma-api",
        _ => "fault",
    };
}

/// <summary>Thrown when a finding is fatal to the agent that caused it; the model records the finding and stops the agent.</summary>
public sealed class FatalFindingException(Finding finding) : Exception(finding.Message)
{
    public Finding Finding { get; } = finding;
}
