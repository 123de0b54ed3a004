using System.Collections.Immutable;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// A named kernel version on a named board: a value for every switch of its architecture, a platform memory layout,
/// and whether Linux runs as a Xen dom0 (every device then gets xen_swiotlb_dma_ops).
/// </summary>
/// <param name="ArmDmaOps">32-bit arm without LPAE: devices get arm_dma_ops (arm_coherent_dma_ops), whose alloc is __dma_alloc and whose mmap/get_sgtable take the pfn from the handle.</param>
public sealed record KernelProfile(string Name, string Description, PlatformLayout Layout, ImmutableDictionary<string, string> SwitchValues, bool XenDom0 = false, bool ArmDmaOps = false)
{
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
            (Switches.DmaCacheAlignment, "arch_dma_minalign")));

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
            (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"), (Switches.DmaCacheAlignment, "arch_dma_minalign")),
        XenDom0: true);

    /// <summary>v5.13 on arm64 as a Xen dom0 on a Raspberry Pi 4: the swiotlb-xen fix is in, the dma_common one not yet.</summary>
    public static KernelProfile Linux513Arm64Xen { get; } = new(
        "linux-5.13-arm64-xen",
        "Linux v5.13 on arm64 as a Xen dom0 on a Raspberry Pi 4: xen_swiotlb_free_coherent is vmalloc-aware (8b1e868f6607, v5.9), dma_common_mmap/get_sgtable are not (fixed by 40ac971eab89 in v5.14).",
        PlatformLayout.Arm64Rpi4,
        Values((Switches.PrepCoherent, "clean_inval"), (Switches.SyncForDeviceFromDevice, "inval"),
            (Switches.CommonVaddrToPage, "virt_to_page"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.KmallocBounce, "off"),
            (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent"), (Switches.DmaCacheAlignment, "arch_dma_minalign")),
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
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent")),
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
            (Switches.SwiotlbMapBounce, "to_device_only"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "warn_fail"), (Switches.DebugCachelineOverlap, "silent")),
        ArmDmaOps: true);

    /// <summary>v6.4 on x86_64: cache-coherent DMA, no cache maintenance anywhere; swiotlb for devices that cannot reach the DRAM above 4 GiB.</summary>
    public static KernelProfile Linux64X86 { get; } = new(
        "linux-6.4-x86_64",
        "Linux v6.4 on an x86_64 PC: DMA is cache-coherent (no arch_sync_dma_for_* or arch_dma_prep_coherent), dma-direct with swiotlb; kmalloc objects are 8-byte aligned.",
        PlatformLayout.X86_64Pc,
        Values((Switches.CommonVaddrToPage, "vmalloc_aware"), (Switches.XenFreeCoherentPage, "vmalloc_aware"),
            (Switches.SwiotlbMapBounce, "always"), (Switches.SwiotlbSyncForDeviceBounce, "by_direction"), (Switches.MapResourceRamCheck, "none"), (Switches.DebugCachelineOverlap, "skip_cpu_sync")));

    public static IReadOnlyList<KernelProfile> All { get; } =
        [Linux63Arm64, Linux64Arm64, Linux65Arm64, Linux64X86, Linux58Arm64Xen, Linux513Arm64Xen, Linux514Arm64Xen, Linux513Arm64, Linux513ArmXenRpi4, Linux514ArmXenRpi4, Linux513ArmRpi4, Linux513ArmImx6];

    public static KernelProfile? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}
