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

    /// <summary>Runs <paramref name="valid"/> generated scenarios and <paramref name="invalid"/> mutants, from <paramref name="seed"/>.</summary>
    public FuzzSummary Run(int valid, int invalid, ulong seed)
    {
        var watch = Stopwatch.StartNew();
        var failures = new List<string>();
        long crashes = 0, hangs = 0, disagreements = 0, replays = 0, limitFailures = 0, skipped = 0;
        var generated = valid == 0 ? [] : ScenarioGenerator.Full().Sample(valid, new Rnd(seed), 30);
        var pool = seeds.Concat(generated.Take(Math.Min(200, generated.Length)).Select(g => g.Text)).ToArray();

        void Fail(string kind, string text, string detail)
        {
            failures.Add($"{kind}: {detail}");
            if (failureDirectory is not null)
            {
                Directory.CreateDirectory(failureDirectory);
                File.WriteAllText(Path.Combine(failureDirectory, $"{kind}-{seed}-{failures.Count}.dmc"), $"# {kind}: {detail.Split('\n')[0]}\n{text}");
            }
        }

        foreach (var g in generated)
        {
            var text = g.Text;
            var start = watch.Elapsed;
            try
            {
                var scenario = Binder.Load("gen.dmc", text);
                var model = new ScenarioModel(scenario);
                var explorer = new LineSetExplorer();
                var fast = explorer.Explore(model, new ExplorationLimits(Timeout: HangLimit));
                var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), new ExplorationLimits(MaxStates: 200_000, Timeout: HangLimit));
                if (brute.Inconclusive is not null)
                {
                    skipped++;
                }
                else if (!fast.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)).SequenceEqual(brute.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail))))
                {
                    disagreements++;
                    Fail("disagreement", text, $"line-set {string.Join(",", fast.Verdicts.Select(v => $"{v.Verdict}/{v.MinEventsText}"))} vs brute-force {string.Join(",", brute.Verdicts.Select(v => $"{v.Verdict}/{v.MinEventsText}"))}");
                }

                foreach (var v in fast.Verdicts)
                {
                    if (!explorer.Failures.TryGetValue(v.Expectation.Name, out var failure))
                    {
                        continue;
                    }

                    var w = WitnessBuilder.Build(model, v.Expectation, failure);
                    var replay = ReplayFile.Parse(ReplayFile.From(w, scenario, "fuzz").Write());
                    var again = replay.Replay(new ScenarioModel(scenario), out var reproduces);
                    if (!reproduces || again.Events != w.Events)
                    {
                        replays++;
                        Fail("replay", text, $"the witness of {v.Expectation.Name} does not replay to the same failure");
                    }
                }

                var limited = new LineSetExplorer().Explore(new ScenarioModel(scenario), new ExplorationLimits(MaxStates: 1));
                if (limited.Inconclusive is null || limited.Verdicts.Any(v => v.Verdict != Verdict.Inconclusive))
                {
                    limitFailures++;
                    Fail("limit", text, "--max-states 1 did not end inconclusive");
                }
            }
            catch (Exception e)
            {
                crashes++;
                Fail("crash", text, e.ToString());
            }

            if (watch.Elapsed - start > HangLimit * 3)
            {
                hangs++;
                Fail("hang", text, $"took {(watch.Elapsed - start).TotalSeconds:0.#} s");
            }
        }

        var random = new Random(unchecked((int)seed));
        var limits = new ExplorationLimits(MaxStates: 20_000, Timeout: TimeSpan.FromSeconds(2), MaxMemoryBytes: 2L << 30);
        for (var i = 0; i < invalid; i++)
        {
            var text = Mutate(pool[random.Next(pool.Length)], random);
            var start = watch.Elapsed;
            try
            {
                var outcome = Checker.CheckText($"m{i}.dmc", text, limits);
                if (outcome.Error == OutcomeError.BadInput && (!Located().IsMatch(outcome.Message!) || !outcome.Message!.Contains('^', StringComparison.Ordinal)))
                {
                    crashes++;
                    Fail("unlocated", text, outcome.Message!);
                }
            }
            catch (Exception e)
            {
                crashes++;
                Fail("crash", text, e.ToString());
            }

            if (watch.Elapsed - start > HangLimit)
            {
                hangs++;
                Fail("hang", text, $"took {(watch.Elapsed - start).TotalSeconds:0.#} s");
            }
        }

        return new FuzzSummary(generated.Length, invalid, crashes, hangs, disagreements, replays, limitFailures, skipped, watch.Elapsed, failures);
    }
}
