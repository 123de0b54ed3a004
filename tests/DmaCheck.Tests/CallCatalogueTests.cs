using DmaCheck.Fuzzing;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Tests;

/// <summary>
/// The call catalogue (issue 14 item 4): every step changes only the parts of the control state its entry declares it
/// writes, on every bundled scenario and on generated ones; the generator hooks say what the generator emits; the
/// signatures say what the binders accept.
/// </summary>
public sealed class CallCatalogueTests
{
    /// <summary>The most distinct control states a scenario's steps are taken from (a bound on the walk, not on the checks).</summary>
    private const int MaxStates = 4000;

    public static TheoryData<string> BundledScenarios() => ScenarioSuiteTests.BundledScenarios();

    [Theory]
    [MemberData(nameof(BundledScenarios))]
    public void EveryStepOfABundledScenarioWritesOnlyWhatItsEntryDeclares(string relativePath)
    {
        var path = Path.Combine(TestPaths.Root, relativePath);
        var scenario = Binder.Load(path, File.ReadAllText(path));
        var (steps, violations) = CheckFootprints(scenario);
        Assert.True(steps > 0, $"{relativePath}: no step ran");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(10)));
    }

    [Fact]
    public void EveryStepOfAGeneratedScenarioWritesOnlyWhatItsEntryDeclares()
    {
        var violations = new List<string>();
        var steps = 0;
        foreach (var generated in ScenarioGenerator.Full().Sample(120, new Rnd(20261206UL), 50))
        {
            var scenario = Binder.Load("generated.dmc", generated.Text);
            var (n, v) = CheckFootprints(scenario, 1500);
            steps += n;
            violations.AddRange(v.Select(x => $"{x}\n--- in ---\n{generated.Text}"));
        }

        Assert.True(steps > 1000, $"only {steps} steps ran");
        Assert.True(violations.Count == 0, string.Join("\n", violations.Take(3)));
    }

    /// <summary>A step that changes a part it does not declare is caught (the check can fail).</summary>
    [Fact]
    public void AnUndeclaredWriteIsCaught()
    {
        var before = new ScenarioModel(Binder.Load("t.dmc", "profile linux-6.4-arm64\ncpu a {\n  signal go\n}\n")).Initial;
        var after = before.With(signals: before.Signals.Add("go"));
        Assert.Equal(StateParts.Signals, ChangedParts(before, after));
        Assert.Equal(StateParts.None, ChangedParts(before, before.With()));
    }

    [Fact]
    public void EveryEntryIsFoundByItsNameAndEveryStatementTypeHasSemantics()
    {
        Assert.Equal(CallCatalogue.Calls.Length, CallCatalogue.Calls.Select(c => c.Name).Distinct().Count());
        foreach (var entry in CallCatalogue.Calls)
        {
            Assert.Same(entry, CallCatalogue.Find(entry.Name));
            Assert.True((entry.Footprint.Writes & ~entry.Footprint.Reads) == 0, $"{entry.Name} writes a part it does not read (a write is a read for the reduction)");
        }

        var statementTypes = typeof(Statement).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(Statement)) && !t.IsAbstract).ToHashSet();
        var covered = CallCatalogue.Calls.Select(c => c.StatementType).Concat(CallCatalogue.Statements.Select(s => s.StatementType)).ToHashSet();
        Assert.Empty(statementTypes.Except(covered).Select(t => t.Name));
    }

    /// <summary>The language reference (docs/scenario-language.md) names every call the catalogue knows.</summary>
    [Fact]
    public void TheLanguageReferenceNamesEveryCall()
    {
        var doc = File.ReadAllText(Path.Combine(TestPaths.Root, "docs", "scenario-language.md"));
        var missing = CallCatalogue.Calls.Select(c => c.Name).Where(n => !System.Text.RegularExpressions.Regex.IsMatch(doc, $@"\b{n}\(")).ToList();
        Assert.True(missing.Count == 0, $"docs/scenario-language.md does not name: {string.Join(", ", missing)}");
    }

    /// <summary>Each entry's binder accepts exactly the argument counts its signature lists, with the binder's arity message otherwise.</summary>
    [Fact]
    public void EachBinderAcceptsTheArityOfItsSignature()
    {
        foreach (var entry in CallCatalogue.Calls)
        {
            var arities = entry.Signature.Arities.ToHashSet();
            for (var n = 0; n <= 7; n++)
            {
                var args = string.Join(", ", Enumerable.Range(0, n).Select(_ => "0"));
                var target = entry.Signature.Result == ResultKind.None ? string.Empty : "r = ";
                var text = $"profile linux-6.4-arm64\ndevice dev {{ coherent = false }}\ncpu a {{\n  {target}{entry.Name}({args})\n}}\n";
                string? error = null;
                try
                {
                    Binder.Load("t.dmc", text);
                }
                catch (ScenarioException e)
                {
                    error = e.Message;
                }

                var arityError = error is not null && error.Contains($"{entry.Name} takes ", StringComparison.Ordinal);
                Assert.True(arities.Contains(n) != arityError, $"{entry.Name} with {n} argument(s): {error ?? "bound"} (signature arities: {string.Join(", ", arities)})");
            }
        }
    }

    /// <summary>The generator hooks: a call the generator emits is marked generated, and each call marked generated shows up in a sample.</summary>
    [Fact]
    public void TheGeneratorHooksSayWhatTheGeneratorEmits()
    {
        var emitted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var generated in ScenarioGenerator.Full().Sample(1000, new Rnd(20260101UL), 50))
        {
            var scenario = Binder.Load("generated.dmc", generated.Text);
            emitted.UnionWith(scenario.Programs.SelectMany(p => p.Body).Select(s => s.Call?.Name).OfType<string>());
        }

        var marked = CallCatalogue.Calls.Where(c => c.Generation.Generated).Select(c => c.Name).ToHashSet();
        Assert.Empty(emitted.Except(marked));
        Assert.Empty(marked.Except(emitted));
    }

    /// <summary>
    /// Walks the distinct control states of <paramref name="scenario"/> (every agent's step from each, a poll's hit and
    /// miss), up to <paramref name="maxStates"/>, and reports each step that changed a part outside its declared writes.
    /// </summary>
    private static (int Steps, List<string> Violations) CheckFootprints(Scenarios.Scenario scenario, int maxStates = MaxStates)
    {
        var model = new ScenarioModel(scenario);
        var seen = new HashSet<ControlState> { model.Initial };
        var work = new Stack<ControlState>();
        work.Push(model.Initial);
        var violations = new List<string>();
        var steps = 0;
        while (work.Count > 0)
        {
            var s = work.Pop();
            foreach (var agent in model.Enabled(s).ToList())
            {
                StepResult result;
                try
                {
                    result = model.Step(s, agent);
                }
                catch (RunException)
                {
                    continue; // the run ends here (a kernel bug, a scenario error, something not modelled)
                }

                foreach (var r in result.Missed is { } missed ? [result, missed] : new[] { result })
                {
                    steps++;
                    var declared = ScenarioModel.FootprintOf(r.Statement).Writes;
                    var changed = ChangedParts(s, r.Next);
                    if ((changed & ~declared) != 0)
                    {
                        violations.Add($"{scenario.File}:{r.Statement.Span.Line}: '{r.Statement.Text}' ({CallCatalogue.SemanticsOf(r.Statement).Name}) changed {changed & ~declared}, which its entry does not declare (declared writes: {declared})");
                    }

                    if (seen.Count < maxStates && seen.Add(r.Next))
                    {
                        work.Push(r.Next);
                    }
                }
            }
        }

        return (steps, violations);
    }

    private static bool Same<T>(T a, T b) => ReferenceEquals(a, b) || Equals(a, b);

    /// <summary>The parts of the control state that differ between <paramref name="before"/> and <paramref name="after"/> (agents aside: a step always moves its own).</summary>
    private static StateParts ChangedParts(ControlState before, ControlState after)
    {
        var (k0, k1) = (before.Dma.Kernel, after.Dma.Kernel);
        Assert.True(Same(k0.Layout, k1.Layout) && Same(k0.Config, k1.Config) && Same(k0.Hardware, k1.Hardware), "a step changed the layout, the kernel configuration or the hardware");
        var parts = StateParts.None;
        void Part(bool same, StateParts part) => parts |= same ? StateParts.None : part;
        Part(Same(k0.Allocator, k1.Allocator), StateParts.PageAllocator);
        Part(Same(k0.Slab, k1.Slab), StateParts.Slab);
        Part(Same(k0.Mmu, k1.Mmu) && k0.VmallocNext == k1.VmallocNext && Same(k0.VmapAreas, k1.VmapAreas) && k0.UserNext == k1.UserNext
            && Same(k0.UserMappings, k1.UserMappings) && k0.KmapNext == k1.KmapNext, StateParts.PageTables);
        Part(Same(k0.Stacks, k1.Stacks), StateParts.Stacks);
        Part(Same(k0.SgTables, k1.SgTables), StateParts.SgTables);
        Part(Same(before.Dma.Mappings, after.Dma.Mappings), StateParts.StreamingMappings);
        Part(Same(before.Dma.Coherent, after.Dma.Coherent), StateParts.CoherentBuffers);
        Part(Same(before.Dma.Pool, after.Dma.Pool), StateParts.AtomicPool);
        Part(Same(before.Dma.Swiotlb, after.Dma.Swiotlb), StateParts.Swiotlb);
        Part(Same(before.Debug, after.Debug), StateParts.DebugEntries);
        Part(Same(before.Vars, after.Vars), StateParts.Variables);
        Part(Same(before.Signals, after.Signals), StateParts.Signals);
        Part(Same(before.Observed, after.Observed), StateParts.Observed);
        return parts;
    }
}
