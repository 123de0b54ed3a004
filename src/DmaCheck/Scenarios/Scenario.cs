using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

public enum Verdict
{
    Always,
    Sometimes,
    Never,
    Inconclusive,
}

/// <summary>A verdict a scenario file declares for one expectation, with an optional bound on the minimum events to fail.</summary>
public sealed record DeclaredVerdict(Verdict Verdict, int? MinEvents, bool AtLeast)
{
    /// <summary>
    /// With <c>min-events 0</c>: <c>every-schedule</c> (true) declares that a quiet machine fails it on every schedule,
    /// <c>some-schedules</c> (false) only on some (a software race); null declares neither.
    /// </summary>
    public bool? EverySchedule { get; init; }

    public bool IsMetBy(Verdict verdict, int? minEventsToFail, bool? failsOnEveryQuietRun = null)
    {
        if (verdict != Verdict)
        {
            return false;
        }

        if (MinEvents is not { } n)
        {
            return true;
        }

        return minEventsToFail is { } m && (AtLeast ? m >= n : m == n) &&
            (EverySchedule is not { } every || failsOnEveryQuietRun == every);
    }

    public override string ToString()
    {
        var v = Verdict.ToString().ToLowerInvariant();
        var schedules = EverySchedule switch { true => ", every-schedule", false => ", some-schedules", null => string.Empty };
        return MinEvents is { } n ? $"{v}, min-events {(AtLeast ? ">=" : string.Empty)}{n}{schedules}" : v;
    }
}

/// <summary>One conjunct of an expectation: bytes [Low, High) of an observed variable were all written by <see cref="Writer"/>.</summary>
public sealed record Atom(int Var, ulong Low, ulong? High, byte Writer);

public sealed record Expectation(string Name, SourceSpan Span, string Text, IReadOnlyList<Atom> Atoms)
{
    /// <summary>
    /// A check a statement implies rather than one the file writes (<c>no-xpu-fault.L&lt;line&gt;</c>): its variable holds
    /// bytes only where the hardware recorded a fault, and a byte nothing recorded passes.
    /// </summary>
    public bool Implied { get; init; }
}

/// <summary>A value expression: a number, or a variable (optionally a field of it, optionally masked), plus a constant offset.</summary>
public sealed record ValueExpr(string? Var, string? Field, ulong Constant, SourceSpan Span, string Text)
{
    /// <summary>For <c>(VAR &amp; MASK)</c> and <c>(VAR &amp; ~MASK)</c>: the bits of the variable's value kept (already complemented for <c>~</c>), before <see cref="Constant"/> is added.</summary>
    public ulong? Mask { get; init; }
}

public abstract record Statement(SourceSpan Span, string Text)
{
    /// <summary>For a kernel call, its catalogue entry (set by the binder); null for the language's own statements.</summary>
    public CallEntry? Call { get; init; }
}

/// <summary>A statement that acts on one device: a DMA API call, which takes a <c>struct device</c>.</summary>
public interface IDeviceStatement
{
    DmaDevice Device { get; }
}

public sealed record AllocCoherentStmt(SourceSpan Span, string Text, string Target, DmaDevice Device, ValueExpr Size, Gfp Gfp, DmaAttrs Attrs = DmaAttrs.None) : Statement(Span, Text), IDeviceStatement;

public sealed record FreeCoherentStmt(SourceSpan Span, string Text, DmaDevice Device, ValueExpr Size, ValueExpr CpuAddr, ValueExpr Handle, DmaAttrs Attrs = DmaAttrs.None) : Statement(Span, Text), IDeviceStatement;

/// <summary><c>m = dma_mmap_coherent(dev, buf, size)</c> / <c>dma_mmap_attrs(dev, buf, size, attrs)</c>: the driver's mmap file operation for a whole-buffer vma.</summary>
public sealed record MmapStmt(SourceSpan Span, string Text, string Target, DmaDevice Device, ValueExpr Buffer, ValueExpr Size, DmaAttrs Attrs) : Statement(Span, Text), IDeviceStatement;

/// <summary><c>sgt = dma_get_sgtable(dev, buf, size)</c> / <c>dma_get_sgtable_attrs(dev, buf, size, attrs)</c>.</summary>
public sealed record GetSgtableStmt(SourceSpan Span, string Text, string Target, DmaDevice Device, ValueExpr Buffer, ValueExpr Size, DmaAttrs Attrs) : Statement(Span, Text), IDeviceStatement;

/// <summary><c>pg = sg_page(sgt)</c>, <c>pa = sg_phys(sgt)</c> or <c>va = kmap_local_page(pg)</c>: a derived value.</summary>
public sealed record DeriveStmt(SourceSpan Span, string Text, string Target, string Function, ValueExpr Source) : Statement(Span, Text);

/// <summary><c>h = dma_map_resource(dev, phys, size, dir, attrs)</c> (IsUnmap false) or <c>dma_unmap_resource(dev, h, size, dir, attrs)</c> (Address is the handle).</summary>
public sealed record ResourceStmt(SourceSpan Span, string Text, bool IsUnmap, string? Target, DmaDevice Device, ValueExpr Address, ValueExpr Size, DmaDirection Direction, DmaAttrs Attrs) : Statement(Span, Text), IDeviceStatement;

/// <summary><c>sgt = sg_alloc_table(nents[, gfp])</c>.</summary>
public sealed record SgAllocStmt(SourceSpan Span, string Text, string Target, ValueExpr Nents, Gfp Gfp) : Statement(Span, Text);

/// <summary><c>sg_set_buf(sgt, i, p, len)</c> (Offset null) or <c>sg_set_page(sgt, i, pg, len, offset)</c>.</summary>
public sealed record SgSetStmt(SourceSpan Span, string Text, string Function, ValueExpr Table, ValueExpr Index, ValueExpr Address, ValueExpr Length, ValueExpr? Offset) : Statement(Span, Text);

/// <summary><c>sg_free_table(sgt)</c>.</summary>
public sealed record SgFreeStmt(SourceSpan Span, string Text, ValueExpr Table) : Statement(Span, Text);

/// <summary><c>a = sg_dma_address(sgt, i)</c> or <c>l = sg_dma_len(sgt, i)</c>.</summary>
public sealed record SgFieldStmt(SourceSpan Span, string Text, string Target, string Function, ValueExpr Table, ValueExpr Index) : Statement(Span, Text);

/// <summary>
/// dma_map_sg, dma_map_sg_attrs, dma_map_sgtable (Kind Map; Target optional), their unmaps (Unmap) and syncs
/// (ForCpu, ForDevice). <see cref="Nents"/> is null for the sgtable forms, which use orig_nents.
/// </summary>
public sealed record SgDmaStmt(SourceSpan Span, string Text, string Function, SgDmaKind Kind, string? Target, DmaDevice Device, ValueExpr Table, ValueExpr? Nents, DmaDirection Direction, DmaAttrs Attrs = DmaAttrs.None) : Statement(Span, Text), IDeviceStatement;

public enum SgDmaKind
{
    Map,
    Unmap,
    ForCpu,
    ForDevice,
}

public sealed record KmallocStmt(SourceSpan Span, string Text, string Target, ValueExpr Size, Gfp Gfp) : Statement(Span, Text);

public sealed record KfreeStmt(SourceSpan Span, string Text, ValueExpr Pointer) : Statement(Span, Text);

public sealed record AllocPagesStmt(SourceSpan Span, string Text, string Target, Gfp Gfp, int Order) : Statement(Span, Text);

public sealed record FreePagesStmt(SourceSpan Span, string Text, ValueExpr Page, int Order) : Statement(Span, Text);

/// <summary>dma_map_single (Page null: Address is a kernel pointer) or dma_map_page (Address is a page, plus Offset).</summary>
public sealed record MapStmt(SourceSpan Span, string Text, string Target, string Function, DmaDevice Device, ValueExpr Address, ValueExpr? Offset, ValueExpr Size, DmaDirection Direction, DmaAttrs Attrs = DmaAttrs.None) : Statement(Span, Text), IDeviceStatement;

public enum SyncKind
{
    Unmap,
    ForCpu,
    ForDevice,
}

public sealed record SyncStmt(SourceSpan Span, string Text, string Function, SyncKind Kind, DmaDevice Device, ValueExpr Handle, ValueExpr Size, DmaDirection Direction, DmaAttrs Attrs = DmaAttrs.None) : Statement(Span, Text), IDeviceStatement;

/// <summary>
/// One run of a lazy IOMMU domain's flush queue (fq_flush_timeout): not written in scenarios; the binder gives each
/// device in a lazy domain a program of these, one per unmap of its, which the explorer interleaves anywhere.
/// </summary>
public sealed record FlushQueueStmt(SourceSpan Span, string Text, DmaDevice Device) : Statement(Span, Text), IDeviceStatement;

/// <summary><c>dma_mapping_error(dev, h)</c>: a driver that gets an error gives up (returns), so the agent stops.</summary>
public sealed record MappingErrorStmt(SourceSpan Span, string Text, DmaDevice Device, ValueExpr Handle) : Statement(Span, Text), IDeviceStatement;

public sealed record AccessStmt(SourceSpan Span, string Text, bool IsWrite, AddressSpace Space, ValueExpr Address, ulong Low, ulong High, byte Writer, int Var) : Statement(Span, Text);

/// <summary><c>poll ADDR[lo..hi] == WRITER [, max N]</c>: read until every byte is <see cref="Writer"/>'s; with <see cref="Max"/>, give up (hung) after that many misses.</summary>
public record PollStmt(SourceSpan Span, string Text, AddressSpace Space, ValueExpr Address, ulong Low, ulong High, byte Writer, int? Max) : Statement(Span, Text)
{
    /// <summary>The read a poll makes, for the checks an access shares.</summary>
    public AccessStmt AsRead => new(Span, Text, false, Space, Address, Low, High, 0, -1);
}

/// <summary>
/// One test of <c>fetch ADDR[lo..hi] -> VAR</c>: a device reads an 8-byte DMA address from memory and keeps it in
/// <see cref="Target"/>, a variable of its own frame. Memory holds writers, not numbers, so the binder turns one fetch
/// into a chain of these, one per value the scenario can have stored there (each <c>write ... = dma(EXPR)</c>, and
/// <c>zero</c>): each reads the bytes as a bounded poll for its <see cref="PollStmt.Writer"/>; on a hit the device takes
/// that writer's address (<see cref="Scenario.Pointers"/>; 0 for <c>zero</c>) and goes on at <see cref="Continue"/>, on a miss the next test reads. A miss of the
/// <see cref="Last"/> one starts the chain again at <see cref="First"/> (the bytes changed between two tests), and after
/// <see cref="Rounds"/> rounds stops the run as not modelled (bytes never written, another writer's data, or halves of
/// two addresses). Each test reads anew, so the chain is a read at any one of its steps: every outcome of one read is
/// reached by running the tests back to back, and every outcome of the chain is that of a read made at its hitting step.
/// </summary>
public sealed record FetchStmt(SourceSpan Span, string Text, AddressSpace Space, ValueExpr Address, ulong Low, ulong High, byte Writer, string Target,
    int First, int Continue, bool Last) : PollStmt(Span, Text, Space, Address, Low, High, Writer, 1)
{
    /// <summary>How many times the chain is tried before its misses are taken as bytes that hold no address.</summary>
    public const int Rounds = 3;
}

public sealed record SmcStmt(SourceSpan Span, string Text, int Firmware, IReadOnlyList<ValueExpr> Args) : Statement(Span, Text);

/// <summary>A call of a real kernel function the model knows it lacks (<see cref="KernelFunctions.NotModelled"/>): reaching it stops the run as not modelled.</summary>
public sealed record NotModelledStmt(SourceSpan Span, string Text, string Function, string Mechanism) : Statement(Span, Text);

public sealed record EventStmt(SourceSpan Span, string Text, bool IsWait, string Event) : Statement(Span, Text);

/// <summary>A finding a scenario file declares; null parts match anything. <see cref="Kind"/> null means "no findings".</summary>
public sealed record DeclaredFinding(SourceSpan Span, string? Kind, string? Function, string? Owner)
{
    public bool Matches(Finding f) =>
        Kind == f.Kind && (Function is null || Function == f.Function) && (Owner is null || Owner == f.Owner.Name);

    public override string ToString() =>
        Kind is null ? "no findings" : $"finding {Kind}" + (Function is null ? string.Empty : $" in {Function}") + (Owner is null ? string.Empty : $" owner {Owner}");
}

/// <summary>One program: a CPU thread, a device's DMA engine, or a firmware handler run by <c>smc</c>.</summary>
/// <param name="Device">For a DMA engine, the device it belongs to.</param>
/// <param name="DmaDevice">For a DMA engine, its device (with the IOMMU it sits behind, which its accesses go through).</param>
public sealed record AgentProgram(string Name, AgentKind Kind, MasterKind Master, MemoryType Access, IReadOnlyList<string> Parameters, IReadOnlyList<Statement> Body, string? Device = null,
    DmaDevice? DmaDevice = null)
{
    /// <summary>For a DMA engine, the VM its device's master belongs to when it is not HLOS (<see cref="DmaDevice.Vmid"/>).</summary>
    public string? Vmid { get; init; }
}

/// <summary>A bound, checked scenario: everything the model needs, with every name resolved.</summary>
public sealed record Scenario(
    SourceText Source,
    string Title,
    KernelProfile Profile,
    KernelConfig KernelConfig,
    HardwareConfig Hardware,
    IReadOnlyList<AgentProgram> Programs,
    IReadOnlyList<int> Agents,
    WriterTable Writers,
    IReadOnlyList<string> ObservedVars,
    IReadOnlyList<Expectation> Expectations,
    IReadOnlyDictionary<string, DeclaredVerdict> Declared,
    IReadOnlyList<string> Notes,
    IReadOnlyList<TenantSpec> Tenants,
    IReadOnlyList<DeclaredFinding> DeclaredFindings)
{
    public string File => Source.Path;

    /// <summary>The writers that are DMA addresses (<c>write ADDR[lo..hi] = dma(EXPR)</c>), with the expression each stores.</summary>
    public IReadOnlyDictionary<byte, ValueExpr> Pointers { get; init; } = new Dictionary<byte, ValueExpr>();

    /// <summary>The buffers placed at given physical addresses (<c>buffer NAME { phys = PA, size = N }</c>), in file order.</summary>
    public IReadOnlyList<PlacedBufferSpec> Placed { get; init; } = [];

    /// <summary>
    /// The observed variables a run starts with: the checks statements imply (memory given to another security domain
    /// must stay untouched) hold an empty range until their statement runs, so a run that never gets there passes them.
    /// </summary>
    public System.Collections.Immutable.ImmutableSortedDictionary<int, ObservedRange> InitialObserved() =>
        System.Collections.Immutable.ImmutableSortedDictionary.CreateRange(Programs.SelectMany(p => p.Body).OfType<ScmAssignStmt>()
            .Where(a => a.FaultVar >= 0).Select(a => KeyValuePair.Create(a.FaultVar, new ObservedRange(0, 0))));

    /// <summary>The statement at <paramref name="span"/> (where a kernel crash happened, for instance).</summary>
    public Statement StatementAt(SourceSpan span) => Programs.SelectMany(p => p.Body).First(st => st.Span == span);
}
