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

    private static ScenarioOutcome Streaming(string name) =>
        Checker.CheckFile(Path.Combine(TestPaths.Scenarios, "streaming", name), ExplorationLimits.Default, "scenarios/streaming/" + name);

    private static string E(string s) => System.Net.WebUtility.HtmlEncode(s);

    /// <summary>
    /// Issue 17 item 2: the check report says everything the text report says: the summary line, every finding with its
    /// message and whether it was declared, every warning and note, and for each failing expectation the verdict in
    /// words and the "why" of its witness.
    /// </summary>
    [Fact]
    public void TheCheckReportHasTheSummaryFindingsWarningsNotesAndWhy()
    {
        var outcomes = new[] { "map-stack-single.dmc", "poll-descriptor-timeout.dmc", "to-device-race-device-reads-early.dmc", "kmalloc-small-buffer-bounces.dmc", "sg-unmap-different-nents.dmc" }
            .Select(Streaming).ToList();
        outcomes.AddRange(Checker.Expand(Path.Combine(TestPaths.Scenarios, "seeds", "vmalloc-cpu-addr")).Take(4)
            .Select(f => Checker.CheckFile(f, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, f))));
        var html = HtmlReport.Render(outcomes, "test");
        Assert.DoesNotMatch(ExternalReference(), html);
        Assert.Contains($"<p id=\"summary\" class=\"ok\">{E(TextReport.Summary(outcomes))}</p>", html, StringComparison.Ordinal);

        var findings = outcomes.SelectMany(o => o.Result!.Findings).ToList();
        Assert.NotEmpty(findings);
        Assert.Equal(findings.Count, Regex.Count(html, "<tr class=\"finding\">"));
        foreach (var f in findings)
        {
            Assert.Contains(E(f.Finding.Message), html, StringComparison.Ordinal);
        }

        var warnings = outcomes.SelectMany(TextReport.Warnings).ToList();
        Assert.Contains(warnings, w => w.Text.Contains("hung at a poll", StringComparison.Ordinal));
        foreach (var (text, _) in warnings)
        {
            Assert.Contains(E(text), html, StringComparison.Ordinal);
        }

        var failing = 0;
        foreach (var o in outcomes)
        {
            foreach (var v in o.Result!.Verdicts.Where(v => o.Explorer!.Failures.ContainsKey(v.Expectation.Name)))
            {
                failing++;
                var w = WitnessBuilder.Build(o.Model!, v.Expectation, o.Explorer!.Failures[v.Expectation.Name]);
                Assert.Contains($"<p class=\"why\">{E(ExplainReport.WhyText(w, v.Expectation, o.Scenario!))}</p>", html, StringComparison.Ordinal);
            }
        }

        Assert.True(failing > 0);
        Assert.Equal(failing, Regex.Count(html, "<svg class=\"timeline\""));
        Assert.Contains("on some schedules, not all: a software race", html, StringComparison.Ordinal);
    }

    /// <summary>A scenario that does not parse is in the report too, with its diagnostic, and the summary counts it.</summary>
    [Fact]
    public void TheCheckReportShowsErrors()
    {
        var bad = Checker.CheckText("bad.dmc", "profile linux-6.4-arm64\ncpu a {\n  frobnicate(1)\n}\n", ExplorationLimits.Default);
        var html = HtmlReport.Render([bad], "test");
        Assert.Contains(E(bad.Message!), html, StringComparison.Ordinal);
        Assert.Contains("<p id=\"summary\" class=\"bad\">", html, StringComparison.Ordinal);
        Assert.Contains("1 error(s)", html, StringComparison.Ordinal);
    }

    /// <summary><c>explain --html OUT</c>: the text explanation, its verdict, why and an SVG timeline of the witness line, in one page.</summary>
    [Fact]
    public void ExplainWritesItsOwnHtmlPage()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var page = Path.Combine(dir, "explain.html");
        var file = Path.Combine(TestPaths.Scenarios, "streaming", "to-device-race-device-reads-early.dmc");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, DmaCheck.Cli.Program.Run(["explain", file, "--html", page], stdout, stderr, colour: false));
        Assert.Contains("HTML report written to", stderr.ToString(), StringComparison.Ordinal);
        var html = File.ReadAllText(page);
        Assert.DoesNotMatch(ExternalReference(), html);
        Assert.Contains("<pre id=\"narrative\">", html, StringComparison.Ordinal);
        var text = stdout.ToString();
        foreach (var line in text[text.IndexOf("expect device_sees_payload", StringComparison.Ordinal)..].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.Contains(E(line), html, StringComparison.Ordinal); // the whole explanation, line by line
        }

        Assert.Contains("<pre id=\"findings\">", html, StringComparison.Ordinal);
        Assert.Contains("on some schedules, not all: a software race", html, StringComparison.Ordinal);
        Assert.Contains("<p class=\"why\">why: ", html, StringComparison.Ordinal);
        Assert.Equal(1, Regex.Count(html, "<svg class=\"timeline\""));
        Assert.Contains("timeline of the witness line:", html, StringComparison.Ordinal);
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
        var verdicts = dom[dom.IndexOf("<table id=\"verdicts\">", StringComparison.Ordinal)..];
        verdicts = verdicts[..verdicts.IndexOf("</table>", StringComparison.Ordinal)];
        Assert.Equal(9, Regex.Count(verdicts, "<tr>")); // header and eight seed cases
        Assert.Equal(5, Regex.Count(dom, "<svg class=\"timeline\""));
        Assert.True(Regex.Count(dom, "<rect class=\"cell cache") > 20);
        Assert.Contains("<p id=\"summary\" class=\"ok\">", dom, StringComparison.Ordinal);
        Assert.Equal(5, Regex.Count(dom, "<p class=\"why\">why: "));

        // The page of explain --html renders too.
        var explainPage = Path.Combine(dir, "explain.html");
        var outcome = Streaming("to-device-race-device-reads-early.dmc");
        var v = outcome.Result!.Verdicts[0];
        File.WriteAllText(explainPage, HtmlReport.RenderExplain(outcome, WitnessBuilder.Build(outcome.Model!, v.Expectation, outcome.Explorer!.Failures[v.Expectation.Name]), v, "test"));
        var explainArgs = args.Replace(page, explainPage, StringComparison.Ordinal);
        using var q = Process.Start(new ProcessStartInfo(chromium, explainArgs) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var explainDom = q.StandardOutput.ReadToEnd();
        q.StandardError.ReadToEnd();
        Assert.True(q.WaitForExit(120_000), "chromium did not finish");
        Assert.Equal(0, q.ExitCode);
        Assert.Equal(1, Regex.Count(explainDom, "<svg class=\"timeline\""));
        Assert.Contains("<pre id=\"narrative\">", explainDom, StringComparison.Ordinal);
        Assert.Contains("<p class=\"why\">why: ", explainDom, StringComparison.Ordinal);
    }
}
