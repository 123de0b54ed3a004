using System.CommandLine;
using System.Globalization;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Cli;

/// <summary>A command-line mistake: printed as <c>dmacheck: message</c> with a pointer to the help, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>What every command runs with: where its output goes, and whether the terminal takes colours.</summary>
public sealed class CliContext(TextWriter stdout, TextWriter stderr, bool colour)
{
    public TextWriter Out { get; } = stdout;

    public TextWriter Err { get; } = stderr;

    /// <summary>Whether stdout may get ANSI colours (a terminal, NO_COLOR unset); <c>--no-color</c> and non-text formats turn it off.</summary>
    public bool Colour { get; } = colour;

    public Style Style(bool noColor, bool text = true) => new(Colour && !noColor && text);

    /// <summary>A progress line on stderr, when stderr is a terminal; never on stdout, so text and JSON stay clean.</summary>
    public Action<ExplorationProgress>? Progress =>
        ReferenceEquals(Err, Console.Error) && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb")
            ? p =>
            {
                var rate = p.Elapsed.TotalSeconds > 0 ? p.States / p.Elapsed.TotalSeconds : 0;
                Err.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\r\u001b[Kdmacheck: {p.States:N0} states ({rate:N0}/s), depth {p.Depth}, {GC.GetTotalMemory(false) >> 20} MiB, {p.Elapsed.TotalSeconds:0.0} s"));
                progressShown = true;
            }
    : null;

    private bool progressShown;

    /// <summary>Erases the progress line, before anything is written to the terminal's stdout.</summary>
    public void ClearProgress()
    {
        if (progressShown)
        {
            Err.Write("\r\u001b[K");
            Err.Flush();
            progressShown = false;
        }
    }
}

/// <summary>Helpers the commands share: option values, scenario paths, and how a path is shown.</summary>
public static class CliShared
{
    /// <summary>Whether the user wrote the option on the command line (not just its default).</summary>
    public static bool Given(this ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>An option's value in a validator, or its default when the value itself is in error (that error is reported).</summary>
    public static T? ValueOrDefault<T>(this System.CommandLine.Parsing.CommandResult result, Option<T> option)
    {
        try
        {
            return result.GetValue(option);
        }
        catch (InvalidOperationException)
        {
            return default;
        }
    }

    /// <summary>A <c>--no-color</c> flag (also <c>--no-colour</c>).</summary>
    public static Option<bool> NoColor() => new("--no-color", "--no-colour") { Description = "no ANSI colours (also: NO_COLOR set, or stdout not a terminal)" };

    /// <summary>A <c>--format</c> option that takes only <paramref name="formats"/>; the first is the default.</summary>
    public static Option<string> Format(string command, params string[] formats)
    {
        var option = new Option<string>("--format")
        {
            Description = $"output format: {string.Join(", ", formats)} (default {formats[0]})",
            HelpName = string.Join('|', formats),
            DefaultValueFactory = _ => formats[0],
        };
        option.CustomParser = r =>
        {
            var value = r.Tokens.Count > 0 ? r.Tokens[^1].Value : formats[0];
            if (formats.Contains(value))
            {
                return value;
            }

            var elsewhere = value switch
            {
                "csv" => " (csv is for 'sweep')",
                "sarif" => " (sarif is for 'check')",
                _ => Scenarios.Suggestions.DidYouMean(value, formats) is { } hint ? $" ({hint})" : string.Empty,
            };
            r.AddError($"--format for '{command}' is {Or(formats)}, not '{value}'{elsewhere}");
            return formats[0];
        };
        option.CompletionSources.Add(formats);
        return option;
    }

    /// <summary><c>--shard K/N</c>: a deterministic slice of the run, for running it on N machines and merging.</summary>
    public static Option<Shard?> ShardOption(string items) => new("--shard")
    {
        Description = $"run only slice K of N of the {items} (i mod N = K-1); 'dmacheck merge' combines the --format json outputs of all N",
        HelpName = "K/N",
        CustomParser = r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : string.Empty;
            var shard = Shard.Parse(text);
            if (shard is null)
            {
                r.AddError($"--shard takes K/N with 1 <= K <= N (such as 2/8), not '{text}'");
            }

            return shard;
        },
    };

    public static string Or(IReadOnlyList<string> words) =>
        words.Count == 1 ? words[0] : $"{string.Join(", ", words.Take(words.Count - 1))} or {words[^1]}";

    /// <summary>The bundled scenarios/ directory beside the tool (the package carries it), or null.</summary>
    public static string? BundledRoot
    {
        get
        {
            var candidate = Path.Combine(AppContext.BaseDirectory, "scenarios");
            return Directory.Exists(candidate) ? candidate : null;
        }
    }

    /// <summary>The scenarios/ directory of a checkout: under the current directory or any parent, else the bundled one.</summary>
    public static string FindScenarios()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "scenarios");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return BundledRoot ?? throw new UsageException("no scenarios/ directory found here or above; name the scenario files to check");
    }

    /// <summary>
    /// A scenario path as the user wrote it, or, when there is nothing there and the path is relative, the bundled
    /// scenario of that name: <c>scenarios/seeds/qcom-scm/case1....dmc</c> (or <c>seeds/qcom-scm/case1....dmc</c>) works
    /// from any directory with the installed tool, as the README shows it.
    /// </summary>
    public static string Resolve(string path)
    {
        if (File.Exists(path) || Directory.Exists(path) || Path.IsPathRooted(path) || BundledRoot is not { } root)
        {
            return path;
        }

        var relative = path.Replace('\\', '/');
        if (relative.StartsWith("./", StringComparison.Ordinal))
        {
            relative = relative[2..];
        }

        if (relative == "scenarios" || relative == "scenarios/")
        {
            return root;
        }

        foreach (var candidate in new[] { relative.StartsWith("scenarios/", StringComparison.Ordinal) ? relative["scenarios/".Length..] : null, relative })
        {
            if (candidate is null)
            {
                continue;
            }

            var full = Path.GetFullPath(Path.Combine(root, candidate));
            if ((File.Exists(full) || Directory.Exists(full)) && IsUnder(full, root))
            {
                return full;
            }
        }

        return path;
    }

    /// <summary>
    /// How a scenario path is shown: relative to the current directory when it is under it, <c>scenarios/...</c> for a
    /// bundled scenario (not the tool store's long path), else the full path.
    /// </summary>
    public static string Display(string path)
    {
        var full = Path.GetFullPath(path);
        var rel = Path.GetRelativePath(Directory.GetCurrentDirectory(), full);
        if (!rel.StartsWith("..", StringComparison.Ordinal) && !Path.IsPathRooted(rel))
        {
            return rel;
        }

        if (BundledRoot is { } root && IsUnder(full, root))
        {
            return Path.Combine("scenarios", Path.GetRelativePath(root, full));
        }

        return full;
    }

    /// <summary>Whether the path is one of the bundled scenarios (and not a file of a checkout the user is in).</summary>
    public static bool IsBundled(string path) =>
        BundledRoot is { } root && IsUnder(Path.GetFullPath(path), root) && Display(path).StartsWith("scenarios", StringComparison.Ordinal)
        && !File.Exists(Display(path));

    private static bool IsUnder(string full, string root)
    {
        var rel = Path.GetRelativePath(Path.GetFullPath(root), full);
        return rel == "." || (!rel.StartsWith("..", StringComparison.Ordinal) && !Path.IsPathRooted(rel));
    }
}
