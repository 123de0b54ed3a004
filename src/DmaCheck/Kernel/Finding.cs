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
    public string SeverityText => Severity switch
    {
        Severity.InformationLeak => "information-leak",
        Severity.Corruption => "memory-corruption",
        Severity.ContractViolation => "dma-api",
        _ => "fault",
    };
}

/// <summary>The stable finding kinds.</summary>
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
    public const string SwiotlbOverflow = "swiotlb-buffer-overflow";
    public const string SwiotlbStaleBytes = "swiotlb-stale-bytes";
    public const string SwiotlbFull = "swiotlb-full";
    public const string SwiotlbAccessBeforeStart = "swiotlb-access-before-start";
    public const string DmaAddrOverflow = "dma-addr-overflow";
    public const string MapResourceRam = "map-resource-ram";
    public const string MapSingleVmalloc = "map-single-vmalloc";

    public static IReadOnlyList<string> All { get; } =
    [
        UserMappingForeignPage, UserMappingOutsideRam, SgForeignPage, SgPageOutsideRam, BogusStructPage,
        ForeignPageFlags, FreeForeignPage, DoubleFree, UseAfterFree, AccessOutsideRam, SwiotlbOverflow, SwiotlbStaleBytes, SwiotlbFull, SwiotlbAccessBeforeStart, DmaAddrOverflow,
        MapResourceRam, MapSingleVmalloc,
    ];
}

/// <summary>Thrown when a finding is fatal to the agent that caused it; the model records the finding and stops the agent.</summary>
public sealed class FatalFindingException(Finding finding) : Exception(finding.Message)
{
    public Finding Finding { get; } = finding;
}
