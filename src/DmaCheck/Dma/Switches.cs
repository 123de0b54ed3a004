namespace DmaCheck.Dma;

/// <summary>One behaviour of a switch, with the kernel commit that introduced it.</summary>
public sealed record SwitchValue(string Name, string Commit, string Description);

/// <summary>A piece of kernel behaviour that changed between versions, with one named value per behaviour (design §2).</summary>
public sealed record SwitchDef(string Key, string Description, IReadOnlyList<SwitchValue> Values)
{
    public SwitchValue? Find(string name) => Values.FirstOrDefault(v => v.Name == name);
}

/// <summary>Every switch the model knows. A profile gives each a value; a scenario may override any of them with <c>set</c>.</summary>
public static class Switches
{
    /// <summary>arch_dma_prep_coherent() on arm64 (arch/arm64/mm/dma-mapping.c).</summary>
    public static SwitchDef PrepCoherent { get; } = new(
        "arm64.prep_coherent",
        "What arch_dma_prep_coherent() does to the linear-map alias of freshly allocated coherent pages before they are remapped non-cacheable.",
        [
            new SwitchValue("clean_inval", "b7d9aae40484",
                "dcache_clean_inval_poc (DC CIVAC): dirty lines are written back and every line is invalidated. The behaviour from the move to dma-direct remap (~v5.0) to v6.0, restored for v6.1 final by b7d9aae40484 (Revert \"arm64: dma: Drop cache invalidation from arch_dma_prep_coherent()\"), and kept until v6.3."),
            new SwitchValue("clean", "7bd6680b47fa",
                "dcache_clean_poc (DC CVAC): dirty lines are written back and stay valid. First c44094eee32f (v6.1-rc1..rc8), then 7bd6680b47fa (Revert \"Revert ...\"), merged for v6.4-rc1 and current since."),
        ]);

    /// <summary>arch_sync_dma_for_device() for DMA_FROM_DEVICE on arm64.</summary>
    public static SwitchDef SyncForDeviceFromDevice { get; } = new(
        "arm64.sync_for_device_from_device",
        "What arch_sync_dma_for_device() (dma_map_* and dma_sync_*_for_device) does for DMA_FROM_DEVICE.",
        [
            new SwitchValue("inval", "pre-c50f11c6196f",
                "__dma_map_area: dcache_inval_poc on the buffer (v5.0..v5.18; stable before 5.15.50 and 5.10.125)."),
            new SwitchValue("clean", "c50f11c6196f",
                "dcache_clean_poc, as for the other directions: c50f11c6196f \"arm64: mm: Don't invalidate FROM_DEVICE buffers at start of DMA transfer\" (v5.19-rc3)."),
        ]);

    public static IReadOnlyList<SwitchDef> All { get; } = [PrepCoherent, SyncForDeviceFromDevice];

    public static SwitchDef? Find(string key) => All.FirstOrDefault(s => s.Key == key);
}
