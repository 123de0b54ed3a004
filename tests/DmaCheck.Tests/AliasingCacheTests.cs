using DmaCheck.Hardware;
using DmaCheck.Scenarios;
using Binder = DmaCheck.Scenarios.Binder;

namespace DmaCheck.Tests;

/// <summary>Aliasing data caches (docs/semantics.md, "Aliasing data caches"): one L1 copy of a line per alias colour.</summary>
public class AliasingCacheTests
{
    private const byte Data = 5;
    private const byte Device = 6;
    private static readonly HardwareConfig Vivt = new(Indexing: DcacheIndexing.Vivt);
    private static readonly LineBytes Old = LineBytes.Uniform(64, WriterTable.Old);

    private static LineState Apply(LineState s, LineOp op) => LineSemantics.Apply(s, new LineAccess(op, 0, 64, 0), Vivt).Single;

    [Fact]
    public void AStoreThroughAnAliasIsInvisibleToTheLinearMapAndToRam()
    {
        var s = Apply(LineState.Fresh(Old), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Data) with { Colour = 7 });
        Assert.Equal(CacheState.Invalid, s.Cache);
        Assert.Equal(CacheState.Dirty, s.AliasAt(7)!.State);
        Assert.Equal(Old, s.Ram);

        var linear = Apply(s, LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0));
        Assert.Equal(Old, linear.Observations.Single().Values); // the linear map fills from RAM: the alias's data is not there
        var alias = Apply(s, LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 1) with { Colour = 7 });
        Assert.Equal(LineBytes.Uniform(64, Data), alias.Observations.Single().Values);
    }

    [Fact]
    public void MaintenanceOfTheLinearMapLeavesTheAliasCopyAndEveryColourReachesIt()
    {
        var dirty = Apply(LineState.Fresh(Old), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Data) with { Colour = 7 });
        var linearOnly = Apply(dirty, LineOp.Maintenance(LineOpKind.CleanInvalidate));
        Assert.Equal(CacheState.Dirty, linearOnly.AliasAt(7)!.State);
        Assert.Equal(Old, linearOnly.Ram);

        var all = Apply(dirty, LineOp.Maintenance(LineOpKind.CleanInvalidate) with { Colour = LineOp.AllColours });
        Assert.Empty(all.Aliases);
        Assert.Equal(LineBytes.Uniform(64, Data), all.Ram);
    }

    [Fact]
    public void ADirtyAliasCopyMayBeEvictedOverADeviceWrite()
    {
        var dirty = Apply(LineState.Fresh(Old), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Data) with { Colour = 7 });
        var dma = Apply(dirty, LineOp.Write(MasterKind.NonCoherentDevice, MemoryType.NormalNonCacheable, Device));
        Assert.Equal(LineBytes.Uniform(64, Device), dma.Ram);
        var moves = new List<(SpontaneousMove Move, LineState Next)>();
        LineSemantics.Moves(dma, fillable: true, moves);
        Assert.Contains(moves, m => m.Move == SpontaneousMove.Evict && m.Next.Aliases.IsEmpty && m.Next.Ram.Equals(LineBytes.Uniform(64, Data)));
        Assert.DoesNotContain(moves, m => m.Next.AliasAt(7) is { State: CacheState.Clean } c && c.Cached.Equals(dma.Ram));
    }

    [Fact]
    public void ViptColoursRepeatEveryWaySizeAndVivtNever()
    {
        var vipt = new HardwareConfig(Indexing: DcacheIndexing.ViptAliasing, Colours: 4);
        Assert.Equal(0UL, vipt.ColourOf(0xf080_4000, 0xc100_0000)); // four pages on: the same colour
        Assert.NotEqual(0UL, vipt.ColourOf(0xf080_1000, 0xc100_0000));
        Assert.NotEqual(0UL, Vivt.ColourOf(0xf080_4000, 0xc100_0000));
        Assert.Equal(0UL, HardwareConfig.Default.ColourOf(0xf080_1000, 0xc100_0000));
    }

    [Fact]
    public void AliasingIsAnErrorOutsideThirtyTwoBitArm()
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", "profile linux-6.4-arm64\nset cache.aliasing = vivt\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n}\n"));
        Assert.Contains("32-bit arm profiles only", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheMaintenanceCallsAreNoOpsOnAPhysicallyIndexedCache()
    {
        const string text = "profile linux-5.13-arm-rpi4\ndevice d { coherent = false }\ncpu a {\n  p = vmalloc(4096)\n  write p[0..64] = payload\n  flush_kernel_vmap_range(p, 64)\n  invalidate_kernel_vmap_range(p, 64)\n  read p[0..64] -> seen\n  vfree(p)\n}\nexpect sees: seen == payload\n";
        var model = new ScenarioModel(Binder.Load("t.dmc", text));
        var explorer = new DmaCheck.Exploration.LineSetExplorer();
        explorer.Explore(model, DmaCheck.Exploration.ExplorationLimits.Default);
        Assert.Empty(explorer.Failures);
        var ops = ScenarioModelTestOps(model);
        Assert.DoesNotContain(ops, o => o.Contains("flush_kernel_vmap_range", StringComparison.Ordinal) || o.Contains("flush_cache_vmap", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void FlushDcachePageWritesTheLinearCopyBackForAVmapAliasToSee(bool flush, bool clean)
    {
        // vmap flushes at map time (flush_cache_vmap); a later store through the linear map stays in the linear map's
        // lines, which a read through the vmap alias (another line on VIVT) does not see until flush_dcache_page.
        var text = "profile linux-5.13-arm-rpi4\nset cache.aliasing = vivt\ndevice d { coherent = false }\ncpu a {\n  pg = alloc_pages(GFP_KERNEL, 0)\n  v = vmap(pg, 1)\n  write pg[0..64] = payload\n"
            + (flush ? "  flush_dcache_page(pg)\n" : string.Empty) + "  read v[0..64] -> seen\n  vunmap(v)\n}\nexpect sees: seen == payload\n";
        var explorer = new DmaCheck.Exploration.LineSetExplorer();
        explorer.Explore(new ScenarioModel(Binder.Load("t.dmc", text)), DmaCheck.Exploration.ExplorationLimits.Default);
        Assert.Equal(clean, explorer.Failures.Count == 0);
    }

    /// <summary>The origins of the hardware operations of the one agent's steps, run in order.</summary>
    private static List<string> ScenarioModelTestOps(ScenarioModel model)
    {
        var origins = new List<string>();
        var state = model.Initial;
        while (!model.IsFinished(state))
        {
            var step = model.Step(state, model.Enabled(state).First());
            origins.AddRange(step.Ops.Select(o => o.Origin));
            state = step.Next;
        }

        return origins;
    }
}
