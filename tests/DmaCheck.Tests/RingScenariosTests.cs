using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// The ring benchmarks of issue 14 (bench/scenarios/rings/): the committed files are what the generator writes, and the
/// small ones meet their declared verdicts with no findings (the large ones are the benchmark's, not the suite's).
/// </summary>
public class RingScenariosTests
{
    private static string Directory => Path.Combine(TestPaths.Root, "bench", "scenarios", "rings");

    [Fact]
    public void CommittedRingsAreTheGeneratorsOutput()
    {
        var committed = System.IO.Directory.EnumerateFiles(Directory, "*.dmc").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var generated = RingScenarios.All().ToList();
        Assert.Equal(generated.Select(g => g.File).Order(StringComparer.Ordinal), committed);
        foreach (var (file, text) in generated)
        {
            // Regenerate with: dotnet run -c Release --project bench/DmaCheck.Bench -- rings
            Assert.Equal(text, File.ReadAllText(Path.Combine(Directory, file)).ReplaceLineEndings("\n"));
        }
    }

    [Theory]
    [InlineData("rx-1.dmc")]
    [InlineData("tx-1.dmc")]
    [InlineData("rxtx-1.dmc")]
    [InlineData("rx-2.dmc")]
    [InlineData("tx-2.dmc")]
    [InlineData("rxtx-2.dmc")]
    [InlineData("rxtx-4.dmc")]
    public void SmallRingsMeetTheirDeclaredVerdicts(string file)
    {
        var outcome = Checker.CheckFile(Path.Combine(Directory, file), ExplorationLimits.Default);
        Assert.True(outcome.AllMet, outcome.Message ?? string.Join("; ", outcome.Rows.Select(r => $"{r.Verdict.Expectation.Name}: {r.Verdict.Verdict}")));
        Assert.Empty(outcome.Result!.Findings);
    }

    /// <summary>
    /// Issue 14's scaling law, as state counts (not timings): RX and TX touch disjoint memory, so the reduced search of
    /// rxtx-N stores no more states than rx-N and tx-N together (the unreduced search stores 55 times as many at N = 2).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void IndependentRingsAddUp(int n)
    {
        long States(string kind)
        {
            var path = Path.Combine(Directory, RingScenarios.FileName(kind, n));
            var scenario = DmaCheck.Scenarios.Binder.Load(path, File.ReadAllText(path));
            return new LineSetExplorer().Explore(new DmaCheck.Scenarios.ScenarioModel(scenario), ExplorationLimits.Default).Stats.States;
        }

        var (rx, tx, both) = (States("rx"), States("tx"), States("rxtx"));
        Assert.True(both <= rx + tx, $"rxtx-{n}: {both} states; rx-{n} {rx} + tx-{n} {tx} = {rx + tx}");
    }
}
