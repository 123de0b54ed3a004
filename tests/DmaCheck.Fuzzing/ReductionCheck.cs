using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Fuzzing;

/// <summary>
/// The oracle of the interleaving reduction (docs/internals-reduction.md): the line-set explorer reduced and unreduced
/// must print the same text here — verdicts, fewest events and run counts, final and blocked states, findings each with
/// the length of its shortest run, each failing expectation's witness (events, steps, line), kernel crashes with their
/// fewest events and runs, and any run-time error — and the reduced search must visit no more states or transitions.
/// Shared by the property tests (tests/DmaCheck.Tests/ReductionProperties.cs) and the long fuzz run
/// (<see cref="Fuzzer.RunGroups"/>).
/// </summary>
public static class ReductionCheck
{
    /// <summary>What <see cref="Differences"/> says first when a limit stopped either search, so that nothing was compared.</summary>
    public const string Skipped = "skipped: a limit stopped a search";

    /// <summary>The limits of the long fuzz run: a state cap, so that what is compared does not depend on the machine's speed, and a timeout as a guard.</summary>
    public static ExplorationLimits FuzzLimits { get; } = new(MaxStates: 200_000, Timeout: TimeSpan.FromSeconds(30));

    private static bool StoppedByALimit(string text) =>
        text.StartsWith("inconclusive: timeout after", StringComparison.Ordinal) || text.StartsWith("inconclusive: state limit", StringComparison.Ordinal)
        || text.StartsWith("inconclusive: memory limit", StringComparison.Ordinal);

    /// <summary>Everything the reduction must preserve of one search of <paramref name="scenario"/>, as text, and its figures (null after a run-time error).</summary>
    public static (string Text, ExplorationStats? Stats) Describe(Scenario scenario, bool reduce, out LineSetExplorer explorer, ExplorationLimits? limits = null)
    {
        explorer = new LineSetExplorer { Reduction = reduce };
        var sb = new StringBuilder();
        try
        {
            var r = explorer.Explore(new ScenarioModel(scenario), limits ?? ExplorationLimits.Default);
            sb.Append($"inconclusive: {r.Inconclusive}; final states {r.Stats.FinalStates}, blocked {r.Stats.Blocked}\n");
            foreach (var v in r.Verdicts)
            {
                sb.Append($"  {v.Expectation.Name}: {v.Verdict}, min events {v.MinEventsCell}, holding runs {v.HoldingRuns}, failing runs {v.FailingRuns}\n");
            }

            foreach (var k in r.KernelBugs)
            {
                sb.Append($"  kernel bug {k.Name}: {k.Verdict}, min events {k.MinEvents}, crashed runs {k.CrashedRuns}: {k.Crash.Message}\n");
            }

            foreach (var f in r.Findings)
            {
                sb.Append($"  finding {f.Key} at {f.Statement.Span.Line}:{f.Statement.Span.Column} by {f.Agent}, run of {f.Trace?.Count} steps: {f.Finding}\n");
            }

            foreach (var (name, failure) in explorer.Failures.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append($"  witness {name}: {failure.Cost} events, {failure.Node.Depth} steps, line {failure.LinePa}\n");
            }

            return (sb.ToString(), r.Stats);
        }
        catch (RunException e)
        {
            return ($"error {e.Kind} at {e.Location}: {e.Message}\n", null);
        }
    }

    /// <summary>
    /// How the reduced and the unreduced search of <paramref name="text"/> differ, in words (null when they agree): a
    /// different text, or more states or transitions reduced than unreduced. <paramref name="agreed"/> is what both printed.
    /// </summary>
    /// <remarks>A search stopped by a limit (states, time, memory) is not compared: <paramref name="agreed"/> then starts with <see cref="Skipped"/>.</remarks>
    public static string? Differences(string text, out string agreed, ExplorationLimits? limits = null)
    {
        var scenario = Binder.Load("gen.dmc", text);
        var (plain, plainStats) = Describe(scenario, reduce: false, out _, limits);
        var (reduced, reducedStats) = Describe(scenario, reduce: true, out _, limits);
        agreed = plain;
        if (StoppedByALimit(plain) || StoppedByALimit(reduced))
        {
            agreed = $"{Skipped}\n--- unreduced ---\n{plain}--- reduced ---\n{reduced}";
            return null;
        }
        var fewer = plainStats is null || reducedStats is null || (reducedStats.States <= plainStats.States && reducedStats.Transitions <= plainStats.Transitions);
        if (plain == reduced && fewer)
        {
            return null;
        }

        return $"reduced and unreduced differ{(fewer ? string.Empty : " (the reduced search visited more)")}\n--- unreduced ---\n{plain}{plainStats}\n--- reduced ---\n{reduced}{reducedStats}\n";
    }
}
