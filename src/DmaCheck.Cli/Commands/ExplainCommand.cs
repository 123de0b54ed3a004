using System.CommandLine;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck explain FILE</c>: the shortest failing run of an expectation, in kernel terms.</summary>
public static class ExplainCommand
{
    public static Command Create(CliContext cli)
    {
        var file = new Argument<string>("FILE") { Description = "the scenario file" };
        var expect = new Option<string>("--expect") { Description = "the expectation to explain (default: the first that can fail)", HelpName = "NAME" };
        var saveReplay = new Option<string>("--save-replay") { Description = "save the witness for 'dmacheck replay'", HelpName = "OUT" };
        var vcd = new Option<string>("--vcd") { Description = "also write the witness as a VCD waveform", HelpName = "OUT" };
        var html = new Option<string>("--html") { Description = "also write the explanation as a self-contained HTML page (verdict, why, timeline)", HelpName = "OUT" };
        var noColor = CliShared.NoColor();
        var limits = new LimitOptions();
        var command = new Command("explain", "the shortest failing run of an expectation, in kernel terms") { file, expect, saveReplay, vcd, html, noColor };
        limits.AddTo(command);
        limits.RequireWitnesses(command, "so there would be no run to explain");
        command.SetAction(parse =>
        {
            var given = parse.GetValue(file)!;
            var path = CliShared.Resolve(given);
            if (!File.Exists(path))
            {
                throw new UsageException($"no such file: {given}");
            }

            var style = cli.Style(parse.GetValue(noColor));
            var display = CliShared.Display(path);
            var outcome = Checker.CheckFile(path, limits.Read(parse, cli.Progress), display, limits.ReadStrategy(parse));
            cli.ClearProgress();
            if (outcome.Result is null || outcome.Explorer is null || outcome.Model is null || outcome.Result.Inconclusive is not null)
            {
                cli.Err.Write(TextReport.Errors([outcome], style));
                cli.Out.Write(TextReport.Render([outcome], style, TimeSpan.Zero));
                return outcome.ExitCode;
            }

            var verdicts = outcome.Result.Verdicts;
            var name = parse.GetValue(expect);
            if (outcome.Result.KernelBugs.Count > 0 && name is null)
            {
                // Some runs crash the kernel: that comes first, with its shortest run.
                cli.Out.Write(ExplainReport.RenderKernelBugs(outcome, style));
                if (verdicts.All(v => v.Verdict == Scenarios.Verdict.Inconclusive))
                {
                    return outcome.ExitCode;
                }

                cli.Out.WriteLine();
            }

            if (outcome.Result.Findings.Count > 0 && name is null)
            {
                cli.Out.Write(ExplainReport.RenderFindings(outcome, style));
                if (verdicts.Count == 0)
                {
                    return outcome.ExitCode;
                }

                cli.Out.WriteLine();
            }

            ExpectationVerdict verdict;
            if (name is not null)
            {
                var names = verdicts.Select(v => v.Expectation.Name).ToList();
                verdict = verdicts.FirstOrDefault(v => v.Expectation.Name == name)
                    ?? throw new UsageException($"{display} has no expectation '{name}' ({(Scenarios.Suggestions.DidYouMean(name, names) is { } hint ? hint + " " : string.Empty)}it has: {string.Join(", ", names)})");
            }
            else
            {
                verdict = verdicts.FirstOrDefault(v => v.MinEventsToFail is not null) ?? verdicts.FirstOrDefault()
                    ?? throw new UsageException($"{display} has no expectations to explain");
            }

            var witness = outcome.Explorer.Failures.TryGetValue(verdict.Expectation.Name, out var failure)
                ? WitnessBuilder.Build(outcome.Model, verdict.Expectation, failure)
                : null;
            cli.Out.Write(ExplainReport.Render(outcome, witness, verdict, style));
            if (parse.GetValue(html) is { } htmlPath)
            {
                AtomicFile.WriteAllText(htmlPath, HtmlReport.RenderExplain(outcome, witness, verdict, Program.Version));
                cli.Err.WriteLine($"HTML report written to {htmlPath}");
            }

            if (witness is null && (parse.GetValue(vcd) is not null || parse.GetValue(saveReplay) is not null))
            {
                var what = parse.GetValue(vcd) is not null ? "--vcd" : "--save-replay";
                cli.Err.WriteLine($"dmacheck: {verdict.Expectation.Name} never fails: there is no witness for {what} to write");
                return 2;
            }

            if (parse.GetValue(vcd) is { } vcdPath && witness is not null)
            {
                AtomicFile.WriteAllText(vcdPath, VcdReport.Render(witness, outcome.Scenario!, Program.Version));
                cli.Err.WriteLine($"waveform written to {vcdPath}");
            }

            if (parse.GetValue(saveReplay) is { } save && witness is not null)
            {
                ReplayFile replay;
                try
                {
                    replay = ReplayFile.From(witness, outcome.Scenario!, Program.Version);
                }
                catch (ReplayException e)
                {
                    cli.Err.WriteLine($"dmacheck: not modelled: {e.Message}");
                    return 3;
                }

                // The scenario is named relative to the replay file, so the pair can move together; a bundled scenario
                // by its short name, which 'replay' finds among the bundled ones wherever the tool is installed.
                var fromReplay = CliShared.IsBundled(path)
                    ? CliShared.Display(path).Replace('\\', '/')
                    : Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(save)) ?? ".", Path.GetFullPath(path)).Replace('\\', '/');
                AtomicFile.WriteAllText(save, (replay with { ScenarioPath = fromReplay }).Write());
                cli.Err.WriteLine($"witness saved to {save}; replay it with: dmacheck replay {save}");
            }

            return outcome.ExitCode;
        });
        return command;
    }
}
