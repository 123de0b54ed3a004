using System.Collections.Immutable;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>enum dma_data_direction.</summary>
public enum DmaDirection : byte
{
    DMA_BIDIRECTIONAL = 0,
    DMA_TO_DEVICE = 1,
    DMA_FROM_DEVICE = 2,
    DMA_NONE = 3,
}

/// <summary>A device as the DMA API sees it. <see cref="Coherent"/> is dev_is_dma_coherent(): "dma-coherent" in DT.</summary>
public sealed record DmaDevice(string Name, bool Coherent);

/// <summary>A live streaming mapping (what dma-debug would record).</summary>
public sealed record StreamingMapping(string Device, ulong Handle, ulong Phys, ulong Size, DmaDirection Direction, string Function);

/// <summary>A live coherent allocation.</summary>
public sealed record CoherentAllocation(string Device, ulong CpuAddr, ulong Handle, ulong Size, ulong Pfn, int Order);

/// <summary>The DMA layer's state over the kernel's: the memory-management state plus live mappings and allocations. Immutable.</summary>
public sealed record DmaState(KernelState Kernel, ImmutableList<StreamingMapping> Mappings, ImmutableList<CoherentAllocation> Coherent)
{
    public static DmaState Boot(KernelState kernel) => new(kernel, [], []);
}

/// <summary>The switch values of one run, resolved once from the profile and the scenario's overrides.</summary>
public sealed record DmaEnvironment(KernelProfile Profile)
{
    public bool PrepCoherentInvalidates { get; } = Profile.Value(Switches.PrepCoherent) == "clean_inval";

    public bool FromDeviceMapInvalidates { get; } = Profile.Value(Switches.SyncForDeviceFromDevice) == "inval";
}
