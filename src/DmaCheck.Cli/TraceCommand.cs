using System.Globalization;
using System.Text;
using DmaCheck.Reports;
using DmaCheck.Traces;

namespace DmaCheck.Cli;

/// <summary>
/// <c>dmacheck trace FILE [--device NAME]... [--until T] [--profile P] [--format text|json|sarif]</c>: offline DMA-API
/// debug of a recorded dma:* ftrace, and with --profile its what-if replay on that kernel profile (docs/trace.md). FILE is the text of /sys/kernel/tracing/trace, trace_pipe or
/// 'trace-cmd report'; "-" reads standard input. Exit codes: 0 no findings, 1 findings, 2 bad input.
/// </summary>
public static class TraceCommand
{
    public const string Usage = """
        usage: dmacheck trace FILE [--device NAME]... [--until SECONDS] [--profile P] [--format text|json|sarif]
                              [--emit-scenario OUT.dmc [--from SECONDS] [--to SECONDS] [--max-mappings N]]
          FILE             the text of /sys/kernel/tracing/trace, trace_pipe or 'trace-cmd report' ("-": stdin)
          --device NAME    check only this device (repeatable), as the trace names it (e.g. 0000:00:04.0)
          --until SECONDS  stop at this timestamp; mappings still live there are reported as leaks
          --format FORMAT  text (default), json or sarif
          --profile P      also replay the trace on kernel profile P with every device non-coherent, and report
                           what would be unsafe there ('dmacheck profiles' lists them)
          --emit-scenario OUT.dmc
                           with --profile: write a window of the trace as a scenario for that profile (buffers
                           at the trace's physical addresses, the driver a CPU thread, each mapping a DMA engine
                           of its device); check it with 'dmacheck check OUT.dmc'
          --from, --to SECONDS
                           the window --emit-scenario takes (default: the whole trace)
          --max-mappings N the most streaming mappings --emit-scenario writes (default 8, at most 64); a window
                           with more is an error naming the first one left out
        exit codes: 0 no findings, 1 findings, 2 bad input
        """;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        string? file = null;
        var devices = new List<string>();
        double? until = null;
        string? untilText = null;
        var format = "text";
        DmaCheck.Dma.KernelProfile? profile = null;
        string? emit = null;
        double? from = null;
        double? to = null;
        int? maxMappings = null;
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"{a} needs a value");
                }

                return args[++i];
            }

            try
            {
                switch (a)
                {
                    case "--device":
                        devices.Add(Value());
                        break;
                    case "--until":
                        untilText = Value();
                        if (!double.TryParse(untilText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var t))
                        {
                            throw new ArgumentException($"--until takes a timestamp in seconds as the trace prints it (e.g. 4.51), not '{untilText}'");
                        }

                        until = t;
                        break;
                    case "--emit-scenario":
                        emit = emit is null ? Value() : throw new ArgumentException("'trace' takes one --emit-scenario");
                        break;
                    case "--from":
                        from = Seconds(a, Value());
                        break;
                    case "--to":
                        to = Seconds(a, Value());
                        break;
                    case "--max-mappings":
                        var mm = Value();
                        maxMappings = int.TryParse(mm, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= ScenarioEmitter.MaxMaxMappings
                            ? n
                            : throw new ArgumentException($"--max-mappings takes a whole number from 1 to {ScenarioEmitter.MaxMaxMappings}, not '{mm}'");
                        break;
                    case "--format":
                        format = Value();
                        if (format is not ("text" or "json" or "sarif"))
                        {
                            throw new ArgumentException($"'trace' writes text, json or sarif, not '{format}'");
                        }

                        break;
                    case "--profile":
                        var name = Value();
                        if (profile is not null)
                        {
                            throw new ArgumentException("'trace' takes one --profile");
                        }

                        profile = DmaCheck.Dma.Profiles.Find(name)
                            ?? throw new ArgumentException($"unknown profile '{name}'{(DmaCheck.Scenarios.Suggestions.DidYouMean(name, DmaCheck.Dma.Profiles.All.Select(p => p.Name).ToList()) is { } hint ? $" ({hint})" : "")}; 'dmacheck profiles' lists them");
                        break;
                    case "-":
                        file = file is null ? a : throw new ArgumentException("'trace' takes one file");
                        break;
                    default:
                        if (a.StartsWith('-'))
                        {
                            throw new ArgumentException($"unknown option '{a}' for 'trace'");
                        }

                        file = file is null ? a : throw new ArgumentException("'trace' takes one file");
                        break;
                }
            }
            catch (ArgumentException e)
            {
                stderr.WriteLine($"dmacheck: {e.Message}");
                stderr.WriteLine(Usage);
                return 2;
            }
        }

        if (file is null)
        {
            stderr.WriteLine("dmacheck: 'trace' needs a trace file");
            stderr.WriteLine(Usage);
            return 2;
        }

        var misuse = (emit, profile, from, to) switch
        {
            (null, _, not null, _) or (null, _, _, not null) => "--from and --to choose the window of --emit-scenario, which is not given",
            (null, _, _, _) when maxMappings is not null => "--max-mappings bounds --emit-scenario, which is not given",
            (not null, null, _, _) => "--emit-scenario needs --profile P: the kernel the scenario runs on",
            (_, _, { } f, { } t) when t < f => $"--to {t.ToString(CultureInfo.InvariantCulture)} is before --from {f.ToString(CultureInfo.InvariantCulture)}",
            _ => null,
        };
        if (misuse is not null)
        {
            stderr.WriteLine($"dmacheck: {misuse}");
            stderr.WriteLine(Usage);
            return 2;
        }

        var emitter = emit is null ? null : new ScenarioEmitter(profile!, from, to, devices, maxMappings ?? ScenarioEmitter.DefaultMaxMappings);

        TraceResult result;
        try
        {
            using var input = file == "-" ? Console.OpenStandardInput() : new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            result = TraceCheck.Run(input, file, new TraceOptions(devices, until, untilText, profile), emitter is null ? null : emitter.Add);
        }
        catch (TraceInputException e)
        {
            WriteError(stderr, e);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"dmacheck: cannot read {file}: {e.Message}");
            return 2;
        }

        stdout.Write(format switch
        {
            "json" => TraceReport.Json(result, Program.Version),
            "sarif" => TraceReport.Sarif(result, Program.Version),
            _ => TraceReport.Text(result),
        });
        if (emitter is not null && !EmitScenario(emitter, file, emit!, profile!, format == "text" ? stdout : stderr, stderr))
        {
            return 2;
        }

        return result.Findings.Count > 0 ? 1 : 0;
    }

    private static double Seconds(string option, string text) =>
        double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var t)
            ? t
            : throw new ArgumentException($"{option} takes a timestamp in seconds as the trace prints it (e.g. 4.51), not '{text}'");

    /// <summary>
    /// Writes the emitted scenario atomically, after loading it: at the trace's physical addresses when the profile's
    /// layout has them free, else moved (by a multiple of 2 MiB) above the layout's first free frame.
    /// </summary>
    private static bool EmitScenario(ScenarioEmitter emitter, string file, string output, DmaCheck.Dma.KernelProfile profile, TextWriter info, TextWriter stderr)
    {
        if (emitter.FirstLeftOut is { } left)
        {
            stderr.WriteLine($"dmacheck: --emit-scenario: the window makes {emitter.MappingsSeen} streaming mappings (sg elements counted one by one), more than {emitter.MaxMappings}: the first left out is mapped at {file}:{left}; narrow the window with --from/--to, or raise --max-mappings (at most {ScenarioEmitter.MaxMaxMappings}; each mapping is a DMA agent, and the search grows with them)");
            return false;
        }

        if (!emitter.Any)
        {
            stderr.WriteLine("dmacheck: --emit-scenario: nothing is mapped or allocated in the window (dma_map_*/dma_alloc events of the chosen devices between --from and --to)");
            return false;
        }

        var layout = profile.Layout;
        string? text = null;
        string? error = null;
        foreach (ulong? relocate in new ulong?[] { null, DmaCheck.Kernel.PlatformLayout.PfnToPhys(layout.FirstFreePfn) + (16UL << 20) })
        {
            text = emitter.Emit(file, relocate);
            try
            {
                DmaCheck.Scenarios.Binder.Load(output, text);
                error = null;
                break;
            }
            catch (DmaCheck.Scenarios.ScenarioException e)
            {
                error = e.Message;
            }
        }

        if (error is not null)
        {
            stderr.WriteLine($"dmacheck: --emit-scenario: the window's buffers do not fit layout {layout.Name}: {error}; narrow the window with --from/--to");
            return false;
        }

        try
        {
            AtomicFile.WriteAllText(output, text!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"dmacheck: cannot write {output}: {e.Message}");
            return false;
        }

        foreach (var what in emitter.NotEmitted)
        {
            info.WriteLine($"notice: --emit-scenario: not emitted: {what}");
        }

        info.WriteLine($"scenario written to {output}: {emitter.Mappings} streaming mapping(s); check it with 'dmacheck check {output}'");
        return true;
    }

    /// <summary>file:line:col: error: message, then the line (escaped, at most 100 characters) and a caret.</summary>
    private static void WriteError(TextWriter stderr, TraceInputException e)
    {
        if (e.Line == 0)
        {
            stderr.WriteLine($"{e.File}: error: {e.Message}");
            return;
        }

        stderr.WriteLine($"{e.File}:{e.Line}:{e.Column}: error: {e.Message}");
        var start = e.Column - 1 > 80 ? e.Column - 41 : 0;
        var (shown, caret) = Escape(e.Text, start, 100, e.Column - 1);
        stderr.WriteLine($"  {shown}");
        if (caret >= 0)
        {
            stderr.WriteLine($"  {new string(' ', caret)}^");
        }
    }

    /// <summary>The text from <paramref name="start"/>, at most <paramref name="max"/> characters, control and non-ASCII characters escaped; and where the caret goes.</summary>
    public static (string Text, int Caret) Escape(string text, int start, int max, int column)
    {
        var sb = new StringBuilder();
        var caret = -1;
        if (start > 0)
        {
            sb.Append("...");
        }

        for (var i = start; i < text.Length && sb.Length < max; i++)
        {
            if (i == column)
            {
                caret = sb.Length;
            }

            var c = text[i];
            if (c is >= ' ' and < (char)127)
            {
                sb.Append(c);
            }
            else if (c <= 0xff)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
        }

        if (sb.Length >= max && text.Length > start + max)
        {
            sb.Append("...");
        }

        return (sb.ToString(), caret);
    }
}
