using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

/// <summary>What a scenario's <c>profile</c> and <c>set</c> lines, or a sweep's overrides, decide.</summary>
public sealed record RunSettings(KernelProfile Profile, KernelConfig Kernel, HardwareConfig Hardware)
{
    /// <summary>The keys <c>set</c> accepts besides the switches.</summary>
    public static IReadOnlyList<string> ConfigKeys { get; } = ["init_on_alloc", "init_on_free", "cache_init", "hw.ivac_as_civac", "hw.speculative_fill", "dma_api_debug", "swiotlb", "swiotlb.slots", "swiotlb.residue", "dma_api_debug.unbind_at_end", "dma_api_debug.assert_idle", "dma_api_debug.sg", "cma", "dram", "cache.line", "cache.outer_line", "cache.aliasing", "iommu.passthrough", "iommu.strict", "iommu.granule"];

    public static IEnumerable<string> AllKeys => ConfigKeys.Concat(Switches.All.Select(s => s.Key));

    /// <summary>Applies <c>set KEY = VALUE</c>. On failure returns null and says whether the key or the value is at fault.</summary>
    public RunSettings? With(string key, string value, out string? error, out bool badKey)
    {
        badKey = false;
        error = null;
        switch (key)
        {
            case "init_on_alloc" or "init_on_free" or "hw.ivac_as_civac" or "hw.speculative_fill" or "dma_api_debug" or "dma_api_debug.unbind_at_end" or "dma_api_debug.assert_idle" or "dma_api_debug.sg":
                if (OnOff(value) is not { } on)
                {
                    error = $"expected on or off, not '{value}'";
                    return null;
                }

                return key switch
                {
                    "init_on_alloc" => this with { Kernel = Kernel with { InitOnAlloc = on } },
                    "init_on_free" => this with { Kernel = Kernel with { InitOnFree = on } },
                    "dma_api_debug" => this with { Kernel = Kernel with { DmaApiDebug = on } },
                    "dma_api_debug.unbind_at_end" => this with { Kernel = Kernel with { DebugUnbindAtEnd = on } },
                    "dma_api_debug.assert_idle" => this with { Kernel = Kernel with { DebugAssertIdle = on } },
                    "dma_api_debug.sg" => this with { Kernel = Kernel with { DebugSg = on } },
                    "hw.speculative_fill" => this with { Hardware = Hardware with { SpeculativeFill = on } },
                    _ => this with { Hardware = Hardware with { IvacActsAsCivac = on } },
                };
            case "swiotlb":
                SwiotlbBoot? mode = value switch
                {
                    "off" or "noforce" => SwiotlbBoot.Off,
                    "on" => SwiotlbBoot.On,
                    "force" => SwiotlbBoot.Force,
                    _ => null,
                };
                if (mode is null)
                {
                    error = $"swiotlb is 'off' (no pool), 'on' (a pool for addresses a device cannot reach) or 'force' (swiotlb=force), not '{value}'";
                    return null;
                }

                return this with { Kernel = Kernel with { Swiotlb = mode } };
            case "swiotlb.slots":
                if (!ulong.TryParse(value, out var slots) || slots < 128 || slots > 1 << 19 || slots % 128 != 0)
                {
                    error = $"swiotlb.slots is the pool's size in 2 KiB slots, a multiple of 128 (IO_TLB_SEGSIZE) from 128 to 524288, not '{value}'";
                    return null;
                }

                return this with { Kernel = Kernel with { SwiotlbSlots = (int)slots } };
            case "swiotlb.residue":
                if (value.Length == 0 || !char.IsAsciiLetter(value[0]) || !value.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                {
                    error = $"swiotlb.residue is a writer name (what the pool's slots hold at boot, such as secret), not '{value}'";
                    return null;
                }

                return this with { Kernel = Kernel with { SwiotlbResidue = value } };
            case "cma":
                if (!Lexer.TryParseNumber(value, out var cma) || cma % PlatformLayout.PageSize != 0)
                {
                    error = $"cma is the size of the default CMA area (the cma= boot option), a whole number of 4 KiB pages such as 256M, or 0 for none; not '{value}'";
                    return null;
                }

                return this with { Kernel = Kernel with { CmaBytes = cma } };
            case "dram":
                if (!Lexer.TryParseNumber(value, out var dram) || dram % CmaArea.MinAlignmentBytes != 0 || dram < 64UL << 20 || dram > 64UL << 30)
                {
                    error = $"dram is the board's DRAM size, a multiple of 2 MiB from 64M to 64G, not '{value}'";
                    return null;
                }

                if (Profile.Layout.WithDram(dram, out var why) is not { } layout)
                {
                    error = why;
                    return null;
                }

                return this with { Profile = Profile with { Layout = layout } };
            case "cache.line" or "cache.outer_line":
                return WithLine(key, value, out error);
            case "cache.aliasing":
                return WithAliasing(value, out error);
            case "iommu.passthrough" or "iommu.strict":
                // The kernel command line's iommu.passthrough= and iommu.strict= (drivers/iommu/iommu.c): the type of the default domain.
                if (OnOff(value) is not { } flag)
                {
                    error = $"{key} is on or off (the kernel command line's {key}=1 or 0), not '{value}'";
                    return null;
                }

                return this with { Kernel = key == "iommu.passthrough" ? Kernel with { IommuPassthrough = flag } : Kernel with { IommuStrict = flag } };
            case "iommu.granule":
                ulong? granule = value switch { "4K" => 4UL << 10, "16K" => 16UL << 10, "64K" => 64UL << 10, _ => null };
                if (granule is null)
                {
                    error = $"iommu.granule is the IOMMU page size iommu-dma uses: 4K, 16K or 64K; not '{value}'";
                    return null;
                }

                return this with { Kernel = Kernel with { IommuGranule = granule.Value } };
            case "cache_init":
                InitialCache? initial = value switch
                {
                    "cold" => InitialCache.Cold,
                    "arbitrary" => InitialCache.Arbitrary,
                    _ => null,
                };
                if (initial is null)
                {
                    error = $"cache_init is 'cold' or 'arbitrary', not '{value}'";
                    return null;
                }

                return this with { Hardware = Hardware with { Initial = initial.Value } };
            default:
                if (Switches.Find(key) is not { } def)
                {
                    badKey = true;
                    error = Suggestions.DidYouMean(key, AllKeys) is { } hint
                        ? $"unknown setting '{key}' ({hint})"
                        : $"unknown setting '{key}' (known: {string.Join(", ", AllKeys)})";
                    return null;
                }

                if (!SwitchValues.IsKnown(def, value))
                {
                    error = $"switch {def.Key} has no value '{value}' (values: {string.Join(", ", def.Values.Select(v => v.Name))})";
                    return null;
                }

                if (!Profile.Has(def))
                {
                    error = $"switch {def.Key} is an {def.Arch} switch, and profile {Profile.Name} is {Profile.Arch}";
                    return null;
                }

                return this with { Profile = Profile.With(def, value) };
        }
    }

    /// <summary>
    /// <c>set cache.aliasing = none | vivt | vipt:N</c>: how the L1 data cache is indexed (<see cref="DcacheIndexing"/>), with N page
    /// colours (2, 4, 8 or 16; way size / 4 KiB) for an aliasing VIPT cache. Only on 32-bit arm layouts, whose
    /// arch/arm/include/asm/cacheflush.h and arch/arm/mm/flush.c the model follows: arm64 and x86_64 have no aliasing data
    /// caches, and PA-RISC and MIPS, which do, have no profiles here.
    /// </summary>
    private RunSettings? WithAliasing(string value, out string? error)
    {
        error = null;
        (DcacheIndexing Indexing, int Colours)? parsed = value switch
        {
            "none" => (DcacheIndexing.Physical, 1),
            "vivt" => (DcacheIndexing.Vivt, 1),
            "vipt:2" => (DcacheIndexing.ViptAliasing, 2),
            "vipt:4" => (DcacheIndexing.ViptAliasing, 4),
            "vipt:8" => (DcacheIndexing.ViptAliasing, 8),
            "vipt:16" => (DcacheIndexing.ViptAliasing, 16),
            _ => null,
        };
        if (parsed is not { } p)
        {
            error = $"cache.aliasing is none, vivt, or vipt:N with N page colours (2, 4, 8 or 16); not '{value}'";
            return null;
        }

        if (p.Indexing != DcacheIndexing.Physical && Profile.Arch != DmaCheck.Kernel.Arch.Arm32)
        {
            error = $"cache.aliasing applies to 32-bit arm profiles only: profile {Profile.Name} is {Profile.Arch}, whose data caches behave as physically indexed (aliasing caches of PA-RISC and MIPS are not modelled)";
            return null;
        }

        return this with { Hardware = Hardware with { Indexing = p.Indexing, Colours = p.Colours } };
    }

    /// <summary>
    /// <c>set cache.line = N</c> (the L1 data cache line) and <c>set cache.outer_line = N</c> (the line of a cache beyond
    /// L1): 32, 64 or 128. The model tracks lines of the larger (the writeback granule, CTR_EL0.CWG); the kernel's by-VA
    /// maintenance steps by the smaller (CTR_EL0.DminLine). On a layout whose outer cache is a level of its own,
    /// maintained by physical address (the i.MX6's PL310), both levels must have the PL310's 32-byte lines.
    /// </summary>
    private RunSettings? WithLine(string key, string value, out string? error)
    {
        error = null;
        if (!int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bytes) || !HardwareConfig.LineSizes.Contains(bytes))
        {
            error = $"{key} is a cache line size in bytes: {string.Join(", ", HardwareConfig.LineSizes)}; not '{value}'";
            return null;
        }

        var l1 = key == "cache.line" ? bytes : Hardware.L1Line;
        var outer = key == "cache.outer_line" ? bytes : Hardware.OuterLineSize;
        if (Hardware.OuterCache && (l1 != Profile.Layout.OuterLineSize || (outer != 0 && outer != Profile.Layout.OuterLineSize)))
        {
            error = $"layout {Profile.Layout.Name} has an outer cache maintained by physical address as a level of its own, whose line is {Profile.Layout.OuterLineSize} bytes (the PL310's, CACHE_LINE_SIZE in arch/arm/mm/cache-l2x0.c); "
                + $"the model tracks both levels in one line, so {(key == "cache.line" ? "an L1 line" : "an outer line")} of {bytes} bytes there is not modelled";
            return null;
        }

        return this with { Hardware = Hardware.WithLines(l1, outer) };
    }

    public static bool? OnOff(string value) => value switch
    {
        "on" or "true" or "1" => true,
        "off" or "false" or "0" => false,
        _ => null,
    };
}

/// <summary>Settings imposed from outside the file (by <c>dmacheck sweep</c>): they win over the file's own.</summary>
public sealed record SettingOverrides(string? Profile, IReadOnlyList<(string Key, string Value)> Settings)
{
    public static SettingOverrides None { get; } = new(null, []);

    public string Describe() => string.Join(" ", (Profile is null ? [] : new[] { Profile }).Concat(Settings.Select(s => $"{s.Key}={s.Value}")));
}
