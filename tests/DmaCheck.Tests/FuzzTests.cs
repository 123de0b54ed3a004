using DmaCheck.Fuzzing;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 7's CI-sized fuzz run: a fixed seed, 400 valid scenarios (each explored twice, by the line-set and the
/// brute-force explorers, with every witness replayed: about 0.1 s each, so not the 2,000 the issue suggests) and
/// 20,000 invalid inputs, every invariant checked. The long run is `bench ... fuzz` (docs/robustness.md).
/// </summary>
public class FuzzTests
{
    [Fact]
    public void FixedSeedFuzzRunFindsNoProblem()
    {
        var seeds = Checker.Expand(TestPaths.Scenarios).Select(File.ReadAllText).ToList();
        // A failure is shrunk, and the message shows the small input to keep in tests/regressions/.
        var shrunk = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        var summary = new Fuzzer(seeds).Run(valid: 400, invalid: 20_000, seed: 20261123, regressionDirectory: shrunk);
        Assert.True(summary.Problems == 0, $"{summary}\n{string.Join("\n---\n", summary.Failures.Take(5))}");
        Assert.Equal(400, summary.Valid);
        Assert.True(summary.BruteForceSkipped < summary.Valid / 10, summary.ToString());
    }
}
