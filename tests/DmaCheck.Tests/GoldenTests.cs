using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// Report outputs compared with golden files in Golden/ (herdtools style). Set DMACHECK_UPDATE_GOLDEN=1 to
/// rewrite them after an intended change, then review the diff.
/// </summary>
public class GoldenTests
{
    private static string Seeds => Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm");

    private static List<ScenarioOutcome> CheckSeeds() =>
        Checker.Expand(Seeds).Select(f => Checker.CheckFile(f, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, f))).ToList();

    private static void AssertGolden(string name, string actual)
    {
        var path = Path.Combine(TestPaths.Golden, name);
        if (Environment.GetEnvironmentVariable("DMACHECK_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, actual);
        }

        Assert.True(File.Exists(path), $"missing golden file {path}; run with DMACHECK_UPDATE_GOLDEN=1 to create it");
        Assert.Equal(File.ReadAllText(path), actual);
    }

    [Fact]
    public void CheckTextTable() => AssertGolden("check-seeds.expected", TextReport.Render(CheckSeeds(), Style.Plain, TimeSpan.Zero));

    [Fact]
    public void CheckJson() => AssertGolden("check-seeds.json.expected", JsonReport.Render(CheckSeeds()));

    private static string Seed2 => Path.Combine(TestPaths.Scenarios, "seeds", "vmalloc-cpu-addr");

    private static List<ScenarioOutcome> CheckSeed2() =>
        Checker.Expand(Seed2).Select(f => Checker.CheckFile(f, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, f))).ToList();

    [Fact]
    public void CheckSeed2TextWithFindings() => AssertGolden("check-seed2.expected", TextReport.Render(CheckSeed2(), Style.Plain, TimeSpan.Zero));

    [Fact]
    public void CheckSeed2JsonWithFindings() => AssertGolden("check-seed2.json.expected", JsonReport.Render(CheckSeed2()));

    [Fact]
    public void CheckSeed2SarifWithFindings() => AssertGolden("check-seed2.sarif.expected", SarifReport.Render(CheckSeed2(), "golden"));

    [Theory]
    [InlineData("mmap-xen-arm32-rpi4-v5.13")]
    [InlineData("xen-free-arm64-v5.8")]
    public void ExplainFindings(string name)
    {
        var file = Path.Combine(Seed2, name + ".dmc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, file));
        AssertGolden($"explain-findings-{name}.expected", ExplainReport.RenderFindings(outcome, Style.Plain));
    }

    [Fact]
    public void CheckSarif() => AssertGolden("check-seeds.sarif.expected", SarifReport.Render(CheckSeeds(), "golden"));

    [Fact]
    public void SweepCsv()
    {
        var file = Path.Combine(Seeds, "case1-v6.4-init-on-alloc.dmc");
        var text = File.ReadAllText(file);
        var display = Path.GetRelativePath(TestPaths.Root, file);
        var points = SweepReport.Combinations(["linux-6.3-arm64", "linux-6.4-arm64"], [("init_on_alloc", ["on", "off"]), ("cache_init", ["cold", "arbitrary"])])
            .Select(o => new SweepPoint(o, Checker.CheckText(display, text, ExplorationLimits.Default, overrides: o)))
            .ToList();
        AssertGolden("sweep-case1.csv.expected", SweepReport.Csv(points));
        AssertGolden("sweep-case1.expected", SweepReport.Text(display, points));
    }

    [Theory]
    [InlineData("case1-v6.4-init-on-alloc")]
    [InlineData("case3-v6.3-init-on-alloc")]
    [InlineData("case8-map-before-writes")]
    public void Explain(string name)
    {
        var file = Path.Combine(Seeds, name + ".dmc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, file));
        var verdict = outcome.Result!.Verdicts[0];
        var witness = WitnessBuilder.Build(outcome.Model!, verdict.Expectation, outcome.Explorer!.Failures[verdict.Expectation.Name]);
        AssertGolden($"explain-{name}.expected", ExplainReport.Render(outcome, witness, verdict, Style.Plain));
    }

    /// <summary>Streaming witnesses whose failing bytes came through a swiotlb bounce copy.</summary>
    [Theory]
    [InlineData("swiotlb-from-device-leak", "no_leak")]
    [InlineData("swiotlb-sync-for-device-clobbers", "frame_arrives")]
    public void ExplainStreaming(string name, string expectation)
    {
        var file = Path.Combine(TestPaths.Scenarios, "streaming", name + ".dmc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, file));
        var verdict = outcome.Result!.Verdicts.Single(v => v.Expectation.Name == expectation);
        var witness = WitnessBuilder.Build(outcome.Model!, verdict.Expectation, outcome.Explorer!.Failures[verdict.Expectation.Name]);
        Assert.Equal(verdict.MinEventsToFail, witness.Events);
        AssertGolden($"explain-{name}.expected", ExplainReport.Render(outcome, witness, verdict, Style.Plain));
    }
}
