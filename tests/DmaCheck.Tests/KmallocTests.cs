using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>kmalloc's caches and minimum alignment, and v6.5's dma_kmalloc_needs_bounce.</summary>
public class KmallocTests
{
    private static KernelState Boot(int minalign, bool initOnAlloc = false, bool bounce = false) =>
        KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(InitOnAlloc: initOnAlloc, KmallocMinalign: minalign, KmallocBounce: bounce), HardwareConfig.Default);

    [Theory]
    [InlineData(8, 32UL, 32UL)]
    [InlineData(128, 32UL, 128UL)]
    [InlineData(8, 96UL, 96UL)]
    [InlineData(64, 96UL, 128UL)]
    [InlineData(128, 192UL, 256UL)]
    [InlineData(8, 200UL, 256UL)]
    public void ObjectsAreTheSizeClassRoundedUpToTheMinimumAlignment(int minalign, ulong size, ulong spacing)
    {
        var k = Boot(minalign);
        k = Kmalloc.Alloc(k, size, Gfp.GFP_KERNEL, [], out var a);
        k = Kmalloc.Alloc(k, size, Gfp.GFP_KERNEL, [], out var b);
        Assert.Equal(spacing, b - a);
        Assert.Equal(spacing, Kmalloc.ObjectSize(k, a));
    }

    [Fact]
    public void FreedObjectsAreReusedLastInFirstOut()
    {
        var k = Boot(8);
        k = Kmalloc.Alloc(k, 32, Gfp.GFP_KERNEL, [], out var a);
        k = Kmalloc.Alloc(k, 32, Gfp.GFP_KERNEL, [], out var b);
        k = Kmalloc.Free(k, a, 32, [], []);
        k = Kmalloc.Free(k, b, 32, [], []);
        k = Kmalloc.Alloc(k, 32, Gfp.GFP_KERNEL, [], out var c);
        Assert.Equal(b, c);
        Assert.Throws<FatalFindingException>(() => Kmalloc.Free(Kmalloc.Free(k, c, 32, [], []), c, 32, [], []));
    }

    [Fact]
    public void InitOnAllocClearsTheObjectAsWellAsTheNewSlab()
    {
        var ops = new List<HwOp>();
        Kmalloc.Alloc(Boot(8, initOnAlloc: true), 32, Gfp.GFP_KERNEL, ops, out var va);
        var stores = ops.OfType<MemoryOp>().Select(m => (m.Length, m.Op.Writer)).ToList();
        Assert.Equal([(4096UL, WriterTable.Zero), (32UL, WriterTable.Zero)], stores);
    }

    [Theory]
    [InlineData(32UL, DmaDirection.DMA_FROM_DEVICE, false, true)]
    [InlineData(96UL, DmaDirection.DMA_FROM_DEVICE, false, true)]
    [InlineData(64UL, DmaDirection.DMA_FROM_DEVICE, false, false)]
    [InlineData(128UL, DmaDirection.DMA_BIDIRECTIONAL, false, false)]
    [InlineData(192UL, DmaDirection.DMA_FROM_DEVICE, false, false)]
    [InlineData(200UL, DmaDirection.DMA_FROM_DEVICE, false, false)]
    [InlineData(32UL, DmaDirection.DMA_TO_DEVICE, false, false)]
    [InlineData(32UL, DmaDirection.DMA_FROM_DEVICE, true, false)]
    public void DmaKmallocNeedsBounceLooksAtSizeDirectionAndCoherence(ulong size, DmaDirection dir, bool coherent, bool bounces)
    {
        Assert.Equal(bounces, DmaApi.DmaKmallocNeedsBounce(Boot(8, bounce: true), new DmaDevice("d", coherent), size, dir));
        Assert.False(DmaApi.DmaKmallocNeedsBounce(Boot(128), new DmaDevice("d", coherent), size, dir));
    }
}
