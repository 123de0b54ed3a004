using System.Buffers;
using System.Text;

namespace DmaCheck.Traces;

/// <summary>What the reader saw besides the events it handed on.</summary>
public sealed class ReadStats
{
    public long Lines { get; set; }

    public long Events { get; set; }

    /// <summary>Events of other tracepoints, by name: skipped.</summary>
    public SortedDictionary<string, long> OtherEvents { get; } = new(StringComparer.Ordinal);

    /// <summary>dma:* events trace-cmd could not format ("[FAILED TO PARSE]"), by name: skipped.</summary>
    public SortedDictionary<string, long> Unformatted { get; } = new(StringComparer.Ordinal);

    /// <summary>The sum of "[LOST N EVENTS]" lines.</summary>
    public long LostEvents { get; set; }

    public (long InBuffer, long Written)? Entries { get; set; }

    /// <summary>The last line had no newline and did not parse: it was ignored (a trace cut off while being copied).</summary>
    public long? TruncatedLastLine { get; set; }

    /// <summary>The last line had no newline but parsed: it was read.</summary>
    public bool LastLineWithoutNewline { get; set; }
}

/// <summary>
/// Reads a text trace as a stream of lines, never holding more than one line (and a 64 KiB buffer): memory does not
/// grow with the trace. A binary file (NUL bytes, or trace-cmd's trace.dat) is refused with a clear error.
/// </summary>
public static class TraceReader
{
    private const int MaxLine = 16 << 20;

    /// <summary>trace-cmd's trace.dat starts with these bytes (\x17\x08D then "tracing").</summary>
    private static ReadOnlySpan<byte> TraceDatMagic => [0x17, 0x08, 0x44, (byte)'t', (byte)'r', (byte)'a', (byte)'c', (byte)'i', (byte)'n', (byte)'g'];

    public static ReadStats Read(Stream input, string file, Action<TraceEvent> onEvent, Func<bool>? stop = null)
    {
        var parser = new TraceLineParser(file);
        var stats = new ReadStats();
        var buffer = new byte[1 << 16];
        var pending = new ArrayBufferWriter<byte>(256);
        var chars = ArrayPool<char>.Shared.Rent(4096);
        var decoder = new UTF8Encoding(false, false);
        long lineNo = 0;
        var first = true;
        try
        {
            int n;
            while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                var span = buffer.AsSpan(0, n);
                if (first)
                {
                    first = false;
                    if (span.StartsWith(TraceDatMagic))
                    {
                        throw new TraceInputException(file, 0, 0, "this is a binary trace-cmd trace.dat file, not text: convert it with 'trace-cmd report FILE > FILE.txt' first", "");
                    }

                    var nul = span.IndexOf((byte)0);
                    if (nul >= 0)
                    {
                        throw new TraceInputException(file, 0, 0, $"this is a binary file (a NUL byte at offset {nul}), not the text of /sys/kernel/tracing/trace, trace_pipe or 'trace-cmd report'", "");
                    }
                }

                while (!span.IsEmpty)
                {
                    var nl = span.IndexOf((byte)'\n');
                    if (nl < 0)
                    {
                        if (pending.WrittenCount + span.Length > MaxLine)
                        {
                            throw new TraceInputException(file, lineNo + 1, 1, $"a line longer than {MaxLine >> 20} MiB: not a text trace", "");
                        }

                        pending.Write(span);
                        break;
                    }

                    ReadOnlySpan<byte> lineBytes;
                    if (pending.WrittenCount > 0)
                    {
                        pending.Write(span[..nl]);
                        lineBytes = pending.WrittenSpan;
                    }
                    else
                    {
                        lineBytes = span[..nl];
                    }

                    lineNo++;
                    Line(lineBytes, lineNo, complete: true);
                    pending.Clear();
                    span = span[(nl + 1)..];
                    if (stop?.Invoke() == true)
                    {
                        return Finish();
                    }
                }
            }

            if (pending.WrittenCount > 0)
            {
                lineNo++;
                Line(pending.WrittenSpan, lineNo, complete: false);
            }

            return Finish();
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }

        ReadStats Finish()
        {
            stats.Lines = lineNo;
            stats.Entries = parser.Entries;
            return stats;
        }

        void Line(ReadOnlySpan<byte> bytes, long no, bool complete)
        {
            if (bytes.IndexOf((byte)0) is var nul and >= 0)
            {
                throw new TraceInputException(file, no, nul + 1, "binary data (a NUL byte) in a text trace", Encoding.UTF8.GetString(bytes[..nul]));
            }

            var count = decoder.GetCharCount(bytes);
            if (count > chars.Length)
            {
                ArrayPool<char>.Shared.Return(chars);
                chars = ArrayPool<char>.Shared.Rent(count);
            }

            var text = chars.AsSpan(0, decoder.GetChars(bytes, chars));
            LineKind kind;
            TraceEvent? ev;
            try
            {
                kind = parser.Parse(text, no, out ev);
            }
            catch (TraceInputException) when (!complete)
            {
                stats.TruncatedLastLine = no;
                return;
            }

            if (!complete)
            {
                stats.LastLineWithoutNewline = true;
            }

            switch (kind)
            {
                case LineKind.Event:
                    stats.Events++;
                    onEvent(ev!);
                    break;
                case LineKind.OtherEvent:
                    stats.OtherEvents[parser.LastOtherEvent] = stats.OtherEvents.GetValueOrDefault(parser.LastOtherEvent) + 1;
                    break;
                case LineKind.Unformatted:
                    stats.Unformatted[parser.LastOtherEvent] = stats.Unformatted.GetValueOrDefault(parser.LastOtherEvent) + 1;
                    break;
                case LineKind.Lost:
                    stats.LostEvents += parser.LastLost;
                    break;
            }
        }
    }
}
