using DmaCheck.Fuzzing;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 7's CI-sized fuzz run: a fixed seed, 2,000 valid scenarios and 20,000 invalid inputs, every invariant checked,
/// on every core. A valid scenario is explored by the line-set explorer with one and with two threads and by the
/// brute-force explorer, and every witness is replayed: about 2 minutes on 2 cores with the optimised engine
/// (docs/robustness.md). The long run is `bench ... fuzz`.
/// </summary>
public class FuzzTests
{
    private const int Valid = 2_000;

    [Fact]
    public void FixedSeedFuzzRunFindsNoProblem()
    {
        var seeds = Checker.Expand(TestPaths.Scenarios).Select(File.ReadAllText).ToList();
        // A failure is shrunk, and the message shows the small input to keep in tests/regressions/.
        var shrunk = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        var summary = new Fuzzer(seeds).Run(valid: Valid, invalid: 20_000, seed: 20261123, regressionDirectory: shrunk, parallelism: Environment.ProcessorCount);
        Assert.True(summary.Problems == 0, $"{summary}\n{string.Join("\n---\n", summary.Failures.Take(5))}");
        Assert.Equal(Valid, summary.Valid);
        Assert.True(summary.BruteForceSkipped < summary.Valid / 10, summary.ToString());
    }

    [Fact]
    public void ParallelismChangesOnlyTheTime()
    {
        var seeds = Checker.Expand(TestPaths.Scenarios).Select(File.ReadAllText).ToList();
        static string Counts(FuzzSummary s) => $"{s.Valid} {s.Invalid} {s.Problems} {s.BruteForceSkipped} {string.Join("|", s.Failures)}";
        var one = new Fuzzer(seeds).Run(valid: 20, invalid: 1_000, seed: 7, parallelism: 1);
        var two = new Fuzzer(seeds).Run(valid: 20, invalid: 1_000, seed: 7, parallelism: 2);
        Assert.Equal(Counts(one), Counts(two));
    }
}
