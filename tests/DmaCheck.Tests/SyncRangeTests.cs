using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// dma_sync_single_range_for_cpu / _for_device (include/linux/dma-mapping.h): the single sync of addr + offset, added
/// as one catalogue entry each (issue 14 item 4).
/// </summary>
public class SyncRangeTests
{
    public static TheoryData<string, bool> Platforms() => new()
    {
        { Profiles.Linux64Arm64.Name, false },
        { Profiles.Linux64Arm64.Name, true },
        { Profiles.Linux513ArmImx6.Name, false },
        { Profiles.Linux513ArmRpi4.Name, true },
        { Profiles.Linux64X86.Name, true },
    };

    /// <summary>The law of the header: the range sync does exactly what the single sync of addr + offset does (operations, findings, debug state).</summary>
    [Theory]
    [MemberData(nameof(Platforms))]
    public void ARangeSyncIsTheSingleSyncOfTheOffsetHandle(string profileName, bool swiotlb)
    {
        var profile = Profiles.Find(profileName)!;
        var config = new KernelConfig(Swiotlb: swiotlb ? SwiotlbBoot.Force : null);
        var env = new DmaEnvironment(profile);
        var front = new DmaMapping<DebugState>(env, new DmaDebugHooks(env, config));
        var dev = new DmaDevice("nic", profile.Arch == Arch.X86_64);
        var k = KernelState.Boot(profile.Layout, config, HardwareConfig.Default with { OuterCache = profile.Layout.OuterCache });
        k = Kmalloc.Alloc(k, 256, Gfp.GFP_KERNEL, [], out var va);
        var (dma, debug) = front.MapSingle(DmaState.Boot(k), DebugState.Empty, dev, va, 256, DmaDirection.DMA_BIDIRECTIONAL, DmaAttrs.None, "map", 1, null, [], [], out var h);
        Assert.False(DmaApi.DmaMappingErrorCheck(h));

        foreach (var (offset, size) in new[] { (0UL, 64UL), (64UL, 128UL), (128UL, 128UL), (192UL, 128UL) })
        {
            var (rangeOps, rangeFindings, singleOps, singleFindings) = (new List<HwOp>(), new List<Finding>(), new List<HwOp>(), new List<Finding>());
            var rangeDebug = front.SyncSingleRangeForCpu(dma, debug, dev, h, offset, size, DmaDirection.DMA_BIDIRECTIONAL, "sync", rangeOps, rangeFindings);
            var singleDebug = front.SyncSingleForCpu(dma, debug, dev, h + offset, size, DmaDirection.DMA_BIDIRECTIONAL, "sync", singleOps, singleFindings);
            Assert.Equal(singleOps, rangeOps);
            Assert.Equal(singleFindings, rangeFindings);
            Assert.Equal(singleDebug.Key, rangeDebug.Key);

            (rangeOps, rangeFindings, singleOps, singleFindings) = (new List<HwOp>(), new List<Finding>(), new List<HwOp>(), new List<Finding>());
            var (rangeDma, rangeDebug2) = front.SyncSingleRangeForDevice(dma, debug, dev, h, offset, size, DmaDirection.DMA_BIDIRECTIONAL, "sync", rangeOps, rangeFindings);
            var (singleDma, singleDebug2) = front.SyncSingleForDevice(dma, debug, dev, h + offset, size, DmaDirection.DMA_BIDIRECTIONAL, "sync", singleOps, singleFindings);
            Assert.Equal(singleOps, rangeOps);
            Assert.Equal(singleFindings, rangeFindings);
            Assert.Equal(singleDebug2.Key, rangeDebug2.Key);
            Assert.Equal(singleDma.Mappings, rangeDma.Mappings);
        }
    }

    /// <summary>A range past the end of the mapping is check_sync's "tries to sync DMA memory it has not allocated" (E9), named after the range call.</summary>
    [Fact]
    public void ARangePastTheMappingIsSyncOfMemoryNotAllocated()
    {
        // check_sync finds only an entry that contains the whole synced range (containing_match), so a range that runs
        // past the mapping's end matches none: E9, as for any sync the kernel cannot place (issue 17's audit).
        var findings = Explore(Scenario("dma_sync_single_range_for_cpu(nic, h, 192, 128, DMA_FROM_DEVICE)"));
        var f = Assert.Single(findings, f => f.Kind == DmaDebug.SyncNotAllocated);
        Assert.Equal("dma_sync_single_range_for_cpu", f.Function);
        Assert.Contains("[size=128 bytes]", f.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(findings, f => f.Kind == DmaDebug.SyncOutside);
    }

    /// <summary>With dma_api_debug off the front end calls the empty hooks: no debug finding, the debug state stays empty.</summary>
    [Fact]
    public void WithoutDmaApiDebugTheRangeIsNotChecked()
    {
        var scenario = Scenario("dma_sync_single_range_for_cpu(nic, h, 192, 128, DMA_FROM_DEVICE)", "set dma_api_debug = off\n");
        Assert.DoesNotContain(Explore(scenario), f => f.Kind is DmaDebug.SyncOutside or DmaDebug.SyncNotAllocated);
    }

    /// <summary>The range sync for the device hands the mapping back: a device write after it is not a write to CPU-owned memory.</summary>
    [Fact]
    public void ARangeSyncForDeviceHandsTheMappingBack()
    {
        var text = """
            profile linux-6.4-arm64
            device nic { coherent = false }
            cpu driver {
              buf = kmalloc(256, GFP_KERNEL)
              h = dma_map_single(nic, buf, 256, DMA_BIDIRECTIONAL)
              dma_mapping_error(nic, h)
              dma_sync_single_range_for_cpu(nic, h, 0, 256, DMA_BIDIRECTIONAL)
              write buf[0..64] = cmd
              dma_sync_single_range_for_device(nic, h, 0, 64, DMA_BIDIRECTIONAL)
              signal go
              wait done
              dma_unmap_single(nic, h, 256, DMA_BIDIRECTIONAL)
            }
            dma engine by nic {
              wait go
              read dma(h)[0..64] -> seen
              signal done
            }
            expect device_sees_cmd: seen == cmd
            """;
        var scenario = Binder.Load("t.dmc", text);
        var result = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        Assert.Empty(result.Findings);
        Assert.Equal(Verdict.Always, Assert.Single(result.Verdicts).Verdict);
    }

    [Fact]
    public void TheBinderWantsFiveArguments()
    {
        var e = Assert.Throws<ScenarioException>(() => Scenario("dma_sync_single_range_for_cpu(nic, h, 128, DMA_FROM_DEVICE)"));
        Assert.Contains("dma_sync_single_range_for_cpu takes 5 argument(s) here, not 4", e.Message, StringComparison.Ordinal);
    }

    private static Scenarios.Scenario Scenario(string sync, string settings = "") => Binder.Load("t.dmc", $$"""
        profile linux-6.4-arm64
        {{settings}}device nic { coherent = false }
        cpu driver {
          buf = kmalloc(256, GFP_KERNEL)
          h = dma_map_single(nic, buf, 256, DMA_FROM_DEVICE)
          dma_mapping_error(nic, h)
          {{sync}}
          dma_unmap_single(nic, h, 256, DMA_FROM_DEVICE)
        }
        """);

    private static List<Finding> Explore(Scenarios.Scenario scenario) =>
        new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default).Findings.Select(f => f.Finding).ToList();
}
