namespace DmaCheck.Traces;

/// <summary>Reads a trace file and checks it: the entry point of the Traces layer.</summary>
public static class TraceCheck
{
    /// <summary>Checks <paramref name="input"/> (named <paramref name="file"/> in messages). Throws <see cref="TraceInputException"/> for bad input.</summary>
    /// <param name="observe">Also gets each event the checks get (before --until), e.g. a <see cref="ScenarioEmitter"/>.</param>
    public static TraceResult Run(Stream input, string file, TraceOptions options, Action<TraceEvent>? observe = null)
    {
        var debug = new TraceDebug(options.Devices);
        var whatIf = options.Profile is { } profile ? new WhatIfReplay(profile, options.Devices, file, options.UntilText) : null;
        string? stoppedAt = null;
        var stats = TraceReader.Read(input, file, e =>
        {
            if (options.Until is { } until && e.Seconds > until)
            {
                stoppedAt ??= $"line {e.Line} ({e.Timestamp} s), the first event after --until {options.UntilText}";
                return;
            }

            debug.Add(e);
            whatIf?.Add(e);
            observe?.Invoke(e);
        }, () => stoppedAt is not null);
        debug.Finish(stoppedAt is null ? (options.Until is null ? "at the end of the trace" : $"at --until {options.UntilText} (the trace ends before it)") : $"at --until {options.UntilText}");
        var notes = debug.Notes.ToList();
        if (stats.LostEvents > 0 || stats.Entries is { } en && en.InBuffer < en.Written)
        {
            var lost = stats.LostEvents > 0 ? stats.LostEvents : stats.Entries!.Value.Written - stats.Entries.Value.InBuffer;
            notes.Insert(0, new TraceNote("lost-events", $"the ring buffer lost {lost} event(s) (entries-in-buffer/entries-written, or 'LOST' lines): mappings made or released in them are missing, so findings about unknown handles or leaks may be artefacts; record with a bigger trace_buf_size."));
        }

        if (stats.TruncatedLastLine is { } t)
        {
            notes.Add(new TraceNote("truncated-last-line", $"line {t}, the last, has no newline and does not parse: the trace was cut off there; that line is ignored."));
        }

        if (stats.Unformatted.Count > 0)
        {
            notes.Add(new TraceNote("failed-to-parse", $"trace-cmd could not format {stats.Unformatted.Values.Sum()} event(s) ({string.Join(", ", stats.Unformatted.Select(kv => $"{kv.Key} {kv.Value}"))}: '[FAILED TO PARSE]'); they are skipped, so findings near them may be artefacts. A newer trace-cmd/libtraceevent formats them."));
        }

        if (options.Devices.Count > 0)
        {
            foreach (var name in options.Devices.Where(n => debug.Summaries().All(s => s.Device != n)))
            {
                notes.Add(new TraceNote("no-such-device", $"--device {name}: no dma event of this device is in the trace."));
            }
        }

        var summary = whatIf?.Finish(); // first: it completes the explore windows of buffers still live at the end
        var findings = debug.Findings.Concat(whatIf?.Findings ?? []).OrderBy(f => f.Line).ToList();
        return new TraceResult(file, debug.Format, stats, debug.EventCounts, debug.Summaries(), findings, notes, stoppedAt, debug.PeakLive, summary);
    }
}
