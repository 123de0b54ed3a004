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
    public void SmallRingsMeetTheirDeclaredVerdicts(string file)
    {
        var outcome = Checker.CheckFile(Path.Combine(Directory, file), ExplorationLimits.Default);
        Assert.True(outcome.AllMet, outcome.Message ?? string.Join("; ", outcome.Rows.Select(r => $"{r.Verdict.Expectation.Name}: {r.Verdict.Verdict}")));
        Assert.Empty(outcome.Result!.Findings);
    }
}
