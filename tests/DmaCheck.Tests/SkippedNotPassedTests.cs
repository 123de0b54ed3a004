using System.Reflection;
using System.Text.RegularExpressions;

namespace DmaCheck.Tests;

/// <summary>
/// A test that cannot run (a missing tool) is reported as skipped, never as passed, and fails under CI (issue 17, item 8).
/// </summary>
public partial class SkippedNotPassedTests
{
    [Fact]
    public void AMissingToolSkipsOutsideCi() =>
        Assert.IsType<SkipException>(Record.Exception(() => Requires.Tool(null, "frobtool", underCi: false)));

    [Fact]
    public void AMissingToolFailsUnderCi()
    {
        var e = Record.Exception(() => Requires.Tool(null, "frobtool", underCi: true));
        Assert.NotNull(e);
        Assert.IsNotType<SkipException>(e);
        Assert.Contains("frobtool is missing under CI", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void APresentToolRuns() => Requires.Tool("/usr/bin/true", "true", underCi: true);

    /// <summary>A skip is only reported as a skip by a skippable test: a plain [Fact] would count it as a failure.</summary>
    [Theory]
    [InlineData(typeof(HtmlTests), nameof(HtmlTests.ChromiumRendersTheTableAndTheTimelines))]
    [InlineData(typeof(VcdTests), nameof(VcdTests.RoundTripsThroughGtkWave))]
    public void ToolTestsAreSkippable(Type type, string method) =>
        Assert.NotNull(type.GetMethod(method)!.GetCustomAttribute<SkippableFactAttribute>());

    [GeneratedRegex(@"\[(?<attr>\w+)[^\]]*\]\s*public (?:async Task|void) \w+\([^)]*\)\s*\{(?<body>(?:(?!\n    \}).)*)\n    \}", RegexOptions.Singleline)]
    private static partial Regex TestMethod();

    /// <summary>No test returns early when a tool is missing, and every test that asks for a tool can be skipped.</summary>
    [Fact]
    public void NoTestPassesWithoutRunning()
    {
        var dir = Path.Combine(TestPaths.Root, "tests", "DmaCheck.Tests");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.cs").Where(f => Path.GetFileName(f) is not (nameof(SkippedNotPassedTests) + ".cs" or "Requires.cs")))
        {
            foreach (Match m in TestMethod().Matches(File.ReadAllText(file)))
            {
                var body = m.Groups["body"].Value;
                var asksForTool = body.Contains("Requires.Tool(", StringComparison.Ordinal);
                var returnsEarlyOnCi = body.Contains("GetEnvironmentVariable(\"CI\")", StringComparison.Ordinal);
                if (returnsEarlyOnCi || (asksForTool && !m.Groups["attr"].Value.StartsWith("Skippable", StringComparison.Ordinal)))
                {
                    offenders.Add($"{Path.GetFileName(file)}: {m.Value.Split('\n')[0]}");
                }
            }
        }

        Assert.Empty(offenders);
    }
}
