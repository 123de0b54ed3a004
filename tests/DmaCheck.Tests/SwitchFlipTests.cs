using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Every value of every switch has a bundled scenario where setting another value changes a verdict, a minimum event
/// count or a finding (issue 4). The scenario runs with each value forced from outside, as `dmacheck sweep` does.
/// </summary>
public class SwitchFlipTests
{
    /// <summary>For each switch value: a scenario, and a value of the same switch that must give another result.</summary>
    public static TheoryData<string, string, string, string> Flips => new()
    {
        { "arm64.prep_coherent", "clean", "seeds/qcom-scm/case1-v6.4-init-on-alloc.dmc", "clean_inval" },
        { "arm64.prep_coherent", "clean_inval", "seeds/qcom-scm/case1-v6.4-init-on-alloc.dmc", "clean" },
        { "arm64.sync_for_device_from_device", "inval", "streaming/from-device-partial-write-inval.dmc", "clean" },
        { "arm64.sync_for_device_from_device", "clean", "streaming/from-device-partial-write-clean.dmc", "inval" },
        { "dma_common_vaddr_to_page", "virt_to_page", "seeds/vmalloc-cpu-addr/mmap-xen-arm32-rpi4-v5.13.dmc", "vmalloc_aware" },
        { "dma_common_vaddr_to_page", "vmalloc_aware", "seeds/vmalloc-cpu-addr/mmap-xen-arm32-rpi4-v5.14.dmc", "virt_to_page" },
        { "xen_free_coherent_page", "virt_to_page", "seeds/vmalloc-cpu-addr/xen-free-arm64-v5.8.dmc", "vmalloc_aware" },
        { "xen_free_coherent_page", "vmalloc_aware", "seeds/vmalloc-cpu-addr/xen-free-arm64-v5.8-fixed.dmc", "virt_to_page" },
        { "swiotlb.map_bounce", "to_device_only", "streaming/swiotlb-from-device-leak.dmc", "unless_overwrite" },
        { "swiotlb.map_bounce", "unless_overwrite", "streaming/swiotlb-skip-cpu-sync-leak.dmc", "always" },
        { "swiotlb.map_bounce", "always", "streaming/swiotlb-from-device-leak-fixed.dmc", "to_device_only" },
        { "swiotlb.sync_for_device_bounce", "always", "streaming/swiotlb-sync-for-device-clobbers.dmc", "by_direction" },
        { "swiotlb.sync_for_device_bounce", "by_direction", "streaming/swiotlb-sync-for-device-by-direction.dmc", "always" },
        { "dma.kmalloc_bounce", "off", "streaming/kmalloc-small-buffer-in-place.dmc", "on" },
        { "dma.kmalloc_bounce", "on", "streaming/kmalloc-small-buffer-bounces.dmc", "off" },
        { "dma.map_resource_ram_check", "bug_on", "streaming/map-resource-ram-v5.13.dmc", "warn_fail" },
        { "dma.map_resource_ram_check", "warn_fail", "streaming/map-resource-ram-v5.13.dmc", "none" },
        { "dma.map_resource_ram_check", "none", "streaming/map-resource-ram.dmc", "warn_fail" },
        { "dma.map_resource_ram_check", "debug_report", "streaming/map-resource-ram-debug.dmc", "none" },
        { "dma_debug.cacheline_overlap", "silent", "streaming/overlapping-from-device-mappings.dmc", "report" },
        { "dma_debug.cacheline_overlap", "report", "streaming/overlapping-from-device-mappings-skip-cpu-sync.dmc", "skip_cpu_sync" },
        { "dma_debug.cacheline_overlap", "skip_cpu_sync", "streaming/kmalloc-small-buffers-share-line-debug.dmc", "kmalloc_bounce" },
        { "dma_debug.cacheline_overlap", "kmalloc_bounce", "streaming/kmalloc-small-buffers-share-line-debug.dmc", "skip_cpu_sync" },
        { "dma_debug.cacheline_overlap", "cache_alignment", "history/usb-hub-kmalloc8-overlap-x86-fixed.dmc", "kmalloc_bounce" },
        { "swiotlb.sync_offset", "slot_offset", "history/swiotlb-sync-sub-range-v5.13.dmc", "slot_start" },
        { "swiotlb.sync_offset", "slot_start", "history/swiotlb-sync-sub-range-v5.12.dmc", "align_offset" },
        { "swiotlb.sync_offset", "align_offset", "history/swiotlb-sync-sub-range-v5.13.dmc", "slot_start" },
        { "swiotlb.sync_offset", "checked", "history/swiotlb-sync-sub-range-v5.13.dmc", "slot_start" },
        { "swiotlb.sync_offset", "signed", "history/swiotlb-sync-sub-range-v5.13.dmc", "slot_start" },
        { "swiotlb.slot_search", "page_stride", "history/nvme-min-align-mask-v5.10.dmc", "min_align_stride" },
        { "swiotlb.slot_search", "min_align_stride", "history/nvme-min-align-mask-v5.15.dmc", "page_stride" },
        { "swiotlb.slot_search", "address_mask", "history/nvme-min-align-mask-v5.15.dmc", "page_stride" },
        { "swiotlb.slot_search", "page_unless_min_align", "history/nvme-min-align-mask-v5.15.dmc", "page_stride" },
        { "dma.mmap_pgprot", "arch_dma_mmap_pgprot", "history/mmap-wc-coherent-pre-33dcb37cef74.dmc", "dma_pgprot" },
        { "dma.mmap_pgprot", "dma_pgprot", "history/mmap-wc-coherent-33dcb37cef74.dmc", "arch_dma_mmap_pgprot" },
        { "xen.arm_alloc", "xen_swiotlb_alloc_coherent", "seeds/vmalloc-cpu-addr/xen-free-arm64-v5.8.dmc", "dma_direct" },
        { "xen.arm_alloc", "dma_direct", "seeds/vmalloc-cpu-addr/xen-free-arm64-v5.8.dmc", "xen_swiotlb_alloc_coherent" },
        { "arm64.dma_cache_alignment", "arch_dma_minalign", "history/iio-adxl313-cacheline-aligned.dmc", "cache_line_size" },
        { "arm64.dma_cache_alignment", "cache_line_size", "history/iio-adxl313-cacheline-aligned-v6.5.dmc", "arch_dma_minalign" },
        { "iommu_dma.bounce_map_sync", "none", "iommu/untrusted-bounce-neighbour.dmc", "bounce" },
        { "iommu_dma.bounce_map_sync", "original", "iommu/untrusted-bounce-map-sync.dmc", "bounce" },
        { "iommu_dma.bounce_map_sync", "bounce", "iommu/untrusted-bounce-map-sync-fixed.dmc", "original" },
        { "iommu_dma.bounce_padding", "from_bounce", "iommu/untrusted-bounce-from-device-padding.dmc", "pre_post_untrusted" },
        { "iommu_dma.bounce_padding", "pre_post_untrusted", "iommu/untrusted-bounce-from-device-padding-fixed.dmc", "from_bounce" },
        { "iommu_dma.bounce_map_size", "aligned", "iommu/untrusted-min-align-extra-granule.dmc", "size" },
        { "iommu_dma.bounce_map_size", "size", "iommu/untrusted-min-align-extra-granule-fixed.dmc", "aligned" },
        { "iommu_dma.sync_sg_bounce", "sg_phys", "iommu/untrusted-sg-sync-for-cpu.dmc", "dma_address" },
        { "iommu_dma.sync_sg_bounce", "dma_address", "iommu/untrusted-sg-sync-for-cpu-fixed.dmc", "sg_phys" },
        { "arm32.dev_to_cpu", "none", "history/arm32-imx6-rx-unmap-no-invalidate.dmc", "invalidate" },
        { "arm32.dev_to_cpu", "invalidate", "history/arm32-imx6-rx-unmap-invalidates.dmc", "none" },
        { "mips.post_dma_flush", "r10000", "history/mips-bmips5000-rx-pre-f86f55d3ad21.dmc", "bmips5000" },
        { "mips.post_dma_flush", "bmips5000", "history/mips-bmips5000-rx-f86f55d3ad21.dmc", "r10000" },
        { "riscv.thead_clean", "cval1", "history/riscv-th1520-tx-pre-8eb8fe67e2c8.dmc", "cva" },
        { "riscv.thead_clean", "cva", "history/riscv-th1520-tx-8eb8fe67e2c8.dmc", "cval1" },
        { "ppc.from_device_unaligned", "invalidate", "history/ppc-8xx-rx-unaligned-pre-03d70617b8a7.dmc", "flush" },
        { "ppc.from_device_unaligned", "flush", "history/ppc-8xx-rx-unaligned-03d70617b8a7.dmc", "invalidate" },
    };

    [Fact]
    public void EveryValueOfEverySwitchIsCovered()
    {
        var covered = Flips.Select(row => ((string)row[0], (string)row[1])).ToHashSet();
        var missing = Switches.All.SelectMany(s => s.Values.Select(v => (s.Key, v.Name))).Where(v => !covered.Contains(v)).ToList();
        Assert.Empty(missing);
    }

    /// <summary>The platform switches (`set hw.*`): the same rule, for settings of the hardware rather than of a kernel.</summary>
    public static TheoryData<string, string, string, string> PlatformFlips => new()
    {
        { "hw.ivac_as_civac", "off", "streaming/from-device-partial-write-inval.dmc", "on" },
        { "hw.ivac_as_civac", "on", "streaming/from-device-partial-write-inval-vm.dmc", "off" },
        { "hw.speculative_fill", "off", "history/mips-24kc-rx-no-post-dma-flush.dmc", "on" },
        { "hw.speculative_fill", "on", "history/mips-bmips5000-rx-pre-f86f55d3ad21.dmc", "off" },
    };

    [Fact]
    public void EveryValueOfEveryPlatformSwitchIsCovered()
    {
        var covered = PlatformFlips.Select(row => ((string)row[0], (string)row[1])).ToHashSet();
        var missing = RunSettings.ConfigKeys.Where(k => k.StartsWith("hw.", StringComparison.Ordinal))
            .SelectMany(k => new[] { (k, "off"), (k, "on") }).Where(v => !covered.Contains(v)).ToList();
        Assert.Empty(missing);
    }

    [Theory]
    [MemberData(nameof(PlatformFlips))]
    public void FlippingThePlatformSwitchChangesTheResult(string key, string value, string file, string other) =>
        FlippingTheSwitchChangesTheResult(key, value, file, other);

    [Theory]
    [MemberData(nameof(Flips))]
    public void FlippingTheSwitchChangesTheResult(string key, string value, string file, string other)
    {
        var path = Path.Combine(TestPaths.Scenarios, file);
        var text = File.ReadAllText(path);
        Assert.Contains($"{key} = {value}", Run(path, text, key, value).Settings);
        var mine = Run(path, text, key, value).Summary;
        var theirs = Run(path, text, key, other).Summary;
        Assert.NotEqual(mine, theirs);
    }

    private static (string Settings, string Summary) Run(string path, string text, string key, string value)
    {
        var scenario = Binder.Load(path, text, new SettingOverrides(null, [(key, value)]));
        var setting = Switches.Find(key) is { } sw ? scenario.Profile.Value(sw)
            : (key == "hw.speculative_fill" ? scenario.Hardware.SpeculativeFill : scenario.Hardware.IvacActsAsCivac) ? "on" : "off";
        ExplorationResult result;
        try
        {
            result = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        }
        catch (RunException e) when (e.Kind == RunErrorKind.KernelBug)
        {
            return ($"{key} = {setting}", $"kernel bug: {e.Message}"); // a BUG_ON value: the run oopses
        }

        Assert.Null(result.Inconclusive);
        var verdicts = string.Join("; ", result.Verdicts.Select(v => $"{v.Expectation.Name}={v.Verdict}/{v.MinEventsText}"));
        var findings = string.Join("; ", result.Findings.Select(f => f.Key).Order(StringComparer.Ordinal));
        return ($"{key} = {setting}", $"{verdicts} | {findings}");
    }
}
