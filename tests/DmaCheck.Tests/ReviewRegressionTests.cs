using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>Wrong verdicts and crashes found in review, each kept as a regression test.</summary>
public class ReviewRegressionTests
{
    private const string Scm = "profile linux-6.4-arm64\ndevice scm { coherent = false }\nfirmware tz { access = cacheable }\n";

    private static ScenarioOutcome Check(string text) => Checker.CheckText("r.dmc", text, ExplorationLimits.Default);

    private static void AssertError(string text, int exitCode, string message)
    {
        var o = Check(text);
        Assert.Equal(exitCode, o.ExitCode);
        Assert.Contains(message, o.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FirmwareHandedDmaMappingErrorIsAKernelBugNotAnAlwaysVerdict() => AssertError(
        Scm + "cpu d {\n  b = dma_alloc_coherent(scm, 4096, GFP_KERNEL)\n  h = dma_map_single(scm, b, 4096, DMA_TO_DEVICE)\n  smc tz(h)\n}\n" +
        "firmware tz on smc(addr) {\n  read phys(addr)[0..4096] -> seen\n}\nexpect e: seen == old\n",
        1, "DMA_MAPPING_ERROR: the mapping failed and the driver did not check dma_mapping_error()");

    [Fact]
    public void AReadRunTwiceOnOneRunIsRejected() => AssertError(
        Scm + "cpu d {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(scm, p, 64, DMA_TO_DEVICE)\n  smc tz(h)\n  smc tz(h)\n}\n" +
        "firmware tz on smc(addr) {\n  read phys(addr)[0..64] -> seen\n}\nexpect e: seen == zero\n",
        2, "'seen' is read a second time on this run");

    [Fact]
    public void AHugeOffsetCannotWrapIntoAnotherBuffer() => AssertError(
        "profile linux-6.4-arm64\ncpu c {\n  p = kmalloc(4096, GFP_KERNEL)\n  read p+0xffffffffffffffc0[0..64] -> v\n}\nexpect e: v == zero\n",
        2, "runs past the end of 'p'");

    [Fact]
    public void AnOffsetOnAPageArgumentIsRejected() => AssertError(
        Scm + "cpu c {\n  pg = alloc_pages(GFP_KERNEL, 1)\n  h = dma_map_page(scm, pg+4096, 0, 64, DMA_TO_DEVICE)\n}\n",
        2, "with no offset");

    [Fact]
    public void InitOnFreeMeansFreePagesHoldZeroes()
    {
        var o = Check("profile linux-6.4-arm64\nset init_on_free = on\ncpu c {\n  pg = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)\n  read pg[0..64] -> seen\n}\nexpect zeroed: seen == zero\n# expect zeroed: always\n");
        Assert.Equal(0, o.ExitCode);
    }

    [Fact]
    public void InitOnFreeWithAnArbitraryCacheCanLeaveDirtyZeroesOverOldData()
    {
        var text = "profile linux-6.4-arm64\nset init_on_free = on\nset cache_init = arbitrary\ndevice d { coherent = false }\n" +
            "cpu c {\n  pg = alloc_pages(GFP_KERNEL, 0)\n  h = dma_map_page(d, pg, 0, 64, DMA_FROM_DEVICE)\n  signal go\n}\n" +
            "dma e by d {\n  wait go\n  read dma(h)[0..64] -> seen\n}\nexpect zeroed: seen == zero\n# expect zeroed: always\n";
        Assert.Equal(0, Check(text).ExitCode); // the map cleans the dirty zeroes to RAM before the device reads
    }

    [Fact]
    public void ACoherentAllocationAboveMaxOrderReturnsNull() => AssertError(
        Scm + "cpu c {\n  buf = dma_alloc_coherent(scm, 64M, GFP_KERNEL)\n  write buf[0..64] = x\n}\n",
        1, "no live mapping translates VA 0x0");

    [Fact]
    public void KfreeOfNullIsANoOp() => Assert.Equal(0, Check("profile linux-6.4-arm64\ncpu c {\n  p = kmalloc(8M, GFP_KERNEL)\n  kfree(p)\n}\n").ExitCode);

    [Fact]
    public void TooManyWritersIsBadInput()
    {
        var writes = string.Concat(Enumerable.Range(0, 300).Select(i => $"  write p[0..1] = w{i}\n"));
        AssertError("profile linux-6.4-arm64\ncpu c {\n  p = kmalloc(64, GFP_KERNEL)\n" + writes + "}\n", 2, "too many distinct writer names");
    }

    [Fact]
    public void DuplicateParameterIsBadInput() => AssertError(
        Scm + "firmware tz on smc(a, a) { }\ncpu c {\n  smc tz(1, 2)\n}\n", 2, "parameter 'a' is declared twice");

    [Fact]
    public void ProseCommentsThatStartWithExpectAreComments() =>
        Assert.Equal(0, Check("profile linux-6.4-arm64\n# expect the firmware to see the payload\ncpu c { signal x }\n").ExitCode);

    [Fact]
    public void ADmaAccessThroughACoherentBufferPointsAtItsDmaField() => AssertError(
        "profile linux-6.4-arm64\ndevice nic { coherent = false }\ncpu c {\n  buf = dma_alloc_coherent(nic, 64, GFP_KERNEL)\n  signal go\n}\n" +
        "dma d by nic {\n  wait go\n  write dma(buf)[0..64] = pkt\n}\n",
        2, "its DMA address is 'buf.dma'");

    [Fact]
    public void FlagsOrOffsetsOnADeviceArgumentAreRejected() => AssertError(
        Scm + "cpu c {\n  b = dma_alloc_coherent(scm+1, 64, GFP_KERNEL)\n}\n", 2, "expected a device name");
}

public class GetOrderTests
{
    [Theory]
    [InlineData(0UL, 0)]
    [InlineData(1UL, 0)]
    [InlineData(4096UL, 0)]
    [InlineData(4097UL, 1)]
    [InlineData(8192UL, 1)]
    [InlineData(4UL << 20, 10)]
    [InlineData((4UL << 20) + 1, 11)]
    [InlineData(ulong.MaxValue, 52)]
    public void GetOrderMatchesTheKernel(ulong size, int order) => Assert.Equal(order, DmaCheck.Kernel.PlatformLayout.GetOrder(size));
}

public class WrongAddressTests
{
    [Fact]
    public void AKernelVirtualAddressHandedToFirmwareIsADriverBug()
    {
        var text = "profile linux-6.4-arm64\nfirmware f { access = cacheable }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  smc f(p)\n}\n" +
            "firmware f on smc(q) {\n  read phys(q)[0..64] -> v\n}\nexpect e: v == zero\n";
        var o = Checker.CheckText("va.dmc", text, ExplorationLimits.Default);
        Assert.Equal(1, o.ExitCode);
        Assert.Contains("a kernel virtual address used as a physical address", o.Message, StringComparison.Ordinal);
    }
}
