using System.Text;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Fuzzing;

/// <summary>What the <see cref="ScenarioGenerator"/> may produce.</summary>
/// <param name="BruteForceFeasible">
/// Keep every scenario small enough for <c>BruteForceExplorer</c>: it keeps one concrete state per touched line and
/// is exponential in their number, and anything that clears a whole page (dma_alloc_coherent's memset,
/// init_on_alloc or __GFP_ZERO on an allocation, init_on_free on a free) touches all 64 lines of it. With this set
/// the generator uses only kmalloc'd buffers, never lets an allocation or a free clear its page, and keeps the
/// buffers to <see cref="MaxBufferBytes"/> bytes in all.
/// </param>
/// <param name="MaxStatements">The most statements one program chooses freely (the owner thread adds the maps, signals and waits it owes).</param>
/// <param name="MaxOtherStatements">
/// The most freely chosen statements of the second thread, the DMA engine and the user process together (four fewer
/// when a user process runs), the second thread's kmap imports included.
/// </param>
/// <param name="MaxBufferBytes">
/// The most bytes of all buffers' access windows together (each window is 64, 128 or 192 bytes). A buffer is its
/// window, except that a coherent buffer of the full generator may be a page or two: every access stays in its window.
/// </param>
public sealed record ScenarioGeneratorOptions(bool BruteForceFeasible, int MaxStatements = 5, int MaxOtherStatements = 8, int MaxBufferBytes = 384)
{
    /// <summary>
    /// The DMA engine may also write past its region, or from the region's address with its low bits cleared: a device
    /// that overruns or computes its addresses (device-access-unmapped, naming the allocation it lands in).
    /// </summary>
    public bool DeviceOverruns { get; init; }

    /// <summary>Small scenarios both explorers finish quickly: the cross-check of the explorers.</summary>
    public static ScenarioGeneratorOptions BruteForce { get; } = new(true, MaxStatements: 4, MaxOtherStatements: 5, MaxBufferBytes: 192);

    /// <summary>
    /// Everything the generator knows: dma_alloc_coherent and dma_alloc_attrs, page-clearing settings, every profile,
    /// tenants, user mappings, sg tables and their importers, the atomic pool. The brute force keeps only observed lines,
    /// and reads stay in the windows, so both explorers still finish. One statement fewer for the other programs than
    /// before seed 2 keeps the CI fuzz run at its old cost (docs/robustness.md).
    /// </summary>
    public static ScenarioGeneratorOptions Full { get; } = new(false, MaxOtherStatements: 7);

    /// <summary><see cref="Full"/> with <see cref="DeviceOverruns"/>.</summary>
    public static ScenarioGeneratorOptions FullWithOverruns { get; } = Full with { DeviceOverruns = true };
}

/// <summary>A generated scenario: its text and a few facts about it. Prints as its text, so a failing property shows the scenario.</summary>
public sealed record GeneratedScenario(string Text, int Agents, int Reads, int Expectations, int BufferBytes)
{
    public override string ToString() => Environment.NewLine + Text;
}

/// <summary>
/// FsCheck generators of random, small, valid scenario texts (the language of scenarios/seeds). Every scenario binds
/// (fresh variables, each assigned once, every name declared) and runs without a <c>RunException</c> and without a
/// "not modelled" stop, by construction: no double free, no access past a buffer or its mapping, no use of a freed
/// non-cacheable remap, no dereference of a DMA_ATTR_NO_KERNEL_MAPPING cookie, no streaming DMA where it is not
/// modelled (32-bit arm, Xen), no NO_KERNEL_MAPPING where it is not (Xen, arm_dma_ops), no DMA handle passed to
/// firmware as a physical address where the bus adds an offset, no DMA_NONE, no __GFP_COMP, no coherent device on a
/// board with an outer cache. Events are ordered so
/// that no program waits for something that cannot come: the owner thread <c>t0</c> assigns every buffer, handle,
/// user mapping and sg table and signals <c>go</c> before it waits for any <c>done_*</c> event of the other programs.
/// A user mapping may outlive its buffer (dma_free_coherent while mapped): that is a finding, not an error.
/// </summary>
public static class ScenarioGenerator
{
    private const int LineSize = 64;

    private static readonly string[] Directions = ["DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_BIDIRECTIONAL"];
    private static readonly string[] WriterNames = ["p", "q", "s"];

    /// <summary>The tenants a scenario may declare, and the writers their data is known by.</summary>
    private static readonly (string Name, string Data)[] TenantNames = [("firefox", "secret"), ("sshd", "keys")];

    /// <summary>Scenarios both explorers can check in well under a second.</summary>
    public static Gen<GeneratedScenario> BruteForceFeasible() => Scenario(ScenarioGeneratorOptions.BruteForce);

    /// <summary>Scenarios using everything the generator knows (page-sized memsets included): for the line-set explorer.</summary>
    public static Gen<GeneratedScenario> Full() => Scenario(ScenarioGeneratorOptions.Full);

    /// <summary>The full generator whose DMA engines may overrun or mask their addresses.</summary>
    public static Gen<GeneratedScenario> FullWithOverruns() => Scenario(ScenarioGeneratorOptions.FullWithOverruns);

    /// <summary>An FsCheck <see cref="Arbitrary{T}"/> over <see cref="BruteForceFeasible"/> (no shrinking).</summary>
    public static Arbitrary<GeneratedScenario> BruteForceFeasibleArbitrary() => BruteForceFeasible().ToArbitrary();

    /// <summary>Random scenario texts under <paramref name="options"/>.</summary>
    public static Gen<GeneratedScenario> Scenario(ScenarioGeneratorOptions options) =>
        from settings in SettingsGen(options)
        from devices in DevicesGen(settings.Profile)
        from tenants in TenantsGen(options)
        from buffers in BuffersGen(options, settings, devices)
        from agents in AgentsGen(options, settings.Profile, buffers)
        from expectations in ExpectationsGen(agents, tenants)
        select Render(settings, devices, tenants, buffers, agents, expectations);

    // ---- the plan: settings, devices, tenants, buffers ----------------------------------------------------------

    /// <summary>What the generator must know of a profile to stay inside what the engine models (docs/scenario-language.md, Limits).</summary>
    /// <param name="Arm64">The arm64.* switches exist (setting them on 32-bit arm is a bind error).</param>
    /// <param name="Streaming">dma_map_* and the syncs are modelled and reach no highmem: arm64 (dma-direct, or swiotlb-xen in a Xen dom0) and x86_64; not 32-bit arm.</param>
    /// <param name="NoKernelMapping">DMA_ATTR_NO_KERNEL_MAPPING is modelled: dma-direct; not xen-swiotlb, not arm_dma_ops.</param>
    /// <param name="DmaOffset">The bus adds an offset to physical addresses: firmware must be handed sg_phys, never a DMA handle.</param>
    /// <param name="DmaEngine">
    /// A <c>dma</c> program can reach memory: on every profile since the fix for crash-856a0304eea2 (the runtime took
    /// DMA addresses at or above PAGE_OFFSET, the RPi4's 32-bit layout, for kernel virtual addresses).
    /// </param>
    /// <param name="Xen">A Xen dom0: dma_mmap_* and dma_get_sgtable_* go through dma_common_*, which find the page from the CPU address.</param>
    /// <param name="VaddrToPage">The profile's dma_common_vaddr_to_page (a <c>set</c> line may override it).</param>
    /// <param name="OuterCache">The board has an outer (PL310) cache, behind which a coherent DMA master is not modelled: its devices are all non-coherent.</param>
    /// <param name="AtomicPool">The atomic pool is modelled (not one of the profile's gaps: v5.4's remap.c pool is not), so a non-blocking allocation may be asked for.</param>
    /// <param name="Aliasing">The board's L1 data cache aliases (the ARMv5 AT91SAM9's VIVT cache): its devices are all non-coherent, as that SoC's are, since a cacheable user mapping there is not modelled.</param>
    private sealed record ProfileFacts(string Name, bool Arm64, bool Streaming, bool NoKernelMapping, bool DmaOffset, bool DmaEngine, bool Xen, string VaddrToPage, bool AlwaysCoherent = false, bool OuterCache = false,
        bool Aliasing = false, bool AtomicPool = true);

    /// <summary>Whether the generator writes scenarios for <paramref name="profile"/> (see <see cref="AllProfiles"/>).</summary>
    public static bool Generates(KernelProfile profile) => profile.Arch is Arch.Arm64 or Arch.Arm32 or Arch.X86_64;

    /// <summary>
    /// Every profile the engine has, in its order, except the MIPS, RISC-V and powerpc ones: the model covers their
    /// streaming maintenance only (coherent allocation for a non-coherent device, sg tables and swiotlb stop as not
    /// modelled there), which the generator's plans do not know yet; their scenarios are under scenarios/history.
    /// </summary>
    private static readonly ProfileFacts[] AllProfiles = Profiles.All.Where(Generates).Select(p => new ProfileFacts(
        p.Name,
        Arm64: p.Arch == Arch.Arm64,
        Streaming: p.Arch is Arch.Arm64 or Arch.X86_64 && !p.ArmDmaOps,
        NoKernelMapping: !p.XenDom0 && !p.ArmDmaOps && p.Gaps?.ContainsKey(ProfileGaps.NoKernelMapping) != true,
        DmaOffset: p.Layout.DmaOffset != 0,
        DmaEngine: true,
        Xen: p.XenDom0,
        VaddrToPage: p.Value(Switches.CommonVaddrToPage),
        AlwaysCoherent: p.Arch == Arch.X86_64,
        OuterCache: p.Layout.OuterCache,
        Aliasing: p.Layout.DcacheIndexing != DcacheIndexing.Physical,
        AtomicPool: p.Gaps?.ContainsKey(ProfileGaps.AtomicPool) != true)).ToArray();

    /// <summary>The profiles of the first generator (before seed 2): the brute-force-feasible scenarios keep to them.</summary>
    private static readonly string[] FirstProfiles = ["linux-6.3-arm64", "linux-6.4-arm64"];

    /// <param name="FreeClears">init_on_free is on: a free clears the page.</param>
    /// <param name="ZeroFlagClears">__GFP_ZERO on an allocation clears the page (it does unless init_on_free is on).</param>
    /// <param name="VaddrToPage">dma_common_vaddr_to_page in effect: the profile's, or the <c>set</c> line's.</param>
    private sealed record Settings(ProfileFacts Profile, IReadOnlyList<(string Key, string Value)> Lines, bool FreeClears, bool ZeroFlagClears, string VaddrToPage);

    /// <param name="MinAlignMask">dma_set_min_align_mask (an NVMe-like 0xfff), which changes where swiotlb bounces; null for none.</param>
    private sealed record Device(string Name, bool Coherent, string? MinAlignMask = null);

    /// <summary>Another owner of the machine's memory: <c>tenant NAME { pages = N, data = WRITER [, zone = Z] }</c>.</summary>
    private sealed record TenantPlan(string Name, int Pages, string Data, string? Zone);

    /// <param name="Sg">Mapped as a one-entry scatterlist (sg_alloc_table, sg_set_buf, dma_map_sg, sg_dma_address) and unmapped and synced with the sg calls, not with dma_map_single.</param>
    private sealed record MapPlan(Device Device, int Offset, int Length, string Direction, bool CheckError, bool Unmap, bool Sg = false);

    /// <summary>The buffer is mmap'ed to user space: dma_mmap_attrs with the buffer's attributes, or dma_mmap_coherent.</summary>
    private sealed record MmapPlan(bool ViaAttrs);

    /// <summary>How an importer reaches the page of a buffer's sg table.</summary>
    private enum Importer
    {
        /// <summary><c>pa = sg_phys(sgt)</c>, handed to firmware by smc.</summary>
        Phys,

        /// <summary><c>pg = sg_page(sgt)</c>, <c>va = kmap_local_page(pg)</c>, then CPU accesses through va.</summary>
        Kmap,
    }

    /// <summary>The buffer is exported as an sg table (dma_get_sgtable_attrs or dma_get_sgtable) and imported one way.</summary>
    private sealed record SgPlan(Importer Importer, bool ViaAttrs);

    /// <param name="Attrs">For a coherent buffer from dma_alloc_attrs, its attributes; null for dma_alloc_coherent (and kmalloc).</param>
    /// <param name="Window">Every access to the buffer, through any alias, stays in its bytes [0, Window).</param>
    /// <param name="Hot">Byte ranges of the window most accesses to the buffer use, so that they overlap.</param>
    private sealed record BufferPlan(int Index, bool Coherent, int Size, int Window, Device Device, string Gfp, string? Attrs, MapPlan? Map,
        MmapPlan? Mmap, SgPlan? Sg, bool Free, IReadOnlyList<(int Lo, int Hi)> Hot)
    {
        public string Name => $"b{Index}";

        public string Handle => $"h{Index}";

        public string UserAddress => $"m{Index}";

        public string SgTable => $"sgt{Index}";

        /// <summary>The scatterlist of a <see cref="MapPlan.Sg"/> mapping.</summary>
        public string SgList => $"sgl{Index}";

        public string Phys => $"pa{Index}";

        public string Page => $"pg{Index}";

        public string Kmap => $"va{Index}";

        /// <summary>A DMA_ATTR_NO_KERNEL_MAPPING buffer: its "address" is a struct page cookie the CPU must never dereference.</summary>
        public bool Cookie => Attrs?.Contains("DMA_ATTR_NO_KERNEL_MAPPING", StringComparison.Ordinal) == true;

        public string AttrsArgument => Attrs ?? "0";
    }

    /// <summary>A range of memory an agent can address: an address expression and how many bytes follow it.</summary>
    /// <param name="Buffer">The buffer the region lies in; its byte 0 is byte <paramref name="Base"/> of the buffer.</param>
    private sealed record Region(string Address, int Length, Device? Device, IReadOnlyList<(int Lo, int Hi)> Hot, int Buffer, int Base);

    /// <summary>True two times in three.</summary>
    private static Gen<bool> Likely { get; } = Gen.Frequency((2, Gen.Constant(true)), (1, Gen.Constant(false)));

    private static Gen<T?> Maybe<T>(Gen<T> gen, int weightNone = 1, int weightSome = 1)
        where T : class =>
        Gen.Frequency((weightNone, Gen.Constant<T?>(null)), (weightSome, gen.Select(x => (T?)x)));

    private static Gen<string?> OptionalValue(params string[] values) =>
        Gen.Frequency((1, Gen.Constant<string?>(null)), (3, Gen.Elements(values).Select(v => (string?)v)));

    /// <summary>
    /// The brute-force-feasible scenarios keep to the first generator's profiles; the full ones take a profile with
    /// streaming DMA (what the first generator covered) half the time, one of the seed-2 profiles otherwise.
    /// </summary>
    private static Gen<ProfileFacts> ProfileGen(ScenarioGeneratorOptions options) =>
        options.BruteForceFeasible
            ? Gen.Elements(AllProfiles.Where(p => FirstProfiles.Contains(p.Name)).ToArray())
            : Gen.Frequency((1, Gen.Elements(AllProfiles.Where(p => p.Streaming).ToArray())), (1, Gen.Elements(AllProfiles.Where(p => !p.Streaming).ToArray())));

    private static Gen<Settings> SettingsGen(ScenarioGeneratorOptions options) =>
        from profile in ProfileGen(options)
        from initOnFree in OptionalValue("on", "off")
        from initOnAllocWanted in OptionalValue("on", "off")
        from cacheInit in OptionalValue("cold", "cold", "arbitrary")
        from ivac in OptionalValue("on", "off")
        from prep in OptionalValue("clean", "clean_inval")
        from fromDevice in OptionalValue("clean", "inval")
        from vaddrToPage in options.BruteForceFeasible ? Gen.Constant<string?>(null) : OptionalValue("virt_to_page", "vmalloc_aware")
        from xenFree in options.BruteForceFeasible ? Gen.Constant<string?>(null) : OptionalValue("virt_to_page", "vmalloc_aware")
        from swiotlb in Gen.Frequency((2, Gen.Constant<string?>(null)), (1, Gen.Constant<string?>("force")))
        from residue in OptionalValue("secret", "stale")
        from mapBounce in OptionalValue("to_device_only", "unless_overwrite", "always")
        from syncBounce in OptionalValue("by_direction", "always")
        from order in Gen.Shuffle(new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 })
        select MakeSettings(options, profile, initOnFree, initOnAllocWanted, cacheInit, ivac, prep, fromDevice, vaddrToPage, xenFree,
            profile.Streaming ? (swiotlb, residue, mapBounce, syncBounce) : default, order);

    private static Settings MakeSettings(ScenarioGeneratorOptions options, ProfileFacts profile, string? initOnFree, string? initOnAlloc,
        string? cacheInit, string? ivac, string? prep, string? fromDevice, string? vaddrToPage, string? xenFree,
        (string? Mode, string? Residue, string? MapBounce, string? SyncBounce) swiotlb, int[] order)
    {
        // Bounce settings only matter, and are only drawn, where streaming DMA runs (arm64 dma-direct) and the pool is forced.
        var bouncing = swiotlb.Mode is not null;
        var freeClears = initOnFree == "on";

        // post_alloc_hook clears the page only when init_on_free is off; a brute-force scenario must not clear a page.
        if (options.BruteForceFeasible && !freeClears && initOnAlloc == "on")
        {
            initOnAlloc = "off";
        }

        var lines = new (string, string?)[]
        {
            ("init_on_alloc", initOnAlloc),
            ("init_on_free", initOnFree),
            ("cache_init", cacheInit),
            ("hw.ivac_as_civac", ivac),
            ("arm64.prep_coherent", profile.Arm64 ? prep : null), // arm64 switches do not exist on 32-bit arm
            ("arm64.sync_for_device_from_device", profile.Arm64 ? fromDevice : null),
            ("dma_common_vaddr_to_page", vaddrToPage),
            ("xen_free_coherent_page", xenFree),
            ("swiotlb", swiotlb.Mode),
            ("swiotlb.residue", bouncing ? swiotlb.Residue : null),
            ("swiotlb.map_bounce", bouncing ? swiotlb.MapBounce : null),
            ("swiotlb.sync_for_device_bounce", bouncing ? swiotlb.SyncBounce : null),
        };
        var present = order.Select(i => lines[i]).Where(l => l.Item2 is not null).Select(l => (l.Item1, l.Item2!)).ToList();
        return new Settings(profile, present, FreeClears: freeClears, ZeroFlagClears: !freeClears, VaddrToPage: vaddrToPage ?? profile.VaddrToPage);
    }

    private static Gen<IReadOnlyList<Device>> DevicesGen(ProfileFacts profile) =>
        from count in Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Constant(2)))
        from coherent in (profile.OuterCache || profile.Aliasing ? Gen.Constant(false) : Gen.Elements(true, false)).ArrayOf(count)
        from aligned in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true))).ArrayOf(count)
        select (IReadOnlyList<Device>)coherent.Select((c, i) => new Device($"d{i}", c, aligned[i] ? "0xfff" : null)).ToList();

    /// <summary>No tenant, one or two: one page, sixteen or a user process's 16 MiB, in the default zone (highmem where there is any) or lowmem.</summary>
    private static Gen<IReadOnlyList<TenantPlan>> TenantsGen(ScenarioGeneratorOptions options) =>
        options.BruteForceFeasible
            ? Gen.Constant<IReadOnlyList<TenantPlan>>([])
            : from count in Gen.Frequency((4, Gen.Constant(0)), (3, Gen.Constant(1)), (1, Gen.Constant(2)))
              from plans in Gen.CollectToList(Enumerable.Range(0, count).Select(i =>
                  from pages in Gen.Elements(1, 16, 4096)
                  from zone in Gen.Elements<string?>(null, null, "default", "lowmem")
                  select new TenantPlan(TenantNames[i].Name, pages, TenantNames[i].Data, zone)))
              select (IReadOnlyList<TenantPlan>)plans.ToList();

    private static Gen<IReadOnlyList<BufferPlan>> BuffersGen(ScenarioGeneratorOptions options, Settings settings, IReadOnlyList<Device> devices)
    {
        // Windows in cache lines, no more than MaxBufferBytes together.
        var maxLines = Math.Max(1, options.MaxBufferBytes / LineSize);
        var windows = Gen.Frequency(
            (3, Gen.Choose(1, Math.Min(3, maxLines)).Select(n => new[] { n })),
            (maxLines >= 2 ? 2 : 0, Gen.Choose(1, Math.Min(3, maxLines - 1)).SelectMany(a => Gen.Choose(1, Math.Min(3, maxLines - a)).Select(b => new[] { a, b }))));
        return from lines in windows
               from plans in Gen.CollectToList(lines.Select((n, i) => BufferGen(options, settings, devices, i, n * LineSize)))
               select (IReadOnlyList<BufferPlan>)plans;
    }

    /// <summary>
    /// A kmalloc'd buffer (mapped for streaming DMA where the profile models it) or, in the full generator, a coherent
    /// one: its window, a page or two; from dma_alloc_coherent or dma_alloc_attrs; maybe mmap'ed, maybe exported as an sg table.
    /// </summary>
    private static Gen<BufferPlan> BufferGen(ScenarioGeneratorOptions options, Settings settings, IReadOnlyList<Device> devices, int index, int window) =>
        from coherent in options.BruteForceFeasible ? Gen.Constant(false) : Gen.Frequency((1, Gen.Constant(true)), (1, Gen.Constant(false)))
        from device in Gen.Elements(devices.ToArray())
        from size in coherent ? Gen.Frequency((3, Gen.Constant(window)), (2, Gen.Constant(4096)), (1, Gen.Constant(8192))) : Gen.Constant(window)
        from attrs in coherent ? AttrsGen(settings.Profile) : Gen.Constant<string?>(null)
        from gfp in GfpGen(options, settings)
        from hot in RangeGen(window).ListOf(2)
        from map in coherent || !settings.Profile.Streaming ? Gen.Constant<MapPlan?>(null) : Maybe(MapGen(devices, window, hot.ToList()), 1, 3)
        from mmap in !coherent ? Gen.Constant<MmapPlan?>(null)
            : Maybe(Gen.Elements(true, false).Select(v => new MmapPlan(v)), IsCookie(attrs) ? 0 : 1, 1) // a cookie is for user space or the device
        from sg in coherent ? Maybe(SgGen(KmapModelled(settings, device)), 3, 2) : Gen.Constant<SgPlan?>(null)
        from free in FreeAllowed(options, settings, coherent) ? Gen.Elements(true, false) : Gen.Constant(false)
        select new BufferPlan(index, coherent, size, window, device, gfp, attrs, map, mmap, sg, free, hot.ToList());

    private static Gen<SgPlan> SgGen(bool kmap) =>
        from importer in kmap ? Gen.Elements(Importer.Phys, Importer.Kmap) : Gen.Constant(Importer.Phys)
        from via in Gen.Elements(true, false)
        select new SgPlan(importer, via);

    /// <summary>
    /// Whether a kmap importer of the buffer's sg table stays inside what the line-set explorer models. Not on 32-bit
    /// arm in a Xen dom0 with virt_to_page for a non-coherent device's (vmalloc-addressed) buffer: the table's page is
    /// then linear-map arithmetic landing in highmem, and kmap'ing a highmem page nobody maps cacheable makes it
    /// fillable, which the line-set explorer stops on as not modelled (the brute force does model it). The importer
    /// takes sg_phys there instead.
    /// </summary>
    private static bool KmapModelled(Settings settings, Device device) =>
        settings.Profile.Arm64 || !settings.Profile.Xen || settings.VaddrToPage == "vmalloc_aware" || device.Coherent;

    private static bool IsCookie(string? attrs) => attrs?.Contains("DMA_ATTR_NO_KERNEL_MAPPING", StringComparison.Ordinal) == true;

    /// <summary>dma_alloc_coherent (null) or dma_alloc_attrs with attributes; NO_KERNEL_MAPPING only where the profile models it.</summary>
    private static Gen<string?> AttrsGen(ProfileFacts profile)
    {
        var choices = new List<(int, Gen<string?>)>
        {
            (5, Gen.Constant<string?>(null)),
            (1, Gen.Constant<string?>("0")),
            (1, Gen.Constant<string?>("DMA_ATTR_WRITE_COMBINE")),
            (1, Gen.Constant<string?>("DMA_ATTR_NO_WARN")),
        };
        if (profile.NoKernelMapping)
        {
            choices.Add((3, Gen.Constant<string?>("DMA_ATTR_NO_KERNEL_MAPPING")));
            choices.Add((1, Gen.Constant<string?>("DMA_ATTR_NO_KERNEL_MAPPING | DMA_ATTR_NO_WARN")));
        }

        return Gen.Frequency(choices);
    }

    private static bool FreeAllowed(ScenarioGeneratorOptions options, Settings settings, bool coherent) =>
        !options.BruteForceFeasible || (!coherent && !settings.FreeClears);

    /// <summary>
    /// GFP flags. A non-blocking dma_alloc_coherent for a non-coherent device takes the atomic pool (dma-direct's, or
    /// arm32's __alloc_from_pool); the full generator asks for it more often.
    /// </summary>
    private static Gen<string> GfpGen(ScenarioGeneratorOptions options, Settings settings)
    {
        var atomic = options.BruteForceFeasible ? 1 : 2;
        var choices = new List<(int, Gen<string>)>
        {
            (4, Gen.Constant("GFP_KERNEL")),
            (1, Gen.Constant("GFP_KERNEL | __GFP_NOWARN")),
            (1, Gen.Constant("GFP_KERNEL | GFP_DMA32")),
        };

        if (settings.Profile.AtomicPool)
        {
            choices.Add((atomic, Gen.Constant("GFP_ATOMIC")));
            choices.Add((1, Gen.Constant("GFP_NOWAIT")));
        }

        if (!options.BruteForceFeasible || !settings.ZeroFlagClears)
        {
            choices.Add((1, Gen.Constant("GFP_KERNEL | __GFP_ZERO")));
        }

        return Gen.Frequency(choices);
    }

    private static Gen<MapPlan> MapGen(IReadOnlyList<Device> devices, int size, IReadOnlyList<(int Lo, int Hi)> hot) =>
        from device in Gen.Elements(devices.ToArray())
        from range in RangeGen(size, hot)
        from direction in Gen.Elements(Directions)
        from checkError in Gen.Elements(true, false)
        from unmap in Gen.Elements(true, false)
        from sg in Gen.Frequency((2, Gen.Constant(false)), (1, Gen.Constant(true)))
        select new MapPlan(device, range.Lo, range.Hi - range.Lo, direction, checkError, unmap, sg);

    /// <summary>
    /// A byte range [Lo, Hi) inside [0, length): one of the <paramref name="hot"/> ranges (so that accesses of
    /// different programs overlap often), or whole, line-aligned, 8-byte aligned or arbitrary.
    /// </summary>
    private static Gen<(int Lo, int Hi)> RangeGen(int length, IReadOnlyList<(int Lo, int Hi)>? hot = null)
    {
        var lines = (length + LineSize - 1) / LineSize;
        var eights = length / 8;
        var choices = new List<(int, Gen<(int, int)>)>
        {
            (2, Gen.Constant((0, length))),
            (2, from a in Gen.Choose(0, lines - 1)
                from b in Gen.Choose(a + 1, lines)
                select (a * LineSize, Math.Min(b * LineSize, length))),
            (2, from lo in Gen.Choose(0, length - 1)
                from hi in Gen.Choose(lo + 1, length)
                select (lo, hi)),
        };
        if (eights > 0)
        {
            choices.Add((2, from a in Gen.Choose(0, eights - 1)
                            from b in Gen.Choose(a + 1, eights)
                            select (a * 8, b * 8)));
        }

        var usable = hot?.Where(r => r.Lo >= 0 && r.Lo < r.Hi && r.Hi <= length).ToArray() ?? [];
        if (usable.Length > 0)
        {
            choices.Add((8, Gen.Elements(usable).Select(r => (r.Lo, r.Hi))));
        }

        return Gen.Frequency(choices);
    }

    // ---- programs -----------------------------------------------------------------------------------------------

    /// <summary>One statement; a read's variable is named when its program is assembled.</summary>
    private abstract record Stmt;

    private sealed record Line(string Text) : Stmt;

    /// <summary>An access to bytes [Lo, Hi) of a region; <see cref="Base"/> places them in buffer <see cref="Buffer"/>.</summary>
    private abstract record AccessStmt(string Address, int Lo, int Hi, int Buffer, int Base) : Stmt;

    private sealed record ReadStmt(string Address, int Lo, int Hi, int Buffer, int Base) : AccessStmt(Address, Lo, Hi, Buffer, Base);

    private sealed record WriteStmt(string Address, int Lo, int Hi, int Buffer, int Base, string Writer) : AccessStmt(Address, Lo, Hi, Buffer, Base);

    /// <summary><c>poll ADDR[lo..hi] == WRITER [, max N]</c>: a writer nobody writes is rendered as <c>old</c> (what RAM held).</summary>
    private sealed record PollStmt(string Address, int Lo, int Hi, int Buffer, int Base, string Writer, int? Max) : AccessStmt(Address, Lo, Hi, Buffer, Base);

    /// <summary>A read's variable, its length and where it starts in which buffer; statement <c>Seq</c> of program <c>Program</c>.</summary>
    private sealed record ReadInfo(string Var, int Length, int Buffer, int Start, string Program, int Seq);

    /// <summary>A write's writer and the bytes [Start, End) of the buffer it covers; statement <c>Seq</c> of program <c>Program</c>.</summary>
    private sealed record WriteInfo(string Writer, int Buffer, int Start, int End, string Program, int Seq);

    /// <summary>A program: its header line (without the brace) and its body, with the reads it makes.</summary>
    private sealed record Program(string Header, IReadOnlyList<string> Body, IReadOnlyList<ReadInfo> Reads, IReadOnlyList<WriteInfo> Writes);

    private sealed record Agents(IReadOnlyList<Program> Programs, string? FirmwareDecl)
    {
        public IReadOnlyList<ReadInfo> Reads => Programs.SelectMany(p => p.Reads).ToList();

        public IReadOnlyList<WriteInfo> Writes => Programs.SelectMany(p => p.Writes).ToList();
    }

    /// <summary>Who does what: the other programs and events, decided before the owner thread is generated.</summary>
    /// <param name="SecondCpu">There is a second thread <c>t1</c>; it is also the one that imports sg tables through kmap_local_page.</param>
    /// <param name="User">There is a user process <c>app</c>, reaching the mmap'ed buffers through their user mappings.</param>
    /// <param name="UserDone">The user process signals <c>done_app</c> and the owner waits for it; otherwise the owner may free a buffer while it is still mapped.</param>
    private sealed record Roles(bool SecondCpu, bool Engine, bool Firmware, bool SmcOnSecondCpu, Region? SmcTarget, bool UseGo, bool SecondCpuWaitsGo, bool EngineWaitsGo,
        bool SecondCpuDone, bool EngineDone, bool User, bool UserWaitsGo, bool UserDone);

    private static Program Assemble(string header, IEnumerable<Stmt> body, string prefix)
    {
        var lines = new List<string>();
        var reads = new List<ReadInfo>();
        var writes = new List<WriteInfo>();
        foreach (var s in body)
        {
            switch (s)
            {
                case ReadStmt r:
                    var name = $"{prefix}{reads.Count}";
                    reads.Add(new ReadInfo(name, r.Hi - r.Lo, r.Buffer, r.Base + r.Lo, prefix, lines.Count));
                    lines.Add($"read {r.Address}[{r.Lo}..{r.Hi}] -> {name}");
                    break;
                case WriteStmt w:
                    writes.Add(new WriteInfo(w.Writer, w.Buffer, w.Base + w.Lo, w.Base + w.Hi, prefix, lines.Count));
                    lines.Add($"write {w.Address}[{w.Lo}..{w.Hi}] = {w.Writer}");
                    break;
                case PollStmt p:
                    lines.Add($"poll {p.Address}[{p.Lo}..{p.Hi}] == {p.Writer}{(p.Max is { } max ? $", max {max}" : string.Empty)}");
                    break;
                case Line l:
                    lines.Add(l.Text);
                    break;
            }
        }

        return new Program(header, lines, reads, writes);
    }


    /// <summary>What the CPU reaches by kernel address: each buffer's window, except a NO_KERNEL_MAPPING cookie's.</summary>
    private static IEnumerable<Region> CpuRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.Where(b => !b.Cookie).Select(b => new Region(b.Name, b.Window, null, b.Hot, b.Index, 0));

    /// <summary>What the user process reaches: the window of each mmap'ed buffer, through its user mapping.</summary>
    private static IEnumerable<Region> UserRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.Where(b => b.Mmap is not null).Select(b => new Region(b.UserAddress, b.Window, null, b.Hot, b.Index, 0));

    /// <summary>What a kmap importer reaches: the window of each sg-exported buffer, through kmap_local_page(sg_page(sgt)).</summary>
    private static IEnumerable<Region> KmapRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.Where(b => b.Sg is { Importer: Importer.Kmap }).Select(b => new Region(b.Kmap, b.Window, null, b.Hot, b.Index, 0));

    /// <summary>What firmware reaches by sg_phys(sgt): the window of each sg-exported buffer.</summary>
    private static IEnumerable<Region> PhysRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.Where(b => b.Sg is { Importer: Importer.Phys }).Select(b => new Region(b.Phys, b.Window, b.Device, b.Hot, b.Index, 0));

    private static IEnumerable<Region> DmaRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.SelectMany(b => b.Coherent
            ? [new Region($"{b.Name}.dma", b.Window, b.Device, b.Hot, b.Index, 0)]
            : b.Map is { } m ? [new Region(b.Handle, m.Length, m.Device, Shift(b.Hot, m.Offset, m.Length), b.Index, m.Offset)] : Array.Empty<Region>());
    /// <summary>Buffer ranges seen through a mapping of [offset, offset+length): clipped and shifted.</summary>
    private static List<(int Lo, int Hi)> Shift(IReadOnlyList<(int Lo, int Hi)> ranges, int offset, int length) =>
        ranges.Select(r => (Lo: Math.Max(r.Lo - offset, 0), Hi: Math.Min(r.Hi - offset, length))).Where(r => r.Lo < r.Hi).ToList();

    private static Gen<Stmt> AccessGen(IReadOnlyList<Region> regions, Func<string, string> address, int writeWeight = 1) =>
        from region in Gen.Elements(regions.ToArray())
        from range in RangeGen(region.Length, region.Hot)
        from write in Gen.Frequency((writeWeight, Gen.Constant(true)), (1, Gen.Constant(false)))
        from writer in Gen.Elements(WriterNames)
        select write
            ? new WriteStmt(address(region.Address), range.Lo, range.Hi, region.Buffer, region.Base, writer)
            : (Stmt)new ReadStmt(address(region.Address), range.Lo, range.Hi, region.Buffer, region.Base);

    /// <summary>
    /// A poll of a few bytes of a region for one of the writers, zero or old, without max or with max 1 or 2: it may
    /// hang (the value never arrives) or time out. One access in six, so most scenarios still have none.
    /// </summary>
    private static Gen<Stmt> PollGen(IReadOnlyList<Region> regions, Func<string, string> address) =>
        from region in Gen.Elements(regions.ToArray())
        from lo in Gen.Choose(0, region.Length - 1)
        from length in Gen.Elements(1, 4, 8, 16)
        from writer in Gen.Elements(WriterNames.Append("zero").Append("old").ToArray())
        from max in Gen.Elements<int?>(null, null, 1, 2)
        let hi = Math.Min(region.Length, lo + length)
        select (Stmt)new PollStmt(address(region.Address), lo, hi, region.Buffer, region.Base, writer, max);

    /// <summary>An access, or (one in six) a poll.</summary>
    private static Gen<Stmt> AccessOrPollGen(IReadOnlyList<Region> regions, Func<string, string> address, int writeWeight = 1) =>
        Gen.Frequency((5, AccessGen(regions, address, writeWeight)), (1, PollGen(regions, address)));

    private static Gen<Stmt> ReadGen(IReadOnlyList<Region> regions) =>
        from region in Gen.Elements(regions.ToArray())
        from range in RangeGen(region.Length, region.Hot)
        select (Stmt)new ReadStmt(region.Address, range.Lo, range.Hi, region.Buffer, region.Base);

    /// <param name="byList">
    /// Whether an sg mapping may be synced by its list (dma_sync_sg_*): only by the owner, which made the mapping. Another
    /// thread could sync the list between sg_alloc_table and dma_map_sg, while its dma_address is still 0 (a kernel
    /// oops on the sync of PA 0); it syncs the handle, which waits until sg_dma_address has assigned it.
    /// </param>
    private static Gen<Stmt> SyncGen(BufferPlan b, bool byList = true)
    {
        var map = b.Map!;
        return from forCpu in Gen.Elements(true, false)
               from sameDirection in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
               from other in Gen.Elements(Directions)
               from partial in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
               from range in RangeGen(map.Length, Shift(b.Hot, map.Offset, map.Length))
               let dir = sameDirection ? map.Direction : other
               let handle = partial && range.Lo > 0 ? $"{b.Handle} + {range.Lo}" : b.Handle
               let length = partial ? range.Hi - range.Lo : map.Length
               select (Stmt)new Line(map.Sg && byList && !partial
                   ? $"dma_sync_sg_for_{(forCpu ? "cpu" : "device")}({map.Device.Name}, {b.SgList}, 1, {dir})"
                   : $"dma_sync_single_for_{(forCpu ? "cpu" : "device")}({map.Device.Name}, {handle}, {length}, {dir})");
    }


    private static Gen<Agents> AgentsGen(ScenarioGeneratorOptions options, ProfileFacts profile, IReadOnlyList<BufferPlan> buffers)
    {
        var dmaRegions = DmaRegions(buffers).ToList();
        var cpuRegions = CpuRegions(buffers).ToList();
        var kmapRegions = KmapRegions(buffers).ToList();
        var userRegions = UserRegions(buffers).ToList();
        var physRegions = PhysRegions(buffers).ToList();

        // Firmware is handed a physical address: sg_phys of an exported table, or a DMA address where the bus adds no offset.
        var targets = new List<(int, Gen<Region>)>();
        if (physRegions.Count > 0)
        {
            targets.Add((3, Gen.Elements(physRegions.ToArray())));
        }

        if (!profile.DmaOffset && dmaRegions.Count > 0)
        {
            targets.Add((1, Gen.Elements(dmaRegions.ToArray())));
        }

        return from secondCpu in cpuRegions.Count + kmapRegions.Count == 0
                   ? Gen.Constant(false)
                   : Gen.Frequency((1, Gen.Constant(true)), (kmapRegions.Count > 0 ? 1 : 2, Gen.Constant(false)))
                   // The kmap importer is t1 when there is one, else the owner.
               let ownerRegions = secondCpu ? cpuRegions : cpuRegions.Concat(kmapRegions).ToList()
               from user in UserWanted(userRegions.Count > 0, ownerRegions.Count > 0, secondCpu)
                   // At most two programs run beside the owner (firmware runs inside an smc): every one multiplies the interleavings.
               from engine in profile.DmaEngine && dmaRegions.Count > 0 && !(secondCpu && user) ? Gen.Frequency((2, Gen.Constant(true)), (1, Gen.Constant(false))) : Gen.Constant(false)
               from firmware in targets.Count == 0 ? Gen.Constant(false) : physRegions.Count > 0 ? Likely : Gen.Elements(true, false)
               from smcOnSecond in secondCpu && firmware ? Gen.Frequency((1, Gen.Constant(true)), (3, Gen.Constant(false))) : Gen.Constant(false)
               from smcTarget in firmware ? Gen.Frequency(targets).Select(r => (Region?)r) : Gen.Constant<Region?>(null)
               from useGo in secondCpu || engine || user ? Likely : Gen.Constant(false)
               from secondWaits in Gen.Elements(true, false)
               from engineWaits in Likely
               from userWaits in Gen.Elements(true, false)
               from secondDone in Gen.Elements(true, false)
               from engineDone in Likely
               from userDone in Gen.Elements(true, false)
               let roles = new Roles(secondCpu, engine, firmware, smcOnSecond, smcTarget, useGo,
                   secondCpu && useGo && secondWaits, engine && useGo && engineWaits,
                   secondCpu && (secondDone || buffers.Any(b => b.Free && b.Coherent)), engine && engineDone,
                   user, user && useGo && userWaits, user && userDone)
               // The user process, t1 and the engine share one budget of freely chosen statements, smaller with a user
               // process: each agent multiplies the interleavings, and the brute force pays for them with every line state.
               let budget = user ? Math.Max(2, options.MaxOtherStatements - 4) : options.MaxOtherStatements
               from userCount in user ? Gen.Choose(1, Math.Max(1, Math.Min(3, budget - (secondCpu ? 1 : 0) - (engine ? 1 : 0)))) : Gen.Constant(0)
               let others = Math.Max(1, budget - userCount)
               // t1's kmap imports (two statements each) come out of its share.
               let imports = secondCpu ? 2 * kmapRegions.Count : 0
               from secondCount in Gen.Choose(1, Math.Max(1, Math.Min(options.MaxStatements, others - (engine ? 1 : 0)) - imports))
               from engineCount in Gen.Choose(1, Math.Max(1, Math.Min(options.MaxStatements - 1, others - (secondCpu ? secondCount : 0))))
               from second in secondCpu ? SecondCpuGen(buffers, cpuRegions.Concat(kmapRegions).ToList(), roles, secondCount).Select(p => (Program?)p) : Gen.Constant<Program?>(null)
               from engineProgram in engine ? EngineGen(dmaRegions, roles, engineCount, options.DeviceOverruns).Select(p => (Program?)p) : Gen.Constant<Program?>(null)
               from fw in firmware ? FirmwareGen(smcTarget!).Select(p => ((Program, string)?)p) : Gen.Constant<(Program, string)?>(null)
               from userProgram in user ? UserGen(userRegions, roles, userCount, mustRead: ownerRegions.Count == 0).Select(p => (Program?)p) : Gen.Constant<Program?>(null)
               from owner in OwnerGen(options, buffers, ownerRegions, roles, new[] { second, engineProgram, fw?.Item1, userProgram }.Any(p => p is { Reads.Count: > 0 }))
               select new Agents(new[] { owner, second, engineProgram, fw?.Item1, userProgram }.OfType<Program>().ToList(), fw?.Item2);
    }

    /// <summary>
    /// Whether a user process reads and writes the mmap'ed buffers: often, less often beside t1, and always when the
    /// owner has nothing to read (every buffer a NO_KERNEL_MAPPING cookie, which is always mmap'ed).
    /// </summary>
    private static Gen<bool> UserWanted(bool mapped, bool ownerCanRead, bool secondCpu) =>
        !mapped ? Gen.Constant(false)
        : !ownerCanRead ? Gen.Constant(true)
        : Gen.Frequency((secondCpu ? 1 : 3, Gen.Constant(true)), (1, Gen.Constant(false)));

    /// <summary>Inserts <paramref name="item"/> into <paramref name="body"/> at a random position (or at its start/end).</summary>
    private static Gen<List<Stmt>> InsertAnywhere(List<Stmt> body, Stmt item) =>
        Gen.Choose(0, body.Count).Select(i =>
        {
            var copy = new List<Stmt>(body);
            copy.Insert(i, item);
            return copy;
        });

    /// <summary>The kmap importer's view of a buffer's sg table: its page, mapped by kmap_local_page.</summary>
    private static IEnumerable<Stmt> KmapLines(BufferPlan b) =>
        [new Line($"{b.Page} = sg_page({b.SgTable})"), new Line($"{b.Kmap} = kmap_local_page({b.Page})")];

    /// <summary>The second thread: it imports the kmap'ed sg tables first (waiting for the owner's tables), then accesses and syncs.</summary>
    private static Gen<Program> SecondCpuGen(IReadOnlyList<BufferPlan> buffers, IReadOnlyList<Region> regions, Roles roles, int count)
    {
        var mapped = buffers.Where(b => b.Map is not null).ToList();
        var choices = new List<(int, Gen<Stmt>)> { (4, AccessOrPollGen(regions, a => a)) };
        if (mapped.Count > 0)
        {
            choices.Add((1, Gen.Elements(mapped.ToArray()).SelectMany(b => SyncGen(b, byList: false))));
        }

        var imports = buffers.Where(b => b.Sg is { Importer: Importer.Kmap }).SelectMany(KmapLines).ToList();
        return from body in Gen.Frequency(choices).ListOf(count)
               from withSmc in roles.SmcOnSecondCpu ? InsertAnywhere(body.ToList(), SmcLine(roles.SmcTarget!)) : Gen.Constant(body.ToList())
               from withWait in roles.SecondCpuWaitsGo ? InsertAnywhere(withSmc, new Line("wait go")) : Gen.Constant(withSmc)
               select Assemble("cpu t1", imports.Concat(withWait).Concat(roles.SecondCpuDone ? [new Line("signal done_t1")] : Array.Empty<Stmt>()), "u");
    }

    /// <summary>The user process: reads and writes through the user mappings (each waits until the owner has made it).</summary>
    private static Gen<Program> UserGen(IReadOnlyList<Region> regions, Roles roles, int count, bool mustRead) =>
        from body in AccessGen(regions, a => a).ListOf(count)
        from last in mustRead ? ReadGen(regions).Select(r => new[] { r }) : Gen.Constant(Array.Empty<Stmt>())
        from withWait in roles.UserWaitsGo ? InsertAnywhere(body.Concat(last).ToList(), new Line("wait go")) : Gen.Constant(body.Concat(last).ToList())
        select Assemble("user app", roles.UserDone ? withWait.Append(new Line("signal done_app")) : withWait, "w");

    private static Stmt SmcLine(Region target) => new Line($"smc fw({target.Address})");

    private static Gen<Program> EngineGen(IReadOnlyList<Region> regions, Roles roles, int count, bool overruns) =>
        from device in Gen.Elements(regions.Select(r => r.Device!).ToArray())
        from body in (overruns ? Gen.Frequency((4, AccessOrPollGen(regions, a => $"dma({a})", writeWeight: 2)), (1, OverrunGen(regions))) : AccessOrPollGen(regions, a => $"dma({a})", writeWeight: 2)).ListOf(count)
        from withWait in roles.EngineWaitsGo ? InsertAnywhere(body.ToList(), new Line("wait go")) : Gen.Constant(body.ToList())
        select Assemble($"dma eng by {device.Name}", roles.EngineDone ? withWait.Append(new Line("signal done_eng")) : withWait, "e");

    /// <summary>
    /// A device write that leaves its region: past its end, or from the region's address with its low bits cleared
    /// (as a device that takes only a page or line address does). A line of its own, so no expectation is built on it.
    /// </summary>
    private static Gen<Stmt> OverrunGen(IReadOnlyList<Region> regions) =>
        from region in Gen.Elements(regions.ToArray())
        from masked in Gen.Elements(true, false)
        from extra in Gen.Elements(1, 64, 200)
        from writer in Gen.Elements(WriterNames)
        let address = masked && !region.Address.Contains('+', StringComparison.Ordinal) ? $"dma(({region.Address} & ~0x7f))" : $"dma({region.Address})"
        let range = $"[0..{region.Length + extra}]"
        select (Stmt)new Line($"write {address}{range} = {writer}");

    private static Gen<(Program Program, string Declaration)> FirmwareGen(Region target) =>
        from access in Gen.Elements("cacheable", "non-cacheable")
        from count in Gen.Choose(1, 2)
        from body in AccessOrPollGen([target with { Address = "a" }], a => $"phys({a})").ListOf(count)
        select (Assemble("firmware fw on smc(a)", body, "f"), $"firmware fw {{ access = {access} }}");

    /// <summary>What the owner thread has done so far while its middle part is generated.</summary>
    private sealed record OwnerState(IReadOnlyList<Stmt> Body, IReadOnlySet<int> Mapped, IReadOnlySet<int> Unmapped, bool Smc, bool Go, IReadOnlySet<string> Waited)
    {
        public OwnerState Add(params Stmt[] stmts) => this with { Body = Body.Concat(stmts).ToList() };
    }

    /// <summary>
    /// How the owner sets a buffer up before anything else: the allocation, then its user mapping and its sg table
    /// (with sg_phys for a firmware importer, and the kmap import when the owner is the importer).
    /// </summary>
    private static IEnumerable<Stmt> Prologue(BufferPlan b, bool kmapHere)
    {
        var dev = b.Device.Name;
        yield return new Line(!b.Coherent ? $"{b.Name} = kmalloc({b.Size}, {b.Gfp})"
            : b.Attrs is null ? $"{b.Name} = dma_alloc_coherent({dev}, {b.Size}, {b.Gfp})"
            : $"{b.Name} = dma_alloc_attrs({dev}, {b.Size}, {b.Gfp}, {b.Attrs})");
        if (b.Mmap is { } mmap)
        {
            yield return new Line(mmap.ViaAttrs
                ? $"{b.UserAddress} = dma_mmap_attrs({dev}, {b.Name}, {b.Size}, {b.AttrsArgument})"
                : $"{b.UserAddress} = dma_mmap_coherent({dev}, {b.Name}, {b.Size})");
        }

        if (b.Sg is { } sg)
        {
            yield return new Line(sg.ViaAttrs
                ? $"{b.SgTable} = dma_get_sgtable_attrs({dev}, {b.Name}, {b.Size}, {b.AttrsArgument})"
                : $"{b.SgTable} = dma_get_sgtable({dev}, {b.Name}, {b.Size})");
            if (sg.Importer == Importer.Phys)
            {
                yield return new Line($"{b.Phys} = sg_phys({b.SgTable})");
            }
            else if (kmapHere)
            {
                foreach (var line in KmapLines(b))
                {
                    yield return line;
                }
            }
        }
    }

    /// <param name="regions">What the owner may access; empty when every buffer is a NO_KERNEL_MAPPING cookie (then the user process reads).</param>
    private static Gen<Program> OwnerGen(ScenarioGeneratorOptions options, IReadOnlyList<BufferPlan> buffers, IReadOnlyList<Region> regions, Roles roles, bool othersRead)
    {
        var prologue = buffers.SelectMany(b => Prologue(b, kmapHere: !roles.SecondCpu)).ToList();
        var start = new OwnerState(prologue, new HashSet<int>(), new HashSet<int>(), !roles.Firmware || roles.SmcOnSecondCpu, !roles.UseGo, new HashSet<string>());
        // An empty middle gives the plain protocol: map, go, wait for the device, take the buffer back, read.
        return from count in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(1, options.MaxStatements)))
               from middle in OwnerSteps(buffers, regions, roles, start, count)
               from epilogue in EpilogueGen(buffers, regions, Settle(buffers, roles, middle))
               from finalRead in regions.Count > 0 ? ReadGen(regions).Select(r => (Stmt?)r) : Gen.Constant<Stmt?>(null)
               select Assemble("cpu t0", Finish(buffers, epilogue, othersRead, finalRead), "v");
    }

    /// <summary>
    /// Often, after the owner has waited for the others: take a mapped buffer back from the device
    /// (dma_sync_single_for_cpu or dma_unmap_single, or not) and read it.
    /// </summary>
    private static Gen<OwnerState> EpilogueGen(IReadOnlyList<BufferPlan> buffers, IReadOnlyList<Region> regions, OwnerState s)
    {
        if (regions.Count == 0)
        {
            return Gen.Constant(s);
        }

        var open = buffers.Where(b => b.Map is not null && !s.Unmapped.Contains(b.Index)).ToArray();
        var handBack = open.Length == 0
            ? Gen.Constant(s)
            : Gen.Elements(open).SelectMany(b => Gen.Frequency(
                (1, Gen.Constant(s)),
                (2, Gen.Constant(s.Add(new Line(b.Map!.Sg
                    ? $"dma_sync_sg_for_cpu({b.Map.Device.Name}, {b.SgList}, 1, {b.Map.Direction})"
                    : $"dma_sync_single_for_cpu({b.Map.Device.Name}, {b.Handle}, {b.Map.Length}, {b.Map.Direction})")))),
                (b.Map!.Unmap ? 2 : 1, Gen.Constant(s.Add(UnmapLine(b)) with { Unmapped = new HashSet<int>(s.Unmapped) { b.Index } }))));
        var read = handBack.SelectMany(h => ReadGen(regions).Select(r => h.Add(r)));
        return Gen.Frequency((1, Gen.Constant(s)), (2, read));
    }

    private static IEnumerable<string> DoneEvents(Roles roles) =>
        new[] { (roles.SecondCpuDone, "done_t1"), (roles.EngineDone, "done_eng"), (roles.UserDone, "done_app") }.Where(e => e.Item1).Select(e => e.Item2);


    private static bool AllMapped(IReadOnlyList<BufferPlan> buffers, OwnerState s) =>
        buffers.All(b => b.Map is null || s.Mapped.Contains(b.Index));

    private static Stmt MapLine(BufferPlan b) =>
        new Line($"{b.Handle} = dma_map_single({b.Map!.Device.Name}, {(b.Map.Offset == 0 ? b.Name : $"{b.Name} + {b.Map.Offset}")}, {b.Map.Length}, {b.Map.Direction})");

    private static Stmt UnmapLine(BufferPlan b) =>
        new Line(b.Map!.Sg
            ? $"dma_unmap_sg({b.Map.Device.Name}, {b.SgList}, 1, {b.Map.Direction})"
            : $"dma_unmap_single({b.Map.Device.Name}, {b.Handle}, {b.Map.Length}, {b.Map.Direction})");

    private static OwnerState DoMap(OwnerState s, BufferPlan b)
    {
        if (b.Map!.Sg)
        {
            // A one-entry scatterlist over the same bytes; a failed dma_map_sg stops the thread (the driver checks n).
            var listed = s.Add(new Line($"{b.SgList} = sg_alloc_table(1)"))
                .Add(new Line($"sg_set_buf({b.SgList}, 0, {(b.Map.Offset == 0 ? b.Name : $"{b.Name} + {b.Map.Offset}")}, {b.Map.Length})"))
                .Add(new Line($"n{b.Handle} = dma_map_sg({b.Map.Device.Name}, {b.SgList}, 1, {b.Map.Direction})"))
                .Add(new Line($"{b.Handle} = sg_dma_address({b.SgList}, 0)"));
            return listed with { Mapped = new HashSet<int>(s.Mapped) { b.Index } };
        }

        var next = s.Add(MapLine(b));
        if (b.Map!.CheckError)
        {
            next = next.Add(new Line($"dma_mapping_error({b.Map.Device.Name}, {b.Handle})"));
        }

        return next with { Mapped = new HashSet<int>(s.Mapped) { b.Index } };
    }

    private static bool SmcReady(IReadOnlyList<BufferPlan> buffers, OwnerState s, Roles roles) =>
        !s.Smc && roles.SmcTarget is { } t && buffers.All(b => b.Map is null || t.Address != b.Handle || s.Mapped.Contains(b.Index));

    /// <summary>The owner's middle part, one statement (or a map and its error check) at a time.</summary>
    private static Gen<OwnerState> OwnerSteps(IReadOnlyList<BufferPlan> buffers, IReadOnlyList<Region> regions, Roles roles, OwnerState s, int remaining)
    {
        if (remaining == 0)
        {
            return Gen.Constant(s);
        }

        var choices = new List<(int, Gen<OwnerState>)>();
        if (regions.Count > 0)
        {
            choices.Add((4, AccessGen(regions, a => a).Select(st => s.Add(st))));
        }

        foreach (var b in buffers.Where(b => b.Map is not null))
        {
            if (!s.Mapped.Contains(b.Index))
            {
                choices.Add((3, Gen.Constant(DoMap(s, b))));
            }
            else if (!s.Unmapped.Contains(b.Index))
            {
                choices.Add((2, SyncGen(b).Select(st => s.Add(st))));
                if (b.Map!.Unmap)
                {
                    choices.Add((1, Gen.Constant(s.Add(UnmapLine(b)) with { Unmapped = new HashSet<int>(s.Unmapped) { b.Index } })));
                }
            }
        }

        if (SmcReady(buffers, s, roles))
        {
            choices.Add((2, Gen.Constant(s.Add(SmcLine(roles.SmcTarget!)) with { Smc = true })));
        }

        if (!s.Go)
        {
            choices.Add((2, Gen.Constant(s.Add(new Line("signal go")) with { Go = true })));
        }

        // Waiting for another program is safe only once everything it may need from t0 exists.
        if (s.Go && AllMapped(buffers, s))
        {
            foreach (var e in DoneEvents(roles).Where(e => !s.Waited.Contains(e)))
            {
                choices.Add((3, Gen.Constant(s.Add(new Line($"wait {e}")) with { Waited = new HashSet<string>(s.Waited) { e } })));
            }
        }

        // Nothing left to choose (every buffer a cookie, go signalled, nothing to wait for): the middle ends early.
        return choices.Count == 0 ? Gen.Constant(s) : Gen.Frequency(choices).SelectMany(next => OwnerSteps(buffers, regions, roles, next, remaining - 1));
    }

    /// <summary>Adds what the owner still owes after its middle part: its maps, its smc, the go signal and its waits.</summary>
    private static OwnerState Settle(IReadOnlyList<BufferPlan> buffers, Roles roles, OwnerState s)
    {
        foreach (var b in buffers.Where(b => b.Map is not null && !s.Mapped.Contains(b.Index)))
        {
            s = DoMap(s, b);
        }

        if (SmcReady(buffers, s, roles))
        {
            s = s.Add(SmcLine(roles.SmcTarget!)) with { Smc = true };
        }

        if (!s.Go)
        {
            s = s.Add(new Line("signal go")) with { Go = true };
        }

        foreach (var e in DoneEvents(roles).Where(e => !s.Waited.Contains(e)))
        {
            s = s.Add(new Line($"wait {e}")) with { Waited = new HashSet<string>(s.Waited) { e } };
        }

        return s;
    }

    /// <summary>Completes the owner: a read if nobody reads, then the frees.</summary>
    private static IEnumerable<Stmt> Finish(IReadOnlyList<BufferPlan> buffers, OwnerState s, bool othersRead, Stmt? finalRead)
    {
        if (!othersRead && !s.Body.OfType<ReadStmt>().Any() && finalRead is not null)
        {
            s = s.Add(finalRead);
        }

        foreach (var b in buffers.Where(b => b.Free))
        {
            s = s.Add(new Line(!b.Coherent ? $"kfree({b.Name})"
                : b.Attrs is null ? $"dma_free_coherent({b.Device.Name}, {b.Size}, {b.Name})"
                : $"dma_free_attrs({b.Device.Name}, {b.Size}, {b.Name}, {b.Attrs})"));
        }

        return s.Body;
    }

    // ---- expectations and text ----------------------------------------------------------------------------------

    private sealed record Atom(string Var, (int Lo, int Hi)? Range, string Writer);

    /// <summary>
    /// One or two expectations of one or two atoms each. Most atoms are plausible: the part of a read that a write
    /// of the same buffer covers (a write that does not come after the read in the same program), expected to hold
    /// that writer's bytes; the rest compare a random part of a read with a random writer (zero, old and the
    /// tenants' data included: a read through a wrong page sees a tenant's data).
    /// </summary>
    private static Gen<IReadOnlyList<IReadOnlyList<Atom>>> ExpectationsGen(Agents agents, IReadOnlyList<TenantPlan> tenants)
    {
        var reads = agents.Reads.ToArray();
        var writers = agents.Writes.Select(w => w.Writer).Distinct().ToArray();
        var writerChoices = new List<(int, Gen<string>)> { (1, Gen.Constant("zero")), (1, Gen.Constant("old")) };
        if (writers.Length > 0)
        {
            writerChoices.Add((4, Gen.Elements(writers)));
        }

        if (tenants.Count > 0)
        {
            writerChoices.Add((2, Gen.Elements(tenants.Select(t => t.Data).ToArray())));
        }

        var writerGen = Gen.Frequency(writerChoices);
        var randomAtom =
            from read in Gen.Elements(reads)
            from whole in Gen.Elements(true, false)
            from range in RangeGen(read.Length)
            from writer in writerGen
            select new Atom(read.Var, whole ? null : range, writer);
        var plausible = (
            from r in reads
            from w in agents.Writes
            where w.Buffer == r.Buffer && (w.Program != r.Program || w.Seq < r.Seq)
            let lo = Math.Max(r.Start, w.Start) - r.Start
            let hi = Math.Min(r.Start + r.Length, w.End) - r.Start
            where lo < hi
            select new Atom(r.Var, lo == 0 && hi == r.Length ? null : (lo, hi), w.Writer)).Distinct().ToArray();
        var atom = plausible.Length == 0 ? randomAtom : Gen.Frequency((5, Gen.Elements(plausible)), (1, randomAtom));
        var expectation = Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Constant(2))).SelectMany(n => atom.ListOf(n)).Select(l => (IReadOnlyList<Atom>)l.ToList());
        return Gen.Choose(1, 2).SelectMany(n => expectation.ListOf(n)).Select(l => (IReadOnlyList<IReadOnlyList<Atom>>)l.ToList());
    }

    private static GeneratedScenario Render(Settings settings, IReadOnlyList<Device> devices, IReadOnlyList<TenantPlan> tenants, IReadOnlyList<BufferPlan> buffers, Agents agents,
        IReadOnlyList<IReadOnlyList<Atom>> expectations)
    {
        var sb = new StringBuilder();
        sb.Append("scenario \"generated\"\n");
        sb.Append("profile ").Append(settings.Profile.Name).Append('\n');
        foreach (var (key, value) in settings.Lines)
        {
            sb.Append("set ").Append(key).Append(" = ").Append(value).Append('\n');
        }

        sb.Append('\n');
        foreach (var d in devices)
        {
            // x86_64 has no non-coherent DMA: every device is declared coherent there.
            sb.Append("device ").Append(d.Name).Append(" { coherent = ").Append(d.Coherent || settings.Profile.AlwaysCoherent ? "true" : "false")
                .Append(d.MinAlignMask is { } mask ? $", min_align_mask = {mask}" : string.Empty).Append(" }\n");
        }

        foreach (var t in tenants)
        {
            sb.Append("tenant ").Append(t.Name).Append(" { pages = ").Append(t.Pages).Append(", data = ").Append(t.Data);
            sb.Append(t.Zone is null ? string.Empty : $", zone = {t.Zone}").Append(" }\n");
        }

        if (agents.FirmwareDecl is { } fw)
        {
            sb.Append(fw).Append('\n');
        }

        var written = agents.Writes.Select(w => w.Writer).Append("zero").Append("old").ToHashSet(StringComparer.Ordinal);
        foreach (var p in agents.Programs)
        {
            sb.Append('\n').Append(p.Header).Append(" {\n");
            foreach (var line in p.Body)
            {
                sb.Append("  ").Append(PollOfAWrittenValue(line, written)).Append('\n');
            }

            sb.Append("}\n");
        }

        sb.Append('\n');
        for (var i = 0; i < expectations.Count; i++)
        {
            var atoms = expectations[i].Select(a => a.Range is { } r ? $"{a.Var}[{r.Lo}..{r.Hi}] == {a.Writer}" : $"{a.Var} == {a.Writer}");
            sb.Append("expect x").Append(i).Append(": ").AppendJoin(" && ", atoms).Append('\n');
        }

        return new GeneratedScenario(sb.ToString(), agents.Programs.Count, agents.Reads.Count, expectations.Count, buffers.Sum(b => b.Size));
    }

    /// <summary>A poll line for a writer no statement writes polls for <c>old</c> instead (the binder refuses a writer nobody writes).</summary>
    private static string PollOfAWrittenValue(string line, HashSet<string> written)
    {
        if (!line.StartsWith("poll ", StringComparison.Ordinal))
        {
            return line;
        }

        var at = line.IndexOf("== ", StringComparison.Ordinal) + 3;
        var end = line.IndexOf(',', at) is var comma and >= 0 ? comma : line.Length;
        return written.Contains(line[at..end]) ? line : line[..at] + "old" + line[end..];
    }
}
