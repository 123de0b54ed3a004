using System.Diagnostics;
using System.Text.RegularExpressions;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Fuzzing;

/// <summary>What a fuzz run found.</summary>
public sealed record FuzzSummary(long Valid, long Invalid, long Crashes, long Hangs, long Disagreements, long ReplayFailures, long LimitFailures, long BruteForceSkipped, TimeSpan Elapsed, IReadOnlyList<string> Failures)
{
    public long Problems => Crashes + Hangs + Disagreements + ReplayFailures + LimitFailures;

    public override string ToString() =>
        $"{Valid} valid and {Invalid} invalid inputs in {Elapsed.TotalSeconds:0.#} s: {Crashes} crashes, {Hangs} hangs, {Disagreements} disagreements, " +
        $"{ReplayFailures} replay failures, {LimitFailures} limit failures ({BruteForceSkipped} valid inputs too big for the brute force)";
}

/// <summary>What a run of <see cref="Fuzzer.RunGroups"/> found.</summary>
/// <param name="Errors">Scenarios both searches stopped with the same run-time error (an access after a free, say).</param>
/// <param name="Inconclusive">Scenarios both searches left inconclusive (a limit, or something not modelled).</param>
/// <param name="WithFindings">Scenarios with at least one finding.</param>
/// <param name="Skipped">Scenarios not compared because a limit (<see cref="ReductionCheck.FuzzLimits"/>) stopped a search.</param>
public sealed record GroupFuzzSummary(long Checked, long Disagreements, long Crashes, long Errors, long Inconclusive, long WithFindings, long Skipped, TimeSpan Slowest, TimeSpan Elapsed, IReadOnlyList<string> Failures)
{
    public long Problems => Disagreements + Crashes;

    public override string ToString() =>
        $"{Checked} group scenarios in {Elapsed.TotalSeconds:0.#} s (slowest {Slowest.TotalSeconds:0.00} s): {Disagreements} reduced/unreduced disagreements, {Crashes} crashes; " +
        $"{WithFindings} with findings, {Errors} stopped by a run-time error, {Inconclusive} inconclusive, {Skipped} skipped (a limit stopped a search)";
}

/// <summary>
/// Seeded, reproducible fuzzing of the whole checker (issue 7): random valid scenarios over the language, and
/// invalid inputs derived from them and from the bundled scenarios. Invariants: nothing throws, bad input always has
/// a file:line:col message, the line-set and brute-force explorers agree, every witness replays, a one-state limit
/// is always inconclusive, and no input runs past <see cref="HangLimit"/>.
/// </summary>
public sealed partial class Fuzzer(IReadOnlyList<string> seeds, string? failureDirectory = null)
{
    public static TimeSpan HangLimit { get; } = TimeSpan.FromSeconds(10);

    private static readonly string[] Inserts =
    [
        "{", "}", "(", ")", "[", "]", "..", "->", "=", "==", "&&", ",", ":", "|", "+", "#", "\"", "\n", "0x", "0",
        "4097", "99999999999999999999999", "1G", "buf", "seen", "h", "GFP_ATOMIC", "__GFP_COMP", "DMA_NONE", "phys(", "dma(",
        "write", "read", "smc", "wait", "signal", "cpu", "firmware", "device", "expect", "set", "profile", "\u00e9", "\t", ";",
        "\u0000", "\uffff", "-1", "0xffffffffffffffff",
    ];

    [GeneratedRegex(@"^[^\n]+:\d+:\d+: error: ")]
    private static partial Regex Located();

    /// <summary>A token-level mutation of <paramref name="text"/>: deletions, insertions, swaps and truncations.</summary>
    public static string Mutate(string text, Random random)
    {
        var tokens = Regex.Split(text, @"(\s+)").ToList();
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits && tokens.Count > 1; e++)
        {
            var j = random.Next(tokens.Count);
            switch (random.Next(4))
            {
                case 0:
                    tokens.RemoveAt(j);
                    break;
                case 1:
                    tokens.Insert(j, Inserts[random.Next(Inserts.Length)]);
                    break;
                case 2:
                    var k = random.Next(tokens.Count);
                    (tokens[j], tokens[k]) = (tokens[k], tokens[j]);
                    break;
                default:
                    tokens[j] = tokens[j].Length > 1 ? tokens[j][..random.Next(1, tokens[j].Length)] : tokens[j];
                    break;
            }
        }

        var result = string.Concat(tokens);
        return random.Next(10) == 0 ? result[..random.Next(result.Length + 1)] : result;
    }

    /// <summary>
    /// Runs <paramref name="valid"/> generated scenarios and <paramref name="invalid"/> mutants, from <paramref name="seed"/>.
    /// With <paramref name="regressionDirectory"/>, the first input to break each invariant (each crash site, for crashes)
    /// is also shrunk to a small input that breaks it the same way, and saved there (<see cref="Regression"/>).
    /// <paramref name="parallelism"/> threads check inputs; the summary does not depend on it, except for its time.
    /// </summary>
    public FuzzSummary Run(int valid, int invalid, ulong seed, string? regressionDirectory = null, int parallelism = 1)
    {
        var watch = Stopwatch.StartNew();
        var failures = new List<string>();
        long crashes = 0, hangs = 0, disagreements = 0, replays = 0, limitFailures = 0, skipped = 0;
        var generated = valid == 0 ? [] : ScenarioGenerator.Full().Sample(valid, new Rnd(seed), 30);
        var pool = seeds.Concat(generated.Take(Math.Min(200, generated.Length)).Select(g => g.Text)).ToArray();

        var shrunkFailures = new HashSet<string>(StringComparer.Ordinal);
        void Fail(InputKind kind, string text, Finding finding)
        {
            switch (finding.Invariant)
            {
                case "disagreement": disagreements++; break;
                case "replay": replays++; break;
                case "limit": limitFailures++; break;
                case "hang": hangs++; break;
                default: crashes++; break;
            }

            failures.Add($"{finding.Invariant}: {finding.Detail}");
            if (failureDirectory is not null)
            {
                Directory.CreateDirectory(failureDirectory);
                File.WriteAllText(Path.Combine(failureDirectory, $"{finding.Invariant}-{seed}-{failures.Count}.dmc"), $"# {finding.Invariant}: {finding.Detail.Split('\n')[0]}\n{text}");
            }

            // Only the first input per failure is shrunk: a systematic bug fails thousands of inputs the same way.
            if (regressionDirectory is not null && shrunkFailures.Add($"{kind} {finding.Signature}"))
            {
                var shrunk = Shrinker.Shrink(text, t => Regression.Check(kind, t).Any(f => f.SameFailure(finding)), timeBudget: TimeSpan.FromMinutes(10));
                var path = Regression.Save(regressionDirectory, kind, finding, shrunk);
                failures[^1] += $"\nshrunk from {text.Length} to {shrunk.Length} characters, saved as {path}:\n{shrunk}";
            }
        }

        // Inputs are checked on up to `parallelism` threads and their findings reported in input order, so a run is
        // the same whatever the parallelism. Mutants are made one by one from the seeded Random, before the checks.
        foreach (var (g, findings, bruteForceSkipped) in generated.AsParallel().AsOrdered().WithDegreeOfParallelism(parallelism)
            .Select(g => (g, CheckValid(g.Text, out var skip), skip)))
        {
            skipped += bruteForceSkipped ? 1 : 0;
            foreach (var finding in findings)
            {
                Fail(InputKind.Valid, g.Text, finding);
            }
        }

        // An iterator, not a list: PLINQ then reads it one at a time, in order, under a lock.
        IEnumerable<(string Name, string Text)> Mutants()
        {
            var random = new Random(unchecked((int)seed));
            for (var i = 0; i < invalid; i++)
            {
                yield return ($"m{i}.dmc", Mutate(pool[random.Next(pool.Length)], random));
            }
        }

        foreach (var (text, findings) in Mutants().AsParallel().AsOrdered().WithDegreeOfParallelism(parallelism)
            .Select(m => (m.Text, CheckAny(m.Name, m.Text))))
        {
            foreach (var finding in findings)
            {
                Fail(InputKind.Any, text, finding);
            }
        }

        return new FuzzSummary(generated.Length, invalid, crashes, hangs, disagreements, replays, limitFailures, skipped, watch.Elapsed, failures);
    }

    /// <summary>
    /// Issue 14's check of the interleaving reduction over driver-shaped group scenarios (<see cref="GroupScenarios"/>):
    /// <paramref name="count"/> of them from <paramref name="seed"/>, each searched reduced and unreduced
    /// (<see cref="ReductionCheck"/>), on up to <paramref name="parallelism"/> threads; the summary does not depend on
    /// it, except for its times. With <paramref name="regressionDirectory"/>, the first disagreement is shrunk and saved
    /// there as a valid input (<see cref="CheckValid"/> compares the two searches too).
    /// </summary>
    /// <param name="progress">Told how many scenarios were checked and how many disagreed, every 250 scenarios.</param>
    public GroupFuzzSummary RunGroups(int count, ulong seed, string? regressionDirectory = null, int parallelism = 1, Action<string>? progress = null)
    {
        var done = 0;
        var watch = Stopwatch.StartNew();
        var generated = count == 0 ? [] : GroupScenarios.Sample(count, seed);
        var failures = new List<string>();
        long disagreements = 0, errors = 0, inconclusive = 0, crashes = 0, findings = 0, skipped = 0;
        var slowest = TimeSpan.Zero;
        var shrunk = false;
        foreach (var (g, finding, agreed, elapsed) in generated.AsParallel().AsOrdered().WithDegreeOfParallelism(parallelism).Select(g =>
        {
            var one = Stopwatch.StartNew();
            var f = CheckReduction(g.Text, out var text);
            return (g, f, text, one.Elapsed);
        }))
        {
            if (++done % 250 == 0)
            {
                progress?.Invoke($"{done} of {count} group scenarios checked in {watch.Elapsed.TotalSeconds:0} s, {disagreements} disagreements");
            }

            slowest = elapsed > slowest ? elapsed : slowest;
            errors += agreed.StartsWith("error ", StringComparison.Ordinal) ? 1 : 0;
            skipped += agreed.StartsWith(ReductionCheck.Skipped, StringComparison.Ordinal) ? 1 : 0;
            inconclusive += agreed.StartsWith("inconclusive: ;", StringComparison.Ordinal) || agreed.StartsWith("error ", StringComparison.Ordinal)
                || agreed.StartsWith(ReductionCheck.Skipped, StringComparison.Ordinal) ? 0 : 1;
            findings += agreed.Contains("  finding ", StringComparison.Ordinal) ? 1 : 0;
            if (finding is null)
            {
                continue;
            }

            if (finding.Invariant == "reduction")
            {
                disagreements++;
            }
            else
            {
                crashes++;
            }

            failures.Add($"{finding.Invariant}: {finding.Detail}\n--- scenario ---\n{g.Text}");
            if (failureDirectory is not null)
            {
                Directory.CreateDirectory(failureDirectory);
                File.WriteAllText(Path.Combine(failureDirectory, $"{finding.Invariant}-groups-{seed}-{failures.Count}.dmc"), $"# {finding.Invariant}: {finding.Detail.Split('\n')[0]}\n{g.Text}");
            }

            if (regressionDirectory is not null && !shrunk)
            {
                shrunk = true;
                var small = Shrinker.Shrink(g.Text, t => CheckReduction(t, out _) is { } f && f.SameFailure(finding), timeBudget: TimeSpan.FromMinutes(10));
                var path = Regression.Save(regressionDirectory, InputKind.Valid, finding, small);
                failures[^1] += $"\nshrunk from {g.Text.Length} to {small.Length} characters, saved as {path}:\n{small}";
            }
        }

        return new GroupFuzzSummary(generated.Length, disagreements, crashes, errors, inconclusive, findings, skipped, slowest, watch.Elapsed, failures);
    }

    /// <summary>
    /// The reduced and unreduced line-set searches of <paramref name="text"/> against each other: a "reduction" finding
    /// when they differ, a crash when either throws; <paramref name="agreed"/> is the unreduced search's text.
    /// </summary>
    public static Finding? CheckReduction(string text, out string agreed)
    {
        agreed = string.Empty;
        try
        {
            return ReductionCheck.Differences(text, out agreed, ReductionCheck.FuzzLimits) is { } d
                ? new Finding("reduction", "reduction", d)
                : null;
        }
        catch (Exception e)
        {
            return Crash(e);
        }
    }

    private static Finding Crash(Exception e)
    {
        // The exception's type and the method that threw: shrinking keeps this crash, not another one.
        var frame = e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at ", StringComparison.Ordinal)) ?? "";
        var inFile = frame.IndexOf(" in ", StringComparison.Ordinal);
        return new Finding("crash", $"{e.GetType().FullName} {(inFile < 0 ? frame : frame[..inFile])}", e.ToString());
    }

    /// <summary>
    /// The invariants of a valid scenario: it loads, the line-set and brute-force explorers agree (where the brute force
    /// finishes within 200,000 states), every witness replays to the same failure with the same number of events,
    /// <c>--max-states 1</c> ends inconclusive, nothing throws, and it takes at most three hang limits.
    /// </summary>
    public static IReadOnlyList<Finding> CheckValid(string text, out bool bruteForceSkipped)
    {
        var findings = new List<Finding>();
        var watch = Stopwatch.StartNew();
        bruteForceSkipped = false;
        try
        {
            var scenario = Binder.Load("gen.dmc", text);
            var model = new ScenarioModel(scenario);
            var explorer = new LineSetExplorer();
            var fast = explorer.Explore(model, new ExplorationLimits(Timeout: HangLimit));
            var twoThreads = new LineSetExplorer { Threads = 2 }.Explore(new ScenarioModel(scenario), new ExplorationLimits(Timeout: HangLimit));
            if (fast.Inconclusive is null && twoThreads.Inconclusive is null && Summary(fast) != Summary(twoThreads))
            {
                findings.Add(new Finding("disagreement", "threads", $"--threads 1: {Summary(fast)} vs --threads 2: {Summary(twoThreads)}"));
            }

            var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), new ExplorationLimits(MaxStates: 200_000, Timeout: HangLimit));
            if (brute.Inconclusive is not null)
            {
                bruteForceSkipped = true;
            }
            else if (!fast.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail, v.FailsOnEveryQuietRun)).SequenceEqual(brute.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail, v.FailsOnEveryQuietRun))))
            {
                findings.Add(new Finding("disagreement", "disagreement",
                    $"line-set {string.Join(",", fast.Verdicts.Select(v => $"{v.Verdict}/{v.MinEventsCell}"))} vs brute-force {string.Join(",", brute.Verdicts.Select(v => $"{v.Verdict}/{v.MinEventsCell}"))}"));
            }
            else if (!fast.Findings.Select(f => f.Key).Order(StringComparer.Ordinal).SequenceEqual(brute.Findings.Select(f => f.Key).Order(StringComparer.Ordinal)))
            {
                findings.Add(new Finding("disagreement", "disagreement-findings",
                    $"line-set findings [{string.Join(", ", fast.Findings.Select(f => f.Key))}] vs brute-force [{string.Join(", ", brute.Findings.Select(f => f.Key))}]"));
            }

            foreach (var v in fast.Verdicts)
            {
                if (!explorer.Failures.TryGetValue(v.Expectation.Name, out var failure))
                {
                    continue;
                }

                var w = WitnessBuilder.Build(model, v.Expectation, failure);
                if (w.Events != v.MinEventsToFail)
                {
                    findings.Add(new Finding("witness", "witness", $"the witness of {v.Expectation.Name} has {w.Events} events, the verdict says {v.MinEventsToFail}"));
                }

                if (ReplayFile.HasCopies(w) || ReplayFile.HasPolls(w))
                {
                    // Replay files of format 1 cannot carry what a copy read or which reads of a poll missed; saving
                    // refuses (ReplayTests and PollTests check that).
                    continue;
                }

                var replay = ReplayFile.Parse(ReplayFile.From(w, scenario, "fuzz").Write());
                var again = replay.Replay(new ScenarioModel(scenario), out var reproduces);
                if (!reproduces || again.Events != w.Events)
                {
                    findings.Add(new Finding("replay", "replay", $"the witness of {v.Expectation.Name} does not replay to the same failure"));
                }
            }

            var limited = new LineSetExplorer().Explore(new ScenarioModel(scenario), new ExplorationLimits(MaxStates: 1));
            if (limited.Inconclusive is null || limited.Verdicts.Any(v => v.Verdict != Verdict.Inconclusive))
            {
                findings.Add(new Finding("limit", "limit", "--max-states 1 did not end inconclusive"));
            }

            // --timeout 0: the deadline has passed before the first state, so the search must say so (a positive
            // timeout the search finishes within is rightly not inconclusive).
            var timedOut = new LineSetExplorer().Explore(new ScenarioModel(scenario), new ExplorationLimits(Timeout: TimeSpan.Zero));
            if (timedOut.Inconclusive is null || timedOut.Verdicts.Any(v => v.Verdict != Verdict.Inconclusive))
            {
                findings.Add(new Finding("limit", "limit", "--timeout 0 did not end inconclusive"));
            }
        }
        catch (Exception e)
        {
            findings.Add(Crash(e));
        }

        if (watch.Elapsed > HangLimit * 3)
        {
            findings.Add(new Finding("hang", "hang", $"took {watch.Elapsed.TotalSeconds:0.#} s"));
        }

        return findings;
    }

    /// <summary>
    /// The invariants of any input, checked as <c>dmacheck check</c> would: nothing throws, bad input has a
    /// <c>file:line:col: error:</c> message with a caret, and it takes at most one hang limit.
    /// </summary>
    public static IReadOnlyList<Finding> CheckAny(string name, string text)
    {
        var findings = new List<Finding>();
        var watch = Stopwatch.StartNew();
        try
        {
            var outcome = Checker.CheckText(name, text, AnyInputLimits);
            if (outcome.Error == OutcomeError.BadInput && (!Located().IsMatch(outcome.Message!) || !outcome.Message!.Contains('^', StringComparison.Ordinal)))
            {
                findings.Add(new Finding("unlocated", "unlocated", outcome.Message!));
            }
        }
        catch (Exception e)
        {
            findings.Add(Crash(e));
        }

        if (watch.Elapsed > HangLimit)
        {
            findings.Add(new Finding("hang", "hang", $"took {watch.Elapsed.TotalSeconds:0.#} s"));
        }

        return findings;
    }

    private static readonly ExplorationLimits AnyInputLimits = new(MaxStates: 20_000, Timeout: TimeSpan.FromSeconds(2), MaxMemoryBytes: 2L << 30);

    /// <summary>Everything a search result says, but the time it took: what must not depend on the thread count.</summary>
    public static string Summary(ExplorationResult r) =>
        string.Join(";", r.Verdicts.Select(v => $"{v.Expectation.Name}={v.Verdict}/{v.MinEventsCell}/{v.HoldingRuns}/{v.FailingRuns}")) +
        "|" + string.Join(",", r.Findings.Select(f => f.Key)) + $"|{r.Stats.States}/{r.Stats.FinalStates}/{r.Stats.Transitions}/{r.Stats.Blocked}";
}
