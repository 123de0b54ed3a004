namespace DmaCheck.Scenarios;

/// <summary>
/// The parts of a control state a step may read or write, for the interleaving reduction
/// (docs/internals-reduction.md). Coarse on purpose: a step's lines, handles and variables are refined from what the
/// step did (its operations and its statement), these parts say which shared kernel, DMA and debug structures it uses.
/// </summary>
[Flags]
public enum StateParts : uint
{
    None = 0,

    /// <summary>The buddy allocator and CMA: free blocks, allocated blocks and their owners.</summary>
    PageAllocator = 1u << 0,

    /// <summary>The kmalloc caches and live objects.</summary>
    Slab = 1u << 1,

    /// <summary>The page tables: aliases in the MMU, the vmalloc and vmap areas, kmap slots and user mappings.</summary>
    PageTables = 1u << 2,

    /// <summary>The threads' kernel stacks.</summary>
    Stacks = 1u << 3,

    /// <summary>The sg tables.</summary>
    SgTables = 1u << 4,

    /// <summary>The live streaming mappings (the handle table).</summary>
    StreamingMappings = 1u << 5,

    /// <summary>The live coherent allocations.</summary>
    CoherentBuffers = 1u << 6,

    /// <summary>The atomic DMA pool's chunks.</summary>
    AtomicPool = 1u << 7,

    /// <summary>The swiotlb slots and search index.</summary>
    Swiotlb = 1u << 8,

    /// <summary>dma-debug's entries.</summary>
    DebugEntries = 1u << 9,

    /// <summary>The scenario's global variables (a call's result assigned to one).</summary>
    Variables = 1u << 10,

    /// <summary>The raised events.</summary>
    Signals = 1u << 11,

    /// <summary>Where observed variables' bytes came from.</summary>
    Observed = 1u << 12,

    /// <summary>The IOMMU domains: IOVA allocators and page tables. Not refined by the reduction: a step that uses one is taken to touch everything.</summary>
    Iommu = 1u << 13,

    /// <summary>Everything: what a step whose footprint is unknown is taken to touch.</summary>
    All = (1u << 14) - 1,
}

/// <summary>What a step reads and what it writes, as parts of the control state.</summary>
public sealed record Footprint(StateParts Reads, StateParts Writes)
{
    /// <summary>A step that may touch anything.</summary>
    public static Footprint Everything { get; } = new(StateParts.All, StateParts.All);

    /// <summary>A step that touches no shared part (a plain memory access of its own lines).</summary>
    public static Footprint Nothing { get; } = new(StateParts.None, StateParts.None);

    /// <summary>Whether the two steps use a part one of them writes (then they may not commute).</summary>
    public bool ConflictsWith(Footprint other) =>
        (Writes & (other.Reads | other.Writes)) != 0 || (other.Writes & Reads) != 0;
}
