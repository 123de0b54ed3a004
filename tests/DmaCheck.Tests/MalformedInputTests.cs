using System.Text.RegularExpressions;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// Seeded mutations of the bundled scenarios (token deletions, insertions, swaps, truncations): whatever the input,
/// the checker answers with an outcome, never an exception; bad input always carries a file:line:col message.
/// </summary>
public partial class MalformedInputTests
{
    private static readonly string[] Inserts =
    [
        "{", "}", "(", ")", "[", "]", "..", "->", "=", "==", "&&", ",", ":", "|", "+", "#", "\"", "\n", "0x", "0",
        "4097", "99999999999999999999999", "1G", "buf", "seen", "h", "GFP_ATOMIC", "__GFP_COMP", "DMA_NONE", "phys(", "dma(",
        "write", "read", "smc", "wait", "signal", "cpu", "firmware", "device", "expect", "set", "profile", "\u00e9", "\t", ";",
    ];

    [GeneratedRegex(@"^[^\n]+:\d+:\d+: error: ")]
    private static partial Regex Located();

    [Fact]
    public void MutatedScenariosNeverCrashTheChecker()
    {
        var seeds = Checker.Expand(TestPaths.Scenarios).Select(File.ReadAllText).ToArray();
        var random = new Random(20261123);
        var limits = new ExplorationLimits(MaxStates: 20_000, Timeout: TimeSpan.FromSeconds(2), MaxMemoryBytes: 2L << 30);
        var codes = new int[4];
        for (var i = 0; i < 3000; i++)
        {
            var text = Mutate(seeds[random.Next(seeds.Length)], random);
            ScenarioOutcome outcome;
            try
            {
                outcome = Checker.CheckText($"m{i}.dmc", text, limits);
            }
            catch (Exception e)
            {
                Assert.Fail($"mutant {i} crashed the checker: {e}\n--- input ---\n{text}");
                return;
            }

            codes[outcome.ExitCode]++;
            if (outcome.Error == OutcomeError.BadInput)
            {
                Assert.True(Located().IsMatch(outcome.Message!), $"mutant {i}: bad input without a position: {outcome.Message}\n--- input ---\n{text}");
                Assert.Contains("^", outcome.Message!, StringComparison.Ordinal);
            }
        }

        // The mutations must reach both the parser's errors and the explorer.
        Assert.True(codes[2] > 1000, $"exit codes 0/1/2/3: {string.Join('/', codes)}");
        Assert.True(codes[0] + codes[1] > 100, $"exit codes 0/1/2/3: {string.Join('/', codes)}");
    }

    private static string Mutate(string seed, Random random)
    {
        var tokens = Regex.Split(seed, @"(\s+)").ToList();
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

        var text = string.Concat(tokens);
        return random.Next(10) == 0 ? text[..random.Next(text.Length + 1)] : text;
    }

    [Fact]
    public void HugeAndOddFilesAreAnswered()
    {
        var limits = new ExplorationLimits(MaxStates: 1000, Timeout: TimeSpan.FromSeconds(5));
        var huge = string.Concat(Enumerable.Repeat("# a comment line that says nothing at all\n", 250_000)) + "profile linux-6.4-arm64\ncpu a { signal x }\n";
        Assert.Equal(0, Checker.CheckText("huge.dmc", huge, limits).ExitCode);
        var nested = "profile linux-6.4-arm64\ncpu a {" + string.Concat(Enumerable.Repeat("{", 100_000));
        Assert.Equal(2, Checker.CheckText("nested.dmc", nested, limits).ExitCode);
        var binary = new string(Enumerable.Range(0, 4096).Select(i => (char)(i % 256)).ToArray());
        Assert.Equal(2, Checker.CheckText("binary.dmc", binary, limits).ExitCode);
    }
}
