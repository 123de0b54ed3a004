using DmaCheck.Kernel;
namespace DmaCheck.Dma;

/// <summary><see cref="Switches.PrepCoherent"/>: what arm64's arch_dma_prep_coherent() does.</summary>
public enum PrepCoherentMode
{
    /// <summary>clean_inval: dcache_clean_inval_poc.</summary>
    CleanInval,

    /// <summary>clean: dcache_clean_poc.</summary>
    Clean,
}

/// <summary><see cref="Switches.SyncForDeviceFromDevice"/>: arm64's arch_sync_dma_for_device for DMA_FROM_DEVICE.</summary>
public enum SyncForDeviceFromDeviceMode
{
    /// <summary>inval: dcache_inval_poc.</summary>
    Inval,

    /// <summary>clean: dcache_clean_poc.</summary>
    Clean,
}

/// <summary><see cref="Switches.CommonVaddrToPage"/> and <see cref="Switches.XenFreeCoherentPage"/>: how a CPU address becomes a struct page.</summary>
public enum VaddrToPageMode
{
    /// <summary>virt_to_page: linear-map arithmetic whatever the address.</summary>
    VirtToPage,

    /// <summary>vmalloc_aware: vmalloc_to_page for a vmalloc address.</summary>
    VmallocAware,
}

/// <summary><see cref="Switches.IommuBounceMapSync"/>: whether iommu_dma_map_page bounces, and where it syncs for the device then.</summary>
public enum IommuBounceMapSyncMode
{
    None,
    Original,
    Bounce,
}

/// <summary><see cref="Switches.IommuBouncePadding"/>: what iommu_dma_map_page clears around a bounce.</summary>
public enum IommuBouncePaddingMode
{
    FromBounce,
    PrePostUntrusted,
}

/// <summary><see cref="Switches.IommuBounceMapSize"/>: the size iommu_dma_map_page maps after a bounce.</summary>
public enum IommuBounceMapSizeMode
{
    Aligned,
    Size,
}

/// <summary><see cref="Switches.IommuSyncSgBounce"/>: where iommu-dma's sg syncs look for a bounced element.</summary>
public enum IommuSyncSgBounceMode
{
    SgPhys,
    DmaAddress,
}

/// <summary><see cref="Switches.SwiotlbMapBounce"/>: when swiotlb_tbl_map_single copies the buffer into the slots.</summary>
public enum SwiotlbMapBounceMode
{
    ToDeviceOnly,
    UnlessOverwrite,
    Always,
}

/// <summary><see cref="Switches.SwiotlbSyncForDeviceBounce"/>: which directions swiotlb_sync_single_for_device copies.</summary>
public enum SwiotlbSyncForDeviceBounceMode
{
    ByDirection,
    Always,
}

/// <summary><see cref="Switches.KmallocBounce"/>: CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC and arm64's ARCH_KMALLOC_MINALIGN.</summary>
public enum KmallocBounceMode
{
    Off,
    On,
}

/// <summary><see cref="Switches.MapResourceRamCheck"/>: what dma_map_resource does with RAM.</summary>
public enum MapResourceRamCheckMode
{
    BugOn,
    WarnFail,
    None,
    DebugReport,
}

/// <summary><see cref="Switches.SwiotlbSyncOffset"/>: how swiotlb_bounce finds the original address of a sub-range.</summary>
public enum SwiotlbSyncOffsetMode
{
    SlotOffset,
    SlotStart,
    AlignOffset,
    Checked,
    Signed,
}

/// <summary><see cref="Switches.SwiotlbSlotSearch"/>: swiotlb's slot search and the low bits a bounce address keeps.</summary>
public enum SwiotlbSlotSearchMode
{
    PageStride,
    MinAlignStride,
    AddressMask,
    PageUnlessMinAlign,
}

/// <summary><see cref="Switches.DmaMmapPgprot"/>: the user mapping's attributes.</summary>
public enum DmaMmapPgprotMode
{
    ArchDmaMmapPgprot,
    DmaPgprot,
}

/// <summary><see cref="Switches.XenArmAlloc"/>: xen_swiotlb_dma_ops.alloc/.free on arm.</summary>
public enum XenArmAllocMode
{
    XenSwiotlbAllocCoherent,
    DmaDirect,
}

/// <summary><see cref="Switches.Arm32DevToCpu"/>: 32-bit arm's maintenance when a buffer comes back to the CPU.</summary>
public enum Arm32DevToCpuMode
{
    None,
    Invalidate,
}

/// <summary><see cref="Switches.MipsPostDmaFlush"/>: the cores cpu_needs_post_dma_flush() names.</summary>
public enum MipsPostDmaFlushMode
{
    R10000,
    Bmips5000,
}

/// <summary><see cref="Switches.PpcFromDeviceUnaligned"/>: powerpc's FROM_DEVICE maintenance of an unaligned range.</summary>
public enum PpcFromDeviceUnalignedMode
{
    Invalidate,
    Flush,
}

/// <summary>A switch whose values are parsed into <typeparamref name="TEnum"/>: one member per value the switch defines.</summary>
public sealed class TypedSwitch<TEnum>(SwitchDef def, IReadOnlyDictionary<string, TEnum> values) : ITypedSwitch
    where TEnum : struct, Enum
{
    public SwitchDef Def => def;

    public IEnumerable<string> Names => values.Keys;

    public bool IsKnown(string value) => values.ContainsKey(value);

    /// <summary>The profile's value of the switch, typed. The profile must have the switch (<see cref="KernelProfile.Has"/>).</summary>
    public TEnum Of(KernelProfile profile)
    {
        return Parse(profile.Value(def));
    }

    /// <summary>A value's typed form, by its name; an unknown name is refused.</summary>
    public TEnum Parse(string name) =>
        values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"switch {def.Key} has no value '{name}' (values: {string.Join(", ", values.Keys)})");

    /// <summary>The profile's value, or null when the profile's architecture has no such switch.</summary>
    public TEnum? OfOrNull(KernelProfile profile) => profile.Has(def) ? Of(profile) : null;
}

/// <summary>A typed switch, whatever its enum.</summary>
public interface ITypedSwitch
{
    SwitchDef Def { get; }

    IEnumerable<string> Names { get; }

    bool IsKnown(string value);
}

/// <summary>
/// Every switch with its values as an enum: what the model branches on. A value is parsed once, when a profile or a
/// scenario's <c>set</c> is loaded (<see cref="IsKnown"/>); a value a <see cref="SwitchDef"/> lists but no enum maps is
/// a load error, not a silent default (SwitchValuesTests checks the two lists agree).
/// </summary>
public static class SwitchValues
{
    public static TypedSwitch<PrepCoherentMode> PrepCoherent { get; } = new(Switches.PrepCoherent,
        new Dictionary<string, PrepCoherentMode>(StringComparer.Ordinal) { ["clean_inval"] = PrepCoherentMode.CleanInval, ["clean"] = PrepCoherentMode.Clean });

    public static TypedSwitch<SyncForDeviceFromDeviceMode> SyncForDeviceFromDevice { get; } = new(Switches.SyncForDeviceFromDevice,
        new Dictionary<string, SyncForDeviceFromDeviceMode>(StringComparer.Ordinal) { ["inval"] = SyncForDeviceFromDeviceMode.Inval, ["clean"] = SyncForDeviceFromDeviceMode.Clean });

    public static TypedSwitch<VaddrToPageMode> CommonVaddrToPage { get; } = new(Switches.CommonVaddrToPage, VaddrToPage);

    public static TypedSwitch<VaddrToPageMode> XenFreeCoherentPage { get; } = new(Switches.XenFreeCoherentPage, VaddrToPage);

    public static TypedSwitch<SwiotlbMapBounceMode> SwiotlbMapBounce { get; } = new(Switches.SwiotlbMapBounce,
        new Dictionary<string, SwiotlbMapBounceMode>(StringComparer.Ordinal)
        {
            ["to_device_only"] = SwiotlbMapBounceMode.ToDeviceOnly,
            ["unless_overwrite"] = SwiotlbMapBounceMode.UnlessOverwrite,
            ["always"] = SwiotlbMapBounceMode.Always,
        });

    public static TypedSwitch<SwiotlbSyncForDeviceBounceMode> SwiotlbSyncForDeviceBounce { get; } = new(Switches.SwiotlbSyncForDeviceBounce,
        new Dictionary<string, SwiotlbSyncForDeviceBounceMode>(StringComparer.Ordinal) { ["by_direction"] = SwiotlbSyncForDeviceBounceMode.ByDirection, ["always"] = SwiotlbSyncForDeviceBounceMode.Always });

    public static TypedSwitch<KmallocBounceMode> KmallocBounce { get; } = new(Switches.KmallocBounce,
        new Dictionary<string, KmallocBounceMode>(StringComparer.Ordinal) { ["off"] = KmallocBounceMode.Off, ["on"] = KmallocBounceMode.On });

    public static TypedSwitch<MapResourceRamCheckMode> MapResourceRamCheck { get; } = new(Switches.MapResourceRamCheck,
        new Dictionary<string, MapResourceRamCheckMode>(StringComparer.Ordinal)
        {
            ["bug_on"] = MapResourceRamCheckMode.BugOn,
            ["warn_fail"] = MapResourceRamCheckMode.WarnFail,
            ["none"] = MapResourceRamCheckMode.None,
            ["debug_report"] = MapResourceRamCheckMode.DebugReport,
        });

    public static TypedSwitch<CachelineOverlapReport> DebugCachelineOverlap { get; } = new(Switches.DebugCachelineOverlap,
        new Dictionary<string, CachelineOverlapReport>(StringComparer.Ordinal)
        {
            ["silent"] = CachelineOverlapReport.Silent,
            ["report"] = CachelineOverlapReport.Report,
            ["skip_cpu_sync"] = CachelineOverlapReport.SkipCpuSync,
            ["kmalloc_bounce"] = CachelineOverlapReport.KmallocBounce,
            ["cache_alignment"] = CachelineOverlapReport.CacheAlignment,
        });

    public static TypedSwitch<DmaCacheAlignmentSource> DmaCacheAlignment { get; } = new(Switches.DmaCacheAlignment,
        new Dictionary<string, DmaCacheAlignmentSource>(StringComparer.Ordinal)
        {
            ["arch_dma_minalign"] = DmaCacheAlignmentSource.ArchDmaMinalign,
            ["cache_line_size"] = DmaCacheAlignmentSource.CacheLineSize,
        });

    public static TypedSwitch<SwiotlbSyncOffsetMode> SwiotlbSyncOffset { get; } = new(Switches.SwiotlbSyncOffset,
        new Dictionary<string, SwiotlbSyncOffsetMode>(StringComparer.Ordinal)
        {
            ["slot_offset"] = SwiotlbSyncOffsetMode.SlotOffset,
            ["slot_start"] = SwiotlbSyncOffsetMode.SlotStart,
            ["align_offset"] = SwiotlbSyncOffsetMode.AlignOffset,
            ["checked"] = SwiotlbSyncOffsetMode.Checked,
            ["signed"] = SwiotlbSyncOffsetMode.Signed,
        });

    public static TypedSwitch<SwiotlbSlotSearchMode> SwiotlbSlotSearch { get; } = new(Switches.SwiotlbSlotSearch,
        new Dictionary<string, SwiotlbSlotSearchMode>(StringComparer.Ordinal)
        {
            ["page_stride"] = SwiotlbSlotSearchMode.PageStride,
            ["min_align_stride"] = SwiotlbSlotSearchMode.MinAlignStride,
            ["address_mask"] = SwiotlbSlotSearchMode.AddressMask,
            ["page_unless_min_align"] = SwiotlbSlotSearchMode.PageUnlessMinAlign,
        });

    public static TypedSwitch<DmaMmapPgprotMode> DmaMmapPgprot { get; } = new(Switches.DmaMmapPgprot,
        new Dictionary<string, DmaMmapPgprotMode>(StringComparer.Ordinal) { ["arch_dma_mmap_pgprot"] = DmaMmapPgprotMode.ArchDmaMmapPgprot, ["dma_pgprot"] = DmaMmapPgprotMode.DmaPgprot });

    public static TypedSwitch<XenArmAllocMode> XenArmAlloc { get; } = new(Switches.XenArmAlloc,
        new Dictionary<string, XenArmAllocMode>(StringComparer.Ordinal) { ["xen_swiotlb_alloc_coherent"] = XenArmAllocMode.XenSwiotlbAllocCoherent, ["dma_direct"] = XenArmAllocMode.DmaDirect });

    public static TypedSwitch<Arm32DevToCpuMode> Arm32DevToCpu { get; } = new(Switches.Arm32DevToCpu,
        new Dictionary<string, Arm32DevToCpuMode>(StringComparer.Ordinal) { ["none"] = Arm32DevToCpuMode.None, ["invalidate"] = Arm32DevToCpuMode.Invalidate });

    public static TypedSwitch<MipsPostDmaFlushMode> MipsPostDmaFlush { get; } = new(Switches.MipsPostDmaFlush,
        new Dictionary<string, MipsPostDmaFlushMode>(StringComparer.Ordinal) { ["r10000"] = MipsPostDmaFlushMode.R10000, ["bmips5000"] = MipsPostDmaFlushMode.Bmips5000 });

    public static TypedSwitch<THeadClean> RiscvTheadClean { get; } = new(Switches.RiscvTheadClean,
        new Dictionary<string, THeadClean>(StringComparer.Ordinal) { ["cval1"] = THeadClean.Cval1, ["cva"] = THeadClean.Cva });

    public static TypedSwitch<PpcFromDeviceUnalignedMode> PpcFromDeviceUnaligned { get; } = new(Switches.PpcFromDeviceUnaligned,
        new Dictionary<string, PpcFromDeviceUnalignedMode>(StringComparer.Ordinal) { ["invalidate"] = PpcFromDeviceUnalignedMode.Invalidate, ["flush"] = PpcFromDeviceUnalignedMode.Flush });

    /// <summary>One typed switch per <see cref="Switches.All"/> entry, in that order.</summary>
    public static TypedSwitch<IommuBounceMapSyncMode> IommuBounceMapSync { get; } = new(Switches.IommuBounceMapSync,
        new Dictionary<string, IommuBounceMapSyncMode>(StringComparer.Ordinal) { ["none"] = IommuBounceMapSyncMode.None, ["original"] = IommuBounceMapSyncMode.Original, ["bounce"] = IommuBounceMapSyncMode.Bounce });

    public static TypedSwitch<IommuBouncePaddingMode> IommuBouncePadding { get; } = new(Switches.IommuBouncePadding,
        new Dictionary<string, IommuBouncePaddingMode>(StringComparer.Ordinal) { ["from_bounce"] = IommuBouncePaddingMode.FromBounce, ["pre_post_untrusted"] = IommuBouncePaddingMode.PrePostUntrusted });

    public static TypedSwitch<IommuBounceMapSizeMode> IommuBounceMapSize { get; } = new(Switches.IommuBounceMapSize,
        new Dictionary<string, IommuBounceMapSizeMode>(StringComparer.Ordinal) { ["aligned"] = IommuBounceMapSizeMode.Aligned, ["size"] = IommuBounceMapSizeMode.Size });

    public static TypedSwitch<IommuSyncSgBounceMode> IommuSyncSgBounce { get; } = new(Switches.IommuSyncSgBounce,
        new Dictionary<string, IommuSyncSgBounceMode>(StringComparer.Ordinal) { ["sg_phys"] = IommuSyncSgBounceMode.SgPhys, ["dma_address"] = IommuSyncSgBounceMode.DmaAddress });

    public static IReadOnlyList<ITypedSwitch> All { get; } =
        [PrepCoherent, SyncForDeviceFromDevice, CommonVaddrToPage, XenFreeCoherentPage, SwiotlbMapBounce, SwiotlbSyncForDeviceBounce, KmallocBounce, MapResourceRamCheck, DebugCachelineOverlap, DmaCacheAlignment, SwiotlbSyncOffset, SwiotlbSlotSearch, DmaMmapPgprot, XenArmAlloc, Arm32DevToCpu, MipsPostDmaFlush, RiscvTheadClean, PpcFromDeviceUnaligned, IommuBounceMapSync, IommuBouncePadding, IommuBounceMapSize, IommuSyncSgBounce];

    /// <summary>Whether <paramref name="value"/> parses as a value of switch <paramref name="def"/> (false for a switch with no typed form).</summary>
    public static bool IsKnown(SwitchDef def, string value) => All.FirstOrDefault(t => t.Def == def) is { } typed && typed.IsKnown(value);

    private static IReadOnlyDictionary<string, VaddrToPageMode> VaddrToPage => new Dictionary<string, VaddrToPageMode>(StringComparer.Ordinal)
    {
        ["virt_to_page"] = VaddrToPageMode.VirtToPage,
        ["vmalloc_aware"] = VaddrToPageMode.VmallocAware,
    };
}
