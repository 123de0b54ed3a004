using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// What one step, or everything an agent may still do, reads and writes (docs/internals-reduction.md): the shared
/// kernel parts, the cache lines, the handle table by the lines its entries cover, the variables, the events and the
/// observed variables. Two accesses that do not conflict belong to steps that commute: in either order they reach the
/// same state and each does the same as it would alone. Built once and then only read.
/// </summary>
internal sealed class StepAccess
{
    /// <summary>The parts kept as a whole: the allocators, page tables, stacks, sg tables, coherent buffers, atomic pool and swiotlb.</summary>
    public const StateParts Shared = StateParts.PageAllocator | StateParts.Slab | StateParts.PageTables | StateParts.Stacks
        | StateParts.SgTables | StateParts.CoherentBuffers | StateParts.AtomicPool | StateParts.Swiotlb;

    /// <summary>A step that conflicts with every other one (its footprint is unknown, or it must keep its place in every run).</summary>
    public static StepAccess Everything { get; } = new() { All = true };

    /// <summary>A step that touches nothing shared.</summary>
    public static StepAccess None { get; } = new();

    /// <summary>Conflicts with every other access.</summary>
    public bool All { get; init; }

    /// <summary>The shared parts read (only <see cref="Shared"/> ones).</summary>
    public StateParts Reads { get; init; }

    /// <summary>The shared parts written (only <see cref="Shared"/> ones).</summary>
    public StateParts Writes { get; init; }

    /// <summary>The cache lines whose sets the step may change (any access may fill or filter a line, so every one counts as a write).</summary>
    public LineRanges Lines { get; init; } = LineRanges.Empty;

    /// <summary>Any line at all.</summary>
    public bool AllLines { get; init; }

    /// <summary>The handle table and dma-debug's entries read, by the lines the entries cover.</summary>
    public LineRanges TableReads { get; init; } = LineRanges.Empty;

    /// <summary>The handle table and dma-debug's entries written, by the lines the entries cover.</summary>
    public LineRanges TableWrites { get; init; } = LineRanges.Empty;

    /// <summary>Every entry read.</summary>
    public bool AllTableReads { get; init; }

    /// <summary>Every entry may be written.</summary>
    public bool AllTableWrites { get; init; }

    public IReadOnlyCollection<string> VarReads { get; init; } = [];

    public IReadOnlyCollection<string> VarWrites { get; init; } = [];

    /// <summary>Some variable, which one unknown, may be assigned.</summary>
    public bool AllVarWrites { get; init; }

    /// <summary>Events raised.</summary>
    public IReadOnlyCollection<string> Signals { get; init; } = [];

    /// <summary>Events waited for.</summary>
    public IReadOnlyCollection<string> Waits { get; init; } = [];

    /// <summary>
    /// The step reaches memory a later allocation will hand out (kmalloc, alloc_pages, or an access or map through what
    /// they will return): lines that are not <see cref="Unsettled"/> now cannot be among them.
    /// </summary>
    public bool Fresh { get; init; }

    /// <summary>Some line or entry the step reaches holds bytes a later allocation may hand out (<see cref="Kernel.Kmalloc.IsSettled"/>).</summary>
    public bool Unsettled { get; init; }

    /// <summary>Observed variables read into.</summary>
    public IReadOnlyCollection<int> Observed { get; init; } = [];

    /// <summary>
    /// Whether the two may not commute: one writes what the other reads or writes (a shared part, a line, an entry's
    /// lines, a variable, an observed variable), or one raises an event the other waits for.
    /// </summary>
    public bool ConflictsWith(StepAccess o)
    {
        if (All || o.All)
        {
            return true;
        }

        if (((Writes & (o.Reads | o.Writes)) | (o.Writes & Reads)) != 0)
        {
            return true;
        }

        if (Touch(AllLines, Lines, o.AllLines, o.Lines) || ReachesFresh(this, o) || ReachesFresh(o, this))
        {
            return true;
        }

        if (Touch(AllTableWrites, TableWrites, o.AllTableWrites || o.AllTableReads, o.TableWrites.Union(o.TableReads))
            || Touch(o.AllTableWrites, o.TableWrites, AllTableReads, TableReads))
        {
            return true;
        }

        if (WritesVarOf(this, o) || WritesVarOf(o, this))
        {
            return true;
        }

        return Shares(Signals, o.Waits) || Shares(o.Signals, Waits) || Shares(Observed, o.Observed);
    }

    /// <summary>Whether <paramref name="other"/> may reach memory <paramref name="fresh"/>'s allocations will hand out.</summary>
    private static bool ReachesFresh(StepAccess fresh, StepAccess other) =>
        fresh.Fresh && (other.Fresh || other.Unsettled || other.AllLines || other.AllTableReads || other.AllTableWrites);

    private static bool Touch(bool allA, LineRanges a, bool allB, LineRanges b) =>
        (allA && (allB || !b.IsEmpty)) || (allB && !a.IsEmpty) || a.Overlaps(b);

    private static bool WritesVarOf(StepAccess w, StepAccess r) =>
        (w.AllVarWrites && (r.VarReads.Count > 0 || r.VarWrites.Count > 0 || r.AllVarWrites))
        || Shares(w.VarWrites, r.VarReads) || Shares(w.VarWrites, r.VarWrites);

    private static bool Shares<T>(IReadOnlyCollection<T> a, IReadOnlyCollection<T> b)
    {
        if (a.Count == 0 || b.Count == 0)
        {
            return false;
        }

        foreach (var x in a)
        {
            if (b.Contains(x))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Everything either access touches.</summary>
    public StepAccess Union(StepAccess o)
    {
        if (All || ReferenceEquals(o, None))
        {
            return this;
        }

        if (o.All || ReferenceEquals(this, None))
        {
            return o;
        }

        return new StepAccess
        {
            Reads = Reads | o.Reads,
            Writes = Writes | o.Writes,
            Lines = Lines.Union(o.Lines),
            AllLines = AllLines || o.AllLines,
            TableReads = TableReads.Union(o.TableReads),
            TableWrites = TableWrites.Union(o.TableWrites),
            AllTableReads = AllTableReads || o.AllTableReads,
            AllTableWrites = AllTableWrites || o.AllTableWrites,
            VarReads = Merge(VarReads, o.VarReads),
            VarWrites = Merge(VarWrites, o.VarWrites),
            AllVarWrites = AllVarWrites || o.AllVarWrites,
            Signals = Merge(Signals, o.Signals),
            Waits = Merge(Waits, o.Waits),
            Observed = Merge(Observed, o.Observed),
            Fresh = Fresh || o.Fresh,
            Unsettled = Unsettled || o.Unsettled,
        };
    }

    private static IReadOnlyCollection<T> Merge<T>(IReadOnlyCollection<T> a, IReadOnlyCollection<T> b)
    {
        if (b.Count == 0)
        {
            return a;
        }

        if (a.Count == 0)
        {
            return b;
        }

        var all = new HashSet<T>(a);
        all.UnionWith(b);
        return all;
    }
}
