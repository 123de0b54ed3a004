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

    /// <summary>
    /// check_sync finds its entry with containing_match: a sync that runs past the end of its mapping finds none, so it
    /// is "not allocated" (E9), like a sync of unknown memory, and E10 never fires.
    /// </summary>
    [Fact]
    public void ASyncPastTheEndIsNotAllocatedLikeUnknownMemory()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_FROM_DEVICE);
        DmaDebug.Sync(s, Dma(), Dev, 0x8100_0080, 256, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        DmaDebug.Sync(s, Dma(), Dev, 0x8200_0000, 64, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        Assert.Equal([DmaDebug.SyncNotAllocated, DmaDebug.SyncNotAllocated], Kinds(findings));
        Assert.EndsWith("device driver tries to sync DMA memory it has not allocated [device address=0x0000000081000080] [size=256 bytes]", findings[0].Message, StringComparison.Ordinal);
        findings.Clear();
        DmaDebug.Sync(s, Dma(), Dev, 0x8100_0080, 128, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        Assert.Empty(findings); // inside: found
    }

    /// <summary>E11 to E13 print the mapping's size (entry->size), not the sync's; E8 prints the unmap's, with no space before the bracket.</summary>
    [Fact]
    public void MessagesPrintTheSizesTheKernelPrints()
    {
        var (s, findings) = Mapped(DmaDirection.DMA_TO_DEVICE);
        DmaDebug.Sync(s, Dma(), Dev, 0x8100_0000, 64, DmaDirection.DMA_FROM_DEVICE, true, "dma_sync_single_for_cpu", findings);
        Assert.Contains("[device address=0x0000000081000000] [size=256 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]", findings[0].Message, StringComparison.Ordinal);
        findings.Clear();
        DmaDebug.Unmap(s, Dma(), Dev, 0x8100_0000, 128, DebugType.Single, DmaDirection.DMA_TO_DEVICE, null, "dma_unmap_single", findings);
        Assert.EndsWith("device driver failed to check map error[device address=0x0000000081000000] [size=128 bytes] [mapped as single]", findings[^1].Message, StringComparison.Ordinal);
    }

    /// <summary>debug_dma_alloc_coherent goes through add_dma_entry: a coherent buffer is in the active-cacheline tree as DMA_BIDIRECTIONAL.</summary>
    [Fact]
    public void ACoherentBufferIsTrackedByTheCachelineCheck()
    {
        var dma = Dma();
        var findings = new List<Finding>();
        var cpu = dma.Kernel.Layout.PhysToVirt(0x8100_0000);
        var s = DmaDebug.AllocCoherent(DebugState.Empty, dma, Dev, cpu, 0x8100_0000, 4096, 1, findings);
        Assert.Empty(findings);
        DmaDebug.Map(s, dma, Dev, 0x8100_0000, 0x8100_0000, 64, DmaDirection.DMA_FROM_DEVICE, "dma_map_single", 2, findings);
        Assert.Equal([DmaDebug.CachelineOverlap], Kinds(findings));
    }

    /// <summary>The EEXIST report by kernel version: none before v5.14, every overlap in v5.14, not for DMA_ATTR_SKIP_CPU_SYNC since v5.15.</summary>
    [Theory]
    [InlineData("silent", DmaAttrs.None, false)]
    [InlineData("report", DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, true)]
    [InlineData("skip_cpu_sync", DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, false)]
    [InlineData("skip_cpu_sync", DmaAttrs.None, true)]
    [InlineData("kmalloc_bounce", DmaAttrs.None, true)] // no kmalloc bouncing here
    public void TheCachelineReportFollowsTheKernelVersion(string value, DmaAttrs attrs, bool reported)
    {
        var dma = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig(DebugCachelineOverlap: DmaCheck.Dma.SwitchValues.DebugCachelineOverlap.Parse(value)), HardwareConfig.Default));
        var findings = new List<Finding>();
        var s = DmaDebug.Map(DebugState.Empty, dma, Dev, 0x8100_0000, 0x8100_0000, 16, DmaDirection.DMA_FROM_DEVICE, "dma_map_page", 1, findings);
        DmaDebug.Map(s, dma, Dev, 0x8100_0020, 0x8100_0020, 16, DmaDirection.DMA_FROM_DEVICE, "dma_map_page", 2, findings, attrs: attrs);
        Assert.Equal(reported, findings.Any(f => f.Kind == DmaDebug.CachelineOverlap));
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
        // Outside every mapping is the model's own finding (device-access-unmapped, Scenarios/Calls/DeviceBounds.cs),
        // made whether or not dma-debug is on: not dma-debug's.
        DmaDebug.DeviceAccess(s, Dma(), "nic", "rx", 0x8200_0000, 8, isWrite: true, findings);
        Assert.Empty(findings);
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
