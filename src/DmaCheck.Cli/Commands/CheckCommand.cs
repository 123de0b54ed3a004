using System.CommandLine;
using System.Diagnostics;
using DmaCheck.Reports;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck check [PATH...]</c>: the verdict table of scenario files or directories.</summary>
public static class CheckCommand
{
    public static Command Create(CliContext cli)
    {
        var paths = new Argument<string[]>("PATH")
        {
            Description = "scenario files or directories (default: the scenarios/ of this checkout, else the bundled ones)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var format = CliShared.Format("check", "text", "json", "sarif");
        var html = new Option<string>("--html") { Description = "also write a self-contained HTML report with witness timelines", HelpName = "OUT" };
        var noColor = CliShared.NoColor();
        var shard = CliShared.ShardOption("scenario files");
        var limits = new LimitOptions();
        var command = new Command("check", "check scenario files (default: the bundled scenarios/)") { paths, format, html, noColor, shard };
        limits.AddTo(command);
        limits.RequireWitnesses(command, "so the report would have no timelines", html);

        command.SetAction(parse =>
        {
            var watch = Stopwatch.StartNew();
            var given = parse.GetValue(paths) ?? [];
            var roots = given.Length > 0 ? given.Select(CliShared.Resolve).ToArray() : [CliShared.FindScenarios()];
            var files = new List<string>();
            foreach (var p in roots)
            {
                if (!File.Exists(p) && !Directory.Exists(p))
                {
                    throw new UsageException($"no such file or directory: {p}");
                }

                files.AddRange(Checker.Expand(p));
            }

            if (files.Count == 0)
            {
                throw new UsageException($"no *.dmc scenario files under {string.Join(", ", roots.Select(CliShared.Display))}");
            }

            var slice = parse.GetValue(shard);
            var total = files.Count;
            files = slice is null ? files : [.. slice.Take(files)];

            var formatValue = parse.GetValue(format)!;
            var style = cli.Style(parse.GetValue(noColor), formatValue == "text");
            var exploration = limits.Read(parse, cli.Progress);
            var strategy = limits.ReadStrategy(parse);
            var outcomes = files.Select(f => Checker.CheckFile(f, exploration, CliShared.Display(f), strategy)).ToList();
            cli.ClearProgress();
            cli.Err.Write(TextReport.Errors(outcomes, style));
            if (parse.GetValue(html) is { } htmlPath)
            {
                AtomicFile.WriteAllText(htmlPath, HtmlReport.Render(outcomes, Program.Version));
                cli.Err.WriteLine($"HTML report written to {htmlPath}");
            }

            cli.Out.Write(formatValue switch
            {
                "json" => JsonReport.Render(outcomes, slice, total),
                "sarif" => SarifReport.Render(outcomes, Program.Version),
                _ => TextReport.Render(outcomes, style, watch.Elapsed),
            });
            return Checker.ExitCode(outcomes);
        });
        return command;
    }
}
