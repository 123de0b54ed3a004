using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Cli;

/// <summary>The <c>dmacheck</c> command.</summary>
public static class Program
{
    public const string Usage = """
        dmacheck: an executable model of the Linux DMA-mapping subsystem and the hardware under it.

        usage:
          dmacheck check [PATH...] [options]   check scenario files (default: the bundled scenarios/)
          dmacheck explain FILE [--expect NAME] [--save-replay OUT] [options]
                                               the shortest failing run of an expectation, in kernel terms
          dmacheck replay FILE.replay [--scenario PATH]
                                               re-execute a saved witness step by step
          dmacheck sweep FILE [--profile A,B] [--set KEY=V1,V2]... [--format text|json|csv]
                                               a matrix of verdicts over profiles and settings
          dmacheck profiles                    list kernel profiles and their switches
          dmacheck trace FILE [--device NAME]... [--until T] [--format text|json|sarif]
                                               DMA-API debug of a recorded dma:* ftrace (docs/trace.md)
          dmacheck --version | --help

        options:
          --format FORMAT          text (default), json, sarif (SARIF 2.1.0, for 'check'), csv (for 'sweep')
          --max-states N           stop with 'inconclusive' after N states (default 5000000)
          --timeout SECONDS        stop with 'inconclusive' after this long
          --max-memory MIB         stop with 'inconclusive' when the managed heap grows past this
          --threads N              expand each search level with N threads (default 1; results are the same for every N)
          --no-reduction           explore every interleaving, also those that only reorder commuting steps (slower;
                                   the results are the same)
          --strategy NAME          exhaustive (default) or random: sample interleavings, for scenarios too big to
                                   exhaust; each run's cache behaviours are still all explored, but verdicts are
                                   only what the sampled runs show (--seed S, default 1; --runs N, default 1000)
          --explorer NAME          line-set (default) or brute-force (exponential; a cross-check for small scenarios)
          --vcd OUT                'explain' and 'replay': also write the witness as a VCD waveform
          --html OUT               'check' and 'explain': also write a self-contained HTML report with witness timelines
          --no-color               no ANSI colours (also: NO_COLOR set, or stdout not a terminal)

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
        """;

    public static int Main(string[] args)
    {
        return Run(args, Console.Out, Console.Error, !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null);
    }

    private sealed class UsageException(string message) : Exception(message);

    private sealed class Options
    {
        public List<string> Positional { get; } = [];

        public string Format { get; set; } = "text";

        public long MaxStates { get; set; } = ExplorationLimits.Default.MaxStates;

        public TimeSpan? Timeout { get; set; }

        public string? Expect { get; set; }

        public string? SaveReplay { get; set; }

        public string? Vcd { get; set; }

        public string? Html { get; set; }

        public string? ScenarioPath { get; set; }

        public bool BruteForce { get; set; }

        public bool NoColor { get; set; }

        public List<string> SweepProfiles { get; } = [];

        public List<(string Key, IReadOnlyList<string> Values)> SweepSets { get; } = [];

        public long? MaxMemory { get; set; }

        public int Threads { get; set; } = 1;

        public bool NoReduction { get; set; }

        public string Strategy { get; set; } = "exhaustive";

        public int Seed { get; set; } = 1;

        public int Runs { get; set; } = 1000;

        /// <summary>A progress line on stderr, when stderr is a terminal; never on stdout, so text and JSON stay clean.</summary>
        public Action<ExplorationProgress>? Progress { get; set; }

        public ExplorationLimits Limits => new(MaxStates, Timeout, MaxMemory, Threads, Progress, Strategy == "random" ? new RandomStrategy(Seed, Runs) : null, !NoReduction);
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool colour)
    {
        try
        {
            return Dispatch(args, stdout, stderr, colour);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"dmacheck: {e.Message}");
            stderr.WriteLine("run 'dmacheck --help' for usage");
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last resort: a bug in dmacheck itself. One line, no stack trace, its own exit code.
            stderr.WriteLine($"dmacheck: internal error ({e.GetType().Name}): {e.Message}");
            stderr.WriteLine("this is a bug in dmacheck; please report it with the scenario file");
            return InternalError;
        }
    }

    /// <summary>The exit code for a bug in dmacheck itself.</summary>
    public const int InternalError = 4;

    private static int Dispatch(string[] args, TextWriter stdout, TextWriter stderr, bool colour)
    {
        if (args.Length == 0 || args[0] is "help" || args.Any(a => a is "--help" or "-h"))
        {
            stdout.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == "--version")
        {
            stdout.WriteLine($"dmacheck {Version}");
            return 0;
        }

        if (args[0] == "trace")
        {
            return TraceCommand.Run(args[1..], stdout, stderr);
        }

        var command = args[0];
        var options = ParseOptions(args.Skip(1).ToList());
        var style = new Style(colour && !options.NoColor && options.Format == "text");
        if (ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"))
        {
            options.Progress = p =>
            {
                var rate = p.Elapsed.TotalSeconds > 0 ? p.States / p.Elapsed.TotalSeconds : 0;
                stderr.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\r\u001b[Kdmacheck: {p.States:N0} states ({rate:N0}/s), depth {p.Depth}, {GC.GetTotalMemory(false) >> 20} MiB, {p.Elapsed.TotalSeconds:0.0} s"));
                ProgressShown = true;
            };
        }

        try
        {
            return DispatchCommand(command, options, stdout, stderr, style);
        }
        finally
        {
            ClearProgress(stderr);
        }
    }

    /// <summary>Erases the progress line, before anything is written to the terminal's stdout.</summary>
    private static void ClearProgress(TextWriter stderr)
    {
        if (ProgressShown)
        {
            stderr.Write("\r\u001b[K");
            stderr.Flush();
            ProgressShown = false;
        }
    }

    /// <summary>Whether a progress line is on the terminal and must be erased.</summary>
    private static bool ProgressShown { get; set; }

    private static int DispatchCommand(string command, Options options, TextWriter stdout, TextWriter stderr, Style style)
    {
        return command switch
        {
            "check" => Check(options, stdout, stderr, style),
            "explain" => Explain(options, stdout, stderr, style),
            "sweep" => Sweep(options, stdout, stderr, style),
            "replay" => Replay(options, stdout, stderr, style),
            "profiles" => Profiles(stdout),
            _ => throw new UsageException($"unknown command '{command}' (commands: check, explain, sweep, replay, profiles)"),
        };
    }

    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static Options ParseOptions(List<string> args)
    {
        var o = new Options();
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"{a} needs a value");
                }

                return args[++i];
            }

            switch (a)
            {
                case "--format":
                    o.Format = Value();
                    if (o.Format is not ("text" or "json" or "csv" or "sarif"))
                    {
                        throw new UsageException($"--format is text, json, sarif or csv, not '{o.Format}'");
                    }

                    break;
                case "--strategy":
                    var strategy = Value();
                    o.Strategy = strategy is "exhaustive" or "random"
                        ? strategy
                        : throw new UsageException($"--strategy is 'exhaustive' or 'random', not '{strategy}'");
                    break;
                case "--seed":
                    var sd = Value();
                    o.Seed = int.TryParse(sd, NumberStyles.None, CultureInfo.InvariantCulture, out var seedValue)
                        ? seedValue
                        : throw new UsageException($"--seed takes a whole number, not '{sd}'");
                    break;
                case "--runs":
                    var rn = Value();
                    o.Runs = int.TryParse(rn, NumberStyles.None, CultureInfo.InvariantCulture, out var runs) && runs > 0
                        ? runs
                        : throw new UsageException($"--runs takes a positive whole number, not '{rn}'");
                    break;
                case "--threads":
                    var th = Value();
                    o.Threads = int.TryParse(th, NumberStyles.None, CultureInfo.InvariantCulture, out var tn) && tn is > 0 and <= 256
                        ? tn
                        : throw new UsageException($"--threads takes a whole number from 1 to 256, not '{th}'");
                    break;
                case "--max-states":
                    var v = Value();
                    o.MaxStates = long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                        ? n
                        : throw new UsageException($"--max-states takes a positive whole number, not '{v}'");
                    break;
                case "--timeout":
                    var t = Value();
                    o.Timeout = double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var secs) && secs >= 0 && secs < 1e7
                        ? TimeSpan.FromSeconds(secs)
                        : throw new UsageException($"--timeout takes seconds, not '{t}'");
                    break;
                case "--max-memory":
                    var mm = Value();
                    o.MaxMemory = long.TryParse(mm, NumberStyles.None, CultureInfo.InvariantCulture, out var mib) && mib > 0 && mib < 1L << 30
                        ? mib << 20
                        : throw new UsageException($"--max-memory takes MiB as a positive whole number, not '{mm}'");
                    break;
                case "--profile":
                    foreach (var name in Value().Split(',', StringSplitOptions.TrimEntries))
                    {
                        o.SweepProfiles.Add(DmaCheck.Dma.Profiles.Find(name) is null
                            ? throw new UsageException($"unknown profile '{name}' (known: {string.Join(", ", DmaCheck.Dma.Profiles.All.Select(p => p.Name))})")
                            : name);
                    }

                    break;
                case "--set":
                    var assignment = Value();
                    var eq = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0 || eq == assignment.Length - 1)
                    {
                        throw new UsageException($"--set takes KEY=V1,V2,..., not '{assignment}'");
                    }

                    var key = assignment[..eq].Trim();
                    var values = assignment[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries);
                    var probe = new RunSettings(DmaCheck.Dma.Profiles.All[0], new DmaCheck.Kernel.KernelConfig(), DmaCheck.Hardware.HardwareConfig.Default);
                    foreach (var value in values)
                    {
                        if (probe.With(key, value, out var error, out _) is null)
                        {
                            throw new UsageException($"--set {key}: {error}");
                        }
                    }

                    if (o.SweepSets.Any(s => s.Key == key))
                    {
                        throw new UsageException($"--set {key} is given twice: list all its values in one --set");
                    }

                    o.SweepSets.Add((key, values));
                    break;
                case "--html":
                    o.Html = Value();
                    break;
                case "--vcd":
                    o.Vcd = Value();
                    break;
                case "--save-replay":
                    o.SaveReplay = Value();
                    break;
                case "--scenario":
                    o.ScenarioPath = Value();
                    break;
                case "--expect":
                    o.Expect = Value();
                    break;
                case "--explorer":
                    var e = Value();
                    o.BruteForce = e switch
                    {
                        "line-set" => false,
                        "brute-force" => true,
                        _ => throw new UsageException($"--explorer is line-set or brute-force, not '{e}'"),
                    };
                    break;
                case "--no-reduction":
                    o.NoReduction = true;
                    break;
                case "--no-color" or "--no-colour":
                    o.NoColor = true;
                    break;
                default:
                    if (a.StartsWith('-') && a.Length > 1)
                    {
                        throw new UsageException($"unknown option '{a}'");
                    }

                    o.Positional.Add(a);
                    break;
            }
        }

        return o;
    }

    private static int Check(Options options, TextWriter stdout, TextWriter stderr, Style style)
    {
        var watch = Stopwatch.StartNew();
        var paths = options.Positional.Count > 0 ? options.Positional : [FindBundledScenarios()];
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (!File.Exists(p) && !Directory.Exists(p))
            {
                throw new UsageException($"no such file or directory: {p}");
            }

            files.AddRange(Checker.Expand(p));
        }

        if (files.Count == 0)
        {
            throw new UsageException($"no *.dmc scenario files under {string.Join(", ", paths)}");
        }

        var outcomes = files.Select(f => Checker.CheckFile(f, options.Limits, Display(f), options.BruteForce)).ToList();
        ClearProgress(stderr);
        stderr.Write(TextReport.Errors(outcomes, style));
        if (options.Html is { } html)
        {
            AtomicFile.WriteAllText(html, HtmlReport.Render(outcomes, Version));
            stderr.WriteLine($"HTML report written to {html}");
        }

        stdout.Write(options.Format switch
        {
            "json" => JsonReport.Render(outcomes),
            "sarif" => SarifReport.Render(outcomes, Version),
            "csv" => throw new UsageException("--format csv is for 'sweep'; 'check' prints text, json or sarif"),
            _ => TextReport.Render(outcomes, style, watch.Elapsed),
        });
        return Checker.ExitCode(outcomes);
    }

    private static int Explain(Options options, TextWriter stdout, TextWriter stderr, Style style)
    {
        if (options.Positional.Count != 1)
        {
            throw new UsageException("explain takes exactly one scenario file");
        }

        var file = options.Positional[0];
        if (!File.Exists(file))
        {
            throw new UsageException($"no such file: {file}");
        }

        var outcome = Checker.CheckFile(file, options.Limits, Display(file));
        ClearProgress(stderr);
        if (outcome.Result is null || outcome.Explorer is null || outcome.Model is null || outcome.Result.Inconclusive is not null)
        {
            stderr.Write(TextReport.Errors([outcome], style));
            stdout.Write(TextReport.Render([outcome], style, TimeSpan.Zero));
            return outcome.ExitCode;
        }

        var verdicts = outcome.Result.Verdicts;
        if (outcome.Result.KernelBugs.Count > 0 && options.Expect is null)
        {
            // Some runs crash the kernel: that comes first, with its shortest run.
            stdout.Write(ExplainReport.RenderKernelBugs(outcome, style));
            if (verdicts.All(v => v.Verdict == Verdict.Inconclusive))
            {
                return outcome.ExitCode;
            }

            stdout.WriteLine();
        }

        if (outcome.Result.Findings.Count > 0 && options.Expect is null)
        {
            stdout.Write(ExplainReport.RenderFindings(outcome, style));
            if (verdicts.Count == 0)
            {
                return outcome.ExitCode;
            }

            stdout.WriteLine();
        }

        ExpectationVerdict verdict;
        if (options.Expect is { } name)
        {
            verdict = verdicts.FirstOrDefault(v => v.Expectation.Name == name)
                ?? throw new UsageException($"{file} has no expectation '{name}' (it has: {string.Join(", ", verdicts.Select(v => v.Expectation.Name))})");
        }
        else
        {
            verdict = verdicts.FirstOrDefault(v => v.MinEventsToFail is not null) ?? verdicts.FirstOrDefault()
                ?? throw new UsageException($"{file} has no expectations to explain");
        }

        var witness = outcome.Explorer.Failures.TryGetValue(verdict.Expectation.Name, out var failure)
            ? WitnessBuilder.Build(outcome.Model, verdict.Expectation, failure)
            : null;
        stdout.Write(ExplainReport.Render(outcome, witness, verdict, style));
        if (options.Html is { } html)
        {
            AtomicFile.WriteAllText(html, HtmlReport.RenderExplain(outcome, witness, verdict, Version));
            stderr.WriteLine($"HTML report written to {html}");
        }

        if (options.Vcd is { } vcd && witness is not null)
        {
            AtomicFile.WriteAllText(vcd, VcdReport.Render(witness, outcome.Scenario!, Version));
            stderr.WriteLine($"waveform written to {vcd}");
        }

        if (options.SaveReplay is { } save)
        {
            if (witness is null)
            {
                stderr.WriteLine($"dmacheck: {verdict.Expectation.Name} never fails: there is no witness to save");
                return 2;
            }

            ReplayFile replay;
            try
            {
                replay = ReplayFile.From(witness, outcome.Scenario!, Version);
            }
            catch (ReplayException e)
            {
                stderr.WriteLine($"dmacheck: not modelled: {e.Message}");
                return 3;
            }

            AtomicFile.WriteAllText(save, replay.Write());
            stderr.WriteLine($"witness saved to {save}; replay it with: dmacheck replay {save}");
        }

        return outcome.ExitCode;
    }

    private static int Sweep(Options options, TextWriter stdout, TextWriter stderr, Style style)
    {
        if (options.Positional.Count != 1)
        {
            throw new UsageException("sweep takes exactly one scenario file");
        }

        var file = options.Positional[0];
        if (!File.Exists(file))
        {
            throw new UsageException($"no such file: {file}");
        }

        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read {file}: {e.Message}");
        }

        // The file itself must be sound before it is swept.
        var display = Display(file);
        var baseline = Checker.CheckText(display, text, options.Limits);
        if (baseline.Error == OutcomeError.BadInput)
        {
            stderr.Write(TextReport.Errors([baseline], style));
            return 2;
        }

        var profiles = options.SweepProfiles.Count > 0 ? options.SweepProfiles.Cast<string?>().ToList() : [null];
        var points = SweepReport.Combinations(profiles, options.SweepSets)
            .Select(o => new SweepPoint(o, Checker.CheckText(display, text, options.Limits, overrides: o)))
            .ToList();
        ClearProgress(stderr);
        stdout.Write(options.Format switch
        {
            "json" => SweepReport.Json(display, points),
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
    }

    private static int Replay(Options options, TextWriter stdout, TextWriter stderr, Style style)
    {
        if (options.Positional.Count != 1)
        {
            throw new UsageException("replay takes exactly one .replay file");
        }

        var file = options.Positional[0];
        ReplayFile replay;
        try
        {
            replay = ReplayFile.Parse(File.ReadAllText(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read {file}: {e.Message}");
        }
        catch (ReplayException e)
        {
            stderr.WriteLine($"{file}: error: {e.Message}");
            return 2;
        }

        if (replay.ToolVersion != Version)
        {
            stderr.WriteLine($"{file}: note: saved by dmacheck {replay.ToolVersion}, replayed by {Version}");
        }

        var scenarioPath = options.ScenarioPath ?? replay.ScenarioPath;
        if (!File.Exists(scenarioPath) && options.ScenarioPath is null)
        {
            var besideReplay = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", Path.GetFileName(replay.ScenarioPath));
            scenarioPath = File.Exists(besideReplay) ? besideReplay : scenarioPath;
        }

        if (!File.Exists(scenarioPath))
        {
            throw new UsageException($"the witness is for {replay.ScenarioPath}, which is not here; name it with --scenario PATH");
        }

        Scenario scenario;
        try
        {
            scenario = DmaCheck.Scenarios.Binder.Load(replay.ScenarioPath, File.ReadAllText(scenarioPath));
        }
        catch (ScenarioException e)
        {
            stderr.WriteLine(e.Format());
            return 2;
        }

        var outcome = new ScenarioOutcome(replay.ScenarioPath, scenario, null, OutcomeError.None, null, null, new ScenarioModel(scenario));

        Witness witness;
        bool reproduces;
        try
        {
            witness = replay.Replay(outcome.Model!, out reproduces);
        }
        catch (ReplayException e)
        {
            stderr.WriteLine($"{file}: error: {e.Message}");
            return 2;
        }
        catch (RunException e)
        {
            stderr.WriteLine($"{e.Location}: error: {e.Message}");
            return e.Kind == RunErrorKind.NotModelled ? 3 : e.Kind == RunErrorKind.KernelBug ? 1 : 2;
        }

        if (options.Vcd is { } vcd)
        {
            AtomicFile.WriteAllText(vcd, VcdReport.Render(witness, scenario, Version));
            stderr.WriteLine($"waveform written to {vcd}");
        }

        var verdict = new ExpectationVerdict(witness.Expectation, Verdict.Sometimes, witness.Events, 0, 1);
        stdout.Write(ExplainReport.Render(outcome, witness, verdict, style, replayed: true));
        stdout.WriteLine(reproduces
            ? style.Bad($"replay: the failure of {witness.Expectation.Name} reproduces with {witness.Events} spontaneous event(s)")
            : style.Good($"replay: {witness.Expectation.Name} holds at the end of this run: the failure does not reproduce"));
        return reproduces ? 0 : 1;
    }

    private static int Profiles(TextWriter stdout)
    {
        stdout.Write(ProfilesReport.Text());
        return 0;
    }

    /// <summary>The bundled scenarios/ directory: under the current directory or any parent, else beside the tool.</summary>
    private static string FindBundledScenarios()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "scenarios");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new UsageException("no scenarios/ directory found here or above; name the scenario files to check");
    }

    private static string Display(string path)
    {
        var full = Path.GetFullPath(path);
        var rel = Path.GetRelativePath(Directory.GetCurrentDirectory(), full);
        return rel.StartsWith("..", StringComparison.Ordinal) ? full : rel;
    }
}
