using System.Globalization;
using System.Text;
using DmaCheck.Traces;

namespace DmaCheck.Reports;

/// <summary><c>dmacheck trace</c>'s output: text, JSON (docs/trace.md) and SARIF 2.1.0.</summary>
public static class TraceReport
{
    private static string Kib(ulong bytes) => bytes >= 1024 ? $"{bytes / 1024.0:0.#} KiB" : $"{bytes} B";

    public static string Text(TraceResult r)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"trace {r.File}: {r.Stats.Lines} lines, {r.Stats.Events} dma/swiotlb events");
        sb.AppendLine(inv, $"format: {(r.Format.Features.Count == 0 ? "no dma events" : string.Join("; ", r.Format.Features))}");
        sb.AppendLine(inv, $"kernel: {r.Format.Kernel}");
        sb.AppendLine(inv, $"events: {(r.EventCounts.Count == 0 ? "none" : string.Join(", ", r.EventCounts.Select(kv => $"{kv.Key} {kv.Value}")))}");
        if (r.Stats.OtherEvents.Count > 0)
        {
            sb.AppendLine(inv, $"skipped (other events): {string.Join(", ", r.Stats.OtherEvents.Select(kv => $"{kv.Key} {kv.Value}"))}");
        }

        if (r.StoppedAt is not null)
        {
            sb.AppendLine(inv, $"stopped at {r.StoppedAt}");
        }

        sb.AppendLine("devices:");
        foreach (var d in r.Devices)
        {
            sb.AppendLine(inv, $"  {d.Device}: {d.Maps} maps ({d.SgMaps} sg), {d.Unmaps} unmaps, {d.Syncs} syncs; segments: {d.Bounced} bounced through swiotlb, {d.Translated} other with dma_addr != phys_addr; {d.Allocs} allocs, {d.Frees} frees");
            sb.AppendLine(inv, $"    live at the end: {d.LiveMappings} streaming mapping(s), {d.LiveCoherent} coherent buffer(s) ({Kib(d.LiveCoherentBytes)})");
        }

        if (r.Notes.Count > 0)
        {
            sb.AppendLine("notes:");
            foreach (var n in r.Notes)
            {
                sb.AppendLine(inv, $"  [{n.Quirk}] {n.Text}");
            }
        }

        if (r.WhatIf is { } w)
        {
            sb.AppendLine(inv, $"what-if on {w.Profile}{(w.Coherent ? "" : ", every device non-coherent")}:");
            sb.AppendLine(inv, $"  granule: {w.Granule} byte(s): {w.GranuleSource}");
            sb.AppendLine(inv, $"  streaming buffers: {w.Maps} replayed; {w.Bounced} bounced there for their size, {w.ToDevice} TO_DEVICE (only cleaned), {w.Checked} FROM_DEVICE or BIDIRECTIONAL checked, {w.NotChecked} not checked");
            if (w.Bounced > 0)
            {
                sb.AppendLine(inv, $"  swiotlb: at most {w.PeakSlots} of the pool's {w.PoolSlots} slots in use at once; {w.PoolFull} bounce(s) found no room");
            }
            sb.AppendLine(inv, $"  hazards: {w.BufferHazards} buffer(s) sharing a granule with memory outside them, {w.PairHazards} sharing one with another live buffer");
            foreach (var n in w.Notes)
            {
                sb.AppendLine(inv, $"  note: {n}");
            }
        }

        if (r.Findings.Count > 0)
        {
            sb.AppendLine("findings:");
            foreach (var f in r.Findings)
            {
                sb.AppendLine(inv, $"  {r.File}:{f.Line}: {f.Timestamp} s: {f.Kind} ({f.Class}) in {f.Event}");
                sb.AppendLine(inv, $"      {f.Message}");
                if (f.Detail is not null)
                {
                    sb.AppendLine(inv, $"      {f.Detail}");
                }

                if (f.Explore is not null)
                {
                    sb.AppendLine(inv, $"      {f.Explore}");
                }
            }
        }

        sb.AppendLine(inv, $"{r.Findings.Count} finding(s)");
        return sb.ToString();
    }

    public static string Json(TraceResult r, string toolVersion) => JsonText.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("tool", "dmacheck");
        w.WriteString("version", toolVersion);
        w.WriteString("file", r.File.Replace('\\', '/'));
        w.WriteNumber("lines", r.Stats.Lines);
        w.WriteNumber("events", r.Stats.Events);
        w.WriteStartObject("format");
        w.WriteString("kernel", r.Format.Kernel);
        w.WriteStartArray("features");
        foreach (var f in r.Format.Features)
        {
            w.WriteStringValue(f);
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("eventCounts");
        foreach (var (k, v) in r.EventCounts)
        {
            w.WriteNumber(k, v);
        }

        w.WriteEndObject();
        w.WriteStartObject("skippedEvents");
        foreach (var (k, v) in r.Stats.OtherEvents)
        {
            w.WriteNumber(k, v);
        }

        w.WriteEndObject();
        if (r.StoppedAt is null)
        {
            w.WriteNull("stoppedAt");
        }
        else
        {
            w.WriteString("stoppedAt", r.StoppedAt);
        }

        w.WriteStartArray("devices");
        foreach (var d in r.Devices)
        {
            w.WriteStartObject();
            w.WriteString("device", d.Device);
            w.WriteNumber("maps", d.Maps);
            w.WriteNumber("sgMaps", d.SgMaps);
            w.WriteNumber("unmaps", d.Unmaps);
            w.WriteNumber("syncs", d.Syncs);
            w.WriteNumber("bounced", d.Bounced);
            w.WriteNumber("translated", d.Translated);
            w.WriteNumber("allocs", d.Allocs);
            w.WriteNumber("frees", d.Frees);
            w.WriteNumber("liveMappings", d.LiveMappings);
            w.WriteNumber("liveCoherent", d.LiveCoherent);
            w.WriteNumber("liveCoherentBytes", d.LiveCoherentBytes);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("notes");
        foreach (var n in r.Notes)
        {
            w.WriteStartObject();
            w.WriteString("quirk", n.Quirk);
            w.WriteString("text", n.Text);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        if (r.WhatIf is { } wi)
        {
            w.WriteStartObject("whatIf");
            w.WriteString("profile", wi.Profile);
            w.WriteBoolean("coherent", wi.Coherent);
            w.WriteNumber("granule", wi.Granule);
            w.WriteString("granuleSource", wi.GranuleSource);
            w.WriteNumber("maps", wi.Maps);
            w.WriteNumber("bounced", wi.Bounced);
            w.WriteNumber("toDevice", wi.ToDevice);
            w.WriteNumber("checked", wi.Checked);
            w.WriteNumber("notChecked", wi.NotChecked);
            w.WriteNumber("bufferHazards", wi.BufferHazards);
            w.WriteNumber("pairHazards", wi.PairHazards);
            w.WriteNumber("poolSlots", wi.PoolSlots);
            w.WriteNumber("peakSlots", wi.PeakSlots);
            w.WriteNumber("poolFull", wi.PoolFull);
            w.WriteStartArray("notes");
            foreach (var n in wi.Notes)
            {
                w.WriteStringValue(n);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("whatIf");
        }

        w.WriteStartArray("findings");
        foreach (var f in r.Findings)
        {
            w.WriteStartObject();
            w.WriteString("kind", f.Kind);
            w.WriteString("class", f.Class);
            w.WriteNumber("line", f.Line);
            w.WriteString("timestamp", f.Timestamp);
            w.WriteString("device", f.Device);
            w.WriteString("event", f.Event);
            w.WriteString("message", f.Message);
            if (f.Detail is null)
            {
                w.WriteNull("detail");
            }
            else
            {
                w.WriteString("detail", f.Detail);
            }

            if (f.Explore is null)
            {
                w.WriteNull("explore");
            }
            else
            {
                w.WriteStartObject("explore");
                w.WriteString("from", f.ExploreFrom);
                w.WriteString("to", f.ExploreTo);
                w.WriteString("expectation", f.ExploreExpectation);
                w.WriteString("text", f.Explore);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>SARIF 2.1.0: one rule per finding kind that occurs, each result at the trace file and line.</summary>
    public static string Sarif(TraceResult r, string toolVersion)
    {
        var kinds = r.Findings.Select(f => (f.Kind, f.Class)).Distinct().OrderBy(k => k.Kind, StringComparer.Ordinal).ToList();
        return SarifReport.Log(toolVersion,
            kinds.Select(k => (k.Kind, k.Kind, k.Class == DmaCheck.Kernel.FindingKind.WhatIfClass
                ? $"what-if hazard of a recorded dma:* trace replayed on kernel profile {r.WhatIf?.Profile}: {DmaCheck.Kernel.FindingKindRegistry.Find(k.Kind)?.Description}; docs/trace.md"
                : $"DMA-API debug check {k.Class} (kernel/dma/debug.c), found in a recorded dma:* trace; docs/findings.md", "error")),
            w =>
            {
                foreach (var f in r.Findings)
                {
                    SarifReport.WriteResult(w, f.Kind, kinds.FindIndex(k => k.Kind == f.Kind), "error",
                        (f.Detail is null ? $"{f.Timestamp} s: {f.Message}" : $"{f.Timestamp} s: {f.Message} ({f.Detail})") + (f.Explore is null ? string.Empty : $"; {f.Explore}"), r.File, f.Line, column: 0);
                }
            });
    }
}
