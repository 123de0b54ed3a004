using System.Globalization;
using DmaCheck.Dma;

namespace DmaCheck.Traces;

/// <summary>What one line of a trace was.</summary>
public enum LineKind
{
    /// <summary>Empty, a '#' header or comment, or a trace-cmd header ("cpus=N", "version = N", "CPU N is empty").</summary>
    Header,

    /// <summary>A dma:* or swiotlb:* event dmacheck reads.</summary>
    Event,

    /// <summary>An event of another tracepoint (skipped and counted).</summary>
    OtherEvent,

    /// <summary>"CPU:N [LOST M EVENTS]": the ring buffer dropped events.</summary>
    Lost,

    /// <summary>trace-cmd's "[FAILED TO PARSE]" for an event it could not format (skipped and counted).</summary>
    Unformatted,
}

/// <summary>
/// Parses one line of /sys/kernel/tracing/trace, trace_pipe or 'trace-cmd report' text:
/// <c>TASK-PID [CPU] [FLAGS] TIMESTAMP: EVENT: BODY</c> (trace-cmd pads the event name and may omit the flags). The
/// event is found by its timestamp, the first "N.N: name:" after the task (task names may hold spaces and colons).
/// The body is read by the format strings of include/trace/events/dma.h (v6.12..v6.19) and swiotlb.h; docs/trace.md.
/// Device and event names are interned, so a long trace allocates one string per distinct name.
/// </summary>
public sealed class TraceLineParser
{
    private readonly string file;

    private readonly Dictionary<string, string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> lookup;

    /// <summary>The last unknown event name (for <see cref="LineKind.OtherEvent"/>).</summary>
    public string LastOtherEvent { get; private set; } = "";

    /// <summary>The count of a "[LOST N EVENTS]" line.</summary>
    public long LastLost { get; private set; }

    /// <summary>From the trace file's "# entries-in-buffer/entries-written: A/B" header, if present.</summary>
    public (long InBuffer, long Written)? Entries { get; private set; }

    public TraceLineParser(string file)
    {
        this.file = file;
        lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Interns a name (device, event, attrs, dir): a trace repeats a handful of them a million times.</summary>
    private string Intern(ReadOnlySpan<char> s)
    {
        if (lookup.TryGetValue(s, out var known))
        {
            return known;
        }

        var str = s.ToString();
        names[str] = str;
        return str;
    }

    private TraceInputException Error(long line, int column, string message, ReadOnlySpan<char> text) =>
        new(file, line, column, message, text.ToString());

    /// <summary>Classifies and parses one line (without its newline). Throws <see cref="TraceInputException"/> for a malformed one.</summary>
    public LineKind Parse(ReadOnlySpan<char> line, long lineNo, out TraceEvent? ev)
    {
        ev = null;
        if (line.Length > 0 && line[^1] == '\r')
        {
            line = line[..^1];
        }

        var trimmed = line.TrimStart();
        if (trimmed.IsEmpty)
        {
            return LineKind.Header;
        }

        if (trimmed[0] == '#')
        {
            const string entries = "entries-in-buffer/entries-written:";
            var at = trimmed.IndexOf(entries, StringComparison.Ordinal);
            if (at >= 0)
            {
                var rest = trimmed[(at + entries.Length)..].TrimStart();
                var slash = rest.IndexOf('/');
                var end = rest.IndexOf(' ');
                if (slash > 0 && long.TryParse(rest[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out var a)
                    && long.TryParse(rest[(slash + 1)..(end > slash ? end : rest.Length)], NumberStyles.None, CultureInfo.InvariantCulture, out var b))
                {
                    Entries = (a, b);
                }
            }

            return LineKind.Header;
        }

        if (trimmed.StartsWith("CPU:", StringComparison.Ordinal) && trimmed.Contains("LOST", StringComparison.Ordinal))
        {
            var lost = trimmed.IndexOf("LOST ", StringComparison.Ordinal) + 5;
            var digits = trimmed[lost..];
            var n = 0;
            while (n < digits.Length && char.IsAsciiDigit(digits[n]))
            {
                n++;
            }

            LastLost = n > 0 ? long.Parse(digits[..n], CultureInfo.InvariantCulture) : 0;
            return LineKind.Lost;
        }

        if (trimmed.StartsWith("cpus=", StringComparison.Ordinal) || trimmed.StartsWith("version =", StringComparison.Ordinal)
            || (trimmed.StartsWith("CPU ", StringComparison.Ordinal) && trimmed.EndsWith("is empty", StringComparison.Ordinal)))
        {
            return LineKind.Header;
        }

        // Find "TIMESTAMP: EVENT:" : the first ": " whose left token is a number and whose right token ends in ':'.
        var search = 0;
        while (true)
        {
            var colon = line[search..].IndexOf(": ", StringComparison.Ordinal);
            if (colon < 0)
            {
                throw Error(lineNo, 1, "not an ftrace event line (expected 'TASK-PID [CPU] TIMESTAMP: EVENT: ...')", line);
            }

            colon += search;
            var start = line[..colon].LastIndexOf(' ') + 1;
            var stamp = line[start..colon];
            if (IsTimestamp(stamp))
            {
                var nameStart = colon + 2;
                var nameEnd = nameStart;
                while (nameEnd < line.Length && (char.IsAsciiLetterOrDigit(line[nameEnd]) || line[nameEnd] == '_'))
                {
                    nameEnd++;
                }

                if (nameEnd > nameStart && nameEnd < line.Length && line[nameEnd] == ':')
                {
                    var name = line[nameStart..nameEnd];
                    var body = line[(nameEnd + 1)..].Trim(' ');
                    return ParseEvent(line, lineNo, stamp, name, body, nameEnd + 1, out ev);
                }
            }

            search = colon + 1;
        }
    }

    private static bool IsTimestamp(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty)
        {
            return false;
        }

        var digits = 0;
        foreach (var c in s)
        {
            if (char.IsAsciiDigit(c))
            {
                digits++;
            }
            else if (c != '.')
            {
                return false;
            }
        }

        return digits > 0;
    }

    private static TraceEventKind? KindOf(ReadOnlySpan<char> name) => name switch
    {
        "dma_map_page" or "dma_map_phys" => TraceEventKind.Map,
        "dma_map_resource" => TraceEventKind.MapResource,
        "dma_unmap_page" or "dma_unmap_phys" => TraceEventKind.Unmap,
        "dma_unmap_resource" => TraceEventKind.UnmapResource,
        "dma_map_sg" => TraceEventKind.MapSg,
        "dma_map_sg_err" => TraceEventKind.MapSgErr,
        "dma_unmap_sg" => TraceEventKind.UnmapSg,
        "dma_sync_single_for_cpu" => TraceEventKind.SyncSingleForCpu,
        "dma_sync_single_for_device" => TraceEventKind.SyncSingleForDevice,
        "dma_sync_sg_for_cpu" => TraceEventKind.SyncSgForCpu,
        "dma_sync_sg_for_device" => TraceEventKind.SyncSgForDevice,
        "dma_alloc" => TraceEventKind.Alloc,
        "dma_free" => TraceEventKind.Free,
        "dma_alloc_pages" => TraceEventKind.AllocPages,
        "dma_free_pages" => TraceEventKind.FreePages,
        "dma_alloc_sgt" => TraceEventKind.AllocSgt,
        "dma_free_sgt" => TraceEventKind.FreeSgt,
        "dma_alloc_sgt_err" => TraceEventKind.AllocSgtErr,
        "swiotlb_bounced" => TraceEventKind.SwiotlbBounced,
        _ => null,
    };

    private LineKind ParseEvent(ReadOnlySpan<char> line, long lineNo, ReadOnlySpan<char> stamp, ReadOnlySpan<char> name, ReadOnlySpan<char> body, int bodyColumn, out TraceEvent? ev)
    {
        ev = null;
        if (KindOf(name) is not { } kind)
        {
            LastOtherEvent = Intern(name);
            return LineKind.OtherEvent;
        }

        if (body.StartsWith("[FAILED TO PARSE]", StringComparison.Ordinal))
        {
            LastOtherEvent = Intern(name);
            return LineKind.Unformatted;
        }

        if (kind == TraceEventKind.SwiotlbBounced)
        {
            // "dev_name: %s dma_mask=%llx dev_addr=%llx size=%zu %s" (the last: FORCE / NORMAL, or swiotlb_force=... before v5.18).
            if (body.StartsWith("dev_name:", StringComparison.Ordinal))
            {
                body = body["dev_name:".Length..].TrimStart(' ');
            }
        }

        var space = body.IndexOf(' ');
        var device = space < 0 ? body : body[..space];
        if (device.IsEmpty || device.Contains('='))
        {
            throw Error(lineNo, bodyColumn + 1, $"{name.ToString()} without a device name", line);
        }

        var fields = space < 0 ? [] : body[(space + 1)..];
        DmaDirection? dir = null;
        string? dirText = null;
        ulong dmaAddr = 0, size = 0;
        ulong? phys = null;
        string attrs = "";
        string? flags = null;
        string? virt = null, force = null;
        ulong[] dmaAddrs = [], sizes = [], physAddrs = [];
        int nents = -1, ents = -1;
        bool truncated = false, hasDma = false, hasSize = false, hasDmaArray = false;
        while (!fields.IsEmpty)
        {
            var sp = fields.IndexOf(' ');
            var token = sp < 0 ? fields : fields[..sp];
            fields = sp < 0 ? [] : fields[(sp + 1)..];
            if (token.IsEmpty)
            {
                continue;
            }

            var eq = token.IndexOf('=');
            if (eq < 0)
            {
                if (token.SequenceEqual("[TRUNCATED]"))
                {
                    truncated = true;
                }
                else if (kind == TraceEventKind.SwiotlbBounced)
                {
                    force = Intern(token);
                }

                continue;
            }

            var key = token[..eq];
            var value = token[(eq + 1)..];
            switch (key)
            {
                case "dir":
                    dirText = Intern(value);
                    dir = value switch
                    {
                        "BIDIRECTIONAL" => DmaDirection.DMA_BIDIRECTIONAL,
                        "TO_DEVICE" => DmaDirection.DMA_TO_DEVICE,
                        "FROM_DEVICE" => DmaDirection.DMA_FROM_DEVICE,
                        "NONE" => DmaDirection.DMA_NONE,
                        _ => null,
                    };
                    break;
                case "dma_addr" or "dev_addr":
                    dmaAddr = Hex(value, lineNo, line, token);
                    hasDma = true;
                    break;
                case "phys_addr":
                    phys = Hex(value, lineNo, line, token);
                    break;
                case "size":
                    size = Decimal(value, lineNo, line, token);
                    hasSize = true;
                    break;
                case "attrs":
                    attrs = value.IsEmpty ? "" : Intern(value);
                    break;
                case "flags":
                    flags = value.IsEmpty ? null : Intern(value);
                    break;
                case "virt_addr":
                    virt = value.ToString();
                    break;
                case "dma_addrs":
                    if (kind == TraceEventKind.MapSgErr)
                    {
                        physAddrs = Array(value, lineNo, line, token); // dma_map_sg_err prints sg_phys under "dma_addrs="
                    }
                    else
                    {
                        dmaAddrs = Array(value, lineNo, line, token);
                    }

                    hasDmaArray = true;
                    break;
                case "sizes":
                    sizes = Array(value, lineNo, line, token);
                    break;
                case "phys_addrs":
                    physAddrs = Array(value, lineNo, line, token);
                    break;
                case "nents":
                    nents = Count(value, lineNo, line, token);
                    break;
                case "ents":
                    ents = Count(value, lineNo, line, token);
                    break;
                default:
                    break; // dma_mask=, err=, swiotlb_force=: not needed
            }
        }

        var nameText = name.ToString();
        var lineText = line;
        string? missing = null;
        void Require(bool present, string field)
        {
            if (!present)
            {
                missing ??= field;
            }
        }

        switch (kind)
        {
            case TraceEventKind.Map or TraceEventKind.MapResource:
                Require(hasDma && hasSize && phys is not null && dirText is not null, "dir=, dma_addr=, size= and phys_addr=");
                break;
            case TraceEventKind.Unmap or TraceEventKind.UnmapResource or TraceEventKind.SyncSingleForCpu or TraceEventKind.SyncSingleForDevice:
                Require(hasDma && hasSize && dirText is not null, "dir=, dma_addr= and size=");
                break;
            case TraceEventKind.Alloc or TraceEventKind.Free or TraceEventKind.AllocPages or TraceEventKind.FreePages or TraceEventKind.AllocSgt or TraceEventKind.FreeSgt:
                Require(hasDma && hasSize, "dma_addr= and size=");
                break;
            case TraceEventKind.MapSg:
                Require(hasDmaArray && physAddrs.Length > 0 && dirText is not null, "dir=, dma_addrs= and phys_addrs=");
                if (sizes.Length != dmaAddrs.Length)
                {
                    throw Error(lineNo, 1, $"dma_map_sg with {dmaAddrs.Length} dma_addrs but {sizes.Length} sizes", line);
                }

                break;
            case TraceEventKind.UnmapSg:
                Require(physAddrs.Length > 0 && dirText is not null, "dir= and phys_addrs=");
                break;
            case TraceEventKind.SyncSgForCpu or TraceEventKind.SyncSgForDevice:
                Require(hasDmaArray && dirText is not null, "dir= and dma_addrs=");
                if (sizes.Length != dmaAddrs.Length)
                {
                    throw Error(lineNo, 1, $"{nameText} with {dmaAddrs.Length} dma_addrs but {sizes.Length} sizes", line);
                }

                break;
            case TraceEventKind.SwiotlbBounced:
                Require(hasDma && hasSize, "dev_addr= and size=");
                break;
        }

        if (missing is not null)
        {
            throw Error(lineNo, 1, $"{nameText} without {missing}", lineText);
        }

        var hasCounts = nents >= 0 && ents >= 0;
        ev = new TraceEvent
        {
            Kind = kind,
            Name = Intern(name),
            Line = lineNo,
            Timestamp = stamp.ToString(),
            Seconds = double.Parse(stamp, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture),
            Device = Intern(device),
            Direction = dir,
            DirText = dirText,
            DmaAddr = dmaAddr,
            Size = size,
            Phys = phys,
            Attrs = attrs,
            Flags = flags,
            VirtAddr = virt,
            DmaAddrs = dmaAddrs,
            Sizes = sizes,
            PhysAddrs = physAddrs,
            Nents = hasCounts ? nents : physAddrs.Length,
            Ents = hasCounts ? ents : dmaAddrs.Length,
            HasCounts = hasCounts,
            Truncated = truncated,
            Force = force,
        };
        return LineKind.Event;
    }

    /// <summary>The 1-based column of <paramref name="token"/>, a slice of <paramref name="line"/>.</summary>
    private static int ColumnOf(ReadOnlySpan<char> line, ReadOnlySpan<char> token) =>
        (int)(System.Runtime.CompilerServices.Unsafe.ByteOffset(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(line),
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(token)) / sizeof(char)) + 1;

    private ulong Hex(ReadOnlySpan<char> value, long lineNo, ReadOnlySpan<char> line, ReadOnlySpan<char> token)
    {
        var v = value.StartsWith("0x", StringComparison.Ordinal) ? value[2..] : value;
        if (v.IsEmpty || !ulong.TryParse(v, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var n))
        {
            throw Error(lineNo, ColumnOf(line, token), $"'{token.ToString()}' is not a hexadecimal address", line);
        }

        return n;
    }

    private ulong Decimal(ReadOnlySpan<char> value, long lineNo, ReadOnlySpan<char> line, ReadOnlySpan<char> token)
    {
        if (!ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            throw Error(lineNo, ColumnOf(line, token), $"'{token.ToString()}' is not a decimal size", line);
        }

        return n;
    }

    /// <summary>"a/b" of nents= and ents=: b, the full count (a is min(b, 128)).</summary>
    private int Count(ReadOnlySpan<char> value, long lineNo, ReadOnlySpan<char> line, ReadOnlySpan<char> token)
    {
        var slash = value.IndexOf('/');
        if (slash < 0 || !int.TryParse(value[(slash + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var full)
            || !int.TryParse(value[..slash], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
        {
            throw Error(lineNo, ColumnOf(line, token), $"'{token.ToString()}' is not a count 'traced/full'", line);
        }

        return full;
    }

    /// <summary>__print_array: "{0x1,0x2}" ("{}" when empty).</summary>
    private ulong[] Array(ReadOnlySpan<char> value, long lineNo, ReadOnlySpan<char> line, ReadOnlySpan<char> token)
    {
        if (value.Length < 2 || value[0] != '{' || value[^1] != '}')
        {
            throw Error(lineNo, ColumnOf(line, token), $"'{Short(token)}' is not an array '{{0x..,0x..}}'", line);
        }

        var inner = value[1..^1];
        if (inner.IsEmpty)
        {
            return [];
        }

        var result = new ulong[inner.Count(',') + 1];
        var i = 0;
        foreach (var range in inner.Split(','))
        {
            result[i++] = Hex(inner[range], lineNo, line, token);
        }

        return result;
    }

    private static string Short(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : s[..40].ToString() + "...";
}
