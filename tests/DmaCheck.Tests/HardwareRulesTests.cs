using DmaCheck.Hardware;

namespace DmaCheck.Tests;

/// <summary>Each hardware rule of design §3, on one 64-byte line.</summary>
public class HardwareRulesTests
{
    private const byte Payload = 2;
    private const byte Other = 3;
    private static readonly HardwareConfig Config = HardwareConfig.Default;
    private static readonly LineBytes Old = LineBytes.Uniform(64, WriterTable.Old);
    private static readonly LineBytes Zero = LineBytes.Uniform(64, WriterTable.Zero);
    private static readonly LineBytes Pay = LineBytes.Uniform(64, Payload);

    private static LineState Invalid(LineBytes ram) => LineState.Fresh(ram);

    private static LineState Clean(LineBytes data, LineBytes ram) => new(CacheState.Clean, data, ram, []);

    private static LineState Dirty(LineBytes data, LineBytes ram) => new(CacheState.Dirty, data, ram, []);

    private static LineState Apply(LineState s, LineOp op, int start = 0, int end = 64) =>
        LineSemantics.Apply(s, new LineAccess(op, start, end, 0), Config).Single;

    private static List<(SpontaneousMove Move, LineState Next)> Moves(LineState s, bool fillable)
    {
        var list = new List<(SpontaneousMove, LineState)>();
        LineSemantics.Moves(s, fillable, list);
        return list;
    }

    [Fact]
    public void FillNeedsALiveCacheableAlias()
    {
        Assert.Empty(Moves(Invalid(Old), fillable: false));
        var fill = Assert.Single(Moves(Invalid(Old), fillable: true));
        Assert.Equal(SpontaneousMove.Fill, fill.Move);
        Assert.Equal(Clean(Old, Old), fill.Next);
    }

    [Fact]
    public void CleanLineCanOnlyBeDropped()
    {
        var move = Assert.Single(Moves(Clean(Zero, Pay), fillable: true));
        Assert.Equal(SpontaneousMove.Evict, move.Move);
        Assert.Equal(Invalid(Pay), move.Next); // a stale clean line is dropped, RAM untouched
    }

    [Fact]
    public void DirtyLineCanBeEvictedOrWrittenBack()
    {
        var moves = Moves(Dirty(Zero, Pay), fillable: true);
        Assert.Equal(2, moves.Count);
        Assert.Contains((SpontaneousMove.Evict, Invalid(Zero)), moves);
        Assert.Contains((SpontaneousMove.WriteBack, Clean(Zero, Zero)), moves);
    }

    [Fact]
    public void CacheableReadHitsAValidLineEvenWhenRamDiffers()
    {
        var after = Apply(Clean(Zero, Pay), LineOp.Read(MasterKind.Firmware, MemoryType.NormalWriteBack, 0));
        var obs = Assert.Single(after.Observations);
        Assert.True(obs.Values.IsUniform(0, 64, WriterTable.Zero));
        Assert.Equal(CacheState.Clean, after.Cache);
    }

    [Fact]
    public void CacheableReadMissAllocatesFromRam()
    {
        var after = Apply(Invalid(Pay), LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0), 8, 16);
        Assert.Equal(CacheState.Clean, after.Cache);
        Assert.Equal(Pay, after.Cached);
        Assert.Equal(8, Assert.Single(after.Observations).Values.Length);
    }

    [Fact]
    public void NonCacheableReadIgnoresTheCache()
    {
        var after = Apply(Dirty(Pay, Old), LineOp.Read(MasterKind.Cpu, MemoryType.NormalNonCacheable, 0));
        Assert.True(Assert.Single(after.Observations).Values.IsUniform(0, 64, WriterTable.Old));
        Assert.Equal(CacheState.Dirty, after.Cache);
    }

    [Fact]
    public void CacheableWriteAllocatesMergesAndDirties()
    {
        var after = Apply(Invalid(Old), LineOp.Write(MasterKind.Cpu, MemoryType.NormalWriteBack, Payload), 0, 16);
        Assert.Equal(CacheState.Dirty, after.Cache);
        Assert.True(after.Cached!.IsUniform(0, 16, Payload));
        Assert.True(after.Cached.IsUniform(16, 64, WriterTable.Old));
        Assert.Equal(Old, after.Ram);
    }

    [Fact]
    public void NonCacheableWriteGoesToRamAndLeavesAStaleLine()
    {
        var after = Apply(Clean(Zero, Zero), LineOp.Write(MasterKind.Cpu, MemoryType.NormalNonCacheable, Payload));
        Assert.Equal(Clean(Zero, Pay), after);
    }

    [Fact]
    public void EvictingADirtyLineOverwritesNonCacheableData()
    {
        var s = Apply(Dirty(Zero, Old), LineOp.Write(MasterKind.Cpu, MemoryType.Device, Payload));
        Assert.Equal(Pay, s.Ram);
        var evict = Moves(s, true).Single(m => m.Move == SpontaneousMove.Evict);
        Assert.Equal(Zero, evict.Next.Ram);
    }

    [Fact]
    public void NonCoherentDeviceUsesRamOnly()
    {
        var write = Apply(Dirty(Zero, Old), LineOp.Write(MasterKind.NonCoherentDevice, MemoryType.NormalNonCacheable, Payload));
        Assert.Equal(Dirty(Zero, Pay), write);
        var read = Apply(Dirty(Zero, Old), LineOp.Read(MasterKind.NonCoherentDevice, MemoryType.NormalNonCacheable, 0));
        Assert.True(Assert.Single(read.Observations).Values.IsUniform(0, 64, WriterTable.Old));
    }

    [Fact]
    public void CoherentDeviceSnoopsDirtyDataAndInvalidatesOnWrite()
    {
        var read = Apply(Dirty(Zero, Old), LineOp.Read(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, 0));
        Assert.True(Assert.Single(read.Observations).Values.IsUniform(0, 64, WriterTable.Zero));

        var write = Apply(Dirty(Zero, Old), LineOp.Write(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, Payload), 0, 8);
        Assert.Equal(CacheState.Invalid, write.Cache);
        Assert.True(write.Ram.IsUniform(0, 8, Payload));
        Assert.True(write.Ram.IsUniform(8, 64, WriterTable.Zero)); // the dirty rest of the line was written back first
    }

    [Fact]
    public void CoherentSnoopOfAStaleCleanLineMayReturnEitherCopy()
    {
        var read = LineOp.Read(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, 0);
        var both = LineSemantics.Apply(Clean(Zero, Pay), new LineAccess(read, 0, 64, 0), Config);
        Assert.Equal(2, both.Count);
        Assert.True(both[0].Observations[0].Values.IsUniform(0, 64, WriterTable.Zero));
        Assert.True(both[1].Observations[0].Values.IsUniform(0, 64, Payload));

        // A Clean line that matches RAM gives one answer.
        Assert.Equal(1, LineSemantics.Apply(Clean(Pay, Pay), new LineAccess(read, 0, 64, 0), Config).Count);
    }

    [Fact]
    public void CleanWritesBackAndKeepsTheLine()
    {
        Assert.Equal(Clean(Zero, Zero), Apply(Dirty(Zero, Old), LineOp.Maintenance(LineOpKind.Clean)));
        Assert.Equal(Clean(Zero, Pay), Apply(Clean(Zero, Pay), LineOp.Maintenance(LineOpKind.Clean)));
        Assert.Equal(Invalid(Old), Apply(Invalid(Old), LineOp.Maintenance(LineOpKind.Clean)));
    }

    [Fact]
    public void CleanInvalidateWritesBackThenDrops()
    {
        Assert.Equal(Invalid(Zero), Apply(Dirty(Zero, Old), LineOp.Maintenance(LineOpKind.CleanInvalidate)));
        Assert.Equal(Invalid(Pay), Apply(Clean(Zero, Pay), LineOp.Maintenance(LineOpKind.CleanInvalidate)));
    }

    [Fact]
    public void InvalidateDiscardsDirtyData()
    {
        Assert.Equal(Invalid(Old), Apply(Dirty(Zero, Old), LineOp.Maintenance(LineOpKind.Invalidate)));
    }

    [Fact]
    public void InvalidateActsAsCleanInvalidateUnderStage2()
    {
        var config = Config with { IvacActsAsCivac = true };
        var after = LineSemantics.Apply(Dirty(Zero, Old), new LineAccess(LineOp.Maintenance(LineOpKind.Invalidate), 0, 64, 0), config).Single;
        Assert.Equal(Invalid(Zero), after);
    }

    [Fact]
    public void InitialStatesFollowTheSetting()
    {
        Assert.Equal([Invalid(Old)], LineSemantics.InitialStates(Config, 0));
        var arbitrary = LineSemantics.InitialStates(Config with { Initial = InitialCache.Arbitrary }, 0);
        Assert.Equal(3, arbitrary.Count);
        Assert.Contains(Dirty(Old, Old), arbitrary);
        Assert.Contains(Clean(Old, Old), arbitrary);
    }

    [Fact]
    public void MemoryOpSplitsAnUnalignedRangeIntoLines()
    {
        var op = new MemoryOp("t", 0x1030, 0x60, LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0), null);
        var lines = op.Lines(64).ToList();
        Assert.Equal([(0x1000UL, 0x30, 0x40, 0), (0x1040UL, 0, 0x40, 0x10), (0x1080UL, 0, 0x10, 0x50)],
            lines.Select(l => (l.LinePa, l.Access.Start, l.Access.End, l.Access.VarOffset)).ToList());
    }

    [Fact]
    public void MmuFillabilityFollowsCacheableAliases()
    {
        var nc = new Alias("nc", 0x9000, 0x1000, 0x1000, MemoryType.NormalNonCacheable);
        var wb = new Alias("wb", 0x20000, 0x1000, 0x1000, MemoryType.NormalWriteBack);
        var mmu = Mmu.Empty.Map(nc);
        Assert.False(mmu.IsFillable(0x1040));
        mmu = mmu.Map(wb);
        Assert.True(mmu.IsFillable(0x1040));
        Assert.False(mmu.Unmap(wb).IsFillable(0x1040));
        Assert.Throws<TranslationFaultException>(() => mmu.Translate(0x9ff0, 0x20));
        Assert.Equal((0x1010UL, nc), mmu.Translate(0x9010, 0x10));
    }

    [Fact]
    public void WriterNamesRoundTrip()
    {
        var writers = new WriterTable();
        var id = writers.Intern("payload");
        Assert.Equal(id, writers.Intern("payload"));
        Assert.Equal("payload", writers.Name(id));
        Assert.Equal("zero", writers.Name(WriterTable.Zero));
        Assert.Equal("payload[0..16) old[16..64)", LineBytes.Uniform(64, WriterTable.Old).With(0, 16, id).Describe(writers));
    }
}

public class MmuRangeTests
{
    [Fact]
    public void RangeFillabilityNeedsEveryByteCovered()
    {
        var a = new Alias("a", 0x10000, 0x1000, 0x1000, MemoryType.NormalWriteBack);
        var b = new Alias("b", 0x20000, 0x2000, 0x1000, MemoryType.NormalWriteBack);
        var nc = new Alias("nc", 0x30000, 0x3000, 0x1000, MemoryType.NormalNonCacheable);
        var mmu = Mmu.Empty.Map(a).Map(b).Map(nc);
        Assert.True(mmu.IsFillable(0x1000, 0x2000));
        Assert.False(mmu.IsFillable(0x1000, 0x2001));
        Assert.False(mmu.IsFillable(0x3000, 0x10));
        Assert.False(mmu.Unmap(b).IsFillable(0x1000, 0x2000));
    }
}
