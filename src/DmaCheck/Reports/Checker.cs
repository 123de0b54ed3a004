using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>Why a scenario file has no verdicts.</summary>
public enum OutcomeError
{
    None,

    /// <summary>The file is malformed or misuses the language: exit code 2.</summary>
    BadInput,

    /// <summary>Some run crashes the kernel model (oops, BUG, bad free): exit code 1. The result, when there is one, has a verdict per crash (<see cref="ExplorationResult.KernelBugs"/>).</summary>
    KernelBug,
}

/// <summary>What checking one scenario file produced.</summary>
public sealed record ScenarioOutcome(string File, Scenario? Scenario, ExplorationResult? Result, OutcomeError Error, string? Message, LineSetExplorer? Explorer, ScenarioModel? Model)
{
    /// <summary>Where the error or the not-modelled statement is, when there is one.</summary>
    public SourceSpan? At { get; init; }

    /// <summary>Whether each expectation met its declared verdict; an undeclared one must never fail.</summary>
    public IEnumerable<(ExpectationVerdict Verdict, DeclaredVerdict? Declared, bool? Met)> Rows =>
        Result is null ? [] : Result.Verdicts.Select(v =>
        {
            Scenario!.Declared.TryGetValue(v.Expectation.Name, out var declared);
            bool? met = v.Verdict == Verdict.Inconclusive ? null
                : declared is null ? v.Verdict == Verdict.Always
                : declared.IsMetBy(v.Verdict, v.MinEventsToFail, v.FailsOnEveryQuietRun);
            return (v, declared, met);
        });

    public bool Inconclusive => Result?.Inconclusive is not null;

    public bool AllMet => Error == OutcomeError.None && !Inconclusive && Rows.All(r => r.Met == true) && Result!.FindingsMet;

    /// <summary>The scenario's exit code on its own (design §6).</summary>
    public int ExitCode => Error switch
    {
        OutcomeError.BadInput => 2,
        OutcomeError.KernelBug => 1,
        _ when Rows.Any(r => r.Met == false) || Result?.FindingsMet == false => 1,
        _ when Inconclusive => 3,
        _ => 0,
    };
}

/// <summary>Loads, binds and explores scenario files, turning every failure into an outcome with a message.</summary>
public static class Checker
{
    /// <summary>Checks a scenario file; <paramref name="strategy"/> makes the strategy to explore it with (default: <see cref="ExhaustiveStrategy"/>).</summary>
    public static ScenarioOutcome CheckFile(string path, ExplorationLimits limits, string? displayPath = null, Func<IExplorationStrategy>? strategy = null)
    {
        displayPath ??= path;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ScenarioOutcome(displayPath, null, null, OutcomeError.BadInput, $"{displayPath}: error: cannot read the file: {e.Message}", null, null);
        }

        return CheckText(displayPath, text, limits, strategy);
    }

    /// <summary>
    /// Checks a scenario's text with a new strategy from <paramref name="strategy"/> (default: <see cref="ExhaustiveStrategy"/>);
    /// the outcome keeps its witnesses when the strategy keeps them.
    /// </summary>
    public static ScenarioOutcome CheckText(string displayPath, string text, ExplorationLimits limits, Func<IExplorationStrategy>? strategy = null, SettingOverrides? overrides = null)
    {
        Scenario scenario;
        try
        {
            scenario = Binder.Load(displayPath, text, overrides ?? SettingOverrides.None);
        }
        catch (ScenarioException e)
        {
            return new ScenarioOutcome(displayPath, null, null, OutcomeError.BadInput, e.Format(), null, null) { At = e.Span };
        }

        var model = new ScenarioModel(scenario);
        var chosen = strategy?.Invoke() ?? new ExhaustiveStrategy();
        try
        {
            var result = chosen.Explore(model, limits);
            if (result.NotModelled is { } stop)
            {
                // Some run needs what the model does not have: nothing can be concluded, whatever the other runs did.
                var at = scenario.StatementAt(stop.Span);
                return NotModelled(scenario, displayPath, $"{scenario.File}:{stop.Span.Line}:{stop.Span.Column}: inconclusive: {stop.Message}\n    in: {at.Text}", model)
                    with { At = stop.Span };
            }

            if (result.KernelBugs.Count > 0)
            {
                // Some run crashes the kernel: a failure (exit 1), reported with its own verdict line; the search went on.
                var first = result.KernelBugs[0].Crash;
                var statement = scenario.StatementAt(first.Span);
                return new ScenarioOutcome(displayPath, scenario, result, OutcomeError.KernelBug,
                    $"{displayPath}:{first.Span.Line}:{first.Span.Column}: error: {first.Message}\n    in: {statement.Text}", chosen.Witnesses, model)
                { At = first.Span };
            }

            return new ScenarioOutcome(displayPath, scenario, result, OutcomeError.None, null, chosen.Witnesses, model);
        }
        catch (RunException e)
        {
            var message = $"{e.Location}: {(e.Kind == RunErrorKind.NotModelled ? "inconclusive" : "error")}: {e.Message}\n    in: {e.Statement.Text}";
            var outcome = e.Kind switch
            {
                RunErrorKind.BadScenario => new ScenarioOutcome(displayPath, scenario, null, OutcomeError.BadInput,
                    new ScenarioException(scenario.Source, e.Statement.Span, e.Message).Format(), null, model),
                RunErrorKind.KernelBug => new ScenarioOutcome(displayPath, scenario, null, OutcomeError.KernelBug, message, null, model),
                _ => NotModelled(scenario, displayPath, message, model),
            };
            return outcome with { At = e.Statement.Span };
        }
        catch (NotModelledException e)
        {
            return NotModelled(scenario, displayPath, $"{displayPath}: inconclusive: {e.Message}", model);
        }
    }

    private static ScenarioOutcome NotModelled(Scenario scenario, string displayPath, string message, ScenarioModel model)
    {
        var verdicts = scenario.Expectations.Select(e => new ExpectationVerdict(e, Verdict.Inconclusive, null, 0, 0)).ToList();
        var result = new ExplorationResult(scenario, LineSetExplorer.Name, verdicts, new ExplorationStats(0, 0, 0, TimeSpan.Zero), message, []);
        return new ScenarioOutcome(displayPath, scenario, result, OutcomeError.None, message, null, model);
    }

    /// <summary>The scenario files a path names: the file itself, or every <c>*.dmc</c> below a directory, sorted.</summary>
    public static IEnumerable<string> Expand(string path) =>
        Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*.dmc", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [path];

    /// <summary>The combined exit code: bad input wins, then a failure, then inconclusive.</summary>
    public static int ExitCode(IEnumerable<ScenarioOutcome> outcomes)
    {
        var codes = outcomes.Select(o => o.ExitCode).ToList();
        return codes.Contains(2) ? 2 : codes.Contains(1) ? 1 : codes.Contains(3) ? 3 : 0;
    }
}
