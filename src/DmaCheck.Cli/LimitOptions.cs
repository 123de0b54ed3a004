using System.CommandLine;
using System.Globalization;
using DmaCheck.Exploration;

namespace DmaCheck.Cli;

/// <summary>The search options of the commands that explore (<c>check</c>, <c>explain</c>, <c>sweep</c>): limits, threads, reduction, strategy.</summary>
public sealed class LimitOptions
{
    public Option<long> MaxStates { get; } = Number("--max-states", "N", $"stop with 'inconclusive' after N states (default {ExplorationLimits.Default.MaxStates})",
        ExplorationLimits.Default.MaxStates, v => (long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0, n),
        "--max-states takes a positive whole number");

    public Option<double?> Timeout { get; } = Number<double?>("--timeout", "SECONDS", "stop with 'inconclusive' after this long", null,
        v => (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s >= 0 && s < 1e7, (double?)s),
        "--timeout takes seconds");

    public Option<long?> MaxMemory { get; } = Number<long?>("--max-memory", "MIB", "stop with 'inconclusive' when the managed heap grows past this many MiB", null,
        v => (long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m > 0 && m < 1L << 30, (long?)m),
        "--max-memory takes MiB as a positive whole number");

    public Option<int> Threads { get; } = Number("--threads", "N", "expand each search level with N threads (default 1; results are the same for every N)", 1,
        v => (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 256, n),
        "--threads takes a whole number from 1 to 256");

    public Option<bool> NoReduction { get; } = new("--no-reduction")
    {
        Description = "explore every interleaving, also those that only reorder commuting steps (slower; the results are the same)",
    };

    public Option<string> Strategy { get; } = Choice("--strategy",
        $"how to explore (default {ExplorationStrategies.Default.Name}): {string.Join("; ", ExplorationStrategies.All.Select(e => $"{e.Name}: {e.Description}"))}",
        [.. ExplorationStrategies.Names]);

    public Option<int> Seed { get; } = Number("--seed", "S", $"with --strategy random: the seed (default {RandomSampling.Default.Seed})", RandomSampling.Default.Seed,
        v => (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n), n), "--seed takes a whole number");

    public Option<int> Runs { get; } = Number("--runs", "N", $"with --strategy random: how many runs to sample (default {RandomSampling.Default.Runs})", RandomSampling.Default.Runs,
        v => (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0, n), "--runs takes a positive whole number");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { MaxStates, Timeout, MaxMemory, Threads, NoReduction, Strategy, Seed, Runs })
        {
            command.Options.Add(option);
        }

        command.Validators.Add(r =>
        {
            var strategy = ExplorationStrategies.Find(r.ValueOrDefault(Strategy) ?? string.Empty) ?? ExplorationStrategies.Default;
            if (strategy.Takes.HasFlag(StrategyTakes.Schedule))
            {
                r.AddError($"--strategy {strategy.Name} follows one saved run, and '{command.Name}' has none to follow: run 'dmacheck replay FILE.replay' (saved by 'dmacheck explain FILE --save-replay OUT')");
                return;
            }

            foreach (var (option, takes) in Tunings)
            {
                if (!strategy.Takes.HasFlag(takes) && r.GetResult(option) is { Implicit: false })
                {
                    var takers = ExplorationStrategies.All.Where(e => e.Takes.HasFlag(takes)).Select(e => e.Name).ToList();
                    r.AddError($"{option.Name} does not apply to --strategy {strategy.Name} (only --strategy {CliShared.Or(takers)} takes it)");
                }
            }
        });
    }

    /// <summary>The options that tune one kind of strategy, each with what a strategy must take for it to apply.</summary>
    private IEnumerable<(Option Option, StrategyTakes Takes)> Tunings =>
        [(Threads, StrategyTakes.Threads), (NoReduction, StrategyTakes.Reduction), (Seed, StrategyTakes.Sampling), (Runs, StrategyTakes.Sampling)];

    /// <summary>The strategy <c>--strategy</c> names (the default when not given).</summary>
    public StrategyEntry Chosen(ParseResult parse) => ExplorationStrategies.Get(parse.GetValue(Strategy)!);

    /// <summary>
    /// Refuses (as a parse error) a strategy that keeps no witnesses, for a command or option that shows them:
    /// <paramref name="why"/> completes "--strategy NAME ...", given <paramref name="option"/> when that is the one refused.
    /// </summary>
    public void RequireWitnesses(Command command, string why, Option? option = null)
    {
        command.Validators.Add(r =>
        {
            var strategy = ExplorationStrategies.Find(r.ValueOrDefault(Strategy) ?? string.Empty) ?? ExplorationStrategies.Default;
            if (!strategy.KeepsWitnesses && !strategy.Takes.HasFlag(StrategyTakes.Schedule) && (option is null || r.GetResult(option) is { Implicit: false }))
            {
                r.AddError(option is null
                    ? $"--strategy {strategy.Name} does not apply to '{command.Name}': it keeps no witnesses, {why}"
                    : $"{option.Name} does not apply to --strategy {strategy.Name}: it keeps no witnesses, {why}");
            }
        });
    }

    /// <summary>
    /// A maker of the chosen strategy, one new instance per scenario explored, with the arguments the options give it
    /// (<c>--seed</c> and <c>--runs</c> for a sampling one).
    /// </summary>
    public Func<IExplorationStrategy> ReadStrategy(ParseResult parse)
    {
        var entry = Chosen(parse);
        var arguments = new StrategyArguments(Sampling: new RandomSampling(parse.GetValue(Seed), parse.GetValue(Runs)));
        return () => entry.Create(arguments);
    }

    public ExplorationLimits Read(ParseResult parse, Action<ExplorationProgress>? progress) => new(
        parse.GetValue(MaxStates),
        parse.GetValue(Timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
        parse.GetValue(MaxMemory) is { } mib ? mib << 20 : null,
        parse.GetValue(Threads),
        progress,
        !parse.GetValue(NoReduction));

    /// <summary>An option with one value, parsed by <paramref name="parse"/> (null: refused with <paramref name="error"/>).</summary>
    public static Option<T> Number<T>(string name, string helpName, string description, T fallback, Func<string, (bool Ok, T Value)> parse, string error)
    {
        return new Option<T>(name)
        {
            Description = description,
            HelpName = helpName,
            DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : string.Empty;
                var (ok, value) = parse(text);
                if (ok)
                {
                    return value;
                }

                r.AddError($"{error}, not '{text}'");
                return fallback;
            },
        };
    }

    /// <summary>An option whose value is one of <paramref name="values"/> (the first is the default), with "did you mean".</summary>
    public static Option<string> Choice(string name, string description, params string[] values)
    {
        var option = new Option<string>(name)
        {
            Description = description,
            HelpName = string.Join('|', values),
            DefaultValueFactory = _ => values[0],
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : values[0];
                if (values.Contains(text))
                {
                    return text;
                }

                var hint = Scenarios.Suggestions.DidYouMean(text, values) is { } h ? $" ({h})" : string.Empty;
                r.AddError($"{name} is {CliShared.Or(values)}, not '{text}'{hint}");
                return values[0];
            },
        };
        option.CompletionSources.Add(values);
        return option;
    }
}
