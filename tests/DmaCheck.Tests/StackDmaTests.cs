using System.Collections.Immutable;
using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>E15: check_for_stack against the calling thread's stack, vmalloc'd (arm64) or direct-mapped (arm32 v5.13).</summary>
public class StackDmaTests
{
    private static string[] Findings(string profile, string driver, string? other = null)
    {
        var text = $"profile {profile}\ndevice d {{ coherent = false }}\ncpu driver {{\n{driver}\n}}\n" + (other is null ? string.Empty : $"cpu other {{\n{other}\n}}\n");
        var outcome = Checker.CheckText("t.dmc", text, ExplorationLimits.Default);
        Assert.Null(outcome.Message);
        return outcome.Result!.Findings.Select(f => $"{f.Finding.Kind} {f.Finding.Message}").Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    [Fact]
    public void AVmallocdStackPageIsFoundByPageWithAProbableAddress()
    {
        var found = Findings("linux-6.4-arm64", "  b = stack_buffer(64)\n  pg = vmalloc_to_page(b)\n  o = offset_in_page(b)\n  h = dma_map_page(d, pg, o, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_page(d, h, 64, DMA_TO_DEVICE)");
        var f = Assert.Single(found);
        Assert.StartsWith(DmaDebug.MapStack + " DMA-API: d: device driver maps memory from stack [probable addr=0x", f, StringComparison.Ordinal);
        Assert.EndsWith("fc0]", f, StringComparison.Ordinal); // the top 64 bytes of the stack's last page
    }

    [Fact]
    public void ADirectMappedStackIsFoundByAddress()
    {
        var f = Assert.Single(Findings("linux-5.13-arm-rpi4", "  b = stack_buffer(64)\n  h = dma_map_single(d, b, 64, DMA_FROM_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 64, DMA_FROM_DEVICE)"));
        Assert.StartsWith(DmaDebug.MapStack + " DMA-API: d: device driver maps memory from stack [addr=0x", f, StringComparison.Ordinal);
    }

    [Fact]
    public void AnotherThreadsStackAndKmallocAreNotReported()
    {
        // check_for_stack looks at current's stack only: mapping the other thread's page says nothing.
        Assert.Empty(Findings("linux-6.4-arm64",
            "  wait ready\n  h = dma_map_page(d, pg, 0, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_page(d, h, 64, DMA_TO_DEVICE)",
            "  b = stack_buffer(64)\n  pg = vmalloc_to_page(b)\n  signal ready"));
        Assert.Empty(Findings("linux-6.4-arm64", "  b = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, b, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 64, DMA_TO_DEVICE)"));
    }

    [Fact]
    public void SgElementsOnTheStackAreReported()
    {
        var f = Findings("linux-6.4-arm64", "  b = stack_buffer(64)\n  pg = vmalloc_to_page(b)\n  o = offset_in_page(b)\n  t = sg_alloc_table(1)\n  sg_set_page(t, 0, pg, 64, o)\n  n = dma_map_sg(d, t, 1, DMA_TO_DEVICE)\n  dma_unmap_sg(d, t, 1, DMA_TO_DEVICE)");
        Assert.StartsWith(DmaDebug.MapStack, Assert.Single(f), StringComparison.Ordinal);
    }

    [Fact]
    public void StacksArePartOfTheControlKey()
    {
        var k = KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), HardwareConfig.Default);
        var one = Stacks.Buffer(k, "a", 64, [], out var first);
        var two = Stacks.Buffer(one, "a", 64, [], out var second);
        Assert.Equal(first - 64, second);
        static UInt128 Key(KernelState k) => new ControlState(DmaState.Boot(k), [], ImmutableSortedDictionary<string, Value>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<int, ObservedRange>.Empty).Fingerprint;
        Assert.NotEqual(Key(one), Key(two));
        Assert.NotEqual(Key(one), Key(Stacks.Buffer(k, "b", 64, [], out _)));
    }
}
