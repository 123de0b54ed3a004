using DmaCheck.Exploration;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 15 item 7: devices that compute their addresses from a handle (<c>dma(h) + N</c>, <c>dma((h &amp; ~0xfff) + N)</c>)
/// and device accesses outside their mapping, which are modelled (device-access-unmapped, naming the allocation the
/// bytes land in) instead of being refused as bad input.
/// </summary>
public sealed class DeviceAddressTests
{
    private const string Header = "profile linux-6.4-arm64\ndevice nic { coherent = false }\n";

    private static ScenarioOutcome Check(string body) => Checker.CheckText("t.dmc", Header + body, ExplorationLimits.Default);

    private static List<Finding> Overruns(ScenarioOutcome o)
    {
        Assert.True(o.Error == OutcomeError.None, o.Message);
        return o.Result!.Findings.Select(f => f.Finding).Where(f => f.Kind == FindingKinds.DeviceOutsideMapping).ToList();
    }

    /// <summary>A 512-byte buffer at offset 512 of a page-aligned 4 KiB object, mapped for the device.</summary>
    private const string Driver = "cpu driver {\n  p = kmalloc(4096, GFP_KERNEL)\n  h = dma_map_single(nic, p + 512, 512, DMA_FROM_DEVICE)\n  dma_mapping_error(nic, h)\n  signal go\n}\n";

    [Fact]
    public void AMaskedHandleReachesTheStartOfItsPageBeforeTheMapping()
    {
        var f = Assert.Single(Overruns(Check(Driver + "dma rx by nic {\n  wait go\n  write dma((h & ~0xfff))[0..64] = x\n}\n")));
        Assert.Contains("starts 512 bytes before 'h'", f.Message, StringComparison.Ordinal);
        Assert.Equal("p", f.Owner.Name); // the bytes before the mapping are the object's own first 512
        Assert.Equal(Severity.Corruption, f.Severity);
        Assert.Equal("rx", f.Function);
    }

    [Fact]
    public void AMaskedHandlePlusAnOffsetInsideTheMappingIsNoFinding()
    {
        Assert.Empty(Overruns(Check(Driver + "dma rx by nic {\n  wait go\n  write dma((h & ~0xfff) + 512)[0..512] = x\n}\n")));
        Assert.Empty(Overruns(Check(Driver + "dma rx by nic {\n  wait go\n  write dma((h & 0xffffffffffff0000) + 0x200)[0..64] = x\n}\n")));
    }

    [Fact]
    public void DmaOfAHandlePlusNIsTheSameAsDmaOfHandlePlusN()
    {
        var a = Overruns(Check(Driver + "dma rx by nic {\n  wait go\n  read dma(h) + 448[0..128] -> seen\n}\n"));
        var b = Overruns(Check(Driver + "dma rx by nic {\n  wait go\n  read dma(h + 448)[0..128] -> seen\n}\n"));
        var f = Assert.Single(a);
        Assert.Equal(f.Message, Assert.Single(b).Message);
        Assert.Contains("runs 64 bytes past the end of 'h'", f.Message, StringComparison.Ordinal);
        Assert.Equal(Severity.InformationLeak, f.Severity);
    }

    [Fact]
    public void AnOverrunNamesEachAllocationItLandsIn()
    {
        // Two 128-byte kmalloc objects side by side (arm64 v6.4: 128-byte minimum alignment); the device writes 256 bytes
        // through a mapping of the first one's 128.
        var o = Check("cpu driver {\n  a = kmalloc(128, GFP_KERNEL)\n  b = kmalloc(128, GFP_KERNEL)\n  write b[0..128] = mine\n  h = dma_map_single(nic, a, 128, DMA_FROM_DEVICE)\n  dma_mapping_error(nic, h)\n  signal go\n  wait done\n  read b[0..128] -> seen\n}\n"
            + "dma rx by nic {\n  wait go\n  write dma(h)[0..256] = frame\n  signal done\n}\nexpect b_intact: seen == mine\n");
        var f = Assert.Single(Overruns(o));
        Assert.Equal("b", f.Owner.Name);
        Assert.Contains("its 128 bytes at PA", f.Message, StringComparison.Ordinal);
        // The bytes really land in b's RAM; the CPU sees them once b's dirty line (its own write) is evicted.
        Assert.Equal(Verdict.Sometimes, Assert.Single(o.Result!.Verdicts).Verdict);
    }

    [Fact]
    public void TheFindingIsTheModelsOwnAndNeedsNoDmaApiDebug()
    {
        var text = "set dma_api_debug = off\n" + Driver + "dma rx by nic {\n  wait go\n  write dma(h)[0..1024] = x\n}\n";
        Assert.NotEmpty(Overruns(Check(text)));
        Assert.Equal(FindingKind.ModelClass, FindingKindRegistry.Find(FindingKinds.DeviceOutsideMapping)!.Class);
    }

    [Fact]
    public void AnAccessInsideTheHandleAfterTheUnmapIsStillOutsideEveryMapping()
    {
        var f = Assert.Single(Overruns(Check("cpu driver {\n  p = kmalloc(128, GFP_KERNEL)\n  h = dma_map_single(nic, p, 128, DMA_FROM_DEVICE)\n  dma_mapping_error(nic, h)\n  dma_unmap_single(nic, h, 128, DMA_FROM_DEVICE)\n  signal go\n}\n"
            + "dma rx by nic {\n  wait go\n  write dma(h)[0..64] = x\n}\n")));
        Assert.Contains("covered by no live mapping or coherent buffer of nic", f.Message, StringComparison.Ordinal);
        Assert.Equal("p", f.Owner.Name);
    }

    [Fact]
    public void ACpuAccessPastItsBufferIsStillBadInputMaskedOrNot()
    {
        var o = Check("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  write (p & ~0xfff)[0..64] = x\n}\n");
        Assert.Equal(OutcomeError.None, o.Error); // kmalloc(64) of a fresh slab is page-aligned: the mask keeps it
        var past = Check("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  q = kmalloc(64, GFP_KERNEL)\n  write (q & ~0xfff)[0..64] = x\n}\n");
        Assert.Equal(OutcomeError.BadInput, past.Error);
        Assert.Contains("before it runs past the end of 'q'", past.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("  write dma((h & ))[0..8] = x", "expected the mask")]
    [InlineData("  write dma((h ~0xfff))[0..8] = x", "expected '&'")]
    [InlineData("  write dma(h + 8) + 8[0..8] = x", "one offset per address")]
    public void MalformedAddressArithmeticIsBadInputWithACaret(string line, string message)
    {
        var o = Check(Driver + "dma rx by nic {\n  wait go\n" + line + "\n}\n");
        Assert.Equal(OutcomeError.BadInput, o.Error);
        Assert.Contains(message, o.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FlagsCannotBeMasked()
    {
        var o = Check("cpu driver {\n  p = kmalloc(64, (GFP_KERNEL & 1))\n}\n");
        Assert.Equal(OutcomeError.BadInput, o.Error);
        Assert.Contains("gfp flags are joined with '|', not '+' or '&'", o.Message, StringComparison.Ordinal);
    }
}
