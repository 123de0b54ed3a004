using System.Globalization;
using System.Net;
using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>
/// <c>--html OUT</c>: one self-contained page (no scripts, no network, no external assets) with the verdict
/// table, the errors and notes, and for every expectation that can fail an SVG timeline of its shortest witness:
/// the witness line's cache and RAM as rows, trace steps as columns, coloured by state and by whose data.
/// </summary>
public static class HtmlReport
{
    private static readonly string[] Palette = ["#9e9e9e", "#e0e0e0", "#4caf50", "#2196f3", "#ff9800", "#9c27b0", "#009688", "#795548", "#e91e63", "#cddc39"];

    public static string Render(IReadOnlyList<ScenarioOutcome> outcomes, string toolVersion)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dmacheck report</title>\n<style>\n");
        sb.Append("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}");
        sb.Append("th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:14px}th{background:#f4f4f4}");
        sb.Append(".ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}.warn{color:#ef6c00;font-weight:bold}");
        sb.Append("pre{background:#f8f8f8;padding:.6em;overflow-x:auto}svg text{font-family:monospace;font-size:11px}.legend span{display:inline-block;margin-right:1em}");
        sb.Append("\n</style>\n</head>\n<body>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>dmacheck {E(toolVersion)}</h1>\n");
        sb.Append("<table id=\"verdicts\">\n<tr><th>scenario</th><th>profile</th><th>expectation</th><th>verdict</th><th>min events</th><th>declared</th><th>result</th></tr>\n");
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
        var messages = outcomes.Where(o => o.Message is not null || o.Result?.Inconclusive is not null || o.Scenario?.Notes.Count > 0).ToList();
        if (messages.Count > 0)
        {
            sb.Append("<h2>Errors and notes</h2>\n<div id=\"findings\">\n");
            foreach (var o in messages)
            {
                if ((o.Message ?? o.Result?.Inconclusive) is { } m)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"<pre class=\"{(o.Error == OutcomeError.None ? "warn" : "bad")}\">{E(m)}</pre>\n");
                }

                foreach (var note in o.Scenario?.Notes ?? [])
                {
                    sb.Append(CultureInfo.InvariantCulture, $"<p>{E(o.File)}: note: {E(note)}</p>\n");
                }
            }

            sb.Append("</div>\n");
        }

        foreach (var o in outcomes.Where(o => o.Explorer is not null && o.Model is not null))
        {
            foreach (var v in o.Result!.Verdicts)
            {
                if (o.Explorer!.Failures.TryGetValue(v.Expectation.Name, out var failure))
                {
                    var w = WitnessBuilder.Build(o.Model!, v.Expectation, failure);
                    sb.Append(CultureInfo.InvariantCulture, $"<h2>{E(o.File)}: {E(v.Expectation.Name)} fails with {w.Events} spontaneous event(s)</h2>\n");
                    sb.Append(Timeline(w, o.Scenario!));
                }
            }
        }

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
