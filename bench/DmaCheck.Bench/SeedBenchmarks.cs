using BenchmarkDotNet.Attributes;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Bench;

/// <summary>
/// Seed 1 in-process: parse and bind the scenario, explore every behaviour to a verdict, and build the shortest
/// witness (design §7: "seed-1 scenario, 4 KiB buffer, exhaustive verdict with shortest witness").
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class SeedBenchmarks
{
    private string text = string.Empty;

    [Params("case1-v6.4-init-on-alloc", "case3-v6.3-init-on-alloc", "case7-streaming")]
    public string Case { get; set; } = "case1-v6.4-init-on-alloc";

    [GlobalSetup]
    public void Setup()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "dmacheck.slnx")))
        {
            dir = dir.Parent;
        }

        var root = dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
        text = File.ReadAllText(Path.Combine(root, "scenarios", "seeds", "qcom-scm", Case + ".dmc"));
    }

    [Benchmark]
    public int VerdictWithShortestWitness()
    {
        var scenario = Binder.Load(Case + ".dmc", text);
        var model = new ScenarioModel(scenario);
        var explorer = new LineSetExplorer();
        var result = explorer.Explore(model, ExplorationLimits.Default);
        var events = 0;
        foreach (var v in result.Verdicts)
        {
            if (explorer.Failures.TryGetValue(v.Expectation.Name, out var failure))
            {
                events += WitnessBuilder.Build(model, v.Expectation, failure).Events;
            }
        }

        return events + result.Verdicts.Count;
    }
}
