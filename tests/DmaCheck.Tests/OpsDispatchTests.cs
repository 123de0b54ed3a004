using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>
/// The mapping.c front end (<c>Dma/Mapping.cs</c>): each profile's devices reach the backend the kernel's get_dma_ops
/// gives them, and the backends' differences that the front end must not paper over.
/// </summary>
public class OpsDispatchTests
{
    private static readonly HardwareConfig Outer = HardwareConfig.Default with { OuterCache = true };

    [Theory]
    [InlineData("linux-6.4-arm64", DmaOpsKind.Direct)]
    [InlineData("linux-5.13-arm-rpi4", DmaOpsKind.Direct)]
    [InlineData("linux-5.13-arm-imx6", DmaOpsKind.ArmDmaOps)]
    [InlineData("linux-5.13-arm64-xen", DmaOpsKind.XenSwiotlb)]
    [InlineData("linux-5.14-arm-xen-rpi4", DmaOpsKind.XenSwiotlb)]
    public void EachProfileGivesItsDevicesTheKernelsOps(string profile, DmaOpsKind expected)
    {
        var env = new DmaEnvironment(Profiles.Find(profile)!);
        Assert.Equal(expected, env.OpsFor(new DmaDevice("d", false)));
        Assert.Equal(expected, env.OpsFor(new DmaDevice("c", true)));
    }

    /// <summary>arm_dma_map_page never tests the mask: a mask that misses the buffer was refused by dma_set_mask, which is not modelled.</summary>
    [Fact]
    public void ArmDmaOpsStopAsNotModelledOnAMaskThatMissesTheBuffer()
    {
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm32Imx6, new KernelConfig(), Outer));
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        var narrow = new DmaDevice("d", false, DmaMaskBits: 12);
        var e = Assert.Throws<NotModelledException>(() =>
            DmaApi.DmaMapSingle(new DmaEnvironment(Profiles.Linux513ArmImx6), s with { Kernel = k }, narrow, k.Layout.LinearAddress(pfn), 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", [], [], out _));
        Assert.Contains("arm_dma_supported", e.Message, StringComparison.Ordinal);
    }

    /// <summary>arm_coherent_dma_ops have no .unmap_page or .sync_single_for_*: a coherent device's unmap and syncs do nothing.</summary>
    [Fact]
    public void ArmCoherentOpsDoNoMaintenance()
    {
        var env = new DmaEnvironment(Profiles.Linux513ArmImx6);
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm32Imx6, new KernelConfig(), HardwareConfig.Default));
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        var dev = new DmaDevice("c", true);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSingle(env, s with { Kernel = k }, dev, k.Layout.LinearAddress(pfn), 64, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        DmaApi.SyncForCpu(env, s, dev, handle, 64, DmaDirection.DMA_FROM_DEVICE, "dma_sync_single_for_cpu", ops, []);
        s = DmaApi.DmaUnmap(env, s, dev, handle, 64, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Empty(ops.OfType<MemoryOp>());
        Assert.Empty(s.Mappings);
    }

    /// <summary>Whether xen_swiotlb_dma_ops has a .map_resource depends on the release (none up to v5.15), which the profiles do not record: a dom0's dma_map_resource stops as not modelled; dma-direct maps the same MMIO address.</summary>
    [Fact]
    public void XenDom0MapResourceIsNotModelled()
    {
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Rpi4, new KernelConfig(), HardwareConfig.Default));
        var dev = new DmaDevice("d", false);
        var findings = new List<Finding>();
        const ulong mmio = 0x3c00_0000; // between the RPi4's DRAM banks, below its 32-bit DMA limit
        Assert.Throws<NotModelledException>(() => DmaApi.DmaMapResource(new DmaEnvironment(Profiles.Linux513Arm64Xen), s, dev, mmio, 64, DmaDirection.DMA_TO_DEVICE, "dma_map_resource", findings, out _));
        DmaApi.DmaMapResource(new DmaEnvironment(Profiles.Linux513Arm64), s, dev, mmio, 64, DmaDirection.DMA_TO_DEVICE, "dma_map_resource", findings, out var direct);
        Assert.Equal(mmio, direct);
        Assert.Empty(findings);
    }

    /// <summary>BUG_ON(!valid_dma_direction(dir)) is the front end's, before any backend: the same oops under every ops table.</summary>
    [Theory]
    [InlineData("linux-6.4-arm64")]
    [InlineData("linux-5.13-arm-imx6")]
    [InlineData("linux-5.13-arm64-xen")]
    public void AnInvalidDirectionOopsesInTheFrontEnd(string profile)
    {
        var p = Profiles.Find(profile)!;
        var s = DmaState.Boot(KernelState.Boot(p.Layout, new KernelConfig(), HardwareConfig.Default));
        var e = Assert.Throws<KernelBugException>(() => DmaApi.SyncForDevice(new DmaEnvironment(p), s, new DmaDevice("d", false), 0x1000, 64, DmaDirection.DMA_NONE, "dma_sync_single_for_device", [], []));
        Assert.Contains("valid_dma_direction", e.Message, StringComparison.Ordinal);
    }
}
