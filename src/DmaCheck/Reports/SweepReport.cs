using System.Globalization;
using System.Text;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>One point of a sweep: the settings imposed, and what checking the scenario under them gave.</summary>
public sealed record SweepPoint(SettingOverrides Settings, ScenarioOutcome Outcome);

/// <summary><c>dmacheck sweep</c>: a matrix of verdicts and minimum event counts over profiles and settings, as text, JSON or CSV.</summary>
public static class SweepReport
{
    /// <summary>Every combination of the profiles and of each key's values, in the order given (the last key varies fastest).</summary>
    public static IReadOnlyList<SettingOverrides> Combinations(IReadOnlyList<string?> profiles, IReadOnlyList<(string Key, IReadOnlyList<string> Values)> axes)
    {
        IEnumerable<IReadOnlyList<(string, string)>> settings = [[]];
        foreach (var (key, values) in axes)
        {
            settings = settings.SelectMany(prefix => values.Select(v => (IReadOnlyList<(string, string)>)[.. prefix, (key, v)])).ToList();
        }

        return profiles.SelectMany(p => settings.Select(s => new SettingOverrides(p, s))).ToList();
    }

    private static string Cell(ScenarioOutcome o, string expectation)
    {
        if (o.Error != OutcomeError.None)
        {
            return o.Error == OutcomeError.BadInput ? "error" : "kernel bug";
        }

        var v = o.Result!.Verdicts.First(x => x.Expectation.Name == expectation);
        return v.MinEventsToFail is { } n
            ? $"{v.Verdict} ({n}{v.FailsOnEveryQuietRun switch { true => ", every schedule", false => ", some schedules", null => string.Empty }})"
            : v.Verdict.ToString();
    }

    /// <summary>Rows of profile, swept settings, then per expectation one cell (text) or a verdict and a count column (CSV).</summary>
    private static (string[] Header, List<string[]> Rows) Matrix(IReadOnlyList<SweepPoint> points, bool split)
    {
        var keys = points.SelectMany(p => p.Settings.Settings.Select(s => s.Key)).Distinct().ToList();
        var expectations = points.Select(p => p.Outcome.Scenario).FirstOrDefault(s => s is not null)?.Expectations.Select(e => e.Name).ToList() ?? [];
        var header = new[] { "profile" }.Concat(keys)
            .Concat(split ? expectations.SelectMany(e => new[] { $"{e}.verdict", $"{e}.minEventsToFail" }) : expectations).ToArray();
        var rows = points.Select(p => new[] { p.Outcome.Scenario?.Profile.Name ?? p.Settings.Profile ?? "?" }
            .Concat(keys.Select(k => p.Settings.Settings.Where(s => s.Key == k).Select(s => s.Value).FirstOrDefault() ?? "-"))
            .Concat(split ? expectations.SelectMany(e => Cells(p.Outcome, e)) : expectations.Select(e => Cell(p.Outcome, e)))
            .ToArray()).ToList();
        return (header, rows);
    }

    private static string[] Cells(ScenarioOutcome o, string expectation)
    {
        if (o.Error != OutcomeError.None)
        {
            return [Cell(o, expectation), string.Empty];
        }

        var v = o.Result!.Verdicts.First(x => x.Expectation.Name == expectation);
        return [v.Verdict.ToString().ToLowerInvariant(), v.MinEventsToFail?.ToString(CultureInfo.InvariantCulture) ?? string.Empty];
    }

    public static string Text(string file, IReadOnlyList<SweepPoint> points)
    {
        var (header, rows) = Matrix(points, split: false);
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"sweep of {file}: verdict (fewest spontaneous events to fail)");
        foreach (var r in rows.Prepend(header))
        {
            sb.AppendLine(string.Concat(r.Select((c, i) => c.PadRight(widths[i] + 2))).TrimEnd());
        }

        foreach (var p in points.Where(p => p.Outcome.Message is not null || p.Outcome.Result?.Inconclusive is not null))
        {
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"[{p.Settings.Describe()}] {p.Outcome.Message ?? p.Outcome.Result!.Inconclusive}");
        }

        return sb.ToString();
    }

    public static string Csv(IReadOnlyList<SweepPoint> points)
    {
        var (header, rows) = Matrix(points, split: true);
        static string Quote(string s) => s.IndexOfAny([',', '"', '\n']) >= 0 ? $"\"{s.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : s;
        var sb = new StringBuilder();
        foreach (var r in rows.Prepend(header))
        {
            sb.Append(string.Join(',', r.Select(Quote))).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>The sweep as JSON; a shard's (<paramref name="shard"/> of <paramref name="total"/> points) says which slice it is, for <c>dmacheck merge</c>.</summary>
    public static string Json(string file, IReadOnlyList<SweepPoint> points, Shard? shard = null, int total = 0)
    {
        return JsonText.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("version", JsonReport.Version);
            shard?.Write(w, total);
            w.WriteString("file", file);
            w.WriteStartArray("points");
            foreach (var p in points)
            {
                w.WriteStartObject();
                w.WriteString("profile", p.Outcome.Scenario?.Profile.Name ?? p.Settings.Profile);
                w.WriteStartObject("settings");
                foreach (var (k, v) in p.Settings.Settings)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
                if ((p.Outcome.Message ?? p.Outcome.Result?.Inconclusive) is { } why)
                {
                    w.WriteString(p.Outcome.Error == OutcomeError.None ? "inconclusive" : "error", why);
                }

                if (p.Outcome.Error != OutcomeError.None)
                {
                    w.WriteString("errorKind", p.Outcome.Error == OutcomeError.BadInput ? "bad-input" : "kernel-bug");
                }

                w.WriteStartArray("expectations");
                foreach (var v in p.Outcome.Result?.Verdicts ?? [])
                {
                    w.WriteStartObject();
                    w.WriteString("name", v.Expectation.Name);
                    w.WriteString("verdict", v.Verdict.ToString().ToLowerInvariant());
                    w.WriteNumberOrNull("minEventsToFail", v.MinEventsToFail);
                    w.WriteString("quietFailure", v.QuietFailureName);

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    }
}
