using System.Collections.Immutable;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>A named kernel version on a named architecture: a value for every switch plus a platform memory layout.</summary>
public sealed record KernelProfile(string Name, string Description, PlatformLayout Layout, ImmutableDictionary<string, string> SwitchValues)
{
    public string Value(SwitchDef def) => SwitchValues[def.Key];

    public KernelProfile With(SwitchDef def, string value)
    {
        if (def.Find(value) is null)
        {
            throw new ArgumentException($"switch {def.Key} has no value {value}");
        }

        return this with { SwitchValues = SwitchValues.SetItem(def.Key, value) };
    }
}

/// <summary>The bundled profiles.</summary>
public static class Profiles
{
    public static KernelProfile Linux63Arm64 { get; } = new(
        "linux-6.3-arm64",
        "Linux v6.3 on arm64: arch_dma_prep_coherent cleans and invalidates; FROM_DEVICE maps clean (>= v5.19).",
        PlatformLayout.Arm64Va48,
        ImmutableDictionary<string, string>.Empty
            .Add(Switches.PrepCoherent.Key, "clean_inval")
            .Add(Switches.SyncForDeviceFromDevice.Key, "clean"));

    public static KernelProfile Linux64Arm64 { get; } = Linux63Arm64 with
    {
        Name = "linux-6.4-arm64",
        Description = "Linux v6.4 on arm64: arch_dma_prep_coherent only cleans (7bd6680b47fa); FROM_DEVICE maps clean.",
        SwitchValues = Linux63Arm64.SwitchValues.SetItem(Switches.PrepCoherent.Key, "clean"),
    };

    public static IReadOnlyList<KernelProfile> All { get; } = [Linux63Arm64, Linux64Arm64];

    public static KernelProfile? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}
