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
/// Issue 5's scaling benchmarks: seed-1 case 1 with the buffer, the writes and the firmware's read at 64 B, 4 KiB,
/// 1 MiB and 1 GiB (on a 4 GiB board with a 1.5 GiB CMA area, which a coherent buffer above MAX_ORDER needs; the
/// small sizes do not touch it), and the interleaving-heavy scenario of bench/scenarios (4 agents x 10 steps), capped
/// at 100,000 states.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ScaleBenchmarks
{
    private string case1 = string.Empty;
    private string interleave = string.Empty;

    [Params(64L, 4096L, 1L << 20, 1L << 30)]
    public long Bytes { get; set; } = 4096;

    [GlobalSetup]
    public void Setup()
    {
        var root = Repository.Root();
        case1 = Case1(root, Bytes);
        interleave = File.ReadAllText(Path.Combine(root, "bench", "scenarios", "interleave-4x10.dmc"));
    }

    /// <summary>Seed-1 case 1 with <paramref name="bytes"/> for its 4096, on a board with room for a CMA area.</summary>
    internal static string Case1(string root, long bytes) =>
        File.ReadAllText(Path.Combine(root, "scenarios", "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc"))
            .Replace("4096", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("set init_on_alloc = on", "set init_on_alloc = on\nset dram = 4G\nset cma = 1536M", StringComparison.Ordinal);

    [Benchmark]
    public int Case1Verdict()
    {
        var result = new LineSetExplorer().Explore(new ScenarioModel(Binder.Load("case1.dmc", case1)), ExplorationLimits.Default);
        return result.Inconclusive is null ? result.Verdicts.Count + (int)result.Stats.States : throw new InvalidOperationException(result.Inconclusive);
    }

    /// <summary>States per second on an interleaving-heavy scenario (runs once per Bytes value; Bytes does not affect it).</summary>
    [Benchmark]
    public long Interleaving100kStates() =>
        new LineSetExplorer().Explore(new ScenarioModel(Binder.Load("i.dmc", interleave)), new ExplorationLimits(MaxStates: 100_000)).Stats.States;
}

/// <summary>
/// The line-set explorer against the brute-force one on seed-1 case 3 (v6.3, a race that needs a speculative fill) at
/// growing line counts: the brute force enumerates every concrete combination of line states, the line-set explorer
/// one set per run of equal lines. The ratio of the two medians is the figure to quote.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ExplorerRatioBenchmarks
{
    private ScenarioModel model = null!;

    [Params(1, 2, 4, 6)]
    public int Lines { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var text = File.ReadAllText(Path.Combine(Repository.Root(), "scenarios", "seeds", "qcom-scm", "case3-v6.3-init-on-alloc.dmc"))
            .Replace("4096", (Lines * 64).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        model = new ScenarioModel(Binder.Load("case3.dmc", text));
    }

    [Benchmark(Baseline = true)]
    public long LineSet() => Checked(new LineSetExplorer().Explore(model, ExplorationLimits.Default));

    [Benchmark]
    public long BruteForce() => Checked(new BruteForceExplorer().Explore(model, ExplorationLimits.Default));

    private static long Checked(ExplorationResult r) => r.Inconclusive is null ? r.Stats.States : throw new InvalidOperationException(r.Inconclusive);
}
