using System.Globalization;
using System.Net;
using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>
/// <c>--html OUT</c>: one self-contained page (no scripts, no network, no external assets) with the summary line, the
/// verdict table, the findings, the errors, warnings and notes, and for every expectation that can fail the "why" of
/// its shortest witness and an SVG timeline of it: the witness line's cache and RAM as rows, trace steps as columns,
/// coloured by state and by whose data. <see cref="RenderExplain"/> is the page of <c>explain --html</c>.
/// </summary>
public static class HtmlReport
{
    private static readonly string[] Palette = ["#9e9e9e", "#e0e0e0", "#4caf50", "#2196f3", "#ff9800", "#9c27b0", "#009688", "#795548", "#e91e63", "#cddc39"];

    private static void Head(StringBuilder sb, string title)
    {
        sb.Append(CultureInfo.InvariantCulture, $"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{E(title)}</title>\n<style>\n");
        sb.Append("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}");
        sb.Append("th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:14px;vertical-align:top}th{background:#f4f4f4}");
        sb.Append(".ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}.warn{color:#ef6c00;font-weight:bold}.note{color:#666}");
        sb.Append("pre{background:#f8f8f8;padding:.6em;overflow-x:auto}p.why{max-width:60em}svg text{font-family:monospace;font-size:11px}.legend span{display:inline-block;margin-right:1em}");
        sb.Append("\n</style>\n</head>\n<body>\n");
    }

    /// <summary>
    /// The report of <c>dmacheck check --html</c>: the summary line, the verdict table, every finding (with its
    /// message and whether it was declared), the errors, warnings and notes, and for every expectation that can fail
    /// its verdict in words, the "why" paragraph of its shortest witness and that witness's timeline.
    /// </summary>
    public static string Render(IReadOnlyList<ScenarioOutcome> outcomes, string toolVersion)
    {
        var sb = new StringBuilder();
        Head(sb, "dmacheck report");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>dmacheck {E(toolVersion)}</h1>\n");
        var differs = outcomes.Any(o => o.Error != OutcomeError.None || o.Rows.Any(r => r.Met != true) || o.Result is { FindingsMet: false });
        var inconclusive = outcomes.Any(o => o.Inconclusive || o.Rows.Any(r => r.Met is null));
        sb.Append(CultureInfo.InvariantCulture, $"<p id=\"summary\" class=\"{(differs ? "bad" : inconclusive ? "warn" : "ok")}\">{E(TextReport.Summary(outcomes))}</p>\n");
        sb.Append("<h2>Verdicts</h2>\n<table id=\"verdicts\">\n<tr><th>scenario</th><th>profile</th><th>expectation</th><th>verdict</th><th>min events</th><th>declared</th><th>result</th></tr>\n");
        foreach (var o in outcomes)
        {
            foreach (var (v, declared, met) in o.Rows)
            {
                var (cls, text) = met switch
                {
                    true => ("ok", "ok"),
                    false => ("bad", declared is null ? "FAILS (undeclared)" : "DIFFERS"),
                    null => ("warn", "INCONCLUSIVE"),
                };
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(o.File)}</td><td>{E(o.Scenario!.Profile.Name)}</td><td>{E(v.Expectation.Name)}</td><td>{v.Verdict}</td><td>{E(v.MinEventsCell)}</td><td>{E(declared?.ToString() ?? "(none)")}</td><td class=\"{cls}\">{text}</td></tr>\n");
            }
        }

        sb.Append("</table>\n");
        var findings = outcomes.SelectMany(o => (o.Result?.FindingRows ?? []).Select(r => (o, r.Found, r.Declared))).ToList();
        if (findings.Count > 0)
        {
            sb.Append("<h2>Findings</h2>\n<table id=\"findings\">\n<tr><th>where</th><th>severity</th><th>finding</th><th>page and owner</th><th>what happened</th><th>declared</th></tr>\n");
            foreach (var (o, found, declared) in findings)
            {
                if (found is null)
                {
                    // As the text report: a search that did not cover every run proves nothing about what it did not reach.
                    var (what, missingMark) = o.Result!.Sampled is not null ? ("none of the sampled runs produced it", "warn\">not reached (sampled)")
                        : o.Inconclusive ? ("the search stopped before any run produced it", "warn\">not reached (inconclusive)")
                        : ("no run produces it", "bad\">MISSING");
                    sb.Append(CultureInfo.InvariantCulture, $"<tr class=\"finding\"><td>{E(o.File)}:{declared!.Span.Line}:{declared.Span.Column}</td><td></td><td></td><td></td><td>{what}</td><td class=\"{missingMark}: {E(declared.ToString())}</td></tr>\n");
                    continue;
                }

                var f = found.Finding;
                var at = found.Statement.Span;
                var pfn = f.Pfn is { } p ? $"pfn 0x{p:x}; " : string.Empty;
                var mark = declared is null ? "<td class=\"bad\">UNDECLARED</td>" : $"<td class=\"ok\">ok: {E(declared.ToString())}</td>";
                sb.Append(CultureInfo.InvariantCulture, $"<tr class=\"finding\"><td>{E(o.File)}:{at.Line}:{at.Column}<br>{E(found.Agent)}: <code>{E(found.Statement.Text)}</code></td><td>{E(f.SeverityText)}</td><td><code>{E(f.Kind)}</code> in <code>{E(f.Function)}</code></td><td>{E(pfn)}owner: {E(f.Owner.Describe())}</td><td>{E(f.Message)}</td>{mark}</tr>\n");
            }

            sb.Append("</table>\n");
        }

        var errors = outcomes.Where(o => o.Error != OutcomeError.None).ToList();
        var warnings = outcomes.SelectMany(TextReport.Warnings).ToList();
        if (errors.Count > 0 || warnings.Count > 0)
        {
            sb.Append("<h2>Errors, warnings and notes</h2>\n<div id=\"warnings\">\n");
            foreach (var o in errors)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<pre class=\"bad\">{E(o.Message ?? o.File)}</pre>\n");
            }

            foreach (var (text, isNote) in warnings)
            {
                sb.Append(isNote ? $"<p class=\"note\">{E(text)}</p>\n" : $"<pre class=\"warn\">{E(text)}</pre>\n");
            }

            sb.Append("</div>\n");
        }

        foreach (var o in outcomes.Where(o => o.Explorer is not null && o.Model is not null && o.Result!.Inconclusive is null))
        {
            foreach (var v in o.Result!.Verdicts)
            {
                if (o.Explorer!.Failures.TryGetValue(v.Expectation.Name, out var failure))
                {
                    var w = WitnessBuilder.Build(o.Model!, v.Expectation, failure);
                    sb.Append(CultureInfo.InvariantCulture, $"<h2>{E(o.File)}: {E(v.Expectation.Name)} fails with {w.Events} spontaneous event(s)</h2>\n");
                    sb.Append(CultureInfo.InvariantCulture, $"<p class=\"verdict\">{E(v.Expectation.Text)}: {v.Verdict}; it fails with {w.Events} spontaneous hardware event(s){E(ExplainReport.HowItFails(w.Events, v, o.Scenario!))}.</p>\n");
                    sb.Append(CultureInfo.InvariantCulture, $"<p class=\"why\">{E(ExplainReport.WhyText(w, v.Expectation, o.Scenario!))}</p>\n");
                    sb.Append(Timeline(w, o.Scenario!));
                }
            }
        }

        sb.Append("</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>
    /// <c>dmacheck explain FILE --html OUT</c>: the same narrative as the text (the findings with their shortest runs,
    /// the verdict, the shortest failing run step by step, the "why" paragraph, the minimisation and the per-step
    /// timeline), as one self-contained page, with the witness line's timeline as an SVG.
    /// </summary>
    public static string RenderExplain(ScenarioOutcome outcome, Witness? witness, ExpectationVerdict verdict, string toolVersion)
    {
        var sb = new StringBuilder();
        var scenario = outcome.Scenario!;
        Head(sb, $"dmacheck explain {outcome.File}");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>{E(outcome.File)}: {E(scenario.Title)}</h1>\n<p>dmacheck {E(toolVersion)}</p>\n");
        if (outcome.Result!.Findings.Count > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<h2>Findings</h2>\n<pre id=\"findings\">{E(ExplainReport.RenderFindings(outcome, Style.Plain))}</pre>\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<h2>expect {E(verdict.Expectation.Name)}</h2>\n");
        if (witness is null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p id=\"verdict\" class=\"ok\">verdict: {verdict.Verdict}: it never fails, so there is no failing run to explain.</p>\n");
        }
        else
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p id=\"verdict\" class=\"bad\">verdict: {verdict.Verdict}; it fails with {witness.Events} spontaneous hardware event(s){E(ExplainReport.HowItFails(witness.Events, verdict, scenario))}</p>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"why\">{E(ExplainReport.WhyText(witness, verdict.Expectation, scenario))}</p>\n");
            sb.Append("<h2>Timeline of the witness line</h2>\n");
            sb.Append(Timeline(witness, scenario));
        }

        sb.Append(CultureInfo.InvariantCulture, $"<h2>The explanation</h2>\n<pre id=\"narrative\">{E(ExplainReport.Render(outcome, witness, verdict, Style.Plain))}</pre>\n");
        sb.Append("</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>
    /// The witness as an SVG: two rows (cache, RAM) of the witness line, one column per trace entry; on a board with an
    /// outer cache, a third row between them for the outer (L2) level.
    /// </summary>
    private static string Timeline(Witness w, Scenario scenario)
    {
        var writers = scenario.Writers;
        var columns = new List<(string Label, LineState? State, bool Event)>();
        LineState? current = w.Items.Select(i => i switch
        {
            OpItem { Before: { } b } => b,
            MoveItem m => m.Before,
            _ => null,
        }).FirstOrDefault(s => s is not null);
        columns.Add(("start", current, false));
        var step = 0;
        foreach (var item in w.Items)
        {
            switch (item)
            {
                case StepItem s:
                    step++;
                    columns.Add(($"{step}. {s.Step.Program.Name}: {s.Step.Statement.Text}", current, false));
                    break;
                case OpItem { After: { } a, Op: var op }:
                    current = a;
                    columns.Add((op.Origin, current, false));
                    break;
                case MoveItem m:
                    current = m.After;
                    columns.Add(($"spontaneous {LineSemantics.Describe(m.Move)}", current, true));
                    break;
            }
        }

        const int cell = 26, left = 90, top = 20, labelHeight = 250;
        var outer = columns.Any(c => c.State is { HasOuter: true });
        var rows = outer ? 3 : 2;
        var ramTop = top + ((rows - 1) * cell);
        var width = left + (columns.Count * cell) + 260; // room for the slanted labels
        var height = top + (rows * cell) + labelHeight;
        var sb = new StringBuilder();
        var line = w.LinePa is { } pa ? $"PA 0x{pa:x}" : "line";
        sb.Append(CultureInfo.InvariantCulture, $"<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"witness timeline of {E(line)}\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"4\" y=\"{top + (cell / 2) + 4}\">cache</text>{(outer ? $"<text x=\"4\" y=\"{top + cell + (cell / 2) + 4}\">L2</text>" : string.Empty)}<text x=\"4\" y=\"{ramTop + (cell / 2) + 4}\">RAM</text>\n");
        for (var i = 0; i < columns.Count; i++)
        {
            var (label, state, isEvent) = columns[i];
            var x = left + (i * cell);
            var cache = state?.Cache ?? CacheState.Invalid;
            var cacheFill = cache == CacheState.Invalid ? "#ffffff" : Colour(state!.Cached!);
            var cacheTitle = state is null ? "?" : cache == CacheState.Invalid ? "Invalid" : $"{cache}({state.Cached!.Describe(writers)})";
            var stroke = isEvent ? "#d50000" : "#555";
            sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"cell cache {cache.ToString().ToLowerInvariant()}\" x=\"{x}\" y=\"{top}\" width=\"{cell - 2}\" height=\"{cell - 2}\" fill=\"{cacheFill}\" stroke=\"{stroke}\" stroke-width=\"{(isEvent ? 3 : 1)}\"><title>{E(label)}: cache {E(cacheTitle)}</title></rect>");
            if (cache != CacheState.Invalid)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 8}\" y=\"{top + 17}\">{(cache == CacheState.Dirty ? "D" : "C")}</text>");
            }

            if (outer)
            {
                var l2 = state?.Outer ?? CacheState.Invalid;
                var l2Fill = l2 == CacheState.Invalid ? "#ffffff" : Colour(state!.OuterCached!);
                var l2Title = state is null ? "?" : l2 == CacheState.Invalid ? "Invalid" : $"{l2}({state.OuterCached!.Describe(writers)})";
                sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"cell outer {l2.ToString().ToLowerInvariant()}\" x=\"{x}\" y=\"{top + cell}\" width=\"{cell - 2}\" height=\"{cell - 2}\" fill=\"{l2Fill}\" stroke=\"#555\"><title>{E(label)}: L2 {E(l2Title)}</title></rect>");
                if (l2 != CacheState.Invalid)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 8}\" y=\"{top + cell + 17}\">{(l2 == CacheState.Dirty ? "D" : "C")}</text>");
                }
            }

            var ramFill = state is null ? "#ffffff" : Colour(state.Ram);
            sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"cell ram\" x=\"{x}\" y=\"{ramTop}\" width=\"{cell - 2}\" height=\"{cell - 2}\" fill=\"{ramFill}\" stroke=\"#555\"><title>{E(label)}: RAM {E(state?.Ram.Describe(writers) ?? "?")}</title></rect>");
            sb.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate({x + 12},{ramTop + cell + 6}) rotate(60)\">{E(Shorten(label))}</text>\n");
        }

        sb.Append("</svg>\n<p class=\"legend\">");
        for (var i = 0; i < writers.Count && i < Palette.Length; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<span><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"{Palette[i]}\"/></svg> {E(writers.Name((byte)i))}</span>");
        }

        sb.Append("<span>white = Invalid; C = Clean, D = Dirty; red border = spontaneous event</span></p>\n");
        return sb.ToString();
    }

    private static string Colour(LineBytes bytes) =>
        bytes.IsUniform(0, bytes.Length, bytes[0]) && bytes[0] < Palette.Length ? Palette[bytes[0]] : "#000000";

    private static string Shorten(string s) => s.Length <= 48 ? s : s[..45] + "...";

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
