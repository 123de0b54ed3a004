namespace DmaCheck.Hardware;

/// <summary>
/// The memory attribute of one virtual alias of physical memory, as the Arm architecture names them.
/// Normal write-back memory goes through the cache; Normal non-cacheable and Device memory go to RAM and
/// ignore any line that happens to be cached for the same physical address (an "unexpected hit" is ignored).
/// </summary>
public enum MemoryType : byte
{
    /// <summary>Normal, inner/outer write-back, read/write-allocate (arm64 MT_NORMAL).</summary>
    NormalWriteBack,

    /// <summary>Normal non-cacheable (arm64 MT_NORMAL_NC): bypasses the cache.</summary>
    NormalNonCacheable,

    /// <summary>Device memory (nGnRE and friends): bypasses the cache.</summary>
    Device,
}

public static class MemoryTypeExtensions
{
    public static bool IsCacheable(this MemoryType type) => type == MemoryType.NormalWriteBack;

    public static string Describe(this MemoryType type) => type switch
    {
        MemoryType.NormalWriteBack => "Normal-WB",
        MemoryType.NormalNonCacheable => "Normal-NC",
        MemoryType.Device => "Device",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}

/// <summary>The state of one physical cache line in the single coherent CPU-side cache domain.</summary>
public enum CacheState : byte
{
    Invalid,
    Clean,
    Dirty,
}

/// <summary>Who performs a memory access. The CPU and firmware running on it share one cache domain.</summary>
public enum MasterKind : byte
{
    Cpu,
    Firmware,

    /// <summary>A DMA master that snoops the CPU caches ("dma-coherent" in DT).</summary>
    CoherentDevice,

    /// <summary>A DMA master that reads and writes RAM only.</summary>
    NonCoherentDevice,
}
