using System.CommandLine;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck sweep FILE --profile A,B --set KEY=V1,V2</c>: a matrix of verdicts over profiles and settings.</summary>
public static class SweepCommand
{
    public static Command Create(CliContext cli)
    {
        var file = new Argument<string>("FILE") { Description = "the scenario file" };
        var profile = new Option<string[]>("--profile")
        {
            Description = "kernel profiles to sweep, comma-separated (default: the file's own)",
            HelpName = "A,B",
            Arity = ArgumentArity.ExactlyOne,
            CustomParser = r =>
            {
                var names = r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.TrimEntries)).ToArray();
                foreach (var name in names.Where(n => Dma.Profiles.Find(n) is null))
                {
                    var known = Dma.Profiles.All.Select(p => p.Name).ToList();
                    r.AddError(Suggestions.DidYouMean(name, known) is { } hint
                        ? $"unknown profile '{name}' ({hint} 'dmacheck profiles' lists them all)"
                        : $"unknown profile '{name}' (known: {string.Join(", ", known)})");
                }

                return names;
            },
        };
        profile.CompletionSources.Add(_ => Dma.Profiles.All.Select(p => p.Name));
        var set = new Option<string[]>("--set")
        {
            Description = "a switch or setting and its values, KEY=V1,V2 (repeat for more keys)",
            HelpName = "KEY=V1,V2",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = r => r.Tokens.Select(t => t.Value).ToArray(),
        };
        set.CompletionSources.Add(_ => RunSettings.AllKeys.Select(k => k + "="));
        var format = CliShared.Format("sweep", "text", "json", "csv");
        var noColor = CliShared.NoColor();
        var shard = CliShared.ShardOption("points (profile and setting combinations)");
        var limits = new LimitOptions();
        var command = new Command("sweep", "a matrix of verdicts over profiles and settings") { file, profile, set, format, noColor, shard };
        limits.AddTo(command);
        command.SetAction(parse =>
        {
            var given = parse.GetValue(file)!;
            var sets = Assignments(parse.GetValue(set) ?? []);
            var path = CliShared.Resolve(given);
            if (!File.Exists(path))
            {
                throw new UsageException($"no such file: {given}");
            }

            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"cannot read {given}: {e.Message}");
            }

            var formatValue = parse.GetValue(format)!;
            var style = cli.Style(parse.GetValue(noColor), formatValue == "text");
            var exploration = limits.Read(parse, cli.Progress);
            var strategy = limits.ReadStrategy(parse);

            // The file itself must be sound before it is swept.
            var display = CliShared.Display(path);
            var baseline = Checker.CheckText(display, text, exploration, strategy);
            if (baseline.Error == OutcomeError.BadInput)
            {
                cli.Err.Write(TextReport.Errors([baseline], style));
                return 2;
            }

            var profiles = parse.GetValue(profile) is { Length: > 0 } named ? named.Cast<string?>().ToList() : [null];
            var combinations = SweepReport.Combinations(profiles, sets);
            var slice = parse.GetValue(shard);
            var points = (slice is null ? combinations : slice.Take(combinations))
                .Select(o => new SweepPoint(o, Checker.CheckText(display, text, exploration, strategy, o)))
                .ToList();
            cli.ClearProgress();
            cli.Out.Write(formatValue switch
            {
                "json" => SweepReport.Json(display, points, slice, combinations.Count),
                "csv" => SweepReport.Csv(points),
                _ => SweepReport.Text(display, points),
            });
            var codes = points.Select(p => p.Outcome.Error switch
            {
                OutcomeError.BadInput => 2,
                OutcomeError.KernelBug => 1,
                _ => p.Outcome.Inconclusive ? 3 : 0,
            }).ToList();
            return codes.Contains(2) ? 2 : codes.Contains(1) ? 1 : codes.Contains(3) ? 3 : 0;
        });
        return command;
    }

    /// <summary>The <c>--set KEY=V1,V2</c> assignments, each value checked against a probe of the settings.</summary>
    private static List<(string Key, IReadOnlyList<string> Values)> Assignments(IEnumerable<string> given)
    {
        var sets = new List<(string Key, IReadOnlyList<string> Values)>();
        foreach (var assignment in given)
        {
            var eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == assignment.Length - 1)
            {
                var hint = eq < 0 && Suggestions.DidYouMean(assignment.Trim(), RunSettings.AllKeys) is { } h ? $" ({h})" : string.Empty;
                throw new UsageException($"--set takes KEY=V1,V2,..., not '{assignment}'{hint}");
            }

            var key = assignment[..eq].Trim();
            var values = assignment[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries);
            var probe = new RunSettings(Dma.Profiles.All[0], new Kernel.KernelConfig(), Hardware.HardwareConfig.Default);
            foreach (var value in values)
            {
                if (probe.With(key, value, out var error, out _) is null)
                {
                    throw new UsageException($"--set {key}: {error}");
                }
            }

            if (sets.Any(s => s.Key == key))
            {
                throw new UsageException($"--set {key} is given twice: list all its values in one --set");
            }

            sets.Add((key, values));
        }

        return sets;
    }
}
