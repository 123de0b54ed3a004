using System.Text.RegularExpressions;
using DmaCheck.Fuzzing;

namespace DmaCheck.Tests;

/// <summary>The fuzzer's shrinker (delta debugging over lines, then tokens) on artificial failures whose minimum is known.</summary>
public partial class ShrinkerTests
{
    [GeneratedRegex(@"\w+")]
    private static partial Regex Word();

    private static string Seed(string name) => File.ReadAllText(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", name + ".dmc"));

    [Fact]
    public void ShrinksAScenarioToTheOneLineAndTheOneTokenTheFailureNeeds()
    {
        // "Fails" when some line is exactly the driver's smc call and the token 'seen' appears anywhere.
        static bool Fails(string text) =>
            text.Split('\n').Any(l => l.Trim() == "smc tz(buf.dma)") && Word().Matches(text).Any(m => m.Value == "seen");

        var calls = 0;
        var shrunk = Shrinker.Shrink(Seed("case1-v6.4-init-on-alloc"), t =>
        {
            calls++;
            return Fails(t);
        });
        Assert.Equal("smc tz(buf.dma)\nseen", shrunk);
        Assert.True(calls < 2_000, $"{calls} candidates tried");
    }

    [Fact]
    public void ShrinksToExactlyTheRequiredTokensWhateverTheyAre()
    {
        var random = new Random(20261123);
        for (var round = 0; round < 200; round++)
        {
            var words = Enumerable.Range(0, random.Next(1, 60)).Select(i => $"w{i}").ToList();
            var text = string.Concat(words.Select(w => w + (random.Next(3) == 0 ? "\n" : random.Next(2) == 0 ? " " : "  \t")));
            var required = words.Where(_ => random.Next(4) == 0).ToList();
            if (required.Count == 0)
            {
                required.Add(words[random.Next(words.Count)]);
            }

            bool Fails(string t)
            {
                var present = Word().Matches(t).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
                return required.All(present.Contains);
            }

            var shrunk = Shrinker.Shrink(text, Fails);
            // The minimum: the required words in their original order, one whitespace character between neighbours.
            Assert.Equal(required, Word().Matches(shrunk).Select(m => m.Value).ToList());
            Assert.Equal(required.Sum(w => w.Length) + required.Count - 1, shrunk.Length);
        }
    }

    [Fact]
    public void AnEmptyInputIsTheMinimumOfAFailureThatNeedsNothing() => Assert.Equal("", Shrinker.Shrink(Seed("case2-v6.4-no-init"), _ => true));

    [Fact]
    public void ABudgetCutStillReturnsAFailingInput()
    {
        var text = Seed("case3-v6.3-init-on-alloc");
        static bool Fails(string t) => t.Contains("smc", StringComparison.Ordinal) && t.Contains("payload", StringComparison.Ordinal);
        var shrunk = Shrinker.Shrink(text, Fails, maxTests: 5);
        Assert.True(Fails(shrunk));
        Assert.True(shrunk.Length < text.Length);
    }
}
