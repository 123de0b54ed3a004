namespace DmaCheck.Hardware;

public enum LineOpKind : byte
{
    /// <summary>A load by <see cref="LineOp.Master"/> with <see cref="LineOp.Type"/> attributes into an observation variable.</summary>
    Read,

    /// <summary>A store of <see cref="LineOp.Writer"/>'s bytes.</summary>
    Write,

    /// <summary>DC CVAC: clean to the point of coherency. A Dirty line is written back and stays valid.</summary>
    Clean,

    /// <summary>DC CIVAC: clean and invalidate to the point of coherency.</summary>
    CleanInvalidate,

    /// <summary>DC IVAC: invalidate to the point of coherency. Dirty data is discarded (unless IVAC acts as CIVAC).</summary>
    Invalidate,

    /// <summary>
    /// The load half of a copy (memcpy) that is known to have read <see cref="LineOp.Data"/>: the line moves as for a
    /// load, and a state that would have returned other bytes has no outcome. It is how a copy whose value depends on
    /// the line's state is split into runs, one per value (docs/internals-line-sets.md).
    /// </summary>
    CopyRead,

    /// <summary>Outer (L2) cache clean of the line by physical address (PL310 Clean Line by PA): a Dirty outer line is written to RAM and stays valid. The inner level is untouched.</summary>
    OuterClean,

    /// <summary>Outer (L2) cache clean and invalidate by physical address (PL310 Clean and Invalidate Line by PA). The inner level is untouched.</summary>
    OuterCleanInvalidate,

    /// <summary>Outer (L2) cache invalidate by physical address (PL310 Invalidate Line by PA): a Dirty outer line is discarded. The inner level is untouched.</summary>
    OuterInvalidate,

    /// <summary>
    /// A poll's load (<c>poll ADDR[lo..hi] == WRITER</c>), resolved to what it saw: the line moves as for a load, and
    /// a state is kept only when the bytes it may return fall in one of <see cref="LineOp.Classes"/> (all
    /// <see cref="LineOp.Writer"/>'s; or not, and the line can or cannot still come to show them). Like a resolved
    /// copy load, it is how a run is split on a value that decides control flow (docs/internals-line-sets.md).
    /// </summary>
    Poll,

    /// <summary>
    /// The line's memory changes security domain (the secure world reprograms its XPU/MPU, or a hypervisor its stage-2
    /// tables, on <c>qcom_scm_assign_mem</c>): with <see cref="LineOp.Var"/> >= 0 it is taken from the non-secure world
    /// that runs Linux, and any CPU bus access there faults into that variable with <see cref="LineOp.Writer"/>'s bytes;
    /// with -1 it is given back. The caches are not touched.
    /// </summary>
    Assign,

    /// <summary>
    /// On a line assigned away: whether a Normal non-cacheable alias still maps it (<see cref="LineOp.Writer"/> 1) or no
    /// longer does (0), as the kernel's mappings change; a line that is not assigned is untouched. No bus access.
    /// </summary>
    Reach,

    /// <summary>
    /// Clean to the point of coherency at every level, atomically per line: a Dirty inner line is written back through
    /// the outer level to RAM, and a Dirty outer line is written to RAM; both stay valid. Without an outer level, as
    /// <see cref="Clean"/>. What a by-VA clean whose effect the core propagates to its unified L2 does (RISC-V cbo.clean,
    /// T-Head dcache.cva).
    /// </summary>
    CleanAllLevels,

    /// <summary>Clean and invalidate at every level, atomically per line (cbo.flush, T-Head dcache.civa). Without an outer level, as <see cref="CleanInvalidate"/>.</summary>
    CleanInvalidateAllLevels,

    /// <summary>Invalidate at every level, atomically per line: Dirty data at either level is discarded (cbo.inval, T-Head dcache.iva). Without an outer level, as <see cref="Invalidate"/>.</summary>
    InvalidateAllLevels,
}

/// <summary>What a poll's load of one line may see (<see cref="LineOpKind.Poll"/>), as flags.</summary>
[Flags]
public enum PollClasses : byte
{
    None = 0,

    /// <summary>Every byte read was written by the writer polled for.</summary>
    Hit = 1,

    /// <summary>Some byte was not, but spontaneous moves alone can bring the line to a state where a load sees them all.</summary>
    Hopeful = 2,

    /// <summary>Some byte was not, and no spontaneous move can change that: only another agent's access can.</summary>
    Hopeless = 4,

    /// <summary>Any miss.</summary>
    Miss = Hopeful | Hopeless,

    /// <summary>Whatever the load sees (a line after the one that decided a miss).</summary>
    Any = Hit | Hopeful | Hopeless,
}

/// <summary>
/// One hardware operation as it affects every line of the physical range it covers. Reads name the observation
/// variable they fill; writes name the writer whose bytes they store, or carry the bytes themselves in
/// <see cref="Data"/> (the store half of a copy), indexed like a read's variable by <see cref="LineAccess.VarOffset"/>.
/// </summary>
/// <param name="Colour">
/// On an aliasing data cache (<see cref="HardwareConfig.Aliasing"/>), which copy of the line a CPU access or by-VA maintenance
/// through a cacheable alias uses: 0 for the linear map's (and for every access on a physically indexed cache), another key for an
/// alias whose virtual index differs (<see cref="HardwareConfig.ColourOf"/>), or <see cref="AllColours"/> for maintenance that
/// reaches every copy (flush_cache_all). Ignored by non-cacheable accesses and by devices.
/// </param>
public sealed record LineOp(LineOpKind Kind, MasterKind Master, MemoryType Type, byte Writer = 0, int Var = -1, LineBytes? Data = null, PollClasses Classes = PollClasses.None,
    ulong Colour = 0)
{
    /// <summary>The <see cref="Colour"/> of maintenance that reaches every copy of the line, whatever its virtual index.</summary>
    public const ulong AllColours = ulong.MaxValue;

    /// <summary>A poll's load for <paramref name="writer"/>'s bytes that keeps the states whose load falls in <paramref name="classes"/>.</summary>
    public static LineOp Poll(MasterKind master, MemoryType type, byte writer, PollClasses classes) => new(LineOpKind.Poll, master, type, writer, Classes: classes);

    public static LineOp Read(MasterKind master, MemoryType type, int var) => new(LineOpKind.Read, master, type, 0, var);

    public static LineOp Write(MasterKind master, MemoryType type, byte writer) => new(LineOpKind.Write, master, type, writer);

    public static LineOp Maintenance(LineOpKind kind) => new(kind, MasterKind.Cpu, MemoryType.NormalWriteBack);

    /// <summary>Whether a Normal non-cacheable alias maps the (assigned) lines now.</summary>
    public static LineOp Reach(bool ncMapped) => new(LineOpKind.Reach, MasterKind.Cpu, MemoryType.NormalNonCacheable, ncMapped ? (byte)1 : (byte)0);

    /// <summary>The memory is assigned away, faults recorded in <paramref name="var"/> as <paramref name="faultWriter"/>'s bytes; or given back (<paramref name="var"/> -1).</summary>
    public static LineOp Assign(int var, byte faultWriter) => new(LineOpKind.Assign, MasterKind.Firmware, MemoryType.NormalWriteBack, faultWriter, var);

    /// <summary>Whether this is an outer-cache maintenance operation (by physical address, the inner level untouched).</summary>
    public bool IsOuterMaintenance => Kind is LineOpKind.OuterClean or LineOpKind.OuterCleanInvalidate or LineOpKind.OuterInvalidate;

    /// <summary>The load half of a copy, resolved to the bytes it read.</summary>
    public static LineOp CopyRead(MasterKind master, MemoryType type, LineBytes data) => new(LineOpKind.CopyRead, master, type, Data: data);

    /// <summary>The store half of a copy: stores <paramref name="data"/>, byte for byte.</summary>
    public static LineOp CopyWrite(MasterKind master, MemoryType type, LineBytes data) => new(LineOpKind.Write, master, type, Data: data);

    /// <summary>The Arm mnemonic or a short description, for traces; with the alias copy it uses on an aliasing cache.</summary>
    public string Mnemonic => Colour == 0 ? BaseMnemonic : Colour == AllColours ? $"{BaseMnemonic} (every alias's line)" : $"{BaseMnemonic} (alias line 0x{Colour:x})";

    private string BaseMnemonic => Kind switch
    {
        LineOpKind.Clean => "DC CVAC",
        LineOpKind.CleanInvalidate => "DC CIVAC",
        LineOpKind.Invalidate => "DC IVAC",
        LineOpKind.OuterClean => "L2C clean line",
        LineOpKind.OuterCleanInvalidate => "L2C clean+invalidate line",
        LineOpKind.OuterInvalidate => "L2C invalidate line",
        LineOpKind.CleanAllLevels => "clean line, all levels",
        LineOpKind.CleanInvalidateAllLevels => "clean+invalidate line, all levels",
        LineOpKind.InvalidateAllLevels => "invalidate line, all levels",
        LineOpKind.Assign when Var >= 0 => "XPU: assigned away from the non-secure world",
        LineOpKind.Assign => "XPU: given back to the non-secure world",
        LineOpKind.Reach when Writer != 0 => "a Normal-NC alias maps the assigned memory (speculative reads can reach it)",
        LineOpKind.Reach => "no Normal-NC alias maps the assigned memory any more",
        LineOpKind.Read => $"{MasterName} {Type.Describe()} read",
        LineOpKind.CopyRead => $"{MasterName} {Type.Describe()} memcpy read",
        LineOpKind.Poll => $"{MasterName} {Type.Describe()} poll read ({Classes switch { PollClasses.Hit => "sees the value", PollClasses.Any => "any value", PollClasses.Hopeless => "misses, for good", PollClasses.Hopeful => "misses", PollClasses.Miss => "misses", _ => "sees the value or misses" }})",
        LineOpKind.Write when Data is not null => $"{MasterName} {Type.Describe()} memcpy write",
        LineOpKind.Write => $"{MasterName} {Type.Describe()} write",
        _ => Kind.ToString(),
    };

    private string MasterName => Master switch
    {
        MasterKind.Cpu => "CPU",
        MasterKind.Firmware => "firmware",
        MasterKind.CoherentDevice => "coherent DMA",
        MasterKind.NonCoherentDevice => "non-coherent DMA",
        _ => Master.ToString(),
    };
}

/// <summary>
/// A <see cref="LineOp"/> restricted to bytes [Start, End) of one line. <see cref="VarOffset"/> is the offset of Start
/// from the start of the operation's range: an operation that carries its bytes (<see cref="LineOp.Data"/>, a copy's
/// halves) indexes them by it; no other operation's effect depends on it.
/// </summary>
public readonly record struct LineAccess(LineOp Op, int Start, int End, int VarOffset);
