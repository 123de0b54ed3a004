using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>
/// Streaming DMA in a Xen dom0 (xen_swiotlb_dma_ops, drivers/xen/swiotlb-xen.c): for the dom0's own, 1:1-mapped
/// pages, xen_swiotlb_map_page, unmap_page and the syncs make dma-direct's decisions in dma-direct's order; only the
/// names in between differ, and v6.5's kmalloc bounce is dma-direct's alone.
/// </summary>
public class XenStreamingTests
{
    private static readonly DmaDevice Nc = new("d", false);

    private static DmaState Boot(SwiotlbBoot swiotlb) =>
        DmaState.Boot(KernelState.Boot(PlatformLayout.Arm32Rpi4, new KernelConfig(Swiotlb: swiotlb), HardwareConfig.Default));

    /// <summary>Map, sync for device, sync for CPU and unmap of one buffer; every hardware operation with its origin.</summary>
    private static List<string> Run(KernelProfile profile, SwiotlbBoot swiotlb, DmaDirection dir)
    {
        var env = new DmaEnvironment(profile);
        var ops = new List<HwOp>();
        var state = Boot(swiotlb);
        var k = state.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", ops, out var pfn);
        state = state with { Kernel = k };
        ops.Clear();
        state = DmaApi.DmaMapSingle(env, state, Nc, k.Layout.LinearAddress(pfn), 256, dir, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        Assert.False(DmaApi.DmaMappingErrorCheck(handle));
        state = DmaApi.SyncForDevice(env, state, Nc, handle, 256, dir, "dma_sync_single_for_device", ops, []);
        DmaApi.SyncForCpu(env, state, Nc, handle, 256, dir, "dma_sync_single_for_cpu", ops, []);
        state = DmaApi.DmaUnmap(env, state, Nc, handle, 256, dir, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Empty(state.Mappings);
        return ops.SelectMany(o => o is CopyOp c ? new HwOp[] { c.Load, c.Store } : [o]).Cast<MemoryOp>().Select(o => $"{o.Origin} | {o.Op.Kind} 0x{o.Pa:x}+{o.Length}").ToList();
    }

    [Theory]
    [InlineData(SwiotlbBoot.Off, DmaDirection.DMA_FROM_DEVICE)]
    [InlineData(SwiotlbBoot.Off, DmaDirection.DMA_TO_DEVICE)]
    [InlineData(SwiotlbBoot.Force, DmaDirection.DMA_FROM_DEVICE)]
    [InlineData(SwiotlbBoot.Force, DmaDirection.DMA_BIDIRECTIONAL)]
    public void TheDom0DoesWhatDmaDirectDoesUnderItsOwnNames(SwiotlbBoot swiotlb, DmaDirection dir)
    {
        var xen = Run(Profiles.Linux513ArmXenRpi4, swiotlb, dir);
        var direct = Run(Profiles.Linux513ArmRpi4, swiotlb, dir);
        Assert.NotEmpty(xen);
        Assert.Equal(direct.Count, xen.Count);
        for (var i = 0; i < xen.Count; i++)
        {
            Assert.Equal(Strip(direct[i]), Strip(xen[i]));
        }

        Assert.All(xen, line => Assert.Matches(@"→ xen_swiotlb_(map_page|unmap_page|sync_single_for_cpu|sync_single_for_device)", line));
        Assert.DoesNotContain(direct, line => line.Contains("xen_", StringComparison.Ordinal));
    }

    [Fact]
    public void UnmapCopiesBackInSwiotlbTblUnmapSingleAfterTheInvalidate()
    {
        var xen = Run(Profiles.Linux513ArmXenRpi4, SwiotlbBoot.Force, DmaDirection.DMA_FROM_DEVICE);
        var unmap = xen.Where(l => l.StartsWith("dma_unmap_single", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, unmap.Count);
        Assert.Contains("xen_swiotlb_unmap_page: __dma_page_dev_to_cpu", unmap[0]);
        Assert.Contains("Invalidate", unmap[0]);
        Assert.Contains("xen_swiotlb_unmap_page: swiotlb_tbl_unmap_single", unmap[1]);
        Assert.Contains("CopyRead", unmap[1]);
        Assert.Contains("| Write 0x", unmap[2]);
    }

    [Fact]
    public void ABounceWithoutAPoolIsNotModelledInADom0()
    {
        var env = new DmaEnvironment(Profiles.Linux513ArmXenRpi4);
        var state = Boot(SwiotlbBoot.Off);
        var k = state.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        var e = Assert.Throws<NotModelledException>(() =>
            DmaApi.DmaMapSingle(env, state with { Kernel = k }, Nc with { DmaMaskBits = 12 }, k.Layout.LinearAddress(pfn), 256, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], [], out _));
        Assert.Contains("xen_swiotlb_init", e.Message);
    }

    /// <summary>The direct twin's line with the swiotlb-xen function taken out, for comparing the two.</summary>
    private static string Strip(string line) => System.Text.RegularExpressions.Regex.Replace(line, @" → xen_swiotlb_[a-z_]+", string.Empty)
        .Replace("swiotlb_tbl_unmap_single", "swiotlb_sync_single_for_cpu", StringComparison.Ordinal);
}
