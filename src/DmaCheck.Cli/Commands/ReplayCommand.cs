using System.CommandLine;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck replay FILE.replay</c>: re-executes a saved witness step by step.</summary>
public static class ReplayCommand
{
    public static Command Create(CliContext cli)
    {
        var file = new Argument<string>("FILE.replay") { Description = "a witness saved by 'dmacheck explain --save-replay'" };
        var scenarioOption = new Option<string>("--scenario") { Description = "the scenario file, when it is not where the replay file says", HelpName = "PATH" };
        var vcd = new Option<string>("--vcd") { Description = "also write the witness as a VCD waveform", HelpName = "OUT" };
        var noColor = CliShared.NoColor();
        var command = new Command("replay", "re-execute a saved witness step by step") { file, scenarioOption, vcd, noColor };
        command.SetAction(parse =>
        {
            var given = parse.GetValue(file)!;
            var path = given;
            var style = cli.Style(parse.GetValue(noColor));
            ReplayFile replay;
            try
            {
                replay = ReplayFile.Parse(File.ReadAllText(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"cannot read {path}: {e.Message}");
            }
            catch (ReplayException e)
            {
                cli.Err.WriteLine($"{path}: error: {e.Message}");
                return 2;
            }

            if (replay.ToolVersion != Program.Version)
            {
                cli.Err.WriteLine($"{path}: note: saved by dmacheck {replay.ToolVersion}, replayed by {Program.Version}");
            }

            var scenarioPath = parse.GetValue(scenarioOption) is { } named
                ? CliShared.Resolve(named)
                : FindScenario(path, replay.ScenarioPath)
                    ?? throw new UsageException($"the witness is for {replay.ScenarioPath}, which is not here; name it with --scenario PATH");
            if (!File.Exists(scenarioPath))
            {
                throw new UsageException($"no such file: {scenarioPath}");
            }

            Scenario scenario;
            var display = CliShared.Display(scenarioPath);
            try
            {
                scenario = Binder.Load(display, File.ReadAllText(scenarioPath));
            }
            catch (ScenarioException e)
            {
                cli.Err.WriteLine(e.Format());
                return 2;
            }

            var outcome = new ScenarioOutcome(display, scenario, null, OutcomeError.None, null, null, new ScenarioModel(scenario));

            // Replay is one more strategy over the same model: it follows the saved run instead of searching.
            var strategy = (ReplayStrategy)ExplorationStrategies.Get(ReplayStrategy.StrategyName).Create(new StrategyArguments(Schedule: replay));
            ExplorationResult result;
            try
            {
                result = strategy.Explore(outcome.Model!, ExplorationLimits.Default);
            }
            catch (ReplayException e)
            {
                cli.Err.WriteLine($"{path}: error: {e.Message}");
                return 2;
            }
            catch (RunException e)
            {
                cli.Err.WriteLine($"{e.Location}: error: {e.Message}");
                return e.Kind == RunErrorKind.NotModelled ? 3 : e.Kind == RunErrorKind.KernelBug ? 1 : 2;
            }

            var witness = strategy.Witness!;
            var reproduces = strategy.Reproduces;
            if (parse.GetValue(vcd) is { } vcdPath)
            {
                AtomicFile.WriteAllText(vcdPath, VcdReport.Render(witness, scenario, Program.Version));
                cli.Err.WriteLine($"waveform written to {vcdPath}");
            }

            var verdict = result.Verdicts.First(v => v.Expectation.Name == witness.Expectation.Name);
            cli.Out.Write(ExplainReport.Render(outcome with { Result = result }, witness, verdict, style, replayed: true));
            cli.Out.WriteLine(reproduces
                ? style.Bad($"replay: the failure of {witness.Expectation.Name} reproduces with {witness.Events} spontaneous event(s)")
                : style.Good($"replay: {witness.Expectation.Name} holds at the end of this run: the failure does not reproduce"));
            return reproduces ? 0 : 1;
        });
        return command;
    }

    /// <summary>
    /// The scenario a replay file names: relative to the replay file (how 'explain --save-replay' writes it), else
    /// relative to the current directory (files saved before that), else a bundled scenario, else a file of that name
    /// beside the replay file.
    /// </summary>
    private static string? FindScenario(string replayPath, string named)
    {
        var replayDir = Path.GetDirectoryName(Path.GetFullPath(replayPath)) ?? ".";
        string[] candidates = Path.IsPathRooted(named)
            ? [named]
            : [Path.Combine(replayDir, named), named, CliShared.Resolve(named), Path.Combine(replayDir, Path.GetFileName(named))];
        return candidates.FirstOrDefault(File.Exists);
    }
}
