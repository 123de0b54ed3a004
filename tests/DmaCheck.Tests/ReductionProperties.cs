using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Reports;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DmaCheck.Tests;

/// <summary>The full generator's scenarios with dma-debug's unbind_at_end and assert_idle checks on.</summary>
public static class EndOfRunCheckArbitraries
{
    public static Arbitrary<GeneratedScenario> Scenarios() =>
        ScenarioGenerator.Full().Select(g => g with { Text = WithChecks(g.Text) }).ToArbitrary();

    private static string WithChecks(string text) =>
        string.Join('\n', text.Split('\n').Select(l => l.StartsWith("profile ", StringComparison.Ordinal)
            ? $"{l}\nset dma_api_debug.unbind_at_end = on\nset dma_api_debug.assert_idle = on"
            : l));
}

/// <summary>The full generator whose DMA engines may write past their mapping or from a masked address.</summary>
public static class OverrunScenarioArbitraries
{
    public static Arbitrary<GeneratedScenario> Scenarios() => ScenarioGenerator.FullWithOverruns().ToArbitrary();
}

/// <summary>The driver-shaped group scenarios of issue 14 (<see cref="GroupScenarios"/>).</summary>
public static class GroupScenarioArbitraries
{
    public static Arbitrary<GroupScenario> Scenarios() => GroupScenarios.Scenarios().ToArbitrary();
}

/// <summary>The smaller group scenarios (two descriptors at most): the brute force can check them too.</summary>
public static class SmallGroupScenarioArbitraries
{
    public static Arbitrary<GroupScenario> Scenarios() => GroupScenarios.Small().ToArbitrary();
}

/// <summary>
/// The interleaving reduction of the line-set explorer (docs/internals-reduction.md) against the unreduced search:
/// the same verdicts, minimum events and run counts, the same findings (each with its message, statement, agent and
/// the length of its shortest run), the same witnesses' event counts and lengths, the same errors; and never more
/// states or transitions.
/// </summary>
public sealed class ReductionProperties
{
    [Property(MaxTest = 100, Arbitrary = [typeof(FullScenarioArbitraries)])]
    public Property ReducedAndUnreducedAgreeOnFullScenarios(GeneratedScenario generated) => Agree(generated);

    [Property(MaxTest = 100, Arbitrary = [typeof(GeneratedScenarioArbitraries)])]
    public Property ReducedAndUnreducedAgreeOnSmallScenarios(GeneratedScenario generated) => Agree(generated);

    /// <summary>
    /// The full generator with dma-debug's end-of-run check (unbind_at_end: leaks are reported on the step that ends
    /// the run, whichever agent takes it) and assert_idle on.
    /// </summary>
    [Property(MaxTest = 100, Arbitrary = [typeof(EndOfRunCheckArbitraries)])]
    public Property ReducedAndUnreducedAgreeWithTheEndOfRunChecks(GeneratedScenario generated) => Agree(generated);

    /// <summary>DMA engines that overrun their mappings or mask their addresses: the findings name the same victims either way.</summary>
    [Property(MaxTest = 60, Arbitrary = [typeof(OverrunScenarioArbitraries)])]
    public Property ReducedAndUnreducedAgreeWithDeviceOverruns(GeneratedScenario generated) => Agree(generated);

    [Property(MaxTest = 100, Arbitrary = [typeof(SeedVariantArbitraries)])]
    public Property ReducedAndUnreducedAgreeOnSeedVariants(GeneratedScenario generated) => Agree(generated);

    [Property(MaxTest = 100, Arbitrary = [typeof(Seed2VariantArbitraries)])]
    public Property ReducedAndUnreducedAgreeOnSeed2Variants(GeneratedScenario generated) => Agree(generated);

    /// <summary>
    /// Issue 14: driver-shaped group scenarios (<see cref="GroupScenarios"/>: one to three groups of a CPU thread and a
    /// DMA engine with polls on a coherent descriptor ring, single, page and sg maps, swiotlb, Xen, the i.MX6 outer cache,
    /// 32-bit arm, x86) with dependent variants injected (threads of two groups writing one line, packed descriptors, small
    /// buffers sharing lines, a handle used by another group, frees, missing syncs, signals between groups). The long run
    /// is <c>bench ... fuzz --groups N</c>.
    /// </summary>
    [Property(MaxTest = GroupCases, Arbitrary = [typeof(GroupScenarioArbitraries)])]
    public Property ReducedAndUnreducedAgreeOnGroupScenarios(GroupScenario generated) => AgreeOnGroups(generated);

    /// <summary>How many group scenarios CI checks here (and <see cref="ExplorerAgreementProperties"/> against the brute force).</summary>
    internal const int GroupCases = 50;

    /// <summary>
    /// A state cap for CI: a scenario whose search reaches it is discarded (FsCheck counts it), not compared, so the
    /// comparison never depends on the machine's speed. The generator keeps nearly every scenario below it.
    /// </summary>
    private static readonly ExplorationLimits GroupLimits = new(MaxStates: 30_000);

    private static Property AgreeOnGroups(GroupScenario generated)
    {
        var differences = ReductionCheck.Differences(generated.Text, out var agreed, GroupLimits);
        var property = (differences is null)
            .Label($"{differences}--- scenario ---\n{generated.Text}")
            .When(!agreed.StartsWith(ReductionCheck.Skipped, StringComparison.Ordinal))
            .Classify(generated.Groups > 1, "several groups")
            .Classify(agreed.Contains("  finding ", StringComparison.Ordinal), "findings")
            .Classify(agreed.StartsWith("error ", StringComparison.Ordinal), "a run-time error")
            .Classify(agreed.Contains("Sometimes", StringComparison.Ordinal), "some expectation Sometimes")
            .Classify(generated.Text.Contains(", max ", StringComparison.Ordinal), "polls with max")
            .Classify(generated.Constructs.Contains("sg"), "scatter-gather")
            .Classify(generated.Variants.Count > 0, "dependent variant");
        return property.Classify(true, $"platform {generated.Platform}");
    }

    /// <summary>Every bundled scenario and regression file gives the same results either way.</summary>
    [Fact]
    public void EveryBundledScenarioGivesTheSameResultReduced()
    {
        var files = Checker.Expand(TestPaths.Scenarios).Concat(Checker.Expand(Path.Combine(TestPaths.Root, "tests", "regressions"))).ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var scenario = Binder.Load(file, File.ReadAllText(file));
            var (plain, _) = Run(scenario, reduce: false);
            var (reduced, _) = Run(scenario, reduce: true);
            Assert.True(plain.Text == reduced.Text, $"{file}:\n--- unreduced ---\n{plain.Text}--- reduced ---\n{reduced.Text}");
        }
    }

    /// <summary>The interleaving benchmark: four agents, ten steps each, on lines of their own.</summary>
    [Fact]
    public void TheReductionVisitsFewerStatesOnTheInterleavingBenchmark()
    {
        var path = Path.Combine(TestPaths.Root, "bench", "scenarios", "interleave-4x10.dmc");
        var scenario = Binder.Load(path, File.ReadAllText(path));
        var (plain, plainStats) = Run(scenario, reduce: false);
        var (reduced, reducedStats) = Run(scenario, reduce: true);
        Assert.Equal(plain.Text, reduced.Text);
        Assert.Equal(24, reducedStats!.FinalStates); // one final state per order of the four kmallocs
        Assert.True(reducedStats.States * 2 < plainStats!.States, $"reduced {reducedStats.States} states, unreduced {plainStats.States}");
        Assert.True(reducedStats.Transitions * 4 < plainStats.Transitions, $"reduced {reducedStats.Transitions} transitions, unreduced {plainStats.Transitions}");

        // Issue 14's target: linear in the steps, not in the interleavings. After its own kmalloc each agent's writes
        // touch only its object, so they are taken alone: 24 orders of the kmallocs times about ten steps each.
        Assert.True(reducedStats.States <= 1_000, $"reduced {reducedStats.States} states");
    }

    /// <summary>
    /// A finding on a plain step of one agent while another agent has steps that commute with everything: taking the
    /// other agent's steps first would find it later, on a longer run. Its run must stay the shortest.
    /// </summary>
    [Fact]
    public void AFindingOnAPlainStepKeepsItsShortestRun()
    {
        const string text = """
            scenario "a plain step with a finding, and an agent with steps of its own"
            profile linux-6.4-arm64
            set dma_api_debug = on
            device d { coherent = false }

            cpu owner {
              buf = kmalloc(64, GFP_KERNEL)
              mine = kmalloc(64, GFP_KERNEL)
              h = dma_map_single(d, buf, 64, DMA_FROM_DEVICE)
              signal go
              write mine[0..64] = m0
              write mine[0..64] = m1
              write mine[0..64] = m2
            }
            cpu other {
              wait go
              write buf[0..64] = bad
            }
            """;
        var scenario = Binder.Load("finding.dmc", text);
        var (plain, _) = Run(scenario, reduce: false);
        var (reduced, _) = Run(scenario, reduce: true);
        Assert.Contains("cpu-access-device-owned", plain.Text, StringComparison.Ordinal);
        Assert.Equal(plain.Text, reduced.Text);
    }

    /// <summary>
    /// A leak reported at unbind, on whichever agent's last step ends the run: both agents' last steps must stay
    /// possible ends (two findings each, one per agent), however the steps before them commute.
    /// </summary>
    [Fact]
    public void TheEndOfRunCheckSeesEveryAgentEndTheRun()
    {
        const string text = """
            scenario "a leak reported at unbind, after whichever agent ends last"
            profile linux-6.4-arm64
            set dma_api_debug.unbind_at_end = on
            device nic { coherent = false }

            cpu a {
              buf = kmalloc(256, GFP_KERNEL)
              mine = kmalloc(64, GFP_KERNEL)
              h = dma_map_single(nic, buf, 256, DMA_TO_DEVICE)
              signal go
              write mine[0..64] = a0
              write mine[0..64] = a1
            }
            cpu b {
              yours = kmalloc(64, GFP_KERNEL)
              wait go
              write yours[0..64] = b0
              write yours[0..64] = b1
            }
            """;
        var scenario = Binder.Load("unbind.dmc", text);
        var (plain, _) = Run(scenario, reduce: false);
        var (reduced, _) = Run(scenario, reduce: true);
        Assert.Contains("dma-api-leak", plain.Text, StringComparison.Ordinal);
        Assert.Contains("at 12:3", plain.Text, StringComparison.Ordinal);
        Assert.Contains("at 18:3", plain.Text, StringComparison.Ordinal);
        Assert.Equal(plain.Text, reduced.Text);
    }

    /// <summary>
    /// The reduced search runs again only when it met a statement with a finding, a crash or an error that was not yet
    /// marked, and the second round meets no new one (docs/internals-reduction.md, Marking): on every bundled scenario,
    /// one round without findings and crashes, two with.
    /// </summary>
    [Fact]
    public void TheSecondRoundMeetsNoNewFindingStatement()
    {
        foreach (var file in Checker.Expand(TestPaths.Scenarios))
        {
            var scenario = Binder.Load(file, File.ReadAllText(file));
            var explorer = new LineSetExplorer();
            ExplorationResult r;
            try
            {
                r = explorer.Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
            }
            catch (RunException)
            {
                continue; // a scenario declaring an error: each round may mark one failing statement
            }

            if (explorer.ReductionAbandoned || r.Inconclusive is not null)
            {
                continue;
            }

            var expected = r.Findings.Count > 0 || r.KernelBugs.Count > 0 ? 2 : 1;
            Assert.True(expected == explorer.ReducedRounds, $"{file}: {explorer.ReducedRounds} rounds, {r.Findings.Count} findings, {r.KernelBugs.Count} crashes");
        }
    }

    /// <summary>Turning the reduction off through the limits (the CLI's --no-reduction) gives the unreduced search.</summary>
    [Fact]
    public void TheLimitsCanTurnTheReductionOff()
    {
        var path = Path.Combine(TestPaths.Root, "bench", "scenarios", "interleave-4x10.dmc");
        var text = File.ReadAllText(path);
        var small = Binder.Load("small.dmc", string.Join('\n', text.Split('\n').Where(l => !l.Contains("w0_", StringComparison.Ordinal) && !l.Contains("w1_", StringComparison.Ordinal))));
        var off = new LineSetExplorer().Explore(new ScenarioModel(small), ExplorationLimits.Default with { Reduction = false });
        var plain = new LineSetExplorer { Reduction = false }.Explore(new ScenarioModel(small), ExplorationLimits.Default);
        var on = new LineSetExplorer().Explore(new ScenarioModel(small), ExplorationLimits.Default);
        Assert.Equal(plain.Stats.States, off.Stats.States);
        Assert.True(on.Stats.States < off.Stats.States, $"reduced {on.Stats.States}, unreduced {off.Stats.States}");
    }

    private static Property Agree(GeneratedScenario generated)
    {
        var scenario = Binder.Load("gen.dmc", generated.Text);
        var (plain, plainStats) = Run(scenario, reduce: false);
        var (reduced, reducedStats) = Run(scenario, reduce: true);
        var fewer = plainStats is null || (reducedStats!.States <= plainStats.States && reducedStats.Transitions <= plainStats.Transitions);
        var ok = plain.Text == reduced.Text && fewer;
        return ok
            .Label($"--- unreduced ---\n{plain.Text}{plainStats}\n--- reduced ---\n{reduced.Text}{reducedStats}\n--- scenario ---\n{generated.Text}")
            .Classify(reducedStats is not null && plainStats is not null && reducedStats.States < plainStats.States, "fewer states")
            .Classify(reducedStats is not null && plainStats is not null && reducedStats.Transitions < plainStats.Transitions, "fewer transitions")
            .Classify(reduced.Abandoned, "reduction abandoned (a state at two depths)")
            .Classify(generated.Text.Contains("\n  poll ", StringComparison.Ordinal), "polls");
    }

    private sealed record Outcome(string Text, bool Abandoned);

    /// <summary>Everything the reduction must preserve, as text (<see cref="ReductionCheck.Describe"/>), and whether the reduced search gave up.</summary>
    private static (Outcome Outcome, ExplorationStats? Stats) Run(Scenario scenario, bool reduce)
    {
        var (text, stats) = ReductionCheck.Describe(scenario, reduce, out var explorer);
        return (new Outcome(text, explorer.ReductionAbandoned), stats);
    }
}
