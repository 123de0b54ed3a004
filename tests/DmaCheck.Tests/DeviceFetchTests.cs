using DmaCheck.Exploration;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 15 item 7: a device that reads a DMA address from memory (<c>fetch dma(d)[0..8] -> a</c>, a descriptor the CPU
/// filled with <c>write d[0..8] = dma(h)</c>) and uses it. The fetch reads through the device's master like any read,
/// so a non-coherent device may fetch what RAM held before the CPU's store reached it.
/// </summary>
public sealed class DeviceFetchTests
{
    private const string Header = "profile linux-6.6-arm64\nset init_on_alloc = on\ndevice acc { coherent = false }\n";

    private static ScenarioOutcome Check(string body) => Checker.CheckText("t.dmc", Header + body, ExplorationLimits.Default);

    /// <summary>A table mapped for the device, a chunk mapped for it to write, and the chunk's address stored in the table; <c>SYNC</c> is replaced.</summary>
    private const string Driver =
        "cpu driver {\n  table = kmalloc(64, GFP_KERNEL)\n  t = dma_map_single(acc, table, 64, DMA_TO_DEVICE)\n  dma_mapping_error(acc, t)\n"
        + "  chunk = kmalloc(4096, GFP_KERNEL)\n  c = dma_map_single(acc, chunk, 4096, DMA_FROM_DEVICE)\n  dma_mapping_error(acc, c)\n"
        + "  dma_sync_single_for_cpu(acc, t, 64, DMA_TO_DEVICE)\n  write table[0..8] = dma(c)\nSYNC  signal run\n  wait done\n"
        + "  dma_unmap_single(acc, c, 4096, DMA_FROM_DEVICE)\n  read chunk[0..4096] -> output\n}\n"
        + "dma engine by acc {\n  wait run\n  fetch dma(t)[0..8] -> entry\n  write dma(entry)[0..4096] = result\n  signal done\n}\n"
        + "expect delivered: output == result\n";

    private static ExpectationVerdict Delivered(ScenarioOutcome o)
    {
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Null(o.Result!.Inconclusive);
        return Assert.Single(o.Result.Verdicts);
    }

    [Fact]
    public void AnEntrySyncedForTheDeviceIsAlwaysFetched()
    {
        var v = Delivered(Check(Driver.Replace("SYNC", "  dma_sync_single_for_device(acc, t, 64, DMA_TO_DEVICE)\n", StringComparison.Ordinal)));
        Assert.Equal(Verdict.Always, v.Verdict);
        Assert.DoesNotContain(Check(Driver.Replace("SYNC", "  dma_sync_single_for_device(acc, t, 64, DMA_TO_DEVICE)\n", StringComparison.Ordinal)).Result!.Findings,
            f => f.Finding.Kind == FindingKinds.AccessOutsideRam);
    }

    [Fact]
    public void AnEntryLeftInTheCacheIsFetchedStaleWithNoEvent()
    {
        // The zeroes init_on_alloc stored were cleaned to RAM by the map; the address sits dirty in the CPU's cache. The
        // engine fetches 0, no RAM of this board: its write faults there, and the driver never gets the result.
        var o = Check(Driver.Replace("SYNC", string.Empty, StringComparison.Ordinal));
        var v = Delivered(o);
        Assert.Equal(Verdict.Sometimes, v.Verdict);
        Assert.Equal(0, v.MinEventsToFail);
        Assert.Contains(o.Result!.Findings, f => f.Finding.Kind == FindingKinds.AccessOutsideRam && f.Finding.Function == "engine");
    }

    [Fact]
    public void AnEntryOnACoherentDeviceIsAlwaysFetched()
    {
        var o = Checker.CheckText("t.dmc", Header.Replace("coherent = false", "coherent = true", StringComparison.Ordinal) + Driver.Replace("SYNC", string.Empty, StringComparison.Ordinal),
            ExplorationLimits.Default);
        Assert.Equal(Verdict.Always, Delivered(o).Verdict);
    }

    [Fact]
    public void BytesThatHoldNoStoredAddressStopTheRunAsNotModelled()
    {
        // Without init_on_alloc the fresh table holds the previous owner's bytes: the engine would use them as an
        // address, which the model cannot follow, so the result is inconclusive, never a verdict.
        var o = Checker.CheckText("t.dmc", Header.Replace("set init_on_alloc = on\n", string.Empty, StringComparison.Ordinal) + Driver.Replace("SYNC", string.Empty, StringComparison.Ordinal),
            ExplorationLimits.Default);
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.NotNull(o.Result!.Inconclusive);
        Assert.Contains("no DMA address the scenario stored", o.Result.Inconclusive, StringComparison.Ordinal);
        Assert.Equal(3, o.ExitCode);
    }

    [Fact]
    public void AStaleAddressOfAFreedBufferNamesWhereTheWriteLands()
    {
        var o = Checker.CheckFile(Path.Combine(TestPaths.Root, "scenarios", "streaming", "descriptor-reused-without-sync.dmc"), ExplorationLimits.Default);
        Assert.True(o.Error == OutcomeError.None, o.Message);
        var f = Assert.Single(o.Result!.Findings.Select(x => x.Finding), x => x.Kind == FindingKinds.DeviceOutsideMapping);
        Assert.Contains("covered by no live mapping", f.Message, StringComparison.Ordinal);
        Assert.Equal(Severity.Corruption, f.Severity);
    }

    [Theory]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  fetch p[0..8] -> a\n}\n", "only a DMA engine fetches")]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(acc, p, 64, DMA_TO_DEVICE)\n  signal go\n}\ndma e by acc {\n  wait go\n  fetch dma(h)[0..4] -> a\n}\n", "8 bytes")]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(acc, p, 64, DMA_TO_DEVICE)\n  write p[0..4] = dma(h)\n}\n", "8 bytes")]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  write p[0..8] = dma(q)\n}\n", "unknown variable 'q'")]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(acc, p, 64, DMA_TO_DEVICE)\n  signal go\n}\ndma e by acc {\n  wait go\n  fetch dma(h)[0..8] -> h\n}\n", "already names a value")]
    [InlineData("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(acc, p, 64, DMA_TO_DEVICE)\n  signal go\n}\ndma e by acc {\n  wait go\n  write dma(a)[0..8] = x\n  fetch dma(h)[0..8] -> a\n}\n", "unknown variable 'a'")]
    public void MisuseIsBadInput(string body, string message)
    {
        var o = Check(body);
        Assert.Equal(OutcomeError.BadInput, o.Error);
        Assert.Contains(message, o.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnalignedStoredAddressStopsAsNotModelled()
    {
        var o = Check("cpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(acc, p, 64, DMA_TO_DEVICE)\n  write p + 4[0..8] = dma(h)\n}\n");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("not 8-byte aligned", o.Result!.Inconclusive, StringComparison.Ordinal);
    }
}
