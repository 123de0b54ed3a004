using BenchmarkDotNet.Attributes;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Bench;

/// <summary>Locates the repository from the benchmark's output directory.</summary>
internal static class Repository
{
    public static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "dmacheck.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
    }
}

/// <summary>
/// Issue 5's scaling benchmarks: seed-1 case 1 with the buffer, the writes and the firmware's read at 64 B, 4 KiB and
/// 1 MiB (a coherent allocation above MAX_ORDER, 4 MiB, fails on these layouts, so 1 GiB cannot run), and the
/// interleaving-heavy scenario of bench/scenarios (4 agents x 10 steps), capped at 100,000 states.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ScaleBenchmarks
{
    private string case1 = string.Empty;
    private string interleave = string.Empty;

    [Params(64, 4096, 1 << 20)]
    public int Bytes { get; set; } = 4096;

    [GlobalSetup]
    public void Setup()
    {
        var root = Repository.Root();
        case1 = File.ReadAllText(Path.Combine(root, "scenarios", "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc"))
            .Replace("4096", Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        interleave = File.ReadAllText(Path.Combine(root, "bench", "scenarios", "interleave-4x10.dmc"));
    }

    [Benchmark]
    public int Case1Verdict()
    {
        var result = new LineSetExplorer().Explore(new ScenarioModel(Binder.Load("case1.dmc", case1)), ExplorationLimits.Default);
        return result.Verdicts.Count + (int)result.Stats.States;
    }

    /// <summary>States per second on an interleaving-heavy scenario (runs once per Bytes value; Bytes does not affect it).</summary>
    [Benchmark]
    public long Interleaving100kStates() =>
        new LineSetExplorer().Explore(new ScenarioModel(Binder.Load("i.dmc", interleave)), new ExplorationLimits(MaxStates: 100_000)).Stats.States;
}
