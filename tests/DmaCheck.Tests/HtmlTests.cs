using System.Diagnostics;
using System.Text.RegularExpressions;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>The HTML report is self-contained, and headless Chromium renders its verdict table and witness timelines.</summary>
public partial class HtmlTests
{
    private static string SeedReport() => HtmlReport.Render(
        Checker.Expand(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm"))
            .Select(f => Checker.CheckFile(f, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, f))).ToList(),
        "test");

    [GeneratedRegex(@"(src|href)\s*=|<script|@import|url\(", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalReference();

    [Fact]
    public void TheReportIsSelfContained()
    {
        var html = SeedReport();
        Assert.DoesNotMatch(ExternalReference(), html);
        Assert.Equal(5, Regex.Count(html, "<svg class=\"timeline\"")); // cases 1, 2, 3, 4 and 8 can fail
        Assert.Contains("<table id=\"verdicts\">", html, StringComparison.Ordinal);
        Assert.Contains("spontaneous speculative fill", html, StringComparison.Ordinal);
    }

    [Fact]
    public void OnABoardWithAnOuterCacheTheTimelineHasAnL2Row()
    {
        ScenarioOutcome Check(string name) => Checker.CheckFile(Path.Combine(TestPaths.Scenarios, "streaming", name), ExplorationLimits.Default, name);
        var imx6 = HtmlReport.Render([Check("arm32-imx6-to-device-skip-cpu-sync.dmc")], "test");
        Assert.Contains(">L2</text>", imx6, StringComparison.Ordinal);
        Assert.Contains("class=\"cell outer invalid\"", imx6, StringComparison.Ordinal); // before the store's linefill
        Assert.Contains(": L2 Clean(old)", imx6, StringComparison.Ordinal); // the store allocated the line in L2 too

        // Boards without one keep the two rows.
        var arm64 = HtmlReport.Render([Check("cpu-reads-before-sync.dmc")], "test");
        Assert.Contains("<svg class=\"timeline\"", arm64, StringComparison.Ordinal);
        Assert.DoesNotContain(">L2</text>", arm64, StringComparison.Ordinal);
        Assert.DoesNotContain("cell outer", arm64, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void ChromiumRendersTheTableAndTheTimelines()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Requires.Tool(chromium, "chromium (Debian package chromium)");

        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var page = Path.Combine(dir, "report.html");
        File.WriteAllText(page, SeedReport());
        var args = $"--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=\"{Path.Combine(dir, "profile")}\" --dump-dom \"file://{page}\"";
        using var p = Process.Start(new ProcessStartInfo(chromium, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var dom = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "chromium did not finish");
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(9, Regex.Count(dom, "<tr>")); // header and eight seed cases
        Assert.Equal(5, Regex.Count(dom, "<svg class=\"timeline\""));
        Assert.True(Regex.Count(dom, "<rect class=\"cell cache") > 20);
    }
}
