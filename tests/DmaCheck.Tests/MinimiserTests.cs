using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>Delta debugging keeps exactly the kernel operations and events the same failure needs.</summary>
public class MinimiserTests
{
    private static (List<string> Needed, List<string> Removed) Minimise(string name)
    {
        var file = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", name + ".dmc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default);
        var v = outcome.Result!.Verdicts[0];
        var w = WitnessBuilder.Build(outcome.Model!, v.Expectation, outcome.Explorer!.Failures[v.Expectation.Name]);
        var min = WitnessMinimiser.Minimise(w, outcome.Scenario!.Hardware)!;
        string Name(int i) => w.Items[i] switch
        {
            OpItem o => o.Op.Origin,
            MoveItem m => m.Move.ToString(),
            _ => "?",
        };
        return (min.Needed.Select(Name).ToList(), min.Removed.Select(Name).ToList());
    }

    [Fact]
    public void Case1NeedsOnlyTheZeroingThroughTheCacheableAlias()
    {
        var (needed, removed) = Minimise("case1-v6.4-init-on-alloc");
        Assert.Equal(["post_alloc_hook: kernel_init_pages (init_on_alloc)"], needed);
        Assert.Equal(2, removed.Count);
    }

    [Fact]
    public void Case3NeedsTheZeroesInRamAndTheSpeculativeFill()
    {
        var (needed, _) = Minimise("case3-v6.3-init-on-alloc");
        Assert.Equal(["dma_direct_alloc: memset(ret, 0, size) through the NC remap", "Fill"], needed);
    }
}
