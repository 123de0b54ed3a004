using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>
/// dma_map_resource (kernel/dma/mapping.c → dma_direct_map_resource) and each value of
/// <see cref="Switches.MapResourceRamCheck"/>: what happens to a RAM address, and that MMIO is never refused.
/// </summary>
public class MapResourceTests
{
    private static readonly DmaDevice Dev = new("dma0", false);

    private static (DmaState State, ulong RamPa) Boot()
    {
        var k = KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), HardwareConfig.Default);
        k = Kmalloc.Alloc(k, 64, Gfp.GFP_KERNEL, [], out var va);
        return (DmaState.Boot(k), k.Layout.VirtToPhys(va));
    }

    private static (ulong Handle, List<Finding> Findings, List<HwOp> Ops, DebugState Debug) Map(string value, ulong phys)
    {
        var env = new DmaEnvironment(Profiles.Linux64Arm64.With(Switches.MapResourceRamCheck, value));
        var (s, _) = Boot();
        var findings = new List<Finding>();
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapResource(env, s, Dev, phys, 64, DmaDirection.DMA_TO_DEVICE, "dma_map_resource", findings, out var handle);
        Assert.Empty(ops);
        var debug = DmaDebug.MapResource(DebugState.Empty, s, Dev, handle, phys, 64, DmaDirection.DMA_TO_DEVICE, value == "debug_report", 1, findings);
        return (handle, findings, ops, debug);
    }

    /// <summary>v4.9..v5.0: "Don't allow RAM to be mapped" was BUG_ON(pfn_valid(...)); MMIO still maps.</summary>
    [Fact]
    public void BugOnOopsesOnRamButMapsMmio()
    {
        var (_, ram) = Boot();
        var e = Assert.Throws<KernelBugException>(() => Map("bug_on", ram));
        Assert.Contains("BUG_ON(pfn_valid", e.Message, StringComparison.Ordinal);
        var (handle, findings, _, _) = Map("bug_on", 0x0900_0000);
        Assert.Equal(0x0900_0000UL, handle);
        Assert.Empty(findings);
    }

    [Fact]
    public void WarnFailRefusesRamWithAWarning()
    {
        var (_, ram) = Boot();
        var (handle, findings, _, debug) = Map("warn_fail", ram);
        Assert.True(DmaApi.DmaMappingErrorCheck(handle));
        Assert.Equal(FindingKinds.MapResourceRam, Assert.Single(findings).Kind);
        Assert.Empty(debug.Entries); // no entry for a failed map
    }

    [Fact]
    public void NoneMapsRamAsThePhysicalAddressWithNoMaintenanceAndNoReport()
    {
        var (_, ram) = Boot();
        var (handle, findings, ops, debug) = Map("none", ram);
        Assert.Equal(ram, handle);
        Assert.Empty(findings);
        Assert.Empty(ops);
        var e = Assert.Single(debug.Entries);
        Assert.Equal((DebugType.Resource, false), (e.Type, e.MapErrorChecked));
    }

    [Fact]
    public void DebugReportMapsRamAndReportsIt()
    {
        var (_, ram) = Boot();
        var (handle, findings, _, debug) = Map("debug_report", ram);
        Assert.Equal(ram, handle);
        Assert.Equal($"DMA-API: dma0: dma_map_resource called for RAM address 0x{ram:x}", Assert.Single(findings).Message);
        Assert.Equal(DmaDebug.MapResourceRam, findings[0].Kind);
        Assert.Single(debug.Entries);
    }

    [Theory]
    [InlineData("warn_fail")]
    [InlineData("none")]
    [InlineData("debug_report")]
    public void MmioAndReservedPagesAreNeverRefusedOrReported(string value)
    {
        // An address outside DRAM (a device register) is what the API is for.
        var (handle, findings, _, _) = Map(value, 0x0900_0000);
        Assert.Equal(0x0900_0000UL, handle);
        Assert.Empty(findings);

        // The kernel image is RAM with PG_reserved: only the pre-v5.16 pfn_valid test refuses it.
        var image = PlatformLayout.Arm64Va48.PhysOffset;
        var (h2, f2, _, _) = Map(value, image);
        Assert.Equal(value == "warn_fail", DmaApi.DmaMappingErrorCheck(h2));
        Assert.Equal(value == "warn_fail" ? 1 : 0, f2.Count);
    }

    [Fact]
    public void UnmapOfAResourceMappingIsCheckedAsAResource()
    {
        var (_, ram) = Boot();
        var (handle, _, _, debug) = Map("none", ram);
        var findings = new List<Finding>();
        debug = DmaDebug.MappingError(debug, Dev, handle);
        DmaDebug.Unmap(debug, Boot().State, Dev, handle, 64, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.Contains("[mapped as resource] [unmapped as single]", Assert.Single(findings).Message, StringComparison.Ordinal);
    }
}
