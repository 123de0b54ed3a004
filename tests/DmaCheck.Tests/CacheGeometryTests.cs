using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Cache geometry per platform (issue 15, item 1): the modelled line is the writeback granule, the kernel's by-VA
/// maintenance steps by the smallest line, and the sharing checks use the kernel's DMA alignment per profile. And what
/// DT says against what the bus does (item 2): a device's <c>snoops</c> decides the hardware master, <c>coherent</c>
/// the DMA layer.
/// </summary>
public class CacheGeometryTests
{
    /// <summary>The adxl313 shape: a 2-byte FROM_DEVICE buffer at <paramref name="offset"/> of a kmalloc object, and another thread's store to bytes 8..16 while the device owns it.</summary>
    private static string SharedLineScenario(string profile, int offset, string settings = "") => $$"""
        scenario "shared line"
        profile {{profile}}
        {{settings}}
        device spi { coherent = {{(profile.Contains("x86", StringComparison.Ordinal) ? "true" : "false")}} }
        cpu driver {
          st = kmalloc(256, GFP_KERNEL)
          h = dma_map_single(spi, st + {{offset}}, 2, DMA_FROM_DEVICE)
          dma_mapping_error(spi, h)
          signal mapped
          wait received
          dma_unmap_single(spi, h, 2, DMA_FROM_DEVICE)
          read st[{{offset}}..{{offset + 2}}] -> sample
        }
        cpu contender {
          wait mapped
          write st[8..16] = waiter
        }
        dma rx by spi {
          wait mapped
          write dma(h)[0..2] = reading
          signal received
        }
        expect sample_arrives: sample == reading
        """;

    private static ScenarioOutcome Check(string text) => Checker.CheckText("geometry.dmc", text, ExplorationLimits.Default);

    private static HardwareConfig HardwareOf(string profile, string settings = "") =>
        Check(SharedLineScenario(profile, 128, settings)).Scenario!.Hardware;

    [Theory]
    [InlineData("linux-6.4-arm64", 64, 64)]
    [InlineData("linux-6.4-x86_64", 64, 64)]
    [InlineData("linux-5.13-arm-rpi4", 64, 64)]
    [InlineData("linux-5.13-arm-imx6", 32, 32)]
    public void EachLayoutHasItsDefaultLines(string profile, int line, int dminLine)
    {
        var hw = HardwareOf(profile);
        Assert.Equal(line, hw.LineSize);
        Assert.Equal(dminLine, hw.DminLine);
        Assert.Equal(line, hw.Cwg);
    }

    [Theory]
    [InlineData("set cache.line = 32", 32, 32, 32)]
    [InlineData("set cache.line = 128", 128, 128, 128)]
    [InlineData("set cache.outer_line = 128", 128, 64, 64)]
    [InlineData("set cache.outer_line = 32", 64, 32, 64)]
    public void TheModelledLineIsTheLargerLineAndMaintenanceStepsByTheSmaller(string setting, int modelled, int dminLine, int l1)
    {
        var hw = HardwareOf("linux-6.4-arm64", setting);
        Assert.Equal(modelled, hw.LineSize);
        Assert.Equal(dminLine, hw.DminLine);
        Assert.Equal(l1, hw.L1Line);
    }

    [Theory]
    [InlineData("linux-6.4-arm64", "set cache.line = 48", "cache.line is a cache line size in bytes: 32, 64, 128; not '48'")]
    [InlineData("linux-6.4-arm64", "set cache.outer_line = 256", "cache.outer_line is a cache line size in bytes: 32, 64, 128; not '256'")]
    [InlineData("linux-5.13-arm-imx6", "set cache.line = 64", "an L1 line of 64 bytes there is not modelled")]
    [InlineData("linux-5.13-arm-imx6", "set cache.outer_line = 128", "an outer line of 128 bytes there is not modelled")]
    public void ALineTheModelCannotHaveIsRefusedAtItsValue(string profile, string setting, string message)
    {
        var outcome = Check(SharedLineScenario(profile, 128, setting));
        Assert.Equal(OutcomeError.BadInput, outcome.Error);
        Assert.Contains(message, outcome.Message, StringComparison.Ordinal);
        Assert.Equal(3, outcome.At!.Value.Line); // the set line
    }

    [Fact]
    public void ThePl310LayoutAcceptsItsOwnLines() =>
        Assert.Equal(32, HardwareOf("linux-5.13-arm-imx6", "set cache.line = 32").LineSize);

    [Theory]
    [InlineData("linux-6.4-arm64", 64, 128)] // ARCH_DMA_MINALIGN
    [InlineData("linux-6.4-arm64", 128, 128)]
    [InlineData("linux-6.5-arm64", 64, 64)] // cache_line_size(): the CWG (9382bc44b5f5)
    [InlineData("linux-6.5-arm64", 128, 128)]
    [InlineData("linux-5.13-arm64", 64, 128)]
    [InlineData("linux-5.13-arm-imx6", 32, 64)] // ARCH_DMA_MINALIGN = L1_CACHE_BYTES = 64 with 32-byte hardware lines
    [InlineData("linux-6.4-x86_64", 64, 1)] // no ARCH_DMA_MINALIGN
    public void DmaGetCacheAlignmentFollowsTheProfile(string profile, int cwg, int expected)
    {
        var geometry = DmaAlignment.For(Profiles.Find(profile)!);
        Assert.Equal(6, geometry.L1CacheShift);
        Assert.Equal(expected, geometry.DmaGetCacheAlignment(HardwareConfig.Default.WithLines(cwg, 0)));
    }

    [Theory]
    [InlineData("linux-6.4-arm64", "", 128)]
    [InlineData("linux-6.5-arm64", "set swiotlb = off", 64)] // __kmalloc_minalign() = dma_get_cache_alignment()
    [InlineData("linux-6.5-arm64", "set swiotlb = off\nset cache.outer_line = 128", 128)]
    [InlineData("linux-6.5-arm64", "", 8)] // ARCH_KMALLOC_MINALIGN with a bounce pool
    [InlineData("linux-5.13-arm-imx6", "", 64)]
    [InlineData("linux-6.4-x86_64", "", 8)]
    public void KmallocMinalignFollowsTheKernelsAlignment(string profile, string settings, int expected) =>
        Assert.Equal(expected, Check(SharedLineScenario(profile, 128, settings)).Scenario!.KernelConfig.KmallocMinalign);

    /// <summary>
    /// The model error: a ____cacheline_aligned (64) buffer next to CPU-written fields. Before v6.5 the kernel's
    /// granule is ARCH_DMA_MINALIGN (128), so it is reported on any hardware; since v6.5 it is the CPU's writeback
    /// granule, so it is reported only where that is 128. At 128 the buffer has a granule of its own.
    /// </summary>
    [Theory]
    [InlineData("linux-6.4-arm64", 64, "", true, Verdict.Always)]
    [InlineData("linux-6.4-arm64", 64, "set cache.outer_line = 128", true, Verdict.Sometimes)]
    [InlineData("linux-6.4-arm64", 128, "set cache.outer_line = 128", false, Verdict.Always)]
    [InlineData("linux-6.5-arm64", 64, "set swiotlb = off", false, Verdict.Always)]
    [InlineData("linux-6.5-arm64", 64, "set swiotlb = off\nset cache.outer_line = 128", true, Verdict.Sometimes)]
    [InlineData("linux-6.4-arm64", 32, "set cache.line = 32", true, Verdict.Always)]
    public void TheSharingCheckUsesTheKernelsGranule(string profile, int offset, string settings, bool reported, Verdict verdict)
    {
        var outcome = Check(SharedLineScenario(profile, offset, settings));
        Assert.Equal(OutcomeError.None, outcome.Error);
        Assert.Equal(reported, outcome.Result!.Findings.Any(f => f.Finding.Kind == FindingKinds.CpuWriteSharesLine));
        Assert.Equal(verdict, outcome.Result.Verdicts.Single().Verdict);
    }

    [Fact]
    public void DcacheInvalPocStepsByDminLineAndAPartialEdgeReachesTheWholeGranule()
    {
        var hw = HardwareConfig.Default.WithLines(64, 128);
        var k = KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), hw);
        k = k.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        var va = PlatformLayout.Arm64Va48.PhysToVirt(PlatformLayout.PfnToPhys(pfn));
        var ops = new List<HwOp>();
        Arm64Cache.DcacheInvalPoc(k, va + 64, va + 66, "test", ops);
        // The partial last line is cleaned and invalidated, then (the loop is a do-while) the line at the aligned start is
        // invalidated: both by DminLine (64); the hardware applies each to the whole 128-byte granule.
        Assert.Equal(
            [(LineOpKind.CleanInvalidate, 64UL), (LineOpKind.Invalidate, 64UL)],
            ops.Cast<MemoryOp>().Select(m => (m.Op.Kind, m.Length)));
        Assert.All(ops.Cast<MemoryOp>(), m => Assert.Equal(PlatformLayout.PfnToPhys(pfn) + 64, m.Pa));
    }

    [Theory]
    [InlineData("coherent = false, snoops = true", false, MasterKind.CoherentDevice)]
    [InlineData("coherent = false, snoops = false", false, MasterKind.NonCoherentDevice)]
    [InlineData("coherent = true, snoops = false", true, MasterKind.NonCoherentDevice)]
    [InlineData("coherent = true", true, MasterKind.CoherentDevice)]
    [InlineData("coherent = false", false, MasterKind.NonCoherentDevice)]
    public void TheHardwareFollowsSnoopsAndTheKernelFollowsDt(string properties, bool kernelCoherent, MasterKind master)
    {
        // At offset 64 the buffer shares the 128-byte granule with the contender's store: the DMA API's sharing rule
        // applies to a device DT calls non-coherent, whatever the bus does.
        var text = SharedLineScenario("linux-6.4-arm64", 64).Replace("device spi { coherent = false }", $"device spi {{ {properties} }}", StringComparison.Ordinal);
        var outcome = Check(text);
        Assert.Equal(OutcomeError.None, outcome.Error);
        Assert.Equal(master, outcome.Scenario!.Programs.Single(p => p.Name == "rx").Master);
        Assert.Equal(!kernelCoherent, outcome.Result!.Findings.Any(f => f.Finding.Kind == FindingKinds.CpuWriteSharesLine));
    }

    [Fact]
    public void SnoopsTakesOnOrOff()
    {
        var text = SharedLineScenario("linux-6.4-arm64", 128).Replace("device spi { coherent = false }", "device spi { coherent = false, snoops = sometimes }", StringComparison.Ordinal);
        var outcome = Check(text);
        Assert.Equal(OutcomeError.BadInput, outcome.Error);
        Assert.Contains("expected on or off, not 'sometimes'", outcome.Message, StringComparison.Ordinal);
    }
}
