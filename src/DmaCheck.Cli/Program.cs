using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;
using DmaCheck.Cli.Commands;
using DmaCheck.Scenarios;

namespace DmaCheck.Cli;

/// <summary>
/// The <c>dmacheck</c> command, on System.CommandLine: each command is one file under Commands/ with its own options,
/// and an option a command does not take is an error (exit code 2), never ignored.
/// </summary>
public static class Program
{
    /// <summary>The commands, in the order the help lists them. A new command is a new file and one line here.</summary>
    private static readonly Func<CliContext, Command>[] Commands =
    [
        CheckCommand.Create,
        ExplainCommand.Create,
        ReplayCommand.Create,
        SweepCommand.Create,
        ProfilesCommand.Create,
        MergeCommand.Create,
        CompletionCommand.Create,
    ];

    public const string Usage = """
        dmacheck: an executable model of the Linux DMA-mapping subsystem and the hardware under it.

        usage:
          dmacheck check [PATH...] [--format text|json|sarif] [--html OUT] [search options]
                                               check scenario files (default: the bundled scenarios/)
          dmacheck explain FILE [--expect NAME] [--save-replay OUT] [--vcd OUT] [search options]
                                               the shortest failing run of an expectation, in kernel terms
          dmacheck replay FILE.replay [--scenario PATH] [--vcd OUT]
                                               re-execute a saved witness step by step
          dmacheck sweep FILE [--profile A,B] [--set KEY=V1,V2]... [--format text|json|csv] [search options]
                                               a matrix of verdicts over profiles and settings
          dmacheck profiles                    list kernel profiles and their switches
          dmacheck trace FILE [--device NAME]... [--until T] [--profile P] [--format text|json|sarif]
                                               DMA-API debug of a recorded dma:* ftrace (docs/trace.md)
          dmacheck check|sweep ... --format json --shard K/N > shard-K.json
          dmacheck merge shard-*.json          the N shards' reports as the unsharded run prints it (docs/scale-out.md)
          dmacheck completion bash|zsh         print a shell completion script
          dmacheck COMMAND --help              the options of one command
          dmacheck --version | --help

        search options (check, explain, sweep):
          --max-states N           stop with 'inconclusive' after N states (default 5000000)
          --timeout SECONDS        stop with 'inconclusive' after this long
          --max-memory MIB         stop with 'inconclusive' when the managed heap grows past this
          --threads N              expand each search level with N threads (default 1; results are the same for every N)
          --no-reduction           explore every interleaving, also those that only reorder commuting steps (slower;
                                   the results are the same)
          --strategy NAME          how to explore (docs/internals-strategies.md):
                                     exhaustive   every interleaving, with every cache behaviour of each; verdicts
                                                  are proofs (the default)
                                     random       sampled interleavings, for scenarios too big to exhaust; each run's
                                                  cache behaviours are still all explored, but verdicts are only what
                                                  the sampled runs show (--seed S, default 1; --runs N, default 1000)
                                     brute-force  every interleaving and cache move on concrete line states: a slow,
                                                  naive cross-check for small scenarios (no --threads,
                                                  --no-reduction or witnesses: not for explain or --html)
                                     replay       follows one saved run: that is 'dmacheck replay FILE.replay'
          --no-color               no ANSI colours (also: NO_COLOR set, or stdout not a terminal)

        An option that a command does not take is an error (exit code 2).

        exit codes: 0 every declared verdict met; 1 a verdict differs, an undeclared expectation can fail,
                    or the kernel would crash; 2 bad input; 3 inconclusive (a limit, or something not modelled);
                    4 internal error (a bug in dmacheck).

        examples:
          dmacheck check
          dmacheck check scenarios/seeds/qcom-scm --format json
          dmacheck explain scenarios/seeds/qcom-scm/case1-v6.4-init-on-alloc.dmc
          dmacheck explain scenarios/seeds/qcom-scm/case3-v6.3-init-on-alloc.dmc --save-replay case3.replay --vcd case3.vcd
          dmacheck replay case3.replay
          dmacheck sweep scenarios/seeds/qcom-scm/case1-v6.4-init-on-alloc.dmc --profile linux-6.3-arm64,linux-6.4-arm64 --set init_on_alloc=on,off
          dmacheck check scenarios --html report.html --format sarif > results.sarif
          dmacheck profiles
          dmacheck completion bash > ~/.local/share/bash-completion/completions/dmacheck
        """;

    public static int Main(string[] args)
    {
        return Run(args, Console.Out, Console.Error, !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null);
    }

    /// <summary>The exit code for a bug in dmacheck itself.</summary>
    public const int InternalError = 4;

    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool colour)
    {
        var cli = new CliContext(stdout, stderr, colour);
        string? commandName = null;
        try
        {
            if (args.Length == 0)
            {
                stdout.WriteLine(Usage);
                return 2;
            }

            if (args[0] == "trace")
            {
                // dmacheck trace parses its own options (TraceCommand.cs): an unknown one is an error there too, exit 2.
                return TraceCommand.Run(args[1..], stdout, stderr);
            }

            if (args[0] == "help")
            {
                return Run(args.Length > 1 ? [args[1], "--help"] : ["--help"], stdout, stderr, colour);
            }

            var root = CreateRoot(cli);
            var parse = root.Parse(args);
            commandName = parse.CommandResult.Command is RootCommand ? null : parse.CommandResult.Command.Name;
            var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
            if (parse.Action is PrintVersion)
            {
                return parse.Invoke(invocation);
            }

            if (parse.Action is RootHelp)
            {
                // The generated help names the executable (DmaCheck.Cli, or the test host): show the command as users type it.
                var help = new StringWriter();
                var code = parse.Invoke(new InvocationConfiguration { Output = help, Error = stderr });
                stdout.Write(help.ToString().Replace($"  {root.Name} ", "  dmacheck ", StringComparison.Ordinal));
                return code;
            }

            // System.CommandLine takes an unknown '--option' as a positional value: it is an unknown option here.
            var command = parse.CommandResult.Command;
            if (command.Arguments.SelectMany(a => parse.GetResult(a)?.Tokens ?? []).FirstOrDefault(t => t.Value.Length > 1 && t.Value[0] == '-') is { } stray)
            {
                throw new UsageException(UnknownOption(command, stray.Value, root));
            }

            if (parse.Errors.Count == 0 && parse.Action is not null and not ParseErrorAction)
            {
                return parse.Invoke(invocation);
            }

            throw new UsageException(ErrorMessage(parse, root));
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"dmacheck: {e.Message}");
            stderr.WriteLine(commandName is null ? "run 'dmacheck --help' for usage" : $"run 'dmacheck {commandName} --help' for its options");
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last resort: a bug in dmacheck itself. One line, no stack trace, its own exit code.
            stderr.WriteLine($"dmacheck: internal error ({e.GetType().Name}): {e.Message}");
            stderr.WriteLine("this is a bug in dmacheck; please report it with the scenario file");
            return InternalError;
        }
        finally
        {
            cli.ClearProgress();
        }
    }

    /// <summary>The command tree, built per run so each command writes to this run's streams.</summary>
    public static RootCommand CreateRoot(CliContext cli)
    {
        var root = new RootCommand("dmacheck: an executable model of the Linux DMA-mapping subsystem and the hardware under it");
        foreach (var create in Commands)
        {
            root.Subcommands.Add(create(cli));
        }

        // The root's --help is the overview above; each command's --help is generated from its options.
        foreach (var option in root.Options)
        {
            switch (option)
            {
                case HelpOption help:
                    help.Action = new RootHelp(help.Action);
                    break;
                case VersionOption version:
                    version.Action = new PrintVersion(cli.Out);
                    break;
            }
        }

        return root;
    }

    /// <summary>One plain sentence for a parse error, with "did you mean" where a name is close to a known one.</summary>
    private static string ErrorMessage(ParseResult parse, RootCommand root)
    {
        var command = parse.CommandResult.Command;
        if (parse.UnmatchedTokens.FirstOrDefault() is { } token)
        {
            if (command == root)
            {
                var names = root.Subcommands.Select(c => c.Name).ToList();
                var hint = token.StartsWith('-') ? Suggestions.DidYouMean(token, ["--help", "--version"]) : Suggestions.DidYouMean(token, names);
                return token.StartsWith('-')
                    ? $"unknown option '{token}'{(hint is null ? string.Empty : $" ({hint})")}: options follow a command (commands: {string.Join(", ", names)})"
                    : $"unknown command '{token}' ({hint ?? $"commands: {string.Join(", ", names)}"})";
            }

            return token.StartsWith('-') && token.Length > 1
                ? UnknownOption(command, token, root)
                : $"unexpected argument '{token}' for '{command.Name}'";
        }

        if (command.Arguments.FirstOrDefault(a => !a.HasDefaultValue && a.Arity.MinimumNumberOfValues > 0 && parse.GetResult(a) is null or { Tokens.Count: 0 }) is { } missing)
        {
            return $"{command.Name} needs {missing.Name}: {missing.Description}";
        }

        var error = parse.Errors[0];
        if (error.SymbolResult is System.CommandLine.Parsing.OptionResult { Tokens.Count: 0 } missingValue)
        {
            return $"{missingValue.Option.Name} needs a value ({missingValue.Option.HelpName ?? "VALUE"})";
        }

        return error.Message;
    }

    /// <summary>An option the command does not take: which commands take it, or the nearest option this one has.</summary>
    private static string UnknownOption(Command command, string token, RootCommand root)
    {
        var name = token.Split('=')[0];
        if (name == "--explorer")
        {
            return "'--explorer' is gone: explorers are strategies now, picked with --strategy NAME (line-set is --strategy exhaustive, the default; brute-force is --strategy brute-force)";
        }

        var others = root.Subcommands.Where(c => c != command && c.Options.Any(o => o.Name == name || o.Aliases.Contains(name))).Select(c => c.Name).ToList();
        if (others.Count > 0)
        {
            var why = (command.Name, name) switch
            {
                ("explain", "--format") => ": explain prints text only ('dmacheck check FILE --format json' gives the verdicts and findings as JSON)",
                ("explain" or "sweep" or "replay", "--html") => ": 'dmacheck check FILE --html OUT' writes the HTML report",
                ("check", "--vcd") => ": a waveform is of one witness ('dmacheck explain FILE --vcd OUT')",
                _ => string.Empty,
            };
            return $"'{name}' does not apply to '{command.Name}' (it is an option of {CliShared.Or(others)}){why}";
        }

        var known = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).ToList();
        var hint = Suggestions.DidYouMean(name, known);
        return $"unknown option '{name}' for '{command.Name}'{(hint is null ? string.Empty : $" ({hint})")}";
    }

    /// <summary><c>dmacheck --help</c>: the overview; the built-in help for a command's own --help.</summary>
    private sealed class RootHelp(CommandLineAction? builtIn) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            if (parseResult.CommandResult.Command is RootCommand)
            {
                parseResult.InvocationConfiguration.Output.WriteLine(Usage);
                return 0;
            }

            return builtIn is SynchronousCommandLineAction sync ? sync.Invoke(parseResult) : 0;
        }
    }

    private sealed class PrintVersion(TextWriter stdout) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            stdout.WriteLine($"dmacheck {Version}");
            return 0;
        }
    }
}
