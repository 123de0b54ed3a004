using DmaCheck.Cli;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The strategies (issue 14, item 5): one registry the command line picks from by name, each strategy naming and
/// describing itself, each exploring through the model interface alone, and each giving what the explorer it wraps gives.
/// </summary>
public class ExplorationStrategyTests
{
    private static string Seed(string name) => Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", name + ".dmc");

    private static string Streaming(string name) => Path.Combine(TestPaths.Scenarios, "streaming", name + ".dmc");

    private static ScenarioModel Model(string file) => new(Binder.Load(Path.GetFileName(file), File.ReadAllText(file)));

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static List<string> Describe(ExplorationResult r) =>
    [
        .. r.Verdicts.Select(v => $"{v.Expectation.Name}: {v.Verdict} {v.MinEventsText} {v.QuietFailureName}"),
        .. r.Findings.Select(f => f.Key),
        .. r.KernelBugs.Select(b => $"{b.Name} {b.Verdict} {b.MinEvents}"),
        r.Inconclusive ?? "conclusive",
    ];

    [Fact]
    public void TheRegistryHasTheFourStrategiesEachDescribingItself()
    {
        Assert.Equal(["exhaustive", "random", "brute-force", "replay"], ExplorationStrategies.Names);
        Assert.Equal(ExhaustiveStrategy.StrategyName, ExplorationStrategies.Default.Name);
        var schedule = ReplayFile.Parse("dmacheck-replay 1\ntool t\nscenario s.dmc\nsha256 0\nprofile p\nexpect e\nline none\ninitial 0\n");
        foreach (var entry in ExplorationStrategies.All)
        {
            var strategy = entry.Create(new StrategyArguments(Schedule: schedule));
            Assert.Equal(entry.Name, strategy.Name);
            Assert.Equal(entry.Description, strategy.Description);
            Assert.False(string.IsNullOrWhiteSpace(entry.Description));
            Assert.DoesNotContain('\n', entry.Description);
            Assert.Same(entry, ExplorationStrategies.Find(entry.Name));
            Assert.Same(entry, ExplorationStrategies.Get(entry.Name));
        }
    }

    [Fact]
    public void AMistypedNameGetsADidYouMeanAndTheKnownNames()
    {
        Assert.Null(ExplorationStrategies.Find("Exhaustive"));
        var e = Assert.Throws<ArgumentException>(() => ExplorationStrategies.Get("brute-forse"));
        Assert.Contains("unknown strategy 'brute-forse' (did you mean 'brute-force'?", e.Message, StringComparison.Ordinal);
        Assert.Contains("known: exhaustive, random, brute-force, replay", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReplayCannotBeMadeWithoutASchedule()
    {
        Assert.Throws<ArgumentException>(() => ReplayStrategy.Entry.Create(StrategyArguments.None));
    }

    [Fact]
    public void WhatEachStrategyTakesAndKeeps()
    {
        Assert.Equal(StrategyTakes.Threads | StrategyTakes.Reduction, ExhaustiveStrategy.Entry.Takes);
        Assert.Equal(StrategyTakes.Sampling, RandomStrategy.Entry.Takes);
        Assert.Equal(StrategyTakes.Nothing, BruteForceStrategy.Entry.Takes);
        Assert.Equal(StrategyTakes.Schedule, ReplayStrategy.Entry.Takes);
        Assert.True(ExhaustiveStrategy.Entry.KeepsWitnesses);
        Assert.True(RandomStrategy.Entry.KeepsWitnesses);
        Assert.False(BruteForceStrategy.Entry.KeepsWitnesses);
    }

    /// <summary>
    /// Each strategy gives exactly what the explorer it wraps gives, with the arguments it was made with. On scenarios
    /// the brute force finishes in under a second (on the seed scenarios it stops at its 5 M state limit after about a
    /// minute, and an inconclusive result compares little).
    /// </summary>
    [Theory]
    [InlineData("cpu-reads-before-sync")]
    [InlineData("from-device-partial-write-inval")]
    [InlineData("arm32-imx6-reads-before-sync")]
    public void EachStrategyGivesWhatItsExplorerGives(string name)
    {
        var file = Streaming(name);
        var exhaustive = ExhaustiveStrategy.Entry.Create(StrategyArguments.None);
        Assert.Equal(Describe(new LineSetExplorer().Explore(Model(file), ExplorationLimits.Default)), Describe(exhaustive.Explore(Model(file), ExplorationLimits.Default)));
        Assert.NotNull(exhaustive.Witnesses);
        Assert.NotEmpty(exhaustive.Witnesses.Failures);

        var brute = BruteForceStrategy.Entry.Create(StrategyArguments.None);
        Assert.Equal(Describe(new BruteForceExplorer().Explore(Model(file), ExplorationLimits.Default)), Describe(brute.Explore(Model(file), ExplorationLimits.Default)));
        Assert.Null(brute.Witnesses);

        var sampling = new RandomSampling(7, 3);
        var random = RandomStrategy.Entry.Create(new StrategyArguments(Sampling: sampling));
        var sampled = random.Explore(Model(file), ExplorationLimits.Default);
        Assert.Equal(Describe(new LineSetExplorer().ExploreRandomly(Model(file), ExplorationLimits.Default, sampling)), Describe(sampled));
        Assert.Equal(sampling, sampled.Sampled);
        Assert.Equal(3, sampled.Stats.FinalStates);
        Assert.NotNull(random.Witnesses);
    }

    /// <summary>A model interface implemented by something else than <see cref="ScenarioModel"/> is all a strategy needs.</summary>
    private sealed class CountingModel(ScenarioModel inner) : IScenarioModel
    {
        public int Steps { get; private set; }

        public Scenario Scenario => inner.Scenario;

        public Hardware.HardwareConfig Hardware => inner.Hardware;

        public ControlState Initial => inner.Initial;

        public IEnumerable<int> Enabled(ControlState s) => inner.Enabled(s);

        public StepResult Step(ControlState s, int agent)
        {
            Steps++;
            return inner.Step(s, agent);
        }

        public (AgentProgram Program, Statement Statement) Current(ControlState s, int agent) => inner.Current(s, agent);

        public bool IsFinished(ControlState s) => inner.IsFinished(s);

        public IEnumerable<(int Agent, string Why)> Hung(ControlState s) => inner.Hung(s);

        public bool IsHung(ControlState s) => inner.IsHung(s);
    }

    [Theory]
    [InlineData("cpu-reads-before-sync")]
    [InlineData("kmalloc-embedded-buffer-shares-line")]
    public void EveryStrategyExploresThroughTheModelInterfaceAlone(string name)
    {
        var file = Streaming(name);
        foreach (var entry in ExplorationStrategies.All.Where(e => !e.Takes.HasFlag(StrategyTakes.Schedule)))
        {
            var direct = entry.Create(StrategyArguments.None).Explore(Model(file), ExplorationLimits.Default);
            var counting = new CountingModel(Model(file));
            var through = entry.Create(StrategyArguments.None).Explore(counting, ExplorationLimits.Default);
            Assert.Equal(Describe(direct), Describe(through));
            Assert.True(counting.Steps > 0, $"{entry.Name} took no step through the interface");
        }
    }

    /// <summary>Replay follows the saved run through the model interface: the witness again, and one verdict, on one run.</summary>
    [Fact]
    public void ReplayFollowsASavedRun()
    {
        var file = Seed("case3-v6.3-init-on-alloc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default, "case3.dmc");
        var verdict = outcome.Result!.Verdicts.First(v => v.MinEventsToFail is not null);
        var witness = WitnessBuilder.Build(outcome.Model!, verdict.Expectation, outcome.Explorer!.Failures[verdict.Expectation.Name]);
        var saved = ReplayFile.Parse(ReplayFile.From(witness, outcome.Scenario!, "test").Write());
        var strategy = (ReplayStrategy)ExplorationStrategies.Get("replay").Create(new StrategyArguments(Schedule: saved));
        var counting = new CountingModel(new ScenarioModel(outcome.Scenario!));
        var result = strategy.Explore(counting, ExplorationLimits.Default);
        Assert.True(strategy.Reproduces);
        Assert.Equal(witness.Events, strategy.Witness!.Events);
        Assert.Equal(saved.Steps.Count, counting.Steps);
        var replayed = result.Verdicts.Single(v => v.Expectation.Name == verdict.Expectation.Name);
        Assert.Equal((Verdict.Sometimes, witness.Events), (replayed.Verdict, replayed.MinEventsToFail));
        Assert.All(result.Verdicts.Where(v => v != replayed), v => Assert.Equal(Verdict.Inconclusive, v.Verdict));
        Assert.Equal(1, result.Stats.FinalStates);
    }

    /// <summary>The command line takes the strategy's name and its arguments through to the strategy.</summary>
    [Fact]
    public void TheCliPassesTheChosenStrategyAndItsArguments()
    {
        var file = Streaming("device-writes-after-unmap");
        var random = Run("check", file, "--strategy", "random", "--seed", "42", "--runs", "20", "--format", "json");
        Assert.Contains("\"sampled\"", random.Out, StringComparison.Ordinal);
        Assert.Contains("\"runs\": 20", random.Out, StringComparison.Ordinal);
        Assert.Contains("\"seed\": 42", random.Out, StringComparison.Ordinal);
        var exhaustive = Run("check", file, "--strategy", "exhaustive", "--format", "json");
        Assert.DoesNotContain("\"sampled\"", exhaustive.Out, StringComparison.Ordinal);
        var byDefault = Run("check", file, "--format", "json");
        Assert.Equal(exhaustive.Code, byDefault.Code);
    }

    /// <summary>The brute force's own limit shows it is the brute force that ran, not the default.</summary>
    [Fact]
    public void TheCliRunsTheBruteForceWhenNamed()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "big.dmc");
        File.WriteAllText(file, "profile linux-6.4-arm64\nset init_on_alloc = on\ndevice scm { coherent = false }\nfirmware tz { access = cacheable }\n" +
            "cpu driver {\n  buf = dma_alloc_coherent(scm, 4M, GFP_KERNEL)\n  write buf[0..4M] = payload\n  smc tz(buf.dma)\n}\n" +
            "firmware tz on smc(addr) {\n  read phys(addr)[0..4M] -> seen\n}\nexpect ok: seen == payload\n# expect ok: sometimes, min-events 0\n");
        var brute = Run("check", file, "--strategy", "brute-force");
        Assert.Contains("more than its limit of", brute.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("more than its limit of", Run("check", file, "--max-states", "100").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void TheHelpListsEveryStrategy()
    {
        var check = Run("check", "--help").Out;
        foreach (var entry in ExplorationStrategies.All)
        {
            Assert.Contains(entry.Name, Program.Usage, StringComparison.Ordinal);
            Assert.Contains(entry.Name, check, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("dmacheck check --strategy ", "brute-force")]
    [InlineData("dmacheck explain x.dmc --strategy r", "random")]
    [InlineData("dmacheck sweep x.dmc --strategy ", "exhaustive")]
    public void CompletionOffersTheStrategies(string line, string expected)
    {
        var (code, stdout, _) = Run($"[suggest:{line.Length}]", line);
        Assert.Equal(0, code);
        Assert.Contains(expected, stdout.Split('\n', StringSplitOptions.TrimEntries));
    }
}
