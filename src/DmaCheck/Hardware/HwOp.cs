namespace DmaCheck.Hardware;

/// <summary>
/// One step of hardware activity caused by an agent, in program order. <see cref="Origin"/> names the code
/// responsible (a kernel function, a driver statement) and is opaque to the hardware; it is carried for traces.
/// </summary>
public abstract record HwOp(string Origin);

/// <summary>An access or cache maintenance over physical range [Pa, Pa+Length).</summary>
/// <param name="Via">The alias the access went through (for maintenance: the VA used), or null for a physical access.</param>
public sealed record MemoryOp(string Origin, ulong Pa, ulong Length, LineOp Op, Alias? Via) : HwOp(Origin)
{
    public ulong Pa { get; } = Length > 0 && Length - 1 <= ulong.MaxValue - Pa
        ? Pa
        : throw new ArgumentException($"an access of {Length} bytes at PA 0x{Pa:x} is empty or wraps past the end of the address space");

    /// <summary>The accesses this operation makes to each line it touches, in ascending address order.</summary>
    public IEnumerable<(ulong LinePa, LineAccess Access)> Lines(int lineSize)
    {
        var end = Pa + Length;
        var varOffset = 0;
        for (var line = Pa & ~(ulong)(lineSize - 1); line < end; line += (ulong)lineSize)
        {
            var start = (int)(Math.Max(line, Pa) - line);
            var stop = (int)(Math.Min(line + (ulong)lineSize, end) - line);
            yield return (line, new LineAccess(Op, start, stop, varOffset));
            varOffset += stop - start;
        }
    }

    /// <summary>The access this operation makes to the line at <paramref name="linePa"/> (as <see cref="Lines"/> gives it), or null when it does not touch that line; constant time.</summary>
    public LineAccess? AccessAt(ulong linePa, int lineSize)
    {
        var size = (ulong)lineSize;
        var end = Pa + Length;
        if ((linePa & (size - 1)) != 0 || linePa + size <= Pa || linePa >= end)
        {
            return null;
        }

        var start = (int)(Math.Max(linePa, Pa) - linePa);
        var stop = (int)(Math.Min(linePa + size, end) - linePa);
        return new LineAccess(Op, start, stop, checked((int)(linePa + (ulong)start - Pa)));
    }
}

/// <summary>A new translation becomes live.</summary>
public sealed record MapOp(string Origin, Alias Alias) : HwOp(Origin);

/// <summary>A translation is removed.</summary>
public sealed record UnmapOp(string Origin, Alias Alias) : HwOp(Origin);

/// <summary>
/// A copy of <see cref="Length"/> bytes from physical range [SrcPa, ...) to [DstPa, ...) by <see cref="Master"/>
/// (a kernel memcpy, as swiotlb's bounce), loading with <see cref="SrcType"/> and storing with <see cref="DstType"/>.
/// The bytes stored are the bytes loaded, so the destination depends on the source lines' states: an explorer
/// splits the run on each possible value and replaces the copy by its <see cref="Resolve"/>d halves.
/// </summary>
public sealed record CopyOp(string Origin, MasterKind Master, ulong SrcPa, MemoryType SrcType, ulong DstPa, MemoryType DstType, ulong Length) : HwOp(Origin)
{
    /// <summary>The load and the store this copy is, once the bytes it read are known.</summary>
    public IReadOnlyList<HwOp> Resolve(LineBytes data) =>
        data.Length == (int)Length
            ? [new MemoryOp(Origin, SrcPa, Length, LineOp.CopyRead(Master, SrcType, data), null), new MemoryOp(Origin, DstPa, Length, LineOp.CopyWrite(Master, DstType, data), null)]
            : throw new ArgumentException($"a copy of {Length} bytes resolved with {data.Length}");

    /// <summary>The load half with no value fixed: the lines it touches, for finding what the copy reads.</summary>
    public MemoryOp Load => new(Origin, SrcPa, Length, new LineOp(LineOpKind.CopyRead, Master, SrcType), null);

    /// <summary>The store half with no value fixed: the lines it touches.</summary>
    public MemoryOp Store => new(Origin, DstPa, Length, new LineOp(LineOpKind.Write, Master, DstType), null);
}

/// <summary>
/// A poll's load (<c>poll ADDR[lo..hi] == WRITER</c>) of [Pa, Pa+Length) by <see cref="Master"/> with <see cref="Type"/>
/// attributes: whether the agent moves on depends on what it reads, so an explorer splits the run into the branches
/// of <see cref="Branches"/>, each a set of per-line filters (<see cref="LineOpKind.Poll"/>) whose joint outcomes are
/// a product, as lines are independent. <see cref="Bounded"/>: the poll has <c>max N</c>, so a miss needs no telling
/// whether it can still come to see the value.
/// </summary>
public sealed record PollOp(string Origin, ulong Pa, ulong Length, MasterKind Master, MemoryType Type, byte Writer, bool Bounded, Alias? Via) : HwOp(Origin)
{
    /// <summary>The load with no outcome fixed: the lines it touches.</summary>
    public MemoryOp Load => new(Origin, Pa, Length, LineOp.Poll(Master, Type, Writer, PollClasses.Any), Via);

    /// <summary>
    /// The branches, each a list of line filters over the whole range and whether the poll saw the value: a hit (every
    /// line all the writer's); then, for each line k, the misses decided at line k (the lines before it hit). With
    /// <see cref="Bounded"/> false, a miss is further split into hopeful (every line can still come to hit) and hopeless
    /// (some line cannot), so that a run whose poll can never succeed ends in states where it is stuck. The branches
    /// partition the joint outcomes of the load.
    /// </summary>
    public IReadOnlyList<(bool Hit, IReadOnlyList<MemoryOp> Filters)> Branches(int lineSize)
    {
        var lines = Load.Lines(lineSize).ToList();
        var result = new List<(bool, IReadOnlyList<MemoryOp>)> { (true, Segments(lines, _ => PollClasses.Hit)) };
        for (var k = 0; k < lines.Count; k++)
        {
            var at = k;
            if (Bounded)
            {
                result.Add((false, Segments(lines, i => i < at ? PollClasses.Hit : i == at ? PollClasses.Miss : PollClasses.Any)));
                continue;
            }

            result.Add((false, Segments(lines, i => i < at ? PollClasses.Hit : i == at ? PollClasses.Hopeful : PollClasses.Hit | PollClasses.Hopeful)));
            result.Add((false, Segments(lines, i => i < at ? PollClasses.Hit | PollClasses.Hopeful : i == at ? PollClasses.Hopeless : PollClasses.Any)));
        }

        return result;
    }

    /// <summary>Whether a step's resolved operations are a poll's miss (some filter leaves out the hit).</summary>
    public static bool IsMiss(IReadOnlyList<HwOp> resolved) =>
        resolved.Any(op => op is MemoryOp { Op.Kind: LineOpKind.Poll } m && (m.Op.Classes & PollClasses.Hit) == 0);

    private List<MemoryOp> Segments(List<(ulong LinePa, LineAccess Access)> lines, Func<int, PollClasses> classes)
    {
        var ops = new List<MemoryOp>();
        var start = Pa;
        for (var i = 0; i < lines.Count; i++)
        {
            var c = classes(i);
            if (i + 1 < lines.Count && classes(i + 1) == c)
            {
                continue;
            }

            var end = lines[i].LinePa + (ulong)lines[i].Access.End;
            ops.Add(new MemoryOp(Origin, start, end - start, LineOp.Poll(Master, Type, Writer, c), Via));
            start = end;
        }

        return ops;
    }
}
