using System.Globalization;
using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary>
/// <c>--vcd OUT</c>: the witness as a Value Change Dump (IEEE 1364) for waveform viewers. Signals: the witness
/// line's cache state (0 Invalid, 1 Clean, 2 Dirty), the writer of its cached data and of its RAM contents
/// (writer ids, listed in a comment; 255 = mixed), on a board with an outer cache the outer (L2) level's state and
/// writer too, the count of spontaneous events so far, and per agent the source line of the statement it is executing
/// (0 when idle). One time unit per trace entry.
/// </summary>
public static class VcdReport
{
    private const byte Mixed = 255;

    public static string Render(Witness w, Scenario scenario, string toolVersion)
    {
        var sb = new StringBuilder();
        sb.Append("$date\n  dmacheck witness\n$end\n");
        sb.Append(CultureInfo.InvariantCulture, $"$version\n  dmacheck {toolVersion}\n$end\n");
        sb.Append(CultureInfo.InvariantCulture, $"$comment\n  scenario {scenario.File}; expectation {w.Expectation.Name}; profile {scenario.Profile.Name}\n");
        sb.Append("  cache: 0 Invalid, 1 Clean, 2 Dirty; writers:");
        for (var i = 0; i < scenario.Writers.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $" {i}={scenario.Writers.Name((byte)i)}");
        }

        sb.Append(CultureInfo.InvariantCulture, $" {Mixed}=mixed\n$end\n");
        sb.Append("$timescale 1 ns $end\n");
        var line = w.LinePa is { } pa ? $"line_{pa:x}" : "line";
        var agents = scenario.Agents.Select(i => scenario.Programs[i].Name).ToList();
        sb.Append("$scope module witness $end\n");
        sb.Append(CultureInfo.InvariantCulture, $"$scope module {line} $end\n");
        sb.Append("$var wire 2 c cache $end\n");
        sb.Append("$var wire 8 d cached_writer $end\n");
        sb.Append("$var wire 8 r ram_writer $end\n");
        var outer = scenario.Hardware.OuterCache;
        if (outer)
        {
            sb.Append("$var wire 2 o outer_cache $end\n");
            sb.Append("$var wire 8 l outer_writer $end\n");
        }

        sb.Append("$upscope $end\n");
        sb.Append("$var wire 16 e spontaneous_events $end\n");
        sb.Append("$scope module agents $end\n");
        for (var i = 0; i < agents.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"$var wire 32 a{i} {Identifier(agents[i])}_stmt_line $end\n");
        }

        sb.Append("$upscope $end\n$upscope $end\n$enddefinitions $end\n");

        var state = w.Items.Select(i => i switch
        {
            OpItem { Before: { } b } => b,
            MoveItem m => m.Before,
            _ => null,
        }).FirstOrDefault(s => s is not null);
        var running = new int[agents.Count];
        var events = 0;
        var time = 0;
        sb.Append("#0\n$dumpvars\n");
        DumpLine(sb, state, outer);
        sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(0, 2)} e\n");
        for (var i = 0; i < agents.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"b0 a{i}\n");
        }

        sb.Append("$end\n");
        foreach (var item in w.Items)
        {
            time += 10;
            sb.Append(CultureInfo.InvariantCulture, $"#{time}\n");
            switch (item)
            {
                case StepItem s:
                    for (var i = 0; i < agents.Count; i++)
                    {
                        var now = i == s.Step.Agent ? s.Step.Statement.Span.Line : 0;
                        if (running[i] != now)
                        {
                            running[i] = now;
                            sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(now, 2)} a{i}\n");
                        }
                    }

                    break;
                case OpItem { After: { } after }:
                    DumpLine(sb, after, outer);
                    break;
                case MoveItem m:
                    events++;
                    DumpLine(sb, m.After, outer);
                    sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(events, 2)} e\n");
                    break;
            }
        }

        sb.Append(CultureInfo.InvariantCulture, $"#{time + 10}\n");
        return sb.ToString();
    }

    private static void DumpLine(StringBuilder sb, LineState? s, bool outer)
    {
        sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(Code(s?.Cache), 2)} c\n");
        sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(Writer(s?.Cached), 2)} d\n");
        sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(Writer(s?.Ram), 2)} r\n");
        if (outer)
        {
            sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(Code(s?.Outer), 2)} o\n");
            sb.Append(CultureInfo.InvariantCulture, $"b{Convert.ToString(Writer(s?.OuterCached), 2)} l\n");
        }
    }

    private static int Code(CacheState? state) => state switch
    {
        CacheState.Clean => 1,
        CacheState.Dirty => 2,
        _ => 0,
    };

    private static int Writer(LineBytes? bytes) =>
        bytes is null ? 0 : bytes.IsUniform(0, bytes.Length, bytes[0]) ? bytes[0] : Mixed;

    private static string Identifier(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
}
