using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>The DMA-API debug layer: each check of kernel/dma/debug.c it mirrors, with the kernel's wording.</summary>
public class DmaDebugTests
{
    private static readonly DmaDevice Dev = new("nic", false);

    private static DmaState Dma() => DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(), HardwareConfig.Default));

    private static (DebugState State, List<Finding> Findings) Mapped(DmaDirection dir, ulong size = 256)
    {
        var findings = new List<Finding>();
        var s = DmaDebug.Map(DebugState.Empty, Dma(), Dev, 0x8100_0000, 0x8100_0000, size, dir, "dma_map_single", 1, findings);
        return (s, findings);
    }

    private static string[] Kinds(IEnumerable<Finding> findings) => findings.Select(f => f.Kind).ToArray();

    [Fact]
    public void UnmapChecksSizeTypeDirectionAndTheMapErrorCheckInTheKernelsOrder()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_FROM_DEVICE);
        s = DmaDebug.Unmap(s, Dma(), Dev, 0x8100_0000, 128, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.Equal([DmaDebug.FreeSize, DmaDebug.FreeDirection, DmaDebug.MapErrorUnchecked], Kinds(findings));
        Assert.StartsWith("DMA-API: nic: device driver frees DMA memory with different size [device address=0x0000000081000000] [map size=256 bytes] [unmap size=128 bytes]", findings[0].Message, StringComparison.Ordinal);
        Assert.Empty(s.Entries);
    }

    [Fact]
    public void CheckedMappingsUnmapCleanly()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_TO_DEVICE);
        s = DmaDebug.MappingError(s, Dev, 0x8100_0000);
        DmaDebug.Unmap(s, Dma(), Dev, 0x8100_0000, 256, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.Empty(findings);
    }

    [Fact]
    public void FreeingWhatWasNeverMappedOrAnErrorHandle()
    {
        var findings = new List<Finding>();
        DmaDebug.Unmap(DebugState.Empty, Dma(), Dev, 0x8100_0000, 64, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        DmaDebug.Unmap(DebugState.Empty, Dma(), Dev, DmaApi.DmaMappingError, 64, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.Equal([DmaDebug.FreeNotAllocated, DmaDebug.InvalidFree], Kinds(findings));
        Assert.EndsWith("device driver tries to free an invalid DMA memory address", findings[1].Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, DmaDirection.DMA_FROM_DEVICE, true, new[] { DmaDebug.SyncDirection, DmaDebug.SyncReadOnlyForCpu })]
    [InlineData(DmaDirection.DMA_TO_DEVICE, DmaDirection.DMA_TO_DEVICE, true, new string[0])]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, DmaDirection.DMA_TO_DEVICE, false, new[] { DmaDebug.SyncDirection, DmaDebug.SyncWriteOnlyToDevice })]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, DmaDirection.DMA_FROM_DEVICE, true, new string[0])] // BIDIRECTIONAL mappings skip the direction checks
    public void SyncDirectionChecks(DmaDirection mapped, DmaDirection synced, bool toCpu, string[] expected)
    {
        var (s, findings) = Mapped(mapped);
        DmaDebug.Sync(s, Dma(), Dev, 0x8100_0000, 64, synced, toCpu, "dma_sync_single", findings);
        Assert.Equal(expected, Kinds(findings));
    }

    [Fact]
    public void SyncOutsideTheMappingAndOfUnknownMemory()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_FROM_DEVICE);
        DmaDebug.Sync(s, Dma(), Dev, 0x8100_0080, 256, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        DmaDebug.Sync(s, Dma(), Dev, 0x8200_0000, 64, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        Assert.Equal([DmaDebug.SyncOutside, DmaDebug.SyncNotAllocated], Kinds(findings));
        Assert.Contains("[allocation size=256 bytes] [sync offset+size=384]", findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OwnershipFollowsMapSyncAndUnmap()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_FROM_DEVICE);
        DmaDebug.CpuAccess(s, Dma(), "driver", 0x8100_0000, 8, isWrite: false, findings);
        Assert.Equal([DmaDebug.CpuTouchesDeviceOwned], Kinds(findings));
        findings.Clear();
        s = DmaDebug.Sync(s, Dma(), Dev, 0x8100_0000, 256, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        DmaDebug.CpuAccess(s, Dma(), "driver", 0x8100_0000, 8, isWrite: true, findings);
        Assert.Empty(findings);
        DmaDebug.DeviceAccess(s, Dma(), "nic", "rx", 0x8100_0000, 8, isWrite: true, findings);
        Assert.Equal([DmaDebug.DeviceTouchesCpuOwned], Kinds(findings));
        findings.Clear();
        DmaDebug.DeviceAccess(s, Dma(), "nic", "rx", 0x8200_0000, 8, isWrite: true, findings);
        Assert.Equal([DmaDebug.DeviceOutsideMapping], Kinds(findings));
    }

    [Fact]
    public void ReadingAToDeviceBufferTheDeviceOwnsIsAllowedWritingItIsNot()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_TO_DEVICE);
        DmaDebug.CpuAccess(s, Dma(), "driver", 0x8100_0000, 8, isWrite: false, findings);
        Assert.Empty(findings);
        DmaDebug.CpuAccess(s, Dma(), "driver", 0x8100_0000, 8, isWrite: true, findings);
        Assert.Equal([DmaDebug.CpuTouchesDeviceOwned], Kinds(findings));
    }

    [Fact]
    public void TwoNonToDeviceMappingsStartingInOneCachelineOverlap()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_FROM_DEVICE, 16);
        s = DmaDebug.Map(s, Dma(), Dev, 0x8100_0020, 0x8100_0020, 16, DmaDirection.DMA_FROM_DEVICE, "dma_map_page", 2, findings);
        DmaDebug.Map(s, Dma(), Dev, 0x8100_0040, 0x8100_0040, 16, DmaDirection.DMA_FROM_DEVICE, "dma_map_page", 3, findings); // the next line: fine
        DmaDebug.Map(s, Dma(), Dev, 0x8100_0010, 0x8100_0010, 16, DmaDirection.DMA_TO_DEVICE, "dma_map_page", 4, findings);   // TO_DEVICE is not tracked
        Assert.Equal([DmaDebug.CachelineOverlap], Kinds(findings));
        Assert.Contains("[cln=0x2040000]", findings[0].Message, StringComparison.Ordinal);
    }
}
