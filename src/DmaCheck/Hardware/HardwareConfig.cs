namespace DmaCheck.Hardware;

/// <summary>What a line may hold when the scenario starts.</summary>
public enum InitialCache : byte
{
    /// <summary>Every line Invalid (the default).</summary>
    Cold,

    /// <summary>Each line Invalid, Clean(old) or Dirty(old), chosen freely and at no cost.</summary>
    Arbitrary,
}

/// <summary>How the L1 data cache finds a line: by physical address, or by virtual address bits that can differ between aliases.</summary>
public enum DcacheIndexing : byte
{
    /// <summary>PIPT, or VIPT with a way no larger than a page: every alias of a physical line hits the same line (every arm64 and ARMv7 core, x86).</summary>
    Physical,

    /// <summary>
    /// VIPT whose way is larger than a page (ARMv6 cores with a way above 4 KiB, as the ARM1136 with 32 KiB 4-way; PA-RISC;
    /// some MIPS): the page-number bits below the way size (the colour) index the cache, so two aliases of a page with
    /// different colours use different lines. Tags are physical, so same-colour aliases share a line.
    /// </summary>
    ViptAliasing,

    /// <summary>VIVT (ARMv4/ARMv5 cores, as the ARM926EJ-S): every virtual address has a line of its own; two aliases of a page never share one.</summary>
    Vivt,
}

/// <summary>Platform properties of the cache hierarchy.</summary>
/// <param name="LineSize">
/// Bytes per modelled cache line: the cache writeback granule (arm64 CTR_EL0.CWG), the most bytes that one eviction of a
/// modified line can write back, which is the largest line of any level (<see cref="L1LineSize"/>, <see cref="OuterLineSize"/>).
/// Every line the model tracks is this size: a store dirties, and an eviction writes back, all of it. 32, 64 or 128.
/// </param>
/// <param name="IvacActsAsCivac">DC IVAC is performed as DC CIVAC (EL1 with stage-2 translation enabled, Arm ARM).</param>
/// <param name="Initial">The cache state of every line before the scenario starts.</param>
/// <param name="InitialData">The last data written to every line before the scenario starts.</param>
/// <param name="InitialRamBehind">What RAM holds while that last data may still sit Dirty in the cache (with <see cref="InitialCache.Arbitrary"/>).</param>
/// <param name="Regions">Physical ranges whose last data is another writer's (another tenant's memory), overriding <see cref="InitialData"/>.</param>
/// <param name="OuterCache">
/// An outer (L2) cache level sits between the inner cache and RAM, maintained by physical address through its own
/// controller rather than by the inner level's operations: an Arm PL310 / L2C-310 (docs/semantics.md, "Outer cache").
/// Lines are <see cref="LineSize"/> bytes at both levels.
/// </param>
/// <param name="L1LineSize">
/// The inner (L1) data cache's line (0: <see cref="LineSize"/>): the stride of maintenance by VA, which the kernel reads
/// from the cache type register (arm64 dcache_line_size: CTR_EL0.DminLine, the smallest line of any level; 32-bit arm
/// v7 dcache_line_size: CTR.DminLine).
/// </param>
/// <param name="OuterLineSize">
/// The line of a cache beyond L1 (0: none of its own, or the same as L1): the PL310's 32 bytes on the i.MX6 layout, or
/// a system cache with 128-byte lines beyond 64-byte L1 lines on some arm64 SoCs (the case IIO's IIO_DMA_MINALIGN change,
/// 2022, was made for).
/// </param>
/// <param name="SpeculativeFill">
/// The CPU may bring a line into its caches on its own, through any live cacheable alias, without a load or store of the
/// program asking for it: speculative execution down a mispredicted path, or a hardware prefetcher (every Arm
/// Cortex-A core modelled, BMIPS5000, the T-Head C9xx). False for an in-order core that allocates a line only on an access
/// the program makes (the MIPS 24Kc of the Malta layout): the spontaneous fill move (<see cref="SpontaneousMove.Fill"/>,
/// and with it <see cref="SpontaneousMove.OuterFill"/>) never happens there. Evictions and write-backs still do.
/// </param>
/// <param name="Indexing">How the L1 data cache is indexed (docs/semantics.md, "Aliasing data caches").</param>
/// <param name="Colours">With <see cref="DcacheIndexing.ViptAliasing"/>: the number of page colours, way size / page size (a power of two, 2 or more).</param>
public sealed record HardwareConfig(int LineSize = 64, bool IvacActsAsCivac = false, InitialCache Initial = InitialCache.Cold,
    byte InitialData = WriterTable.Old, byte InitialRamBehind = WriterTable.Old, IReadOnlyList<InitialRegion>? Regions = null, bool OuterCache = false,
    int L1LineSize = 0, int OuterLineSize = 0, bool SpeculativeFill = true, DcacheIndexing Indexing = DcacheIndexing.Physical, int Colours = 1)
{
    /// <summary>Whether two aliases of one physical line can sit in different L1 lines.</summary>
    public bool Aliasing => Indexing != DcacheIndexing.Physical;

    /// <summary>
    /// The alias key (<see cref="LineOp.Colour"/>) of an access to physical page frame at <paramref name="linearVa"/> in the linear map
    /// made through virtual address <paramref name="va"/>: 0 when it uses the same L1 line as the linear map (always, on a physically
    /// indexed cache); otherwise a key that two aliases share exactly when they share a line. VIPT: the difference of the colours
    /// (page-number bits below the way size), modulo <see cref="Colours"/>. VIVT: the difference of the virtual pages.
    /// </summary>
    public ulong ColourOf(ulong va, ulong linearVa) => Indexing switch
    {
        DcacheIndexing.Physical => 0,
        DcacheIndexing.ViptAliasing => unchecked((va >> 12) - (linearVa >> 12)) & (ulong)(Colours - 1),
        _ => unchecked((va >> 12) - (linearVa >> 12)) & (ulong.MaxValue >> 12),
    };

    public static HardwareConfig Default { get; } = new();

    /// <summary>The line sizes the model accepts, for either level.</summary>
    public static IReadOnlyList<int> LineSizes { get; } = [32, 64, 128];

    /// <summary>The L1 data cache line: <see cref="L1LineSize"/>, or <see cref="LineSize"/> when it is not set apart.</summary>
    public int L1Line => L1LineSize == 0 ? LineSize : L1LineSize;

    /// <summary>The outer cache's line: <see cref="OuterLineSize"/>, or the L1 line when it is not set apart.</summary>
    public int OuterLine => OuterLineSize == 0 ? L1Line : OuterLineSize;

    /// <summary>
    /// CTR_EL0.DminLine (and the v7 CTR's): the smallest data cache line of any level, in bytes. The kernel's by-VA
    /// maintenance loops (arm64 dcache_*_poc, v7_dma_*_range) step by it and test a range's edges against it.
    /// </summary>
    public int DminLine => Math.Min(L1Line, OuterLine);

    /// <summary>
    /// The cache writeback granule in bytes (arm64 CTR_EL0.CWG, read by cache_line_size_of_cpu()): the largest line of any
    /// level. Equal to <see cref="LineSize"/>, the granule the model tracks.
    /// </summary>
    public int Cwg => LineSize;

    /// <summary>
    /// The geometry with an L1 line of <paramref name="l1"/> and an outer line of <paramref name="outer"/> (0: none of its
    /// own): the modelled line becomes the larger of the two, the writeback granule.
    /// </summary>
    public HardwareConfig WithLines(int l1, int outer) =>
        this with { L1LineSize = l1, OuterLineSize = outer, LineSize = Math.Max(l1, outer == 0 ? l1 : outer) };

    /// <summary>The last data written to the line at <paramref name="linePa"/> before the scenario starts.</summary>
    public byte InitialDataAt(ulong linePa)
    {
        if (Regions is { } regions)
        {
            foreach (var r in regions)
            {
                if (linePa >= r.Pa && linePa - r.Pa < r.Size)
                {
                    return r.Data;
                }
            }
        }

        return InitialData;
    }
}

/// <summary>A physical range [Pa, Pa+Size) whose contents before the scenario were written by <see cref="Data"/>; line aligned.</summary>
public sealed record InitialRegion(ulong Pa, ulong Size, byte Data);
