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
          FILE             the text of /sys/kernel/tracing/trace, trace_pipe or 'trace-cmd report' ("-": stdin)
          --device NAME    check only this device (repeatable), as the trace names it (e.g. 0000:00:04.0)
          --until SECONDS  stop at this timestamp; mappings still live there are reported as leaks
          --format FORMAT  text (default), json or sarif
          --profile P      also replay the trace on kernel profile P with every device non-coherent, and report
                           what would be unsafe there ('dmacheck profiles' lists them)
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

        TraceResult result;
        try
        {
            using var input = file == "-" ? Console.OpenStandardInput() : new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            result = TraceCheck.Run(input, file, new TraceOptions(devices, until, untilText, profile));
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
        return result.Findings.Count > 0 ? 1 : 0;
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
