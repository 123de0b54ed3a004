using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>
/// <c>--format json</c>: <c>{"scenarios":[{"file","name","profile","expectations":[{"name","verdict","minEventsToFail","quietFailure","declared","met"}]}]}</c>.
/// A scenario without verdicts also carries <c>"error"</c>; an inconclusive one carries <c>"inconclusive"</c> with the reason.
/// A scenario some of whose runs crash the kernel carries <c>"error": "kernel-bug"</c>, its verdicts, and
/// <c>"kernelBugs":[{"name","line","column","verdict","minEvents","crashedFinalStates","message"}]</c>.
/// </summary>
public static class JsonReport
{
    public const int Version = 1;

    /// <summary>The report; a shard's (<paramref name="shard"/> of a run of <paramref name="total"/> scenarios) says which slice it is, for <c>dmacheck merge</c>.</summary>
    public static string Render(IReadOnlyList<ScenarioOutcome> outcomes, Shard? shard = null, int total = 0)
    {
        return JsonText.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("version", Version);
            shard?.Write(w, total);
            w.WriteStartArray("scenarios");
            foreach (var o in outcomes)
            {
                w.WriteStartObject();
                w.WriteString("file", o.File);
                w.WriteString("name", o.Scenario?.Title);
                w.WriteString("profile", o.Scenario?.Profile.Name);
                if (o.Error != OutcomeError.None)
                {
                    w.WriteString("error", o.Error == OutcomeError.BadInput ? "bad-input" : "kernel-bug");
                    w.WriteString("message", o.Message);
                }
                else if (o.Result?.Inconclusive is { } why)
                {
                    w.WriteString("inconclusive", why);
                }

                if (o.Result?.Sampled is { } sampled)
                {
                    w.WriteStartObject("sampled");
                    w.WriteNumber("runs", sampled.Runs);
                    w.WriteNumber("seed", sampled.Seed);
                    w.WriteString("meaning", "verdicts over the sampled interleavings only; not proven");
                    w.WriteEndObject();
                }

                if (o.Result is { Stats.Blocked: > 0 and var blocked })
                {
                    w.WriteNumber("blockedFinalStates", blocked);
                }

                if (o.Result is { Stats.Hung: > 0 and var hung })
                {
                    w.WriteNumber("hungFinalStates", hung);
                }

                if (o.Scenario?.Notes is { Count: > 0 } notes)
                {
                    w.WriteStartArray("notes");
                    foreach (var note in notes)
                    {
                        w.WriteStringValue(note);
                    }

                    w.WriteEndArray();
                }

                w.WriteStartArray("expectations");
                foreach (var (v, declared, met) in o.Rows)
                {
                    w.WriteStartObject();
                    w.WriteString("name", v.Expectation.Name);
                    w.WriteString("verdict", v.Verdict switch
                    {
                        Verdict.Always => "always",
                        Verdict.Sometimes => "sometimes",
                        Verdict.Never => "never",
                        _ => "inconclusive",
                    });
                    w.WriteNumberOrNull("minEventsToFail", v.MinEventsToFail);
                    w.WriteString("quietFailure", v.QuietFailureName);

                    w.WriteString("declared", declared?.ToString());
                    if (met is { } m)
                    {
                        w.WriteBoolean("met", m);
                    }
                    else
                    {
                        w.WriteNull("met");
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                if (o.Result?.KernelBugs is { Count: > 0 } bugs)
                {
                    w.WriteStartArray("kernelBugs");
                    foreach (var bug in bugs)
                    {
                        w.WriteStartObject();
                        w.WriteString("name", bug.Name);
                        w.WriteNumber("line", bug.Crash.Span.Line);
                        w.WriteNumber("column", bug.Crash.Span.Column);
                        w.WriteString("verdict", bug.Verdict == Verdict.Always ? "always" : "sometimes");
                        w.WriteNumber("minEvents", bug.MinEvents);
                        w.WriteNumber("crashedFinalStates", bug.CrashedRuns);
                        w.WriteString("message", bug.Crash.Message);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                }

                w.WriteStartArray("findings");
                foreach (var (found, declared) in o.Result?.FindingRows ?? [])
                {
                    w.WriteStartObject();
                    if (found is not null)
                    {
                        var f = found.Finding;
                        w.WriteString("kind", f.Kind);
                        w.WriteString("function", f.Function);
                        w.WriteNumberOrNull("pfn", f.Pfn);
                        w.WriteString("owner", f.Owner.Name);
                        w.WriteString("ownerKind", f.Owner.Kind.ToString().ToLowerInvariant());
                        w.WriteString("severity", f.SeverityText);
                        w.WriteString("message", f.Message);
                        w.WriteString("agent", found.Agent);
                        w.WriteNumber("line", found.Statement.Span.Line);
                        w.WriteNumber("column", found.Statement.Span.Column);
                    }
                    else
                    {
                        w.WriteNull("kind");
                        w.WriteNumber("line", declared!.Span.Line);
                        w.WriteNumber("column", declared.Span.Column);
                    }

                    w.WriteString("declared", declared?.ToString());
                    if (found is null && o.Result!.Partial)
                    {
                        // Not reached before a limit stopped the search, or by the sampled runs: neither met nor missing.
                        w.WriteNull("met");
                    }
                    else
                    {
                        w.WriteBoolean("met", found is not null && declared is not null);
                    }
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
