using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Tests;

/// <summary>
/// The footprints the interleaving reduction relies on (docs/internals-reduction.md) against what steps really do. For
/// every step of a walk over the control states of every bundled scenario and of generated ones, what the step changed
/// must lie inside the footprint <see cref="FootprintAnalysis"/> gave its statement before it ran: the shared parts it
/// changed, the lines its operations reach, the handle-table and dma-debug entries it added, removed or changed (by the
/// lines they cover), the variables it assigned, the events it raised and the variables it read into. A step of memory
/// that is to be handed out (<see cref="StepAccess.Fresh"/>) may reach only memory that was free before it. And each
/// agent's future, computed one state earlier, must cover its next step as well.
/// </summary>
public class StepFootprintTests
{
    private const int MaxStates = 3000;

    public static TheoryData<string> BundledScenarios() => ScenarioSuiteTests.BundledScenarios();

    [Theory]
    [MemberData(nameof(BundledScenarios))]
    public void EveryStepOfABundledScenarioStaysInsideItsFootprint(string relativePath)
    {
        var path = Path.Combine(TestPaths.Root, relativePath);
        var (steps, violations) = Check(Binder.Load(path, File.ReadAllText(path)), MaxStates);
        Assert.True(steps > 0, $"{relativePath}: no step ran");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(10)));
    }

    [Fact]
    public void EveryStepOfAGeneratedScenarioStaysInsideItsFootprint()
    {
        var violations = new List<string>();
        var steps = 0;
        foreach (var generated in ScenarioGenerator.Full().Sample(120, new Rnd(20261207UL), 50))
        {
            var (n, v) = Check(Binder.Load("generated.dmc", generated.Text), 800);
            steps += n;
            violations.AddRange(v.Select(x => $"{x}\n--- in ---\n{generated.Text}"));
        }

        Assert.True(steps > 1000, $"only {steps} steps ran");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(3)));
    }

    /// <summary>DMA engines that write past their mapping or from a masked address (device-access-unmapped) stay inside their footprints too.</summary>
    [Fact]
    public void EveryStepOfAGeneratedScenarioWithDeviceOverrunsStaysInsideItsFootprint()
    {
        var violations = new List<string>();
        var steps = 0;
        var overruns = 0;
        foreach (var generated in ScenarioGenerator.FullWithOverruns().Sample(80, new Rnd(20261206UL), 50))
        {
            var (n, v) = Check(Binder.Load("generated.dmc", generated.Text), 800);
            steps += n;
            overruns += generated.Text.Contains("& ~0x7f", StringComparison.Ordinal) ? 1 : 0; // the masked half of the overruns
            violations.AddRange(v.Select(x => $"{x}\n--- in ---\n{generated.Text}"));
        }

        Assert.True(steps > 500, $"only {steps} steps ran");
        Assert.True(overruns > 3, $"only {overruns} scenarios with a masked device address");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(3)));
    }

    /// <summary>The check can fail: a footprint that leaves out the lines a write reaches is caught.</summary>
    [Fact]
    public void AWriteOutsideTheFootprintIsCaught()
    {
        var model = new ScenarioModel(Binder.Load("t.dmc", "profile linux-6.4-arm64\ncpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  write b[0..64] = x\n}\n"));
        var s = model.Step(model.Initial, 0).Next;
        var step = model.Step(s, 0);
        var analysis = new FootprintAnalysis(model, new HashSet<Statement>());
        Assert.Empty(Violations(model, s, step, analysis.Next(s, 0), "next"));
        Assert.NotEmpty(Violations(model, s, step, new StepAccess { Lines = LineRanges.Of(0, 64, 64) }, "wrong"));
        Assert.NotEmpty(Violations(model, s, step, StepAccess.None, "none"));
    }

    private static (int Steps, List<string> Violations) Check(Scenario scenario, int maxStates)
    {
        var model = new ScenarioModel(scenario);
        var analysis = new FootprintAnalysis(model, new HashSet<Statement>());
        var seen = new HashSet<ControlState> { model.Initial };
        var work = new Stack<(ControlState State, StepAccess[]? ParentFutures, ControlState? Parent, int Mover)>();
        work.Push((model.Initial, null, null, -1));
        var violations = new List<string>();
        var steps = 0;
        while (work.Count > 0)
        {
            var (s, parentFutures, parent, mover) = work.Pop();
            var futures = Enumerable.Range(0, s.Agents.Length).Select(a => analysis.Future(s, a)).ToArray();
            foreach (var agent in model.Enabled(s).ToList())
            {
                StepResult result;
                try
                {
                    result = model.Step(s, agent);
                }
                catch (RunException)
                {
                    continue; // the run ends here; the reduced search marks such a statement (docs/internals-reduction.md)
                }

                if (result.Outcome is StepOutcomeKind.KernelBug or StepOutcomeKind.NotModelled)
                {
                    continue; // likewise marked: a crash, or a stop at what is not modelled, conflicts with every step
                }

                foreach (var r in result.Missed is { } missed ? [result, missed] : new[] { result })
                {
                    steps++;
                    violations.AddRange(Violations(model, s, r, analysis.Next(s, agent), "next"));
                    violations.AddRange(Violations(model, s, r, futures[agent], "future"));
                    if (parentFutures is not null && agent != mover)
                    {
                        violations.AddRange(Violations(model, s, r, parentFutures[agent], "future one state earlier", parent));
                    }

                    if (seen.Count < maxStates && seen.Add(r.Next))
                    {
                        work.Push((r.Next, futures, s, agent));
                    }
                }
            }
        }

        return (steps, violations);
    }

    /// <summary>
    /// What <paramref name="step"/>, run from <paramref name="s"/>, did outside <paramref name="fp"/>, which was computed
    /// in <paramref name="at"/> (by default <paramref name="s"/>): fresh memory is memory that was free there.
    /// </summary>
    private static List<string> Violations(ScenarioModel model, ControlState s, StepResult step, StepAccess fp, string which, ControlState? at = null)
    {
        var freeIn = (at ?? s).Dma.Kernel;
        var found = new List<string>();
        if (fp.All)
        {
            return found;
        }

        var where = $"{model.Scenario.File}:{step.Statement.Span.Line}: '{step.Statement.Text}' ({which} footprint)";
        var lineSize = model.Hardware.LineSize;
        var cache = s.Dma.Kernel.Config.CacheConstants;
        var granule = Math.Max(Math.Max(lineSize, cache.L1CacheBytes), cache.SharingGranule(model.Hardware));
        var after = step.Next;

        // Shared parts.
        var changed = SharedChanged(s, after);
        if ((changed & ~fp.Writes) != 0)
        {
            found.Add($"{where} changed {changed & ~fp.Writes}, outside its writes {fp.Writes}");
        }

        // Lines reached by its operations.
        foreach (var op in step.Ops)
        {
            foreach (var (pa, length) in Ranges(op))
            {
                var lines = LineRanges.Of(pa, Math.Max(length, 1), lineSize);
                var inside = fp.AllLines || (fp.Fresh && !Kmalloc.IsSettled(freeIn, pa, Math.Max(length, 1))) || Within(lines, fp.Lines);
                if (!inside)
                {
                    found.Add($"{where} reached PA 0x{pa:x}+{length} ({op.Origin}), outside its lines");
                }
            }

            if (op is MapOp or UnmapOp && (fp.Writes & StateParts.PageTables) == 0)
            {
                found.Add($"{where} changed the page tables ({op.Origin}), outside its writes");
            }
        }

        // Entries of the handle table and of dma-debug, by the lines they cover.
        var layout = s.Dma.Kernel.Layout;
        IEnumerable<(ulong Pa, ulong Size)> MappingKeys(StreamingMapping m) =>
            [(m.Phys, m.Size), (layout.DmaToPhys(m.Handle), m.Size), .. m.Tlb is { } tlb ? new[] { (tlb, m.Size) } : []];
        IEnumerable<(ulong Pa, ulong Size)> EntryKeys(DebugEntry e) =>
            [(e.Paddr, e.Size), (e.DeviceBase, e.Size), (layout.DmaToPhys(e.Handle), e.Size)];
        var touched = Diff(s.Dma.Mappings, after.Dma.Mappings).SelectMany(MappingKeys).Concat(Diff(s.Debug.Entries, after.Debug.Entries).SelectMany(EntryKeys));
        foreach (var (pa, size) in touched)
        {
            if (!fp.AllTableWrites && !(fp.Fresh && !Kmalloc.IsSettled(freeIn, pa, Math.Max(size, 1)))
                && !Within(LineRanges.Of(pa, Math.Max(size, 1), granule), fp.TableWrites))
            {
                found.Add($"{where} changed an entry covering PA 0x{pa:x}+{size}, outside its entry writes");
            }
        }

        // Variables, events and observed variables.
        foreach (var v in after.Vars.Keys.Where(v => !s.Vars.ContainsKey(v)))
        {
            if (!fp.AllVarWrites && !fp.VarWrites.Contains(v))
            {
                found.Add($"{where} assigned '{v}', outside its variable writes");
            }
        }

        found.AddRange(after.Signals.Except(s.Signals).Where(e => !fp.Signals.Contains(e)).Select(e => $"{where} raised '{e}', outside its events"));
        found.AddRange(after.Observed.Keys.Where(o => !s.Observed.ContainsKey(o) && !fp.Observed.Contains(o)).Select(o => $"{where} read into observed variable {o}, outside its footprint"));
        return found;
    }

    private static IEnumerable<(ulong Pa, ulong Length)> Ranges(HwOp op) => op switch
    {
        MemoryOp m => [(m.Pa, m.Length)],
        PollOp p => [(p.Pa, p.Length)],
        CopyOp c => [(c.SrcPa, c.Length), (c.DstPa, c.Length)],
        _ => [],
    };

    /// <summary>Whether every line of <paramref name="lines"/> is in <paramref name="within"/>.</summary>
    private static bool Within(LineRanges lines, LineRanges within) => within.Union(lines).SameAs(within);

    /// <summary>The elements of either list that are not in the other.</summary>
    private static IEnumerable<T> Diff<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
        where T : notnull =>
        ReferenceEquals(a, b) ? [] : a.Except(b).Concat(b.Except(a));

    private static bool Same<T>(T a, T b) => ReferenceEquals(a, b) || Equals(a, b);

    private static StateParts SharedChanged(ControlState before, ControlState after)
    {
        var (k0, k1) = (before.Dma.Kernel, after.Dma.Kernel);
        var parts = StateParts.None;
        void Part(bool same, StateParts part) => parts |= same ? StateParts.None : part;
        Part(Same(k0.Allocator, k1.Allocator) && Same(k0.ScmAssignments, k1.ScmAssignments) && Same(k0.ReservedMemory, k1.ReservedMemory), StateParts.PageAllocator);
        Part(Same(k0.Slab, k1.Slab), StateParts.Slab);
        Part(Same(k0.Mmu, k1.Mmu) && k0.VmallocNext == k1.VmallocNext && Same(k0.VmapAreas, k1.VmapAreas) && k0.UserNext == k1.UserNext
            && Same(k0.UserMappings, k1.UserMappings) && k0.KmapNext == k1.KmapNext, StateParts.PageTables);
        Part(Same(k0.Stacks, k1.Stacks), StateParts.Stacks);
        Part(Same(k0.SgTables, k1.SgTables), StateParts.SgTables);
        Part(Same(before.Dma.Coherent, after.Dma.Coherent) && Same(before.Dma.DevPools, after.Dma.DevPools), StateParts.CoherentBuffers);
        Part(Same(before.Dma.Pool, after.Dma.Pool), StateParts.AtomicPool);
        Part(Same(before.Dma.Swiotlb, after.Dma.Swiotlb), StateParts.Swiotlb);
        Part(Same(before.Dma.IommuDomains, after.Dma.IommuDomains), StateParts.Iommu);
        return parts;
    }
}
