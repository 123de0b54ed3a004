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

    public Option<string> Strategy { get; } = Choice("--strategy", "exhaustive (default) or random: sample interleavings, for scenarios too big to exhaust; verdicts are only what the sampled runs show",
        "exhaustive", "random");

    public Option<int> Seed { get; } = Number("--seed", "S", "with --strategy random: the seed (default 1)", 1,
        v => (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n), n), "--seed takes a whole number");

    public Option<int> Runs { get; } = Number("--runs", "N", "with --strategy random: how many runs to sample (default 1000)", 1000,
        v => (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0, n), "--runs takes a positive whole number");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { MaxStates, Timeout, MaxMemory, Threads, NoReduction, Strategy, Seed, Runs })
        {
            command.Options.Add(option);
        }

        command.Validators.Add(r =>
        {
            var random = r.ValueOrDefault(Strategy) == "random";
            foreach (var option in new Option[] { Seed, Runs })
            {
                if (!random && r.GetResult(option) is { Implicit: false })
                {
                    r.AddError($"{option.Name} applies only with --strategy random");
                }
            }
        });
    }

    /// <summary>Options the brute-force explorer has no use for: it is single-threaded, exhaustive and unreduced by design.</summary>
    public IEnumerable<Option> NotForBruteForce => [Threads, NoReduction, Strategy];

    public ExplorationLimits Read(ParseResult parse, Action<ExplorationProgress>? progress) => new(
        parse.GetValue(MaxStates),
        parse.GetValue(Timeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
        parse.GetValue(MaxMemory) is { } mib ? mib << 20 : null,
        parse.GetValue(Threads),
        progress,
        parse.GetValue(Strategy) == "random" ? new RandomStrategy(parse.GetValue(Seed), parse.GetValue(Runs)) : null,
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
