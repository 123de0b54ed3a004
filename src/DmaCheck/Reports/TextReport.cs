using System.Globalization;
using System.Text;

namespace DmaCheck.Reports;

/// <summary>Terminal colours, on only when asked for (stdout is a TTY and NO_COLOR is unset).</summary>
public sealed record Style(bool Colour)
{
    public static Style Plain { get; } = new(false);

    public string Good(string s) => Colour ? $"\u001b[32m{s}\u001b[0m" : s;

    public string Bad(string s) => Colour ? $"\u001b[31;1m{s}\u001b[0m" : s;

    public string Warn(string s) => Colour ? $"\u001b[33m{s}\u001b[0m" : s;

    public string Dim(string s) => Colour ? $"\u001b[2m{s}\u001b[0m" : s;
}

/// <summary>The verdict table of <c>dmacheck check</c>, in the spirit of herd7's output.</summary>
public static class TextReport
{
    public static string Render(IReadOnlyList<ScenarioOutcome> outcomes, Style style, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        var rows = new List<string[]>();
        var marks = new List<string>();
        foreach (var o in outcomes)
        {
            if (o.Result is null)
            {
                continue;
            }

            foreach (var (v, declared, met) in o.Rows)
            {
                rows.Add([
                    o.File,
                    o.Scenario!.Profile.Name,
                    v.Expectation.Name,
                    v.Verdict.ToString(),
                    v.MinEventsCell,
                    declared?.ToString() ?? "(none)",
                ]);
                marks.Add(met switch
                {
                    true => style.Good("ok"),
                    false => style.Bad(declared is null ? "FAILS (undeclared)" : "DIFFERS"),
                    null => style.Warn("INCONCLUSIVE"),
                });
            }

            foreach (var bug in o.Result.KernelBugs)
            {
                // A kernel crash some runs reach: always a failure.
                rows.Add([o.File, o.Scenario!.Profile.Name, bug.Name, bug.Verdict.ToString(), bug.MinEvents.ToString(CultureInfo.InvariantCulture), "(none)"]);
                marks.Add(style.Bad("KERNEL BUG"));
            }
        }

        string[] header = ["scenario", "profile", "expectation", "verdict", "min events", "declared"];
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        if (rows.Count > 0)
        {
            sb.AppendLine(Row(header, widths) + "result");
            for (var i = 0; i < rows.Count; i++)
            {
                sb.AppendLine(Row(rows[i], widths) + marks[i]);
            }
        }

        var findingLines = new List<string>();
        foreach (var o in outcomes)
        {
            foreach (var (found, declared) in o.Result?.FindingRows ?? [])
            {
                findingLines.Add(FindingLine(o, found, declared, style));
            }
        }

        if (findingLines.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("findings:");
            foreach (var line in findingLines)
            {
                sb.Append(line);
            }
        }

        foreach (var o in outcomes)
        {
            if (o.Error != OutcomeError.None)
            {
                continue;
            }

            if (o.Message is not null || o.Result?.Inconclusive is not null)
            {
                sb.AppendLine();
            }

            foreach (var (warning, isNote) in Warnings(o))
            {
                sb.AppendLine(isNote ? style.Dim(warning) : style.Warn(warning));
            }
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Summary(outcomes)} in {elapsed.TotalMilliseconds:0} ms");
        return sb.ToString();
    }

    /// <summary>
    /// What the table cannot say about a scenario that ran: why it is inconclusive or sampled, final states where an
    /// agent never finished or hung, and the model's notes (<c>IsNote</c>), in the order the text report prints them.
    /// </summary>
    public static IEnumerable<(string Text, bool IsNote)> Warnings(ScenarioOutcome o)
    {
        if (o.Error != OutcomeError.None)
        {
            yield break;
        }

        if (o.Message is not null)
        {
            yield return (o.Message, false);
        }
        else if (o.Result?.Inconclusive is { } why)
        {
            yield return ($"{o.File}: inconclusive: {why}", false);
        }

        if (o.Result?.Sampled is { } sampled)
        {
            yield return ($"{o.File}: {sampled.Describe()}", false);
        }

        if (o.Result is { Stats.Blocked: > 0 and var blocked })
        {
            yield return ($"{o.File}: warning: on {blocked} final state(s) some agent never finished: it waits for an event or a value nobody provides", false);
        }

        if (o.Result is { Stats.Hung: > 0 and var hung })
        {
            yield return ($"{o.File}: warning: on {hung} final state(s) an agent hung at a poll: it gave up after max N misses, or the value it polls for can never arrive", false);
        }

        foreach (var note in o.Scenario?.Notes ?? [])
        {
            yield return ($"{o.File}: note: {note}", true);
        }
    }

    /// <summary>The summary line, without the time it took: counts of scenarios, expectations, findings and what is not as declared.</summary>
    public static string Summary(IReadOnlyList<ScenarioOutcome> outcomes)
    {
        var sb = new StringBuilder();
        var expectations = outcomes.Sum(o => o.Rows.Count());
        var asDeclared = outcomes.Sum(o => o.Rows.Count(r => r.Met == true));
        var differ = outcomes.Sum(o => o.Rows.Count(r => r.Met == false));
        var inconclusive = outcomes.Sum(o => o.Rows.Count(r => r.Met is null));
        var errors = outcomes.Count(o => o.Error != OutcomeError.None);
        var findings = outcomes.Sum(o => o.Result?.Findings.Count ?? 0);
        var findingsOff = outcomes.Sum(o => o.Result?.FindingRows.Count(r => (r.Found is null && !o.Result.Partial) || r.Declared is null) ?? 0);
        var findingsNotReached = outcomes.Where(o => o.Result?.Partial == true).Sum(o => o.Result!.FindingRows.Count(r => r.Found is null));
        var inconclusiveScenarios = outcomes.Count(o => o.Inconclusive);
        var hungFinals = outcomes.Sum(o => o.Result?.Stats.Hung ?? 0);
        sb.Append(CultureInfo.InvariantCulture, $"{outcomes.Count} scenario(s), {expectations} expectation(s): {asDeclared} as declared, {differ} differ, {inconclusive} inconclusive, {errors} error(s)");
        if (findings > 0 || findingsOff > 0 || findingsNotReached > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"; {findings} finding(s), {findingsOff} not as declared");
        }

        if (findingsNotReached > 0)
        {
            var sampled = outcomes.Any(o => o.Result?.Sampled is not null && o.Result.FindingRows.Any(r => r.Found is null));
            var limited = outcomes.Any(o => o.Inconclusive && o.Result!.FindingRows.Any(r => r.Found is null));
            sb.Append(CultureInfo.InvariantCulture, $", {findingsNotReached} declared not reached ({(sampled && limited ? "inconclusive or sampled" : sampled ? "sampled" : "inconclusive")})");
        }

        if (hungFinals > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"; {hungFinals} hung final state(s)");
        }

        if (inconclusiveScenarios > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"; {inconclusiveScenarios} scenario(s) inconclusive");
        }

        return sb.ToString();
    }

    /// <summary>The diagnostics of scenarios that have no verdicts (bad input, kernel crashes), for stderr.</summary>
    public static string Errors(IReadOnlyList<ScenarioOutcome> outcomes, Style style)
    {
        var sb = new StringBuilder();
        foreach (var o in outcomes.Where(o => o.Error != OutcomeError.None))
        {
            sb.AppendLine(style.Bad(o.Message!));
        }

        return sb.ToString();
    }

    /// <summary>One finding (or a declared one that did not happen), with where, what, and whether it was declared.</summary>
    internal static string FindingLine(ScenarioOutcome o, Exploration.FoundFinding? found, Scenarios.DeclaredFinding? declared, Style style)
    {
        if (found is null)
        {
            // A search that stopped early proves nothing about what it did not reach.
            return o.Result?.Sampled is not null
                ? $"  {o.File}:{declared!.Span.Line}:{declared.Span.Column}: {style.Warn("not reached (sampled)")}: declared '{declared}'; none of the sampled runs produced it\n"
                : o.Inconclusive
                ? $"  {o.File}:{declared!.Span.Line}:{declared.Span.Column}: {style.Warn("not reached (inconclusive)")}: declared '{declared}'; the search stopped before any run produced it\n"
                : $"  {o.File}:{declared!.Span.Line}:{declared.Span.Column}: {style.Bad("MISSING")}: declared '{declared}' but no run produces it\n";
        }

        var f = found.Finding;
        var at = found.Statement.Span;
        var mark = declared is null ? style.Bad("UNDECLARED") : style.Good("ok");
        var pfn = f.Pfn is { } p ? $" pfn 0x{p:x}" : string.Empty;
        return $"  {o.File}:{at.Line}:{at.Column}: {f.SeverityText}: {f.Kind} in {f.Function}{pfn} (owner: {f.Owner.Describe()}) {mark}\n" +
            $"      {f.Message}\n";
    }

    private static string Row(string[] cells, int[] widths) =>
        string.Concat(cells.Select((c, i) => c.PadRight(widths[i] + 2)));
}
