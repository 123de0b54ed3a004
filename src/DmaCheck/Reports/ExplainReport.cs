using System.Globalization;
using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Reports;

/// <summary><c>dmacheck explain</c>: the shortest failing run as a narrative in kernel terms, then a per-line timeline.</summary>
public static class ExplainReport
{
    /// <summary>
    /// The findings of a scenario: for each, what the kernel function did, whose page it was, and the shortest run
    /// that reaches it (the search is breadth-first), with the kernel's operations on the way.
    /// </summary>
    public static string RenderFindings(ScenarioOutcome outcome, Style style)
    {
        var sb = new StringBuilder();
        var scenario = outcome.Scenario!;
        sb.AppendLine(CultureInfo.InvariantCulture, $"{outcome.File}: {scenario.Title}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"profile {scenario.Profile.Name} ({scenario.Profile.DescribeSwitches()}); layout {scenario.Profile.Layout.Name}");
        var index = 0;
        foreach (var (found, declared) in outcome.Result!.FindingRows)
        {
            sb.AppendLine();
            if (found is null)
            {
                sb.AppendLine(style.Bad($"declared '{declared}' ({outcome.File}:{declared!.Span.Line}): no run produces it"));
                continue;
            }

            var f = found.Finding;
            index++;
            var status = declared is null ? style.Bad("not declared") : style.Good($"declared: {declared}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"finding {index}: {f.Kind} in {f.Function} [{f.SeverityText}] ({status})");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  at {outcome.File}:{found.Statement.Span.Line}:{found.Statement.Span.Column}, {found.Agent}: {found.Statement.Text}");
            if (f.Pfn is { } pfn)
            {
                var layout = scenario.Profile.Layout;
                var where = layout.PfnValid(pfn) ? (layout.IsLowmemPfn(pfn) ? "lowmem" : "highmem") : "not RAM";
                sb.AppendLine(CultureInfo.InvariantCulture, $"  page frame: pfn 0x{pfn:x} (PA 0x{unchecked(pfn << Kernel.PlatformLayout.PageShift):x}, {where}); owner: {f.Owner.Describe()}");
            }

            sb.AppendLine(CultureInfo.InvariantCulture, $"  {f.Message}");
            if (found.Trace is { } trace)
            {
                sb.AppendLine("  shortest run to it:");
                var step = 0;
                foreach (var s in trace)
                {
                    step++;
                    sb.AppendLine(CultureInfo.InvariantCulture, $"    {step}. {s.Program.Name}: {s.Statement.Text}");
                    foreach (var op in s.Ops)
                    {
                        sb.AppendLine(CultureInfo.InvariantCulture, $"         {style.Dim(DescribeOp(op))}");
                    }
                }
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// The kernel crashes some runs reach: for each, its verdict, what the kernel would do, and the shortest run to it
    /// with the fewest spontaneous hardware events (the search is breadth-first and cheapest-first per crash).
    /// </summary>
    public static string RenderKernelBugs(ScenarioOutcome outcome, Style style)
    {
        var sb = new StringBuilder();
        var scenario = outcome.Scenario!;
        sb.AppendLine(CultureInfo.InvariantCulture, $"{outcome.File}: {scenario.Title}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"profile {scenario.Profile.Name} ({scenario.Profile.DescribeSwitches()}); layout {scenario.Profile.Layout.Name}");
        foreach (var bug in outcome.Result!.KernelBugs)
        {
            var statement = scenario.StatementAt(bug.Crash.Span);
            var agent = scenario.Programs[scenario.Agents[bug.Crash.Agent]].Name;
            sb.AppendLine();
            var when = bug.Verdict == Verdict.Always ? "on every run" : "on some runs";
            var events = bug.MinEvents == 1 ? "event" : "events";
            sb.AppendLine(style.Bad($"kernel bug {when} ({bug.Name}); the fewest spontaneous hardware {events} to reach it: {bug.MinEvents}"));
            sb.AppendLine(CultureInfo.InvariantCulture, $"  at {outcome.File}:{bug.Crash.Span.Line}:{bug.Crash.Span.Column}, {agent}: {statement.Text}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {bug.Crash.Message}");
            if (outcome.Explorer?.Crashes.TryGetValue((bug.Name, bug.Crash.Message), out var point) == true)
            {
                sb.AppendLine("  shortest run to it:");
                var n = 0;
                foreach (var s in point.Node.Path())
                {
                    n++;
                    sb.AppendLine(CultureInfo.InvariantCulture, $"    {n}. {s.Program.Name}: {s.Statement.Text}");
                    foreach (var op in s.Ops)
                    {
                        sb.AppendLine(CultureInfo.InvariantCulture, $"         {style.Dim(DescribeOp(op))}");
                    }
                }

                sb.AppendLine("    ** the kernel crashes here; nothing runs after it");
            }
        }

        return sb.ToString();
    }

    public static string Render(ScenarioOutcome outcome, Witness? witness, ExpectationVerdict verdict, Style style, bool replayed = false)
    {
        var sb = new StringBuilder();
        var scenario = outcome.Scenario!;
        var writers = scenario.Writers;
        sb.AppendLine(CultureInfo.InvariantCulture, $"{outcome.File}: {scenario.Title}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"profile {scenario.Profile.Name} ({scenario.Profile.DescribeSwitches()}); " +
            $"init_on_alloc={OnOff(scenario.KernelConfig.InitOnAlloc)}, init_on_free={OnOff(scenario.KernelConfig.InitOnFree)}; cache starts {scenario.Hardware.Initial.ToString().ToLowerInvariant()}");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"expect {verdict.Expectation.Name}: {verdict.Expectation.Text[(verdict.Expectation.Text.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()}");
        if (witness is null)
        {
            sb.AppendLine(style.Good($"verdict: {verdict.Verdict}: it never fails, so there is no failing run to explain."));
            return sb.ToString();
        }

        var eventsWord = witness.Events == 1 ? "event" : "events";
        if (replayed)
        {
            sb.AppendLine($"replaying a saved run with {witness.Events} spontaneous hardware {eventsWord}");
        }
        else
        {
            sb.AppendLine(style.Bad($"verdict: {verdict.Verdict}; it fails with {witness.Events} spontaneous hardware {eventsWord}") + HowItFails(witness.Events, verdict, scenario));
        }
        if (witness.LinePa is { } pa)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"witness line: PA 0x{pa:x} ({scenario.Hardware.LineSize}-byte line): the line whose check fails with the fewest events");
        }

        sb.AppendLine();
        sb.AppendLine(replayed ? "the run:" : "shortest failing run:");
        var n = 0;
        foreach (var item in witness.Items)
        {
            switch (item)
            {
                case StepItem s:
                    n++;
                    sb.AppendLine(CultureInfo.InvariantCulture, $"{n,3}. {s.Step.Program.Name}: {s.Step.Statement.Text}    [{scenario.File}:{s.Step.Statement.Span.Line}]");
                    break;
                case OpItem o:
                    sb.AppendLine("       " + DescribeOp(o.Op) + (o.Before is null ? string.Empty : $"\n           line: {o.Before.Describe(writers)}  ->  {o.After!.Describe(writers)}"));
                    break;
                case MoveItem m:
                    sb.AppendLine(style.Warn($"       ** spontaneous: {LineSemantics.Describe(m.Move)}") +
                        $"\n           line: {m.Before.Describe(writers)}  ->  {m.After.Describe(writers)}");
                    break;
            }
        }

        foreach (var up in witness.Upstream)
        {
            var polled = up.Items.OfType<OpItem>().Any(o => o.Op is MemoryOp { Op.Kind: LineOpKind.Poll });
            var what = polled ? "a poll read" : "a copy read";
            var until = polled ? "before its last read" : "before it copied";
            sb.AppendLine(CultureInfo.InvariantCulture, $"       and on line PA 0x{up.LinePa:x}, which {what}, {up.Events} spontaneous event(s) {until}:");
            foreach (var item in up.Items)
            {
                switch (item)
                {
                    case OpItem o:
                        sb.AppendLine("         " + DescribeOp(o.Op) + $"\n             line: {o.Before!.Describe(writers)}  ->  {o.After!.Describe(writers)}");
                        break;
                    case MoveItem m:
                        sb.AppendLine(style.Warn($"         ** spontaneous: {LineSemantics.Describe(m.Move)}") +
                            $"\n             line: {m.Before.Describe(writers)}  ->  {m.After.Describe(writers)}");
                        break;
                }
            }
        }

        foreach (var hung in witness.Hung)
        {
            sb.AppendLine(style.Bad($"     ** {hung}"));
        }

        sb.AppendLine();
        if (witness.Missing is { } missing)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"result: {missing}, so the expectation cannot hold.");
            return sb.ToString();
        }

        sb.AppendLine(Why(witness, verdict.Expectation, scenario));
        sb.AppendLine();
        if (WitnessMinimiser.Minimise(witness, scenario.Hardware) is { } min)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"minimised (delta debugging, the scenario's own reads and writes kept): the same failure needs {min.Needed.Count} of the {min.Needed.Count + min.Removed.Count} kernel operations and spontaneous events on the witness line:");
            if (ReplayFile.HasCopies(witness))
            {
                sb.AppendLine("  (this run copies bytes between lines, as swiotlb bounces do; the minimisation replays the witness line alone, so a cause on another line, such as the copy that filled a bounce slot, does not show here)");
            }
            foreach (var i in min.Needed)
            {
                sb.AppendLine("  needed:     " + Describe(witness.Items[i]));
            }

            foreach (var i in min.Removed)
            {
                sb.AppendLine("  not needed: " + Describe(witness.Items[i]));
            }

            sb.AppendLine();
        }

        sb.Append(Timeline(witness, writers));
        return sb.ToString();
    }

    /// <summary>What the fewest events mean: with 0, every schedule of a quiet machine or only some (a software race).</summary>
    public static string HowItFails(int events, ExpectationVerdict verdict, Scenario scenario) => (events, verdict.FailsOnEveryQuietRun) switch
    {
        (0, true) => " on every schedule (on a quiet machine, every time, whatever the order of the agents' steps)",
        (0, _) => " on some schedules, not all: a software race (the order of the agents' steps decides it" +
            (scenario.Hardware.Initial == InitialCache.Arbitrary ? ", or what the cache held at the start)" : ")"),
        _ => " (a hardware race: it needs the hardware to do this much on its own)",
    };

    /// <summary>The root-cause paragraph of a witness ("why: ..."), or what the run is missing when a variable was never read.</summary>
    public static string WhyText(Witness witness, Expectation expectation, Scenario scenario) =>
        witness.Missing is { } missing ? $"result: {missing}, so the expectation cannot hold." : Why(witness, expectation, scenario);

    private static string OnOff(bool b) => b ? "on" : "off";

    public static string DescribeOp(HwOp op) => op switch
    {
        MemoryOp m => $"{m.Origin}: {m.Op.Mnemonic}{(m.Via is null ? " by physical address" : $" via {m.Via.Name}")} [PA 0x{m.Pa:x}..0x{m.Pa + m.Length:x})",
        MapOp m => $"{m.Origin}: maps {m.Alias.Describe()}",
        UnmapOp u => $"{u.Origin}: unmaps {u.Alias.Describe()}",
        _ => op.ToString(),
    };

    /// <summary>A root-cause paragraph: what the failing read saw, and which steps left the line that way.</summary>
    private static string Why(Witness w, Expectation e, Scenario scenario)
    {
        var writers = scenario.Writers;
        var sb = new StringBuilder("why: ");
        if (e.Implied && LastIndex(w, w.Items.Count, (b, a) => !b.BusError && a.BusError) is var faulted && faulted >= 0)
        {
            // An implied check: the memory protection refused a CPU-side bus access to assigned memory.
            sb.Append(CultureInfo.InvariantCulture, $"line PA 0x{w.LinePa!.Value:x} was assigned to another security domain when the CPU side reached it, at: {Describe(w.Items[faulted])}. ");
            sb.Append("The memory protection refuses that bus access with a fatal abort (on Qualcomm SoCs the secure world resets the board). ");
            return sb.Append("It can happen while a cacheable or Normal non-cacheable alias maps the memory, or a dirty line of it is in the cache.").ToString();
        }

        var vars = e.Atoms.Select(a => a.Var).ToHashSet();
        var final = w.Final!;
        var seen = final.Observations.Where(o => vars.Contains(o.Var)).ToList();
        var expected = string.Join(" and ", e.Atoms.Select(a => writers.Name(a.Writer)).Distinct());
        var observed = string.Join("; ", seen.Select(o =>
        {
            var at = o.VarOffset(w.LinePa!.Value, w.End!.Observed[o.Var].Pa);
            return $"{scenario.ObservedVars[o.Var]}[{at}..{at + o.Values.Length}) = {o.Values.Describe(writers)}";
        }));
        var readIndex = -1;
        for (var i = w.Items.Count - 1; i >= 0; i--)
        {
            if (w.Items[i] is OpItem { Op: MemoryOp { Op.Kind: LineOpKind.Read } mem, Before: not null } && vars.Contains(mem.Op.Var))
            {
                readIndex = i;
                break;
            }
        }

        if (readIndex < 0)
        {
            return sb.Append(CultureInfo.InvariantCulture, $"the run observed {observed}, expected {expected}.").ToString();
        }

        var read = (OpItem)w.Items[readIndex];
        var readOp = (MemoryOp)read.Op;
        var before = read.Before!;
        var access = readOp.AccessAt(w.LinePa!.Value, scenario.Hardware.LineSize)!.Value;
        var seenBytes = read.After!.Observations.First(o => o.Var == readOp.Op.Var && o.LineOffset == access.Start).Values;
        var cachedBytes = before.Cached is { } c ? LineBytes.From(c.Span[access.Start..access.End]) : null;
        var ramBytes = LineBytes.From(before.Ram.Span[access.Start..access.End]);
        var throughCache = readOp.Op.Master is MasterKind.Cpu or MasterKind.Firmware && readOp.Op.Type.IsCacheable();
        var fromCache = before.Cache != CacheState.Invalid &&
            (throughCache || (readOp.Op.Master == MasterKind.CoherentDevice && seenBytes.Equals(cachedBytes)));
        sb.Append(CultureInfo.InvariantCulture, $"{readOp.Origin} is a {readOp.Op.Mnemonic}; it saw {observed}, but expected {expected}. ");
        if (fromCache)
        {
            var differs = !cachedBytes!.Equals(ramBytes);
            sb.Append(CultureInfo.InvariantCulture, $"It was served by the cached line {before.Cache}({before.Cached!.Describe(writers)})");
            sb.Append(!differs ? ". "
                : before.Cache == CacheState.Clean ? $", which is stale: RAM held {before.Ram.Describe(writers)}. "
                : $", newer than RAM ({before.Ram.Describe(writers)}). ");
            var becameValid = LastIndex(w, readIndex, (b, a) => b.Cache == CacheState.Invalid && a.Cache != CacheState.Invalid);
            if (becameValid >= 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"The line became valid at: {Describe(w.Items[becameValid])}. ");
                var keptValid = Enumerable.Range(becameValid + 1, readIndex - becameValid - 1)
                    .Where(i => w.Items[i] is OpItem { Op: MemoryOp { Op.Kind: LineOpKind.Clean }, Before.Cache: not CacheState.Invalid })
                    .Select(i => ((MemoryOp)((OpItem)w.Items[i]).Op).Origin).Distinct().ToList();
                if (keptValid.Count > 0)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"Cache maintenance left it valid: {string.Join("; ", keptValid)} only cleans. ");
                }

                var around = Enumerable.Range(becameValid + 1, readIndex - becameValid - 1)
                    .Where(i => w.Items[i] is OpItem { Op: MemoryOp { Op.Kind: LineOpKind.Write } wm, Before.Cache: not CacheState.Invalid } &&
                        !(wm.Op.Master is MasterKind.Cpu or MasterKind.Firmware && wm.Op.Type.IsCacheable()))
                    .Select(i => ((MemoryOp)((OpItem)w.Items[i]).Op).Origin).Distinct().ToList();
                if (around.Count > 0)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"Writes that went around the cache to RAM: {string.Join("; ", around)}.");
                }
            }
        }
        else if (before.Cache == CacheState.Dirty && !cachedBytes!.Equals(ramBytes))
        {
            sb.Append(CultureInfo.InvariantCulture, $"It read RAM ({before.Ram.Describe(writers)}) while newer data sat Dirty({before.Cached!.Describe(writers)}) in the CPU cache: nothing cleaned it to RAM before the read. ");
            var dirtied = LastIndex(w, readIndex, (b, a) => a.Cache == CacheState.Dirty && !Equals(a.Cached, b.Cached));
            if (dirtied >= 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"It was last written at: {Describe(w.Items[dirtied])}.");
            }
        }
        else if (before.Outer == CacheState.Dirty && !throughCache && !LineBytes.From(before.OuterCached!.Span[access.Start..access.End]).Equals(ramBytes))
        {
            sb.Append(CultureInfo.InvariantCulture, $"It read RAM ({before.Ram.Describe(writers)}) while newer data sat Dirty({before.OuterCached!.Describe(writers)}) in the outer (L2) cache: an inner clean or eviction put it there, and nothing cleaned the outer cache to RAM before the read. ");
        }
        else if (throughCache && before.Cache == CacheState.Invalid && before.Outer != CacheState.Invalid)
        {
            sb.Append(CultureInfo.InvariantCulture, $"It missed in the inner cache and was filled from the outer (L2) line {before.Outer}({before.OuterCached!.Describe(writers)}); RAM held {before.Ram.Describe(writers)}. ");
            var outerValid = LastIndex(w, readIndex, (b, a) => b.Outer == CacheState.Invalid && a.Outer != CacheState.Invalid);
            if (outerValid >= 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"The outer line became valid at: {Describe(w.Items[outerValid])}.");
            }
        }
        else
        {
            var ramSide = throughCache && before.Cache == CacheState.Invalid ? "It missed in the cache and filled from RAM" : "It read RAM";
            sb.Append(CultureInfo.InvariantCulture, $"{ramSide}, which held {before.Ram.Describe(writers)}. ");
            var lastRam = LastIndex(w, readIndex, (b, a) => !a.Ram.Equals(b.Ram));
            if (lastRam >= 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"RAM was last changed at: {Describe(w.Items[lastRam])}.");
            }
        }

        var copied = LastIndex(w, readIndex, (b, a) => true, op => op is MemoryOp { Op: { Kind: LineOpKind.Write, Data: not null } });
        if (copied >= 0)
        {
            var sofar = sb.ToString().TrimEnd();
            sb.Clear().Append(sofar);
            sb.Append(CultureInfo.InvariantCulture, $" The line's bytes were stored by a copy: {Describe(w.Items[copied])}; they are what the copy read from its source");
            sb.Append(w.Upstream.Count > 0 ? $", which needed {w.Upstream.Sum(u => u.Events)} spontaneous event(s) on the source line(s) shown above." : ".");
        }

        return sb.ToString().TrimEnd();
    }

    private static int LastIndex(Witness w, int before, Func<LineState, LineState, bool> predicate, Func<HwOp, bool>? op = null)
    {
        for (var i = before - 1; i >= 0; i--)
        {
            if (op is not null && !(w.Items[i] is OpItem oi && op(oi.Op)))
            {
                continue;
            }

            var (b, a) = w.Items[i] switch
            {
                OpItem { Before: { } ob, After: { } oa } => (ob, oa),
                MoveItem m => (m.Before, m.After),
                _ => (null, null),
            };
            if (b is not null && predicate(b, a!))
            {
                return i;
            }
        }

        return -1;
    }

    private static string Describe(TraceItem item) => item switch
    {
        OpItem o => DescribeOp(o.Op),
        MoveItem m => $"a spontaneous {LineSemantics.Describe(m.Move)}",
        _ => item.ToString()!,
    };

    /// <summary>The witness line's cache state and RAM contents after each step.</summary>
    private static string Timeline(Witness w, WriterTable writers)
    {
        var rows = new List<string[]>();
        LineState? current = w.Items.Select(i => i switch
        {
            OpItem { Before: { } b } => b,
            MoveItem m => m.Before,
            _ => null,
        }).FirstOrDefault(s => s is not null);
        rows.Add(["0", "-", "(start)", Cache(current, writers), current?.Ram.Describe(writers) ?? "?"]);
        var step = 0;
        StepItem? header = null;
        void Flush()
        {
            if (header is not null)
            {
                rows.Add([step.ToString(CultureInfo.InvariantCulture), header.Step.Program.Name, header.Step.Statement.Text, Cache(current, writers), current?.Ram.Describe(writers) ?? "?"]);
            }
        }

        foreach (var item in w.Items)
        {
            switch (item)
            {
                case StepItem s:
                    Flush();
                    step++;
                    header = s;
                    break;
                case OpItem { After: { } a }:
                    current = a;
                    break;
                case MoveItem m:
                    current = m.After;
                    break;
            }
        }

        Flush();
        string[] head = ["step", "agent", "statement", "cache", "RAM"];
        var widths = head.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        var sb = new StringBuilder("timeline of the witness line:\n");
        foreach (var r in rows.Prepend(head))
        {
            sb.AppendLine("  " + string.Concat(r.Select((c, i) => c.PadRight(widths[i] + 2))).TrimEnd());
        }

        return sb.ToString();
    }

    /// <summary>The inner cache state, and on a board with an outer cache the outer one after it ("Clean(old), L2 Invalid").</summary>
    private static string Cache(LineState? s, WriterTable writers)
    {
        if (s is null)
        {
            return "?";
        }

        var inner = s.Cache == CacheState.Invalid ? "Invalid" : $"{s.Cache}({s.Cached!.Describe(writers)})";
        return !s.HasOuter ? inner : s.Outer == CacheState.Invalid ? $"{inner}, L2 Invalid" : $"{inner}, L2 {s.Outer}({s.OuterCached!.Describe(writers)})";
    }
}
