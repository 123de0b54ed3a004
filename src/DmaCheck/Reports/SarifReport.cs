using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>
/// <c>--format sarif</c>: SARIF 2.1.0, one rule per kind of result, each result located at the scenario file and
/// line (the expectation's line, or the statement at fault). Written by hand: no SARIF package restores here.
/// </summary>
public static class SarifReport
{
    public const string SchemaUri = "https://json.schemastore.org/sarif-2.1.0.json";

    /// <summary>The rules, in a fixed order (their index is the result's ruleIndex).</summary>
    public static IReadOnlyList<(string Id, string Name, string Description, string Level)> Rules { get; } =
    [
        ("DMC001", "expectation-can-fail", "An expectation fails on some legal behaviour of the hardware and kernel, and the scenario does not declare that it may.", "error"),
        ("DMC002", "declared-verdict-differs", "The verdict the checker finds differs from the verdict the scenario declares.", "error"),
        ("DMC003", "expected-failure", "An expectation fails on some behaviour, as the scenario declares: a known bug, reproduced.", "note"),
        ("DMC004", "kernel-bug", "Some run crashes the kernel model: an oops, a BUG, or freeing memory the caller does not own.", "error"),
        ("DMC005", "bad-input", "The scenario is malformed or misuses the language.", "error"),
        ("DMC006", "inconclusive", "No verdict: a limit was reached, or the scenario needs behaviour this version does not model.", "warning"),
        ("DMC007", "undeclared-finding", "A kernel function maps, exports, frees or touches a page its caller does not own (docs/findings.md), and the scenario does not declare it.", "error"),
        ("DMC008", "expected-finding", "A finding the scenario declares: a known bug, reproduced.", "note"),
        ("DMC009", "missing-finding", "The scenario declares a finding that no run produces.", "error"),
    ];

    public static string Render(IReadOnlyList<ScenarioOutcome> outcomes, string toolVersion) =>
        Log(toolVersion, Rules, w =>
        {
            foreach (var o in outcomes)
            {
                foreach (var (rule, message, span) in Results(o))
                {
                    var index = Rules.Select((r, i) => (r, i)).First(p => p.r.Name == rule).i;
                    WriteResult(w, Rules[index].Id, index, Rules[index].Level, message, o.File, span?.Line ?? 1, span?.Column ?? 1);
                }
            }
        });

    /// <summary>A SARIF 2.1.0 log of one run of dmacheck: its rules, then the results <paramref name="results"/> writes.</summary>
    internal static string Log(string toolVersion, IEnumerable<(string Id, string Name, string Description, string Level)> rules, Action<System.Text.Json.Utf8JsonWriter> results) =>
        JsonText.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("$schema", SchemaUri);
            w.WriteString("version", "2.1.0");
            w.WriteStartArray("runs");
            w.WriteStartObject();
            w.WriteStartObject("tool");
            w.WriteStartObject("driver");
            w.WriteString("name", "dmacheck");
            w.WriteString("version", toolVersion);
            w.WriteStartArray("rules");
            foreach (var (id, name, description, level) in rules)
            {
                w.WriteStartObject();
                w.WriteString("id", id);
                w.WriteString("name", name);
                w.WriteStartObject("shortDescription");
                w.WriteString("text", description);
                w.WriteEndObject();
                w.WriteStartObject("defaultConfiguration");
                w.WriteString("level", level);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartArray("results");
            results(w);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        });

    /// <summary>One SARIF 2.1.0 <c>result</c>: the rule, the level, the message and one physical location (a column of 0 is left out).</summary>
    internal static void WriteResult(System.Text.Json.Utf8JsonWriter w, string ruleId, int ruleIndex, string level, string message, string file, long line, int column)
    {
        w.WriteStartObject();
        w.WriteString("ruleId", ruleId);
        w.WriteNumber("ruleIndex", ruleIndex);
        w.WriteString("level", level);
        w.WriteStartObject("message");
        w.WriteString("text", message);
        w.WriteEndObject();
        w.WriteStartArray("locations");
        w.WriteStartObject();
        w.WriteStartObject("physicalLocation");
        w.WriteStartObject("artifactLocation");
        w.WriteString("uri", file.Replace('\\', '/'));
        w.WriteEndObject();
        w.WriteStartObject("region");
        w.WriteNumber("startLine", Math.Max(1L, line));
        if (column > 0)
        {
            w.WriteNumber("startColumn", Math.Max(1, column));
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static IEnumerable<(string Rule, string Message, SourceSpan? Span)> Results(ScenarioOutcome o)
    {
        var first = o.Message?.Split('\n')[0];
        switch (o.Error)
        {
            case OutcomeError.BadInput:
                yield return ("bad-input", first!, o.At);
                yield break;
            case OutcomeError.KernelBug when o.Result is null:
                yield return ("kernel-bug", first!, o.At);
                yield break;
        }

        foreach (var bug in o.Result?.KernelBugs ?? [])
        {
            // A crash some runs reach: the search went on, so the other results follow.
            yield return ("kernel-bug", $"{bug.Name}: {bug.Verdict.ToString().ToLowerInvariant()} (fewest spontaneous hardware events: {bug.MinEvents}): {bug.Crash.Message}", bug.Crash.Span);
        }

        if (o.Result?.Inconclusive is { } why)
        {
            yield return ("inconclusive", why, o.At);
            yield break;
        }

        foreach (var (found, declared) in o.Result?.FindingRows ?? [])
        {
            if (found is null)
            {
                yield return ("missing-finding", $"declared '{declared}' but no run produces it", declared!.Span);
                continue;
            }

            var f = found.Finding;
            var text = $"{f.Kind} in {f.Function} ({f.SeverityText}; owner: {f.Owner.Describe()}): {f.Message}";
            yield return (declared is null ? "undeclared-finding" : "expected-finding", text, found.Statement.Span);
        }

        foreach (var (v, declared, met) in o.Rows)
        {
            var what = v.MinEventsToFail is { } n
                ? $"{v.Expectation.Name} is {v.Verdict.ToString().ToLowerInvariant()}: it fails with {n} spontaneous hardware event(s){v.FailsOnEveryQuietRun switch { true => " on every schedule", false => " on some schedules (a software race)", null => string.Empty }}"
                : $"{v.Expectation.Name} is {v.Verdict.ToString().ToLowerInvariant()}";
            if (met == false)
            {
                yield return declared is null
                    ? ("expectation-can-fail", $"{what} ({o.Scenario!.Profile.Name}); run 'dmacheck explain {o.File} --expect {v.Expectation.Name}'", v.Expectation.Span)
                    : ("declared-verdict-differs", $"{what}, but the scenario declares '{declared}'", v.Expectation.Span);
            }
            else if (v.MinEventsToFail is not null)
            {
                yield return ("expected-failure", $"{what}, as declared ({o.Scenario!.Profile.Name})", v.Expectation.Span);
            }
        }
    }
}
