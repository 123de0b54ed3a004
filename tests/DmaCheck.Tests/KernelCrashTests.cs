using DmaCheck.Cli;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// A kernel crash reachable on some runs is a terminal state with a verdict of its own (issue 14, item 3): the search
/// goes on, the other runs still judge the expectations, the crash gets its fewest spontaneous events and a shortest
/// run, and the exit code is 1.
/// </summary>
public class KernelCrashTests
{
    /// <summary>
    /// The driver frees a coherent buffer while another thread still uses its remapped (vmap) address: when the free
    /// comes first, the read goes through a VA no page table maps any more and the kernel oopses; otherwise it is fine.
    /// </summary>
    private const string Race = "profile linux-6.4-arm64\nset dma_api_debug = off\ndevice d { coherent = false }\n" +
        "cpu a {\n  b = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n  write b[0..64] = payload\n  signal ready\n  read b[0..64] -> seen\n}\n" +
        "cpu c {\n  wait ready\n  dma_free_coherent(d, 4096, b, b.dma)\n}\n" +
        "expect e: seen == payload\n";

    [Fact]
    public void ACrashOnSomeRunsIsAVerdictAndTheSearchGoesOn()
    {
        var outcome = Checker.CheckText("race.dmc", Race, ExplorationLimits.Default);
        Assert.Equal(OutcomeError.KernelBug, outcome.Error);
        Assert.Equal(1, outcome.ExitCode);
        var bug = Assert.Single(outcome.Result!.KernelBugs);
        Assert.Equal(Verdict.Sometimes, bug.Verdict);
        Assert.Equal(0, bug.MinEvents);
        Assert.Equal(8, bug.Crash.Span.Line); // the read through the freed remap
        Assert.Contains("the kernel would oops", bug.Crash.Message, StringComparison.Ordinal);

        // The runs that did not crash still judge the expectation: the read before the free sees the payload.
        var e = Assert.Single(outcome.Result.Verdicts);
        Assert.Equal(Verdict.Always, e.Verdict);

        // The shortest run to the crash ends with the crashing read, after the free.
        var point = outcome.Explorer!.Crashes[(bug.Name, bug.Crash.Message)];
        var path = point.Node.Path();
        Assert.Equal("read b[0..64] -> seen", path[^1].Statement.Text);
        Assert.Equal(StepOutcomeKind.KernelBug, path[^1].Outcome);
        Assert.Contains(path, s => s.Statement.Text.StartsWith("dma_free_coherent", StringComparison.Ordinal));
    }

    [Fact]
    public void TheBruteForceExplorerAgreesOnTheCrash()
    {
        var fast = Checker.CheckText("race.dmc", Race, ExplorationLimits.Default).Result!;
        var brute = Checker.CheckText("race.dmc", Race, ExplorationLimits.Default, () => new BruteForceStrategy()).Result!;
        Assert.Equal(
            fast.KernelBugs.Select(b => (b.Name, b.Verdict, b.MinEvents, b.Crash.Message)),
            brute.KernelBugs.Select(b => (b.Name, b.Verdict, b.MinEvents, b.Crash.Message)));
        Assert.Equal(fast.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)), brute.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)));
    }

    [Fact]
    public void ACrashOnEveryRunIsAlwaysAndLeavesTheExpectationsWithoutVerdict()
    {
        var text = "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_NONE)\n  read p[0..64] -> seen\n}\nexpect e: seen == zero\n";
        var outcome = Checker.CheckText("s.dmc", text, ExplorationLimits.Default);
        var bug = Assert.Single(outcome.Result!.KernelBugs);
        Assert.Equal(Verdict.Always, bug.Verdict);
        Assert.Equal(Verdict.Inconclusive, Assert.Single(outcome.Result.Verdicts).Verdict);
        Assert.Equal(1, outcome.ExitCode);
    }

    [Fact]
    public void CheckPrintsTheCrashRowAndExplainWalksToIt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "race.dmc");
        File.WriteAllText(file, Race);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(1, Program.Run(["check", file], stdout, stderr, colour: false));
        Assert.Matches(@"kernel-bug@8:3\s+Sometimes\s+0\s+\(none\)\s+KERNEL BUG", stdout.ToString());
        Assert.Contains("race.dmc:8:3: error: the kernel would oops", stderr.ToString(), StringComparison.Ordinal);

        stdout = new StringWriter();
        stderr = new StringWriter();
        Assert.Equal(1, Program.Run(["explain", file], stdout, stderr, colour: false));
        var text = stdout.ToString();
        Assert.Contains("kernel bug on some runs (kernel-bug@8:3); the fewest spontaneous hardware events to reach it: 0", text, StringComparison.Ordinal);
        Assert.Contains("shortest run to it:", text, StringComparison.Ordinal);
        Assert.Contains("** the kernel crashes here; nothing runs after it", text, StringComparison.Ordinal);

        stdout = new StringWriter();
        Assert.Equal(1, Program.Run(["check", "--format", "json", file], stdout, new StringWriter(), colour: false));
        Assert.Contains("\"kernelBugs\"", stdout.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A statement that needs what the model does not have ends its run as a typed outcome (issue 14, item 3), not an
    /// exception: the search goes on over the other runs, the whole result is inconclusive, and it says where. Here
    /// one thread maps through arm_dma_ops with a forced swiotlb pool (dmabounce is not modelled) while another
    /// writes its own buffer.
    /// </summary>
    private const string Unmodelled = "profile linux-5.13-arm-imx6\nset swiotlb = force\ndevice d { coherent = false }\n" +
        "cpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_TO_DEVICE)\n}\n" +
        "cpu c {\n  q = kmalloc(64, GFP_KERNEL)\n  write q[0..64] = x\n  read q[0..64] -> y\n}\n" +
        "expect e: y == x\n";

    [Fact]
    public void NotModelledEndsItsRunAndMakesTheResultInconclusiveWithEveryExplorer()
    {
        var model = new ScenarioModel(Binder.Load("unmodelled.dmc", Unmodelled));
        var results = new[]
        {
            new LineSetExplorer().Explore(model, ExplorationLimits.Default),
            new LineSetExplorer().Explore(model, ExplorationLimits.Default with { Reduction = false }),
            new BruteForceStrategy().Explore(model, ExplorationLimits.Default),
        };
        foreach (var r in results)
        {
            var stop = Assert.IsType<NotModelledStop>(r.NotModelled);
            Assert.Equal((6, 3), (stop.Span.Line, stop.Span.Column));
            Assert.Contains("dmabounce is not modelled", r.Inconclusive, StringComparison.Ordinal);
            Assert.All(r.Verdicts, v => Assert.Equal(Verdict.Inconclusive, v.Verdict));
            Assert.True(r.Stats.States > 3, "the search went on past the stop"); // the other thread's runs were explored
        }

        // The step's outcome is typed, and its state is final.
        var s = model.Step(model.Initial, 0).Next;
        var step = model.Step(s, 0);
        Assert.Equal(StepOutcomeKind.NotModelled, step.Outcome);
        Assert.Empty(model.Enabled(step.Next));

        var outcome = Checker.CheckText("unmodelled.dmc", Unmodelled, ExplorationLimits.Default);
        Assert.Equal(3, outcome.ExitCode);
        Assert.StartsWith("unmodelled.dmc:6:3: inconclusive: not modelled: dma_map_single under arm_dma_ops", outcome.Message, StringComparison.Ordinal);
    }
}
