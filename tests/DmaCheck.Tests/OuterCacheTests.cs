using System.Collections.Immutable;
using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The outer (L2, PL310 / L2C-310) cache level: the exact maintenance sequences of arm_dma_ops on the i.MX6 layout, the
/// rules of the outer level, the ordering of inner and outer operations as the model decides it, and that a board
/// without an outer cache is unchanged.
/// </summary>
public class OuterCacheTests
{
    private const byte Data = 7;
    private const byte Payload = 8;

    private static readonly DmaEnvironment Imx6 = new(Profiles.Linux513ArmImx6);
    private static readonly HardwareConfig Outer = HardwareConfig.Default with { OuterCache = true };

    /// <summary>Each operation as "MNEMONIC lo..hi", offsets from the buffer's line-aligned start; outer ones by PA, inner ones via an alias.</summary>
    private static string Show(IEnumerable<HwOp> ops, ulong basePa) => string.Join(" | ", ops.OfType<MemoryOp>()
        .Select(m => $"{m.Op.Mnemonic} {m.Pa - basePa}..{m.Pa - basePa + m.Length}{(m.Via is null ? string.Empty : " (VA)")}"));

    private static (DmaState State, ulong Pfn) Boot()
    {
        var s = DmaState.Boot(KernelState.Boot(PlatformLayout.Arm32Imx6, new KernelConfig(), Outer));
        var k = s.Kernel.AllocPages(Gfp.GFP_KERNEL, 0, "t", [], out var pfn);
        return (s with { Kernel = k }, pfn);
    }

    [Theory]
    [InlineData(DmaDirection.DMA_TO_DEVICE, 0UL, 128UL,
        "DC CVAC 0..128 (VA) | L2C clean line 0..128",
        "")]
    [InlineData(DmaDirection.DMA_BIDIRECTIONAL, 0UL, 128UL,
        "DC CVAC 0..128 (VA) | L2C clean line 0..128",
        "L2C invalidate line 0..128 | DC IVAC 0..128 (VA)")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 0UL, 128UL,
        "DC IVAC 0..128 (VA) | L2C invalidate line 0..128",
        "L2C invalidate line 0..128 | DC IVAC 0..128 (VA)")]
    [InlineData(DmaDirection.DMA_TO_DEVICE, 32UL, 64UL,
        "DC CVAC 32..96 (VA) | L2C clean line 32..96",
        "")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 64UL,
        "DC CIVAC 0..64 (VA) | DC CIVAC 64..128 (VA) | L2C clean+invalidate line 0..64 | L2C clean+invalidate line 64..128",
        "L2C clean+invalidate line 0..64 | L2C clean+invalidate line 64..128 | DC CIVAC 0..64 (VA) | DC CIVAC 64..128 (VA)")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 16UL,
        "DC CIVAC 0..64 (VA) | DC CIVAC 0..64 (VA) | L2C clean+invalidate line 0..64 | L2C clean+invalidate line 0..64",
        "L2C clean+invalidate line 0..64 | L2C clean+invalidate line 0..64 | DC CIVAC 0..64 (VA) | DC CIVAC 0..64 (VA)")]
    [InlineData(DmaDirection.DMA_FROM_DEVICE, 32UL, 150UL,
        "DC CIVAC 0..64 (VA) | DC CIVAC 128..192 (VA) | DC IVAC 64..128 (VA) | L2C clean+invalidate line 0..64 | L2C clean+invalidate line 128..192 | L2C invalidate line 64..128",
        "L2C clean+invalidate line 0..64 | L2C clean+invalidate line 128..192 | L2C invalidate line 64..128 | DC CIVAC 0..64 (VA) | DC CIVAC 128..192 (VA) | DC IVAC 64..128 (VA)")]
    public void ArmDmaMapAndUnmapPageDoInnerThenOuterAndOuterThenInner(DmaDirection dir, ulong offset, ulong size, string onMap, string onUnmap)
    {
        var (s, pfn) = Boot();
        var basePa = PlatformLayout.PfnToPhys(pfn);
        var dev = new DmaDevice("d", false);
        var ops = new List<HwOp>();
        s = DmaApi.DmaMapSingle(Imx6, s, dev, s.Kernel.Layout.LinearAddress(pfn) + offset, size, dir, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        Assert.Equal(basePa + offset, handle); // pfn_to_dma: no bus offset on this board
        Assert.Equal(onMap, Show(ops, basePa));

        ops.Clear();
        DmaApi.SyncForCpu(Imx6, s, dev, handle, size, dir, "dma_sync_single_for_cpu", ops, []);
        Assert.Equal(onUnmap, Show(ops, basePa));

        ops.Clear();
        DmaApi.SyncForDevice(Imx6, s, dev, handle, size, dir, "dma_sync_single_for_device", ops, []);
        Assert.Equal(onMap, Show(ops, basePa));

        ops.Clear();
        DmaApi.DmaUnmap(Imx6, s, dev, handle, size, dir, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Equal(onUnmap, Show(ops, basePa));
    }

    [Fact]
    public void ACoherentDeviceUnderArmDmaOpsGetsNoMaintenance()
    {
        var (s, pfn) = Boot();
        var ops = new List<HwOp>();
        var dev = new DmaDevice("d", true);
        s = DmaApi.DmaMapSingle(Imx6, s, dev, s.Kernel.Layout.LinearAddress(pfn), 64, DmaDirection.DMA_TO_DEVICE, DmaAttrs.None, "dma_map_single", ops, [], out var handle);
        DmaApi.DmaUnmap(Imx6, s, dev, handle, 64, DmaDirection.DMA_FROM_DEVICE, DmaAttrs.None, "dma_unmap_single", ops, []);
        Assert.Empty(ops);
    }

    [Fact]
    public void TheRemapAllocatorFlushesTheOuterCacheAfterTheInner()
    {
        var (s, _) = Boot();
        var ops = new List<HwOp>();
        DmaApi.DmaAllocAttrs(Imx6, s, new DmaDevice("d", false), 4096, Gfp.GFP_KERNEL, ops, out var cpu, out var handle);
        Assert.NotEqual(0UL, cpu);
        var mem = ops.OfType<MemoryOp>().ToList();
        var flush = mem.FindIndex(m => m.Op.Kind == LineOpKind.CleanInvalidate && m.Via is not null);
        var outer = mem.FindIndex(m => m.Op.Kind == LineOpKind.OuterCleanInvalidate);
        Assert.True(flush >= 0 && outer == flush + 1, string.Join(" | ", mem.Select(m => m.Origin)));
        Assert.Equal(handle, mem[outer].Pa);
        Assert.Equal(4096UL, mem[outer].Length);
        Assert.Null(mem[outer].Via);
        Assert.Contains("outer_flush_range", mem[outer].Origin, StringComparison.Ordinal);
    }

    // ---- the outer level's rules ---------------------------------------------------------------------------------

    private static LineState Step(LineState s, LineOp op, int start = 0, int end = 64) => LineSemantics.Apply(s, new LineAccess(op, start, end, 0), Outer).Single;

    private static LineState Fresh() => LineSemantics.InitialStates(Outer, WriterTable.Old).Single();

    private static LineBytes Line(byte writer) => LineBytes.Uniform(64, writer);

    [Fact]
    public void AnInnerCleanLandsInTheOuterCacheNotInRam()
    {
        var s = Step(Fresh(), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Payload));
        Assert.Equal((CacheState.Dirty, CacheState.Clean), (s.Cache, s.Outer)); // the write's linefill allocated in L2 too
        s = Step(s, LineOp.Maintenance(LineOpKind.Clean));
        Assert.Equal(CacheState.Clean, s.Cache);
        Assert.Equal(CacheState.Dirty, s.Outer);
        Assert.Equal(Line(Payload), s.OuterCached);
        Assert.Equal(Line(WriterTable.Old), s.Ram);

        // A non-coherent device reads RAM only: it does not see the outer line.
        var read = Step(s, LineOp.Read(MasterKind.NonCoherentDevice, MemoryType.NormalWriteBack, 0));
        Assert.Equal(Line(WriterTable.Old), read.Observations.Single().Values);

        s = Step(s, LineOp.Maintenance(LineOpKind.OuterClean));
        Assert.Equal(CacheState.Clean, s.Outer);
        Assert.Equal(Line(Payload), s.Ram);
    }

    [Fact]
    public void AnInnerLinefillReadsTheOuterLineAndAllocatesThere()
    {
        var dirtyOuter = Fresh().WithOuter(CacheState.Dirty, Line(Payload));
        var moves = new List<(SpontaneousMove Move, LineState Next)>();
        LineSemantics.Moves(dirtyOuter, fillable: true, moves);
        var fill = moves.Single(m => m.Move == SpontaneousMove.Fill).Next;
        Assert.Equal(Line(Payload), fill.Cached);
        Assert.Equal(CacheState.Dirty, fill.Outer);

        moves.Clear();
        LineSemantics.Moves(Fresh(), fillable: true, moves);
        fill = moves.Single(m => m.Move == SpontaneousMove.Fill).Next;
        Assert.Equal((CacheState.Clean, CacheState.Clean), (fill.Cache, fill.Outer));
        Assert.Contains(moves, m => m.Move == SpontaneousMove.OuterFill && m.Next.Cache == CacheState.Invalid && m.Next.Outer == CacheState.Clean);

        moves.Clear();
        LineSemantics.Moves(Fresh(), fillable: false, moves);
        Assert.Empty(moves);
    }

    [Fact]
    public void EvictionsMoveDataDownOneLevelAtATime()
    {
        var s = Step(Fresh(), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Payload));
        var moves = new List<(SpontaneousMove Move, LineState Next)>();
        LineSemantics.Moves(s, fillable: true, moves);
        var evicted = moves.Single(m => m.Move == SpontaneousMove.Evict).Next;
        Assert.Equal((CacheState.Invalid, CacheState.Dirty), (evicted.Cache, evicted.Outer));
        Assert.Equal(Line(WriterTable.Old), evicted.Ram);

        moves.Clear();
        LineSemantics.Moves(evicted, fillable: true, moves);
        var down = moves.Single(m => m.Move == SpontaneousMove.OuterEvict).Next;
        Assert.Equal((CacheState.Invalid, CacheState.Invalid), (down.Cache, down.Outer));
        Assert.Equal(Line(Payload), down.Ram);
    }

    [Fact]
    public void OuterMaintenanceLeavesTheInnerLevelAlone()
    {
        var s = Step(Fresh(), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Payload));
        s = Step(s, LineOp.Maintenance(LineOpKind.Clean)).WithCache(CacheState.Dirty, Line(Data));
        var inv = Step(s, LineOp.Maintenance(LineOpKind.OuterInvalidate));
        Assert.Equal((CacheState.Dirty, CacheState.Invalid), (inv.Cache, inv.Outer));
        Assert.Equal(Line(WriterTable.Old), inv.Ram); // the Dirty outer line is discarded

        var flush = Step(s, LineOp.Maintenance(LineOpKind.OuterCleanInvalidate));
        Assert.Equal((CacheState.Dirty, CacheState.Invalid), (flush.Cache, flush.Outer));
        Assert.Equal(Line(Payload), flush.Ram); // written back first
    }

    [Fact]
    public void NonCacheableAccessesBypassBothLevels()
    {
        var s = Fresh().WithOuter(CacheState.Dirty, Line(Payload)).WithCache(CacheState.Clean, Line(Payload));
        var w = Step(s, LineOp.Write(MasterKind.Cpu, MemoryType.NormalNonCacheable, Data));
        Assert.Equal(Line(Data), w.Ram);
        Assert.Equal(Line(Payload), w.OuterCached);
        var r = Step(s, LineOp.Read(MasterKind.Cpu, MemoryType.Device, 0));
        Assert.Equal(Line(WriterTable.Old), r.Observations.Single().Values);
    }

    [Fact]
    public void OuterInvRangeCleansAndInvalidatesPartialEdgeLines()
    {
        var k = KernelState.Boot(PlatformLayout.Arm32Imx6, new KernelConfig(), Outer);
        var ops = new List<HwOp>();
        Arm32Cache.OuterInvRange(k, 0x1000_0020, 0x1000_00b6, "t", ops);
        Assert.Equal("L2C clean+invalidate line 0..64 | L2C clean+invalidate line 128..192 | L2C invalidate line 64..128", Show(ops, 0x1000_0000));

        // The bytes outside the range that share an edge line with it survive an outer_inv_range: the edge is written back.
        var edge = Fresh().WithOuter(CacheState.Dirty, Line(Payload));
        var after = LineSemantics.Apply(edge, ((MemoryOp)ops[0]).Lines(64).Single().Access, Outer).Single;
        Assert.Equal(Line(Payload), after.Ram);
    }

    [Fact]
    public void ACoherentMasterOnABoardWithAnOuterCacheIsNotModelled()
    {
        Assert.Throws<NotModelledException>(() => Step(Fresh(), LineOp.Read(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, 0)));
        Assert.Throws<NotModelledException>(() => Step(Fresh(), LineOp.Write(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, Data)));
    }

    // ---- the ordering, as the model decides it ---------------------------------------------------------------------

    private static LineSet Run(params LineOp[] ops)
    {
        var set = LineSet.Initial(Outer, WriterTable.Old, fillable: true);
        foreach (var op in ops)
        {
            set = set.Apply(new LineAccess(op, 0, 64, 0), Outer, fillable: true);
        }

        return set;
    }

    /// <summary>The fewest events of a state whose observation of variable 0 is not all <paramref name="writer"/>'s; null if none.</summary>
    private static int? FewestEventsToSeeOtherThan(LineSet set, byte writer) =>
        set.Entries.Where(e => !e.Key.Observations.Single().Values.Equals(Line(writer))).Select(e => (int?)e.Value).Min();

    [Fact]
    public void FromDeviceUnmapOuterThenInnerNeverLeavesStaleDataAndTheReverseOrderWould()
    {
        var cpuWrite = LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, WriterTable.Zero);
        var inv = LineOp.Maintenance(LineOpKind.Invalidate);
        var outerInv = LineOp.Maintenance(LineOpKind.OuterInvalidate);
        var dma = LineOp.Write(MasterKind.NonCoherentDevice, MemoryType.NormalWriteBack, Data);
        var cpuRead = LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0);

        // __dma_page_cpu_to_dev(FROM_DEVICE): inner, then outer; the device writes; __dma_page_dev_to_cpu: outer, then inner.
        Assert.Null(FewestEventsToSeeOtherThan(Run(cpuWrite, inv, outerInv, dma, outerInv, inv, cpuRead), Data));

        // Inner before outer on the way back: a linefill during the DMA puts stale RAM in L2 (one event), and one between
        // the two invalidates copies it into L1 just before L2 drops it (a second).
        Assert.Equal(2, FewestEventsToSeeOtherThan(Run(cpuWrite, inv, outerInv, dma, inv, outerInv, cpuRead), Data));
    }

    [Fact]
    public void ToDeviceMapInnerThenOuterReachesRamAndTheReverseOrderDoesNot()
    {
        var cpuWrite = LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Payload);
        var clean = LineOp.Maintenance(LineOpKind.Clean);
        var outerClean = LineOp.Maintenance(LineOpKind.OuterClean);
        var dmaRead = LineOp.Read(MasterKind.NonCoherentDevice, MemoryType.NormalWriteBack, 0);

        Assert.Null(FewestEventsToSeeOtherThan(Run(cpuWrite, clean, outerClean, dmaRead), Payload));
        Assert.Equal(0, FewestEventsToSeeOtherThan(Run(cpuWrite, outerClean, clean, dmaRead), Payload));

        // Inner maintenance alone (a driver's hand-rolled dmac_map_area without outer_clean_range) leaves the payload in L2.
        Assert.Equal(0, FewestEventsToSeeOtherThan(Run(cpuWrite, clean, dmaRead), Payload));
    }

    [Fact]
    public void AWitnessThroughBothLevelsNamesTheOuterEvictionAndReplays()
    {
        // The payload reaches RAM, where the device reads, only if both levels evict the line on their own.
        var text = File.ReadAllText(Path.Combine(TestPaths.Scenarios, "streaming", "arm32-imx6-to-device-skip-cpu-sync.dmc"))
            .Replace("expect device_sees_payload: seen == payload", "expect device_sees_old: seen == old", StringComparison.Ordinal)
            .Replace("# expect device_sees_payload: sometimes, min-events 0", "# expect device_sees_old: sometimes, min-events 2", StringComparison.Ordinal);
        var path = Path.Combine(Path.GetTempPath(), $"dmacheck-outer-{Guid.NewGuid():N}.dmc");
        File.WriteAllText(path, text);
        try
        {
            var outcome = Reports.Checker.CheckFile(path, ExplorationLimits.Default);
            var verdict = outcome.Result!.Verdicts.Single();
            Assert.Equal((Verdict.Sometimes, 2), (verdict.Verdict, verdict.MinEventsToFail));
            var witness = WitnessBuilder.Build(outcome.Model!, verdict.Expectation, outcome.Explorer!.Failures[verdict.Expectation.Name]);
            var moves = witness.Items.OfType<MoveItem>().Select(m => m.Move).ToList();
            Assert.Equal([SpontaneousMove.Evict, SpontaneousMove.OuterEvict], moves);

            var saved = ReplayFile.From(witness, outcome.Scenario!, "test").Write();
            Assert.Contains("event outer-evict", saved, StringComparison.Ordinal);
            var again = ReplayFile.Parse(saved).Replay(new ScenarioModel(outcome.Scenario!), out var reproduces);
            Assert.True(reproduces, saved);
            Assert.Equal(2, again.Events);

            // The waveform carries the outer level as two more signals: Dirty(payload) in L2 after the inner eviction.
            var vcd = Reports.VcdReport.Render(witness, outcome.Scenario!, "test");
            Assert.Contains("$var wire 2 o outer_cache $end", vcd, StringComparison.Ordinal);
            Assert.Contains("b10 o\n", vcd, StringComparison.Ordinal);
            Assert.Contains($"b{Convert.ToString(outcome.Scenario!.Writers.TryGet("payload", out var payload) ? payload : 0, 2)} l\n", vcd, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // ---- with the outer cache off nothing changes ------------------------------------------------------------------

    [Fact]
    public void WithoutAnOuterCacheTheLineRulesAreTheOldOnes()
    {
        foreach (var initial in new[] { InitialCache.Cold, InitialCache.Arbitrary })
        {
            var config = HardwareConfig.Default with { Initial = initial };
            var states = LineSemantics.InitialStates(config, WriterTable.Old);
            Assert.Equal(initial == InitialCache.Cold ? 1 : 3, states.Count);
            Assert.All(states, s => Assert.False(s.HasOuter));
            foreach (var s in states)
            {
                var moves = new List<(SpontaneousMove Move, LineState Next)>();
                LineSemantics.Moves(s, fillable: true, moves);
                Assert.DoesNotContain(moves, m => m.Move is SpontaneousMove.OuterFill or SpontaneousMove.OuterEvict);
                Assert.All(moves, m => Assert.False(m.Next.HasOuter));
            }
        }

        var plain = new LineState(CacheState.Clean, Line(Data), Line(WriterTable.Old), ImmutableArray<Observation>.Empty);
        var explicitNoOuter = new LineState(CacheState.Clean, Line(Data), Line(WriterTable.Old), [], false, CacheState.Invalid, null);
        Assert.Equal(plain, explicitNoOuter);
        Assert.Equal(plain.GetHashCode(), explicitNoOuter.GetHashCode());
        Assert.Equal("Clean(writer#7), RAM old", plain.Describe(new WriterTable()));
        Assert.Throws<InvalidOperationException>(() => LineSemantics.Apply(plain, new LineAccess(LineOp.Maintenance(LineOpKind.OuterClean), 0, 64, 0), HardwareConfig.Default));
    }

    [Fact]
    public void WithoutAnOuterCacheTheOuterRangeOpsAreNoOps()
    {
        var k = KernelState.Boot(PlatformLayout.Arm32Rpi4, new KernelConfig(Swiotlb: SwiotlbBoot.Off), HardwareConfig.Default);
        var ops = new List<HwOp>();
        Arm32Cache.OuterInvRange(k, 0x100_0020, 0x100_00b6, "t", ops);
        Arm32Cache.OuterCleanRange(k, 0x100_0000, 0x100_1000, "t", ops);
        Arm32Cache.OuterFlushRange(k, 0x100_0000, 0x100_1000, "t", ops);
        Assert.Empty(ops);
    }

    [Theory]
    [InlineData("linux-5.13-arm-imx6", true)]
    [InlineData("linux-5.13-arm-rpi4", false)]
    [InlineData("linux-6.4-arm64", false)]
    [InlineData("linux-6.4-x86_64", false)]
    public void OnlyTheImx6LayoutHasAnOuterCache(string profile, bool outer)
    {
        var scenario = Binder.Load("t.dmc", $"profile {profile}\ncpu a {{\n  p = kmalloc(64, GFP_KERNEL)\n}}\n");
        Assert.Equal(outer, scenario.Hardware.OuterCache);
        Assert.Equal(outer, PlatformLayout.All.Single(l => l.Name == scenario.Profile.Layout.Name).OuterCache);
    }
}
