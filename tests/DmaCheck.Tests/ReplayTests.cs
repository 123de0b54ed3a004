using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Reports;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DmaCheck.Tests;

/// <summary>Witnesses saved as replay files re-execute to the same failure.</summary>
public class ReplayTests
{
    private static IEnumerable<(ScenarioOutcome Outcome, Witness Witness)> Witnesses(ScenarioOutcome outcome)
    {
        if (outcome.Explorer is null)
        {
            yield break; // a run stopped at what is not modelled: the result is inconclusive and has no witness to replay
        }

        foreach (var v in outcome.Result!.Verdicts)
        {
            if (outcome.Explorer.Failures.TryGetValue(v.Expectation.Name, out var failure))
            {
                yield return (outcome, WitnessBuilder.Build(outcome.Model!, v.Expectation, failure));
            }
        }
    }

    private static void AssertRoundTrip(ScenarioOutcome outcome, Witness witness)
    {
        if (ReplayFile.HasCopies(witness) || ReplayFile.HasPolls(witness))
        {
            // Format 1 cannot record what a copy read or which of a poll's reads missed: saving must refuse loudly
            // rather than write a file that replays wrong.
            Assert.Contains("cannot be saved", Assert.Throws<ReplayException>(() => ReplayFile.From(witness, outcome.Scenario!, "test")).Message);
            return;
        }

        var text = ReplayFile.From(witness, outcome.Scenario!, "test").Write();
        var replay = ReplayFile.Parse(text);
        Assert.Equal(text, replay.Write());
        var again = replay.Replay(new ScenarioModel(outcome.Scenario!), out var reproduces);
        Assert.True(reproduces, $"the saved witness does not reproduce:\n{text}");
        Assert.Equal(witness.Events, again.Events);
        Assert.Equal(Describe(witness), Describe(again));
    }

    private static List<string> Describe(Witness w) => w.Items.Select(i => i switch
    {
        StepItem s => $"step {s.Step.Program.Name}: {s.Step.Statement.Text}",
        OpItem o => $"{ExplainReport.DescribeOp(o.Op)} {o.Before?.GetHashCode()} {o.After?.GetHashCode()}",
        MoveItem m => $"{m.Move} {m.Before.GetHashCode()} {m.After.GetHashCode()}",
        _ => "?",
    }).ToList();

    [Fact]
    public void EverySeedWitnessRoundTrips()
    {
        var count = 0;
        foreach (var file in Checker.Expand(TestPaths.Scenarios))
        {
            foreach (var (outcome, witness) in Witnesses(Checker.CheckFile(file, ExplorationLimits.Default)))
            {
                AssertRoundTrip(outcome, witness);
                count++;
            }
        }

        Assert.True(count >= 5, $"only {count} witnesses");
    }

    [Fact]
    public void ALargeTraceRoundTrips()
    {
        var writes = string.Concat(Enumerable.Range(0, 400).Select(i => $"  write p[0..64] = w{i % 50}\n  dma_sync_single_for_device(scm, h, 64, DMA_TO_DEVICE)\n"));
        var text = "profile linux-6.4-arm64\ndevice scm { coherent = false }\nfirmware tz { access = non-cacheable }\n" +
            "cpu d {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(scm, p, 64, DMA_TO_DEVICE)\n" + writes +
            "  write p[0..64] = last\n  smc tz(h)\n}\nfirmware tz on smc(a) {\n  read phys(a)[0..64] -> seen\n}\nexpect e: seen == last\n";
        var outcome = Checker.CheckText("large.dmc", text, ExplorationLimits.Default);
        var (o, w) = Assert.Single(Witnesses(outcome));
        Assert.True(w.Items.Count > 1000);
        AssertRoundTrip(o, w);
    }

    [Fact]
    public void AChangedScenarioIsRefused()
    {
        var file = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc");
        var (outcome, witness) = Witnesses(Checker.CheckFile(file, ExplorationLimits.Default)).Single();
        var replay = ReplayFile.Parse(ReplayFile.From(witness, outcome.Scenario!, "t").Write());
        var changed = Binder.Load(file, File.ReadAllText(file) + "\n# an edit\n");
        var e = Assert.Throws<ReplayException>(() => replay.Replay(new ScenarioModel(changed), out _));
        Assert.Contains("has changed since this witness was saved", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "expected 'dmacheck-replay ...'")]
    [InlineData("dmacheck-replay 9\n", "format version 9 is not supported")]
    [InlineData("dmacheck-replay 1\ntool x\nscenario s\nsha256 0\nprofile p\nexpect e\nline 12\n", "'line' takes 0xADDRESS or none")]
    [InlineData("dmacheck-replay 1\ntool x\nscenario s\nsha256 0\nprofile p\nexpect e\nline none\ninitial 0\n  access\n", "before the first step")]
    [InlineData("dmacheck-replay 1\ntool x\nscenario s\nsha256 0\nprofile p\nexpect e\nline none\ninitial 0\nstep a\n  jump\n", "unknown choice 'jump'")]
    public void MalformedReplayFilesAreRefused(string text, string message) =>
        Assert.Contains(message, Assert.Throws<ReplayException>(() => ReplayFile.Parse(text)).Message, StringComparison.Ordinal);

    [Fact]
    public void TheCliSavesAtomicallyAndReplays()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var save = Path.Combine(dir, "case3.replay");
        var file = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case3-v6.3-init-on-alloc.dmc");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, DmaCheck.Cli.Program.Run(["explain", file, "--save-replay", save], stdout, stderr, colour: false));
        Assert.Equal(["case3.replay"], Directory.GetFiles(dir).Select(Path.GetFileName)); // no temporary file left behind
        stdout = new StringWriter();
        Assert.Equal(0, DmaCheck.Cli.Program.Run(["replay", save, "--scenario", file], stdout, stderr, colour: false));
        Assert.Contains("reproduces with 1 spontaneous event(s)", stdout.ToString(), StringComparison.Ordinal);

        // Without the spontaneous fill the failure does not happen: replay says so and exits 1.
        File.WriteAllText(save, File.ReadAllText(save).Replace("  event fill\n", string.Empty, StringComparison.Ordinal));
        stdout = new StringWriter();
        Assert.Equal(1, DmaCheck.Cli.Program.Run(["replay", save, "--scenario", file], stdout, stderr, colour: false));
        Assert.Contains("does not reproduce", stdout.ToString(), StringComparison.Ordinal);
    }

    [Property(MaxTest = 100, Arbitrary = [typeof(FullScenarioArbitraries)])]
    public Property EveryWitnessOfAGeneratedScenarioReplays(GeneratedScenario generated)
    {
        var outcome = Checker.CheckText("gen.dmc", generated.Text, ExplorationLimits.Default);
        foreach (var (o, w) in Witnesses(outcome))
        {
            AssertRoundTrip(o, w);
        }

        return true.ToProperty();
    }
}
