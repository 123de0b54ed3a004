using DmaCheck.Dma;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>Switch values are parsed into enums at load (issue 14 item 4): an unknown value is a load error, never a silent default.</summary>
public class SwitchValuesTests
{
    [Fact]
    public void EverySwitchHasATypedFormWithExactlyItsValues()
    {
        Assert.Equal(Switches.All, SwitchValues.All.Select(t => t.Def));
        foreach (var typed in SwitchValues.All)
        {
            Assert.Equal(typed.Def.Values.Select(v => v.Name).Order(StringComparer.Ordinal), typed.Names.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void EveryBundledProfileParses()
    {
        foreach (var profile in Profiles.All)
        {
            var env = new DmaEnvironment(profile);
            Assert.Equal(profile.Value(Switches.SwiotlbMapBounce), env.SwiotlbMapBounce switch
            {
                SwiotlbMapBounceMode.ToDeviceOnly => "to_device_only",
                SwiotlbMapBounceMode.UnlessOverwrite => "unless_overwrite",
                _ => "always",
            });
            Assert.Equal(profile.Has(Switches.PrepCoherent), env.PrepCoherent is not null);
        }
    }

    [Fact]
    public void AnUnknownValueInAScenarioIsAnErrorAtItsValue()
    {
        var text = "profile linux-6.4-arm64\nset swiotlb.map_bounce = sometimes\ncpu a {\n  signal go\n}\n";
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", text));
        Assert.StartsWith("t.dmc:2:26: error: ", e.Format(), StringComparison.Ordinal);
        Assert.Contains("switch swiotlb.map_bounce has no value 'sometimes' (values: to_device_only, unless_overwrite, always)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownValueInAProfileIsRefusedNotDefaulted()
    {
        Assert.Throws<ArgumentException>(() => Profiles.Linux64Arm64.With(Switches.SwiotlbMapBounce, "sometimes"));
        var bogus = Profiles.Linux64Arm64 with { SwitchValues = Profiles.Linux64Arm64.SwitchValues.SetItem(Switches.SwiotlbMapBounce.Key, "sometimes") };
        var e = Assert.Throws<ArgumentException>(() => new DmaEnvironment(bogus));
        Assert.Contains("swiotlb.map_bounce has no value 'sometimes'", e.Message, StringComparison.Ordinal);
    }
}
