using System.Collections.Immutable;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The control state's fingerprint decides which states the explorers merge, so every piece of kernel and DMA state that can
/// change what happens next must be in it: two states that differ only there must not be merged.
/// </summary>
public class ControlKeyTests
{
    private static ControlState Ctrl(DmaState dma) =>
        new(dma, [], ImmutableSortedDictionary<string, Value>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<int, ObservedRange>.Empty);

    private static DmaState Boot() =>
        DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(Swiotlb: SwiotlbBoot.Force, KmallocMinalign: 8), HardwareConfig.Default));

    [Fact]
    public void TheSlabFreelistIsPartOfTheKey()
    {
        var s = Boot();
        var k = Kmalloc.Alloc(s.Kernel, 32, Gfp.GFP_KERNEL, [], out var a);
        k = Kmalloc.Alloc(k, 32, Gfp.GFP_KERNEL, [], out var b);
        var freedA = Kmalloc.Free(Kmalloc.Free(k, b, 32, [], []), a, 32, [], []);
        var freedB = Kmalloc.Free(Kmalloc.Free(k, a, 32, [], []), b, 32, [], []);
        Assert.NotEqual(Ctrl(s with { Kernel = freedA }).Fingerprint, Ctrl(s with { Kernel = freedB }).Fingerprint);
    }

    [Fact]
    public void SwiotlbSlotsAndTheSearchIndexArePartOfTheKey()
    {
        var s = Boot();
        Assert.NotEqual(Ctrl(s).Fingerprint, Ctrl(s with { Swiotlb = s.Swiotlb! with { SearchIndex = 4 } }).Fingerprint);
        var used = s.Swiotlb!.Allocate(new DmaDevice("d", true), 0x8100_0000, 64, "x", out _)!;
        Assert.NotEqual(Ctrl(s with { Swiotlb = used with { SearchIndex = 0 } }).Fingerprint, Ctrl(s).Fingerprint);
    }

    [Fact]
    public void ABouncedMappingsStaleBytesArePartOfTheKey()
    {
        var s = Boot();
        var m = new StreamingMapping("d", 0xbc00_0000, 0x8100_0000, 256, DmaDirection.DMA_FROM_DEVICE, "dma_map_single", 0xbc00_0000, [(0UL, 256UL)]);
        Assert.NotEqual(Ctrl(s with { Mappings = [m] }).Fingerprint, Ctrl(s with { Mappings = [m.Filled(0, 128)] }).Fingerprint);
    }

    [Fact]
    public void WhoLastUsedAFreeCmaFrameIsPartOfTheKey()
    {
        var layout = PlatformLayout.Arm64Va48.WithDram(4UL << 30, out _)!;
        var k = KernelState.Boot(layout, new KernelConfig(CmaBytes: 16UL << 20), HardwareConfig.Default);
        var a = Cma.Release(Cma.Alloc(k, 4, 2, "a", [], out var pa)!, pa, 4, null, "t", [], null);
        var b = Cma.Release(Cma.Alloc(k, 4, 2, "b", [], out var pb)!, pb, 4, null, "t", [], null);
        var s = DmaState.Boot(k);
        Assert.NotEqual(Ctrl(s with { Kernel = a }).Fingerprint, Ctrl(s with { Kernel = b }).Fingerprint);
    }

    [Fact]
    public void WhoLastUsedAFreedBlockIsPartOfTheKey()
    {
        var k = Boot().Kernel;
        var a = k.AllocPages(Gfp.GFP_KERNEL, 0, "a", [], out var pa).FreePages(pa, 0, []);
        var b = k.AllocPages(Gfp.GFP_KERNEL, 0, "b", [], out var pb).FreePages(pb, 0, []);
        Assert.Equal(pa, pb);
        var s = Boot();
        Assert.NotEqual(Ctrl(s with { Kernel = a }).Fingerprint, Ctrl(s with { Kernel = b }).Fingerprint);
    }

    /// <summary>A poll with max N counts its misses in the frame: states that differ only in that count must not merge.</summary>
    [Fact]
    public void APollsRetryCountIsPartOfTheKey()
    {
        var s = Boot();
        ControlState With(int retries) => new(s, [new AgentState(ImmutableStack.Create(new Frame(0, 0, ImmutableDictionary<string, Value>.Empty, retries)), null)],
            ImmutableSortedDictionary<string, Value>.Empty, ImmutableSortedSet<string>.Empty, ImmutableSortedDictionary<int, ObservedRange>.Empty);
        Assert.NotEqual(With(0).Fingerprint, With(1).Fingerprint);
        Assert.NotEqual(With(1).Fingerprint, With(2).Fingerprint);
    }
}
