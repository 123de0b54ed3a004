using System.Collections.Immutable;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// A named kernel version on a named board: a value for every switch of its architecture, a platform memory layout,
/// and whether Linux runs as a Xen dom0 (every device then gets xen_swiotlb_dma_ops).
/// </summary>
/// <param name="ArmDmaOps">32-bit arm without LPAE: devices get arm_dma_ops (arm_coherent_dma_ops), whose alloc is __dma_alloc and whose mmap/get_sgtable take the pfn from the handle.</param>
/// <param name="Gaps">Mechanisms of this kernel that differ from what the model follows and were not modelled, by <see cref="ProfileGaps"/> key, with what differs: a run that reaches one stops as not modelled.</param>
public sealed record KernelProfile(string Name, string Description, PlatformLayout Layout, ImmutableDictionary<string, string> SwitchValues, bool XenDom0 = false, bool ArmDmaOps = false,
    ImmutableDictionary<string, string>? Gaps = null)
{
    /// <summary>Stops the run as not modelled when this kernel's <paramref name="mechanism"/> is one of its <see cref="Gaps"/>.</summary>
    public void RequireModelled(string mechanism)
    {
        if (Gaps is not null && Gaps.TryGetValue(mechanism, out var what))
        {
            throw new Hardware.NotModelledException($"{what} ({Name})");
        }
    }

    public Arch Arch => Layout.Arch;

    /// <summary>Whether this profile's architecture has the switch.</summary>
    public bool Has(SwitchDef def) => def.Arch is null || def.Arch == Arch;

    public string Value(SwitchDef def) => SwitchValues.TryGetValue(def.Key, out var v)
        ? v
        : throw new InvalidOperationException($"profile {Name} ({Arch}) has no switch {def.Key}");

    public KernelProfile With(SwitchDef def, string value)
    {
        if (!Dma.SwitchValues.IsKnown(def, value))
        {
            throw new ArgumentException($"switch {def.Key} has no value {value}");
        }

        if (!Has(def))
        {
            throw new ArgumentException($"switch {def.Key} is an {def.Arch} switch; profile {Name} is {Arch}");
        }

        return this with { SwitchValues = SwitchValues.SetItem(def.Key, value) };
    }

    /// <summary>The switches of this profile, in <see cref="Switches.All"/> order, as KEY=VALUE.</summary>
    public string DescribeSwitches() => string.Join(", ", Switches.All.Where(Has).Select(s => $"{s.Key}={Value(s)}"));
}

/// <summary>The mechanisms a profile can name as not modelled (<see cref="KernelProfile.Gaps"/>).</summary>
public static class ProfileGaps
{
    /// <summary>dma_map_single of a vmalloc address (refused only since 4544b9f25e70, v5.5).</summary>
    public const string MapSingleVmalloc = "dma_map_single_vmalloc";

    /// <summary>dma_alloc_* without __GFP_DIRECT_RECLAIM for a non-coherent device: the atomic pool.</summary>
    public const string AtomicPool = "atomic_pool";

    /// <summary>dma_alloc_attrs with DMA_ATTR_NO_KERNEL_MAPPING.</summary>
    public const string NoKernelMapping = "no_kernel_mapping";
}

/// <summary>The bundled profiles.</summary>
public static class Profiles
{
    private static ImmutableDictionary<string, string> Values(params (SwitchDef Def, string Value)[] values) =>
        values.ToImmutableDictionary(v => v.Def.Key, v => SwitchValues.IsKnown(v.Def, v.Value) ? v.Value : throw new ArgumentException($"switch {v.Def.Key} has no value {v.Value}"));

    public static KernelProfile Linux63Arm64 { get; } = new(
        "linux-6.3-arm64",
        "Linux v6.3 on arm64: arch_dma_prep_coherent cleans and invalidates; FROM_DEVICE maps clean (>= v5.19).",
        PlatformLayout.Arm64Va48,
        Values((Switches.PrepCoherent, "clean_inval"), (Switches.SyncForDeviceFromDevice, "clean"),
            (Switches.CommonVaddrToPage, "vmalloc_aware"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "always"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.KmallocBounce, "off"),
            (Switches.MapResourceRamCheck, "none"), (Switches.DebugCachelineOverlap, "skip_cpu_sync"),
            (Switches.DmaCacheAlignment, "arch_dma_minalign"), (Switches.SwiotlbSyncOffset, "checked"), (Switches.SwiotlbSlotSearch, "address_mask"),
            (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "dma_direct"), (Switches.IommuBounceMapSync, "bounce"), (Switches.IommuBouncePadding, "from_bounce"), (Switches.IommuBounceMapSize, "size"), (Switches.IommuSyncSgBounce, "dma_address")));

    public static KernelProfile Linux64Arm64 { get; } = Linux63Arm64 with
    {
        Name = "linux-6.4-arm64",
        Description = "Linux v6.4 on arm64: arch_dma_prep_coherent only cleans (7bd6680b47fa); FROM_DEVICE maps clean.",
        SwitchValues = Linux63Arm64.SwitchValues.SetItem(Switches.PrepCoherent.Key, "clean"),
    };

    public static KernelProfile Linux65Arm64 { get; } = Linux64Arm64 with
    {
        Name = "linux-6.5-arm64",
        Description = "Linux v6.5 on arm64: ARCH_KMALLOC_MINALIGN 8 with a swiotlb pool for bouncing small non-coherent kmalloc buffers (370645f41e6e, 9382bc44b5f5, 1c1a429efd4e); a 2 GiB module region, so vmalloc starts at 0xffff800080000000 (3e35d303ab7d).",
        Layout = PlatformLayout.Arm64Va48V65,
        SwitchValues = Linux64Arm64.SwitchValues.SetItem(Switches.KmallocBounce.Key, "on").SetItem(Switches.DmaCacheAlignment.Key, "cache_line_size"),
    };

    /// <summary>v5.8 on arm64 as a Xen dom0, on a board without a DMA offset: both vmalloc-address bugs present.</summary>
    public static KernelProfile Linux58Arm64Xen { get; } = new(
        "linux-5.8-arm64-xen",
        "Linux v5.8 on arm64 as a Xen dom0 (xen_swiotlb_dma_ops), 1 GiB at 0x80000000, no DMA offset: xen_swiotlb_free_coherent and dma_common_mmap/get_sgtable both use virt_to_page on the cpu address.",
        PlatformLayout.Arm64Va48V5,
        Values((Switches.PrepCoherent, "clean_inval"), (Switches.SyncForDeviceFromDevice, "inval"),
            (Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "virt_to_page"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.KmallocBounce, "off"),
            (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"), (Switches.DmaCacheAlignment, "arch_dma_minalign"),
            (Switches.SwiotlbSyncOffset, "slot_offset"), (Switches.SwiotlbSlotSearch, "page_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"), (Switches.IommuBounceMapSync, "none"), (Switches.IommuBouncePadding, "from_bounce"), (Switches.IommuBounceMapSize, "aligned"), (Switches.IommuSyncSgBounce, "sg_phys")),
        XenDom0: true);

    /// <summary>v5.13 on arm64 as a Xen dom0 on a Raspberry Pi 4: the swiotlb-xen fix is in, the dma_common one not yet.</summary>
    public static KernelProfile Linux513Arm64Xen { get; } = new(
        "linux-5.13-arm64-xen",
        "Linux v5.13 on arm64 as a Xen dom0 on a Raspberry Pi 4: xen_swiotlb_free_coherent is vmalloc-aware (8b1e868f6607, v5.9), dma_common_mmap/get_sgtable are not (fixed by 40ac971eab89 in v5.14).",
        PlatformLayout.Arm64Rpi4,
        Values((Switches.PrepCoherent, "clean_inval"), (Switches.SyncForDeviceFromDevice, "inval"),
            (Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.KmallocBounce, "off"),
            (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"), (Switches.DmaCacheAlignment, "arch_dma_minalign"),
            (Switches.SwiotlbSyncOffset, "align_offset"), (Switches.SwiotlbSlotSearch, "min_align_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"), (Switches.IommuBounceMapSync, "original"), (Switches.IommuBouncePadding, "from_bounce"), (Switches.IommuBounceMapSize, "aligned"), (Switches.IommuSyncSgBounce, "sg_phys")),
        XenDom0: true);

    public static KernelProfile Linux514Arm64Xen { get; } = Linux513Arm64Xen with
    {
        Name = "linux-5.14-arm64-xen",
        Description = "Linux v5.14 on arm64 as a Xen dom0 on a Raspberry Pi 4: both fixes in (8b1e868f6607, 40ac971eab89).",
        SwitchValues = Linux513Arm64Xen.SwitchValues.SetItem(Switches.CommonVaddrToPage.Key, "vmalloc_aware").SetItem(Switches.DebugCachelineOverlap.Key, "report"),
    };

    /// <summary>v5.13 on arm64, native (no Xen): devices use dma-direct, whose mmap/get_sgtable work from the handle.</summary>
    public static KernelProfile Linux513Arm64 { get; } = Linux513Arm64Xen with
    {
        Name = "linux-5.13-arm64",
        Description = "Linux v5.13 on arm64, no Xen, Raspberry Pi 4: dma-direct, so dma_mmap_attrs/dma_get_sgtable_attrs take the handle-based dma_direct_* path.",
        XenDom0 = false,
    };

    public static KernelProfile Linux513ArmXenRpi4 { get; } = new(
        "linux-5.13-arm-xen-rpi4",
        "Linux v5.13 on 32-bit arm (LPAE, so dma-direct with arch_dma_alloc = __dma_alloc) as a Xen dom0 on a Raspberry Pi 4: dma_common_mmap/get_sgtable use virt_to_page.",
        PlatformLayout.Arm32Rpi4,
        Values((Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"),
            (Switches.SwiotlbSyncOffset, "align_offset"), (Switches.SwiotlbSlotSearch, "min_align_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"),
            (Switches.Arm32DevToCpu, "invalidate")),
        XenDom0: true);

    public static KernelProfile Linux514ArmXenRpi4 { get; } = Linux513ArmXenRpi4 with
    {
        Name = "linux-5.14-arm-xen-rpi4",
        Description = "Linux v5.14 on 32-bit arm (LPAE) as a Xen dom0 on a Raspberry Pi 4: dma_common_vaddr_to_page (40ac971eab89).",
        SwitchValues = Linux513ArmXenRpi4.SwitchValues.SetItem(Switches.CommonVaddrToPage.Key, "vmalloc_aware").SetItem(Switches.DebugCachelineOverlap.Key, "report"),
    };

    public static KernelProfile Linux513ArmRpi4 { get; } = Linux513ArmXenRpi4 with
    {
        Name = "linux-5.13-arm-rpi4",
        Description = "Linux v5.13 on 32-bit arm (LPAE: dma-direct, with arch_dma_alloc = __dma_alloc for non-coherent devices), no Xen, Raspberry Pi 4.",
        XenDom0 = false,
    };

    public static KernelProfile Linux513ArmImx6 { get; } = new(
        "linux-5.13-arm-imx6",
        "Linux v5.13 on 32-bit arm without LPAE, no Xen, i.MX6Quad-like: arm_dma_ops, so __dma_alloc allocates and arm_dma_mmap/arm_dma_get_sgtable take the pfn from the handle.",
        PlatformLayout.Arm32Imx6,
        Values((Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"),
            (Switches.SwiotlbSyncOffset, "align_offset"), (Switches.SwiotlbSlotSearch, "min_align_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"),
            (Switches.Arm32DevToCpu, "invalidate")),
        ArmDmaOps: true);

    /// <summary>v5.13 on an ARMv5 board with a VIVT data cache (<see cref="PlatformLayout.Arm32At91Sam9"/>): arm_dma_ops, as on the i.MX6.</summary>
    public static KernelProfile Linux513ArmAt91Sam9 { get; } = Linux513ArmImx6 with
    {
        Name = "linux-5.13-arm-at91sam9",
        Description = "Linux v5.13 on 32-bit arm (ARMv5, no LPAE), no Xen, AT91SAM9G20-like: arm_dma_ops, and an ARM926EJ-S whose VIVT data cache gives every vmalloc/vmap alias lines of its own.",
        Layout = PlatformLayout.Arm32At91Sam9,
    };

    /// <summary>v6.4 on x86_64: cache-coherent DMA, no cache maintenance anywhere; swiotlb for devices that cannot reach the DRAM above 4 GiB.</summary>
    public static KernelProfile Linux64X86 { get; } = new(
        "linux-6.4-x86_64",
        "Linux v6.4 on an x86_64 PC: DMA is cache-coherent (no arch_sync_dma_for_* or arch_dma_prep_coherent), dma-direct with swiotlb; kmalloc objects are 8-byte aligned.",
        PlatformLayout.X86_64Pc,
        Values((Switches.CommonVaddrToPage, "vmalloc_aware"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "always"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "none"), (Switches.DebugCachelineOverlap, "skip_cpu_sync"),
            (Switches.SwiotlbSyncOffset, "checked"), (Switches.SwiotlbSlotSearch, "address_mask"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "dma_direct")));

    /// <summary>
    /// v5.10 (LTS) on x86_64: the same coherent machine as <see cref="Linux64X86"/>, with v5.10's swiotlb, which bounces a
    /// mapping at the start of a 2 KiB slot whatever its offset (before the min_align_mask series, v5.12) and copies a
    /// FROM_DEVICE mapping in only at unmap; an SEV or TDX guest bounces every mapping (swiotlb=force), as the NVMe
    /// reports behind 1f221a0d0dbf came from.
    /// </summary>
    public static KernelProfile Linux510X86 { get; } = Linux64X86 with
    {
        Name = "linux-5.10-x86_64",
        Description = "Linux v5.10 (LTS) on an x86_64 PC: coherent DMA as v6.4's, but swiotlb bounces at slot starts and drops the min_align_mask bits (before 1f221a0d0dbf, v5.12), copies a FROM_DEVICE mapping in only at unmap (to_device_only), dma_map_resource refuses RAM with a warning, and dma-debug counts overlaps silently.",
        SwitchValues = Values((Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"),
            (Switches.SwiotlbSyncOffset, "slot_offset"), (Switches.SwiotlbSlotSearch, "page_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent")),
    };

    /// <summary>
    /// v5.4 (LTS) on arm64. dma_common_mmap/get_sgtable served dma-direct then (arch_dma_coherent_to_pfn, the pfn from
    /// the handle, for a non-coherent device; virt_to_page of the linear address for a coherent one), which gives the
    /// pages the model's dma_direct_* path gives. The atomic pool of kernel/dma/remap.c, NO_KERNEL_MAPPING and
    /// dma_map_single of a vmalloc address (before 4544b9f25e70, v5.5) are not modelled.
    /// </summary>
    public static KernelProfile Linux54Arm64 { get; } = new(
        "linux-5.4-arm64",
        "Linux v5.4 (LTS) on arm64: FROM_DEVICE maps invalidate, prep_coherent cleans and invalidates, swiotlb bounces at slot starts and copies a FROM_DEVICE mapping in only at unmap (to_device_only), dma-debug counts overlaps silently; not modelled: v5.4's remap.c atomic pool, NO_KERNEL_MAPPING, dma_map_single of vmalloc memory.",
        PlatformLayout.Arm64Va48V5,
        Values((Switches.PrepCoherent, "clean_inval"), (Switches.SyncForDeviceFromDevice, "inval"),
            (Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "virt_to_page"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.KmallocBounce, "off"),
            (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"), (Switches.DmaCacheAlignment, "arch_dma_minalign"),
            (Switches.SwiotlbSyncOffset, "slot_offset"), (Switches.SwiotlbSlotSearch, "page_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"), (Switches.IommuBounceMapSync, "none"), (Switches.IommuBouncePadding, "from_bounce"), (Switches.IommuBounceMapSize, "aligned"), (Switches.IommuSyncSgBounce, "sg_phys")),
        Gaps: ImmutableDictionary<string, string>.Empty
            .Add(ProfileGaps.MapSingleVmalloc, "dma_map_single of a vmalloc address before 4544b9f25e70 (v5.5): no dev_WARN_ONCE, virt_to_page of the vmalloc address")
            .Add(ProfileGaps.AtomicPool, "the single atomic pool of v5.4's kernel/dma/remap.c (dma_alloc_from_pool), before the per-zone pools of kernel/dma/pool.c (v5.8)")
            .Add(ProfileGaps.NoKernelMapping, "DMA_ATTR_NO_KERNEL_MAPPING in v5.4's dma_direct_alloc / arch_dma_alloc"));

    /// <summary>v5.10 (LTS) on arm64, at the tag (the 5.10.y stable backports of later fixes are not in it).</summary>
    public static KernelProfile Linux510Arm64 { get; } = Linux54Arm64 with
    {
        Name = "linux-5.10-arm64",
        Description = "Linux v5.10 (LTS) on arm64, at the tag: as v5.4 for DMA (FROM_DEVICE maps invalidate, swiotlb bounces at slot starts, to_device_only, silent dma-debug overlaps), with kernel/dma/pool.c, the vmalloc refusal of dma_map_single (4544b9f25e70) and a vmalloc-aware xen_swiotlb_free_coherent (8b1e868f6607).",
        SwitchValues = Linux54Arm64.SwitchValues.SetItem(Switches.XenFreeCoherentPage.Key, "vmalloc_aware"),
        Gaps = null,
    };

    /// <summary>v5.12 on arm64: the min_align_mask series is in, 5f89468e2f06 is not (the sub-range sync bug).</summary>
    public static KernelProfile Linux512Arm64 { get; } = Linux510Arm64 with
    {
        Name = "linux-5.12-arm64",
        Description = "Linux v5.12 on arm64: swiotlb keeps min_align_mask bits (1f221a0d0dbf) but a sync of a sub-range drops its offset in the slot (16fc3cef33a0, fixed by 5f89468e2f06 in v5.13).",
        Layout = PlatformLayout.Arm64Va48V511,
        SwitchValues = Linux510Arm64.SwitchValues.SetItem(Switches.SwiotlbSyncOffset.Key, "slot_start").SetItem(Switches.SwiotlbSlotSearch.Key, "min_align_stride")
            .SetItem(Switches.IommuBounceMapSync.Key, "original"),
    };

    /// <summary>v5.15 (LTS) on arm64, at the tag.</summary>
    public static KernelProfile Linux515Arm64 { get; } = Linux512Arm64 with
    {
        Name = "linux-5.15-arm64",
        Description = "Linux v5.15 (LTS) on arm64, at the tag: FROM_DEVICE maps still invalidate (c50f11c6196f reached 5.15.50), swiotlb to_device_only (ddbd89deb7d3 came in v5.17), 868c9ddc182b's bounce checks, dma_common_vaddr_to_page (40ac971eab89), dma-debug reports overlaps but not for DMA_ATTR_SKIP_CPU_SYNC (c2bbf9d1e9ac), dma_map_resource still refuses RAM.",
        SwitchValues = Linux512Arm64.SwitchValues.SetItem(Switches.SwiotlbSyncOffset.Key, "checked").SetItem(Switches.CommonVaddrToPage.Key, "vmalloc_aware")
            .SetItem(Switches.DebugCachelineOverlap.Key, "skip_cpu_sync"),
    };

    /// <summary>v6.1 (LTS) on arm64, at the tag.</summary>
    public static KernelProfile Linux61Arm64 { get; } = Linux515Arm64 with
    {
        Name = "linux-6.1-arm64",
        Description = "Linux v6.1 (LTS) on arm64, at the tag: prep_coherent cleans and invalidates again (b7d9aae40484), FROM_DEVICE maps clean (c50f11c6196f), swiotlb bounces at map whatever the direction (901c7280ca0d) and still searches with the pre-0eee5ae10256 stride, dma_map_resource maps RAM (a9c38c5d267c), swiotlb-xen allocates with dma-direct on arm (566fb90e050d).",
        Layout = PlatformLayout.Arm64Va48,
        SwitchValues = Linux515Arm64.SwitchValues.SetItem(Switches.SyncForDeviceFromDevice.Key, "clean").SetItem(Switches.SwiotlbMapBounce.Key, "always")
            .SetItem(Switches.MapResourceRamCheck.Key, "none").SetItem(Switches.XenArmAlloc.Key, "dma_direct")
            .SetItem(Switches.IommuBounceMapSync.Key, "bounce").SetItem(Switches.IommuBounceMapSize.Key, "size")
            .SetItem(Switches.IommuSyncSgBounce.Key, "dma_address"),
    };

    /// <summary>v6.6 (LTS) on arm64, at the tag.</summary>
    public static KernelProfile Linux66Arm64 { get; } = Linux61Arm64 with
    {
        Name = "linux-6.6-arm64",
        Description = "Linux v6.6 (LTS) on arm64, at the tag: prep_coherent only cleans (7bd6680b47fa), 8-byte kmalloc with bouncing of small non-coherent buffers and dma_get_cache_alignment = cache_line_size() (v6.5), swiotlb's 0eee5ae10256 slot search; dma-debug still reports the kmalloc-bounce false positives (03521c892bb8 reached 6.6.y later).",
        Layout = PlatformLayout.Arm64Va48V65,
        SwitchValues = Linux61Arm64.SwitchValues.SetItem(Switches.PrepCoherent.Key, "clean").SetItem(Switches.KmallocBounce.Key, "on")
            .SetItem(Switches.DmaCacheAlignment.Key, "cache_line_size").SetItem(Switches.SwiotlbSlotSearch.Key, "address_mask"),
    };

    /// <summary>v6.12 (LTS) on arm64, at the tag.</summary>
    public static KernelProfile Linux612Arm64 { get; } = Linux66Arm64 with
    {
        Name = "linux-6.12-arm64",
        Description = "Linux v6.12 (LTS) on arm64, at the tag: as v6.6, with swiotlb_bounce's signed offset (e8068f2d756d) and v6.9's slot search (14cebf689a78; its page-aligned placement for a device without min_align_mask is not modelled).",
        SwitchValues = Linux66Arm64.SwitchValues.SetItem(Switches.SwiotlbSyncOffset.Key, "signed").SetItem(Switches.SwiotlbSlotSearch.Key, "page_unless_min_align")
            .SetItem(Switches.IommuBouncePadding.Key, "pre_post_untrusted"),
    };

    public static KernelProfile Linux510Arm64Xen { get; } = Linux510Arm64 with
    {
        Name = "linux-5.10-arm64-xen",
        Description = "Linux v5.10 (LTS) on arm64 as a Xen dom0 (xen_swiotlb_dma_ops): xen_swiotlb_alloc_coherent, a vmalloc-aware xen_swiotlb_free_coherent (8b1e868f6607), dma_common_mmap/get_sgtable with virt_to_page (before 40ac971eab89).",
        XenDom0 = true,
    };

    public static KernelProfile Linux515Arm64Xen { get; } = Linux515Arm64 with
    {
        Name = "linux-5.15-arm64-xen",
        Description = "Linux v5.15 (LTS) on arm64 as a Xen dom0: xen_swiotlb_alloc_coherent (until 566fb90e050d, v5.19), dma_common_vaddr_to_page (40ac971eab89).",
        XenDom0 = true,
    };

    public static KernelProfile Linux61Arm64Xen { get; } = Linux61Arm64 with
    {
        Name = "linux-6.1-arm64-xen",
        Description = "Linux v6.1 (LTS) on arm64 as a Xen dom0: dma_alloc_attrs/dma_free_attrs are dma_direct_alloc/dma_direct_free (566fb90e050d), mmap and get_sgtable dma_common_* (vmalloc-aware).",
        XenDom0 = true,
    };

    public static KernelProfile Linux66Arm64Xen { get; } = Linux66Arm64 with
    {
        Name = "linux-6.6-arm64-xen",
        Description = "Linux v6.6 (LTS) on arm64 as a Xen dom0: kmalloc objects are 8-byte aligned as natively (a swiotlb pool exists), but xen_swiotlb_map_page has no dma_kmalloc_needs_bounce, so small non-coherent buffers share cache lines unbounced.",
        XenDom0 = true,
    };

    public static KernelProfile Linux612Arm64Xen { get; } = Linux612Arm64 with
    {
        Name = "linux-6.12-arm64-xen",
        Description = "Linux v6.12 (LTS) on arm64 as a Xen dom0: as linux-6.6-arm64-xen (no kmalloc bouncing in xen_swiotlb_map_page), with v6.12's swiotlb.",
        XenDom0 = true,
    };

    /// <summary>
    /// v5.8 on a 32-bit MIPS Malta with a 24Kc: dma-direct with arch/mips/mm/dma-noncoherent.c; the 24Kc is not among
    /// the cores cpu_needs_post_dma_flush() names and has no MAARs, so arch_sync_dma_for_cpu does nothing.
    /// </summary>
    public static KernelProfile Linux58MipsMalta { get; } = new(
        "linux-5.8-mips-malta",
        "Linux v5.8 on a 32-bit MIPS Malta with a 24Kc (an in-order core that never fills a line on its own): dma-direct, arch_sync_dma_for_device writes back and invalidates (TO_DEVICE, BIDIRECTIONAL) or invalidates (FROM_DEVICE), arch_sync_dma_for_cpu does nothing (cpu_needs_post_dma_flush() is false); not modelled: dma_alloc_coherent for a non-coherent device (KSEG1), sg tables.",
        PlatformLayout.Mips32Malta24Kc,
        Values((Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "virt_to_page"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"),
            (Switches.SwiotlbSyncOffset, "slot_offset"), (Switches.SwiotlbSlotSearch, "page_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"),
            (Switches.MipsPostDmaFlush, "bmips5000")));

    /// <summary>v5.8 on a BMIPS5000 board: cpu_needs_post_dma_flush() names the core (f86f55d3ad21), so unmaps invalidate again.</summary>
    public static KernelProfile Linux58MipsBmips5000 { get; } = Linux58MipsMalta with
    {
        Name = "linux-5.8-mips-bmips5000",
        Description = "Linux v5.8 on a 32-bit BMIPS5000 board (a core that speculates and prefetches): as linux-5.8-mips-malta, but cpu_needs_post_dma_flush() is true (f86f55d3ad21), so arch_sync_dma_for_cpu repeats the maintenance after the transfer; `set mips.post_dma_flush = r10000` gives the kernels before f86f55d3ad21.",
        Layout = PlatformLayout.Mips32Bmips5000,
    };

    /// <summary>v6.1 on 64-bit RISC-V with Zicbom harts: arch/riscv/mm/dma-noncoherent.c as merged for v6.0.</summary>
    public static KernelProfile Linux61RiscvZicbom { get; } = new(
        "linux-6.1-riscv64-zicbom",
        "Linux v6.1 on 64-bit RISC-V with Zicbom harts (1631ba1259d6, v6.0-rc1): arch_sync_dma_for_device cbo.clean (TO_DEVICE, FROM_DEVICE) or cbo.flush (BIDIRECTIONAL), arch_sync_dma_for_cpu cbo.flush (FROM_DEVICE, BIDIRECTIONAL); not modelled: dma_alloc_coherent for a non-coherent device (the Svpbmt remap), sg tables.",
        PlatformLayout.RiscV64Zicbom,
        Values((Switches.CommonVaddrToPage, "vmalloc_aware"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "always"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "none"), (Switches.DebugCachelineOverlap, "skip_cpu_sync"),
            (Switches.SwiotlbSyncOffset, "checked"), (Switches.SwiotlbSlotSearch, "min_align_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "dma_direct"),
            (Switches.RiscvTheadClean, "cval1")));

    /// <summary>v6.1 on a T-Head TH1520-like board: the T-Head CMO errata with the L1-only clean (before 8eb8fe67e2c8).</summary>
    public static KernelProfile Linux61RiscvTh1520 { get; } = Linux61RiscvZicbom with
    {
        Name = "linux-6.1-riscv64-th1520",
        Description = "Linux v6.1 (at the tag) on a T-Head TH1520-like board (C910 harts with a shared L2, no Zicbom): ALT_CMO_OP is patched to the T-Head dcache.* instructions (d20ec7529236), whose clean is dcache.cval1 and stops at the L2 (fixed by 8eb8fe67e2c8 in v6.6-rc2 and 6.1.56: `set riscv.thead_clean = cva`).",
        Layout = PlatformLayout.RiscV64Th1520,
    };

    /// <summary>v5.4 on a powerpc 8xx board: arch/powerpc/mm/dma-noncoherent.c with 03d70617b8a7's unaligned flush.</summary>
    public static KernelProfile Linux54Ppc8xx { get; } = new(
        "linux-5.4-ppc-8xx",
        "Linux v5.4 on a 32-bit powerpc 8xx board (MPC885-like, non-coherent, 16-byte lines): dma-direct, arch_sync_dma_for_device and arch_sync_dma_for_cpu both __dma_sync: TO_DEVICE dcbst, BIDIRECTIONAL dcbf, FROM_DEVICE dcbi, or dcbf on a range not cache-line aligned (03d70617b8a7); not modelled: dma_alloc_coherent for a non-coherent device (the remap), sg tables.",
        PlatformLayout.Ppc32Mpc8xx,
        Values((Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "virt_to_page"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"),
            (Switches.SwiotlbSyncOffset, "slot_offset"), (Switches.SwiotlbSlotSearch, "page_stride"), (Switches.DmaMmapPgprot, "dma_pgprot"), (Switches.XenArmAlloc, "xen_swiotlb_alloc_coherent"),
            (Switches.PpcFromDeviceUnaligned, "flush")));

    public static IReadOnlyList<KernelProfile> All { get; } =
        [Linux63Arm64, Linux64Arm64, Linux65Arm64, Linux64X86, Linux510X86, Linux58Arm64Xen, Linux513Arm64Xen, Linux514Arm64Xen, Linux513Arm64, Linux513ArmXenRpi4, Linux514ArmXenRpi4, Linux513ArmRpi4, Linux513ArmImx6, Linux513ArmAt91Sam9,
            Linux54Arm64, Linux510Arm64, Linux512Arm64, Linux515Arm64, Linux61Arm64, Linux66Arm64, Linux612Arm64, Linux510Arm64Xen, Linux515Arm64Xen, Linux61Arm64Xen, Linux66Arm64Xen, Linux612Arm64Xen,
            Linux58MipsMalta, Linux58MipsBmips5000, Linux61RiscvZicbom, Linux61RiscvTh1520, Linux54Ppc8xx];

    public static KernelProfile? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}
