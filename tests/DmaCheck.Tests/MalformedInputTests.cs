using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>Odd whole files (huge, deeply nested, binary) are answered, not crashed on. Mutations are in <see cref="FuzzTests"/>.</summary>
public class MalformedInputTests
{
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
