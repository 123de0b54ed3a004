using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary><c>--strategy random</c>: sampled interleavings, exact hardware, and a result that says it is sampled.</summary>
public class RandomStrategyTests
{
    private static string Seed(string name) => Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", name + ".dmc");

    [Theory]
    [InlineData("case1-v6.4-init-on-alloc")]
    [InlineData("case3-v6.3-init-on-alloc")]
    [InlineData("case8-map-before-writes")]
    public void WithOneInterleavingOneRunIsExact(string name)
    {
        // The seed cases have one CPU thread (the firmware runs inside its smc), so one run covers every interleaving.
        var exhaustive = Checker.CheckFile(Seed(name), ExplorationLimits.Default);
        var sampled = Checker.CheckFile(Seed(name), ExplorationLimits.Default, strategy: () => new RandomStrategy(new RandomSampling(3, 1)));
        Assert.Equal(exhaustive.Result!.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)), sampled.Result!.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)));
        Assert.Equal(exhaustive.Result.Findings.Select(f => f.Key), sampled.Result.Findings.Select(f => f.Key));
        Assert.NotNull(sampled.Result.Sampled);
        Assert.Null(exhaustive.Result.Sampled);
    }

    [Fact]
    public void TheSameSeedGivesTheSameRunsAndTheReportSaysSampled()
    {
        var file = Path.Combine(TestPaths.Root, "scenarios", "streaming", "device-writes-after-unmap.dmc");
        var limits = ExplorationLimits.Default;
        var a = Checker.CheckFile(file, limits, strategy: () => new RandomStrategy(new RandomSampling(42, 20)));
        var b = Checker.CheckFile(file, limits, strategy: () => new RandomStrategy(new RandomSampling(42, 20)));
        Assert.Equal(a.Result!.Stats.States, b.Result!.Stats.States);
        Assert.Equal(a.Result.Verdicts.Select(v => v.Verdict), b.Result.Verdicts.Select(v => v.Verdict));
        Assert.Contains("not a proof", TextReport.Render([a], Style.Plain, TimeSpan.Zero), StringComparison.Ordinal);
        Assert.Contains("\"sampled\"", JsonReport.Render([a]), StringComparison.Ordinal);
    }

    [Fact]
    public void SampledRunsFindOnlyWhatTheyVisit()
    {
        // Exhaustively there are 11^4 interleavings' worth of states; 5 runs see at most 5 * 40 of them.
        var file = Path.Combine(TestPaths.Root, "bench", "scenarios", "interleave-4x10.dmc");
        var sampled = Checker.CheckFile(file, ExplorationLimits.Default, strategy: () => new RandomStrategy(new RandomSampling(1, 5)));
        Assert.InRange(sampled.Result!.Stats.States, 1, 5 * 40);
        Assert.Equal(5, sampled.Result.Stats.FinalStates);
    }
}
