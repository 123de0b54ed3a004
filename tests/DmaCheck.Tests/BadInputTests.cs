using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>Bad input of issue 17: binary files, negative numbers; the offending line is escaped and cut short.</summary>
public class BadInputTests
{
    private static ScenarioException Fail(string text) => Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", text));

    [Fact]
    public void ABinaryFileIsNamedAndItsBytesAreEscapedAndCut()
    {
        var bytes = new byte[6000];
        new Random(17).NextBytes(bytes);
        bytes[0] = 0x7f;
        bytes[1] = 0x1b; // ESC
        bytes[2] = 0;
        var text = System.Text.Encoding.UTF8.GetString(bytes).Replace("\n", string.Empty, StringComparison.Ordinal);
        var e = Fail(text);
        var shown = e.Format();
        Assert.Contains("is this a binary file?", shown, StringComparison.Ordinal);
        Assert.DoesNotContain('\0', shown);
        Assert.DoesNotContain('\u001b', shown);
        Assert.DoesNotContain('\u007f', shown);
        Assert.Contains("\\x1b", shown, StringComparison.Ordinal);
        Assert.All(shown.Split('\n'), l => Assert.True(l.Length <= 200, $"line of {l.Length} characters"));
    }

    [Fact]
    public void TheCaretIsUnderTheEscapedText()
    {
        var e = Fail("profile linux-6.4-arm64\ncpu a {\n  \u0001 x = kmalloc(64, GFP_KERNEL) $\n}\n");
        var lines = e.Format().Split('\n');
        Assert.Equal(" 3 |   \\x01 x = kmalloc(64, GFP_KERNEL) $", lines[1]);
        Assert.Equal("   |   ^~~~", lines[2]);
    }

    [Fact]
    public void ALongLineIsCutAroundTheError()
    {
        var e = Fail("profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)" + new string(' ', 300) + "$" + new string('y', 300) + "\n}\n");
        var lines = e.Format().Split('\n');
        Assert.StartsWith(" 3 | ...", lines[1], StringComparison.Ordinal);
        Assert.EndsWith("...", lines[1], StringComparison.Ordinal);
        Assert.True(lines[1].Length < 100);
        Assert.Equal(lines[1].IndexOf('$', StringComparison.Ordinal), lines[2].IndexOf('^', StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("  p = kmalloc(-64, GFP_KERNEL)\n", 3, 15, "negative number '-64': sizes, offsets, addresses and counts are unsigned")]
    [InlineData("  p = kmalloc(64, GFP_KERNEL)\n  write p[-8..8] = x\n", 4, 11, "negative number '-8'")]
    [InlineData("  p = kmalloc(64, GFP_KERNEL)\n  write p + -0x10[0..8] = x\n", 4, 13, "negative number '-0x10'")]
    public void ANegativeNumberSaysNumbersAreUnsigned(string body, int line, int column, string message)
    {
        var e = Fail("profile linux-6.4-arm64\ncpu a {\n" + body + "}\n");
        Assert.Equal((line, column), (e.Span.Line, e.Span.Column));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dma_map_singel", "dma_map_single")]
    [InlineData("kmaloc", "kmalloc")]
    [InlineData("DMA_MAP_SINGLE", "dma_map_single")]
    [InlineData("dma_sync_single_for_dev", "dma_sync_single_for_device")]
    public void SuggestionsFindTheNearestName(string typo, string expected) =>
        Assert.Equal(expected, Suggestions.Nearest(typo, KernelFunctions.Known)[0]);

    [Fact]
    public void NothingCloseIsSuggestedForAFarName() => Assert.Empty(Suggestions.Nearest("frobnicate", KernelFunctions.Known));
}
