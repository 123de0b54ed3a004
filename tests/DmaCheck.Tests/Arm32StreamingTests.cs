using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>32-bit arm streaming maintenance (v7_dma_map_area / v7_dma_unmap_area, no outer cache): the exact DC sequence.</summary>
public class Arm32StreamingTests
{
    private static readonly DmaEnvironment Env = new(Profiles.Linux513ArmRpi4);

    /// <summary>Each operation as "MNEMONIC lo..hi", offsets from the buffer's line-aligned start.</summary>
    private static string Show(IEnumerable<HwOp> ops, ulong basePa) => string.Join(" ", ops.OfType<MemoryOp>()
        .Select(m => $"{m.Op.Mnemonic} {m.Pa - basePa}..{m.Pa - basePa + m.Length}"));

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, 0UL, 128UL, "DC CVAC 0..128", "")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, 0UL, 128UL, "DC CVAC 0..128", "DC IVAC 0..128")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 0UL, 128UL, "DC IVAC 0..128", "DC IVAC 0..128")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 64UL, "DC CIVAC 0..64 DC CIVAC 64..128", "DC CIVAC 0..64 DC CIVAC 64..128")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 16UL, "DC CIVAC 0..64 DC CIVAC 0..64", "DC CIVAC 0..64 DC CIVAC 0..64")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 160UL, "DC CIVAC 0..64 DC IVAC 64..192", "DC CIVAC 0..64 DC IVAC 64..192")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 150UL, "DC CIVAC 0..64 DC CIVAC 128..192 DC IVAC 64..128", "DC CIVAC 0..64 DC CIVAC 128..192 DC IVAC 64..128")]
    public void MapAndUnmapFollowTheV7Table(DmaDirection dir, ulong offset, ulong size, string onMap, string onUnmap)
    {
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm32Rpi4, new KernelConfig(Swiotlb: SwiotlbBoot.Off), HardwareConfig.Default));
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        s = s with { Kernel = k };
        var basePa = PlatformLayout.PfnToPhys(pfn);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSingle(Env, s, new DmaDevice("d", false), k.Layout.LinearAddress(pfn) + offset, size, dir, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        Assert.Equal(basePa + offset + 0xc000_0000, handle); // the RPi4's bus offset
        Assert.Equal(onMap, Show(ops, basePa));
        ops.Clear();
        DmaApi.DmaUnmap(Env, s, new DmaDevice("d", false), handle, size, dir, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Equal(onUnmap, Show(ops, basePa));
    }
}
