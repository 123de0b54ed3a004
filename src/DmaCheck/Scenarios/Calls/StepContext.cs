using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

/// <summary>
/// What a step's handler works with: the model, the state before the step, the agent's frame and program, the
/// statement, and where the step's hardware operations and findings go; with the helpers that turn the statement's
/// expressions into values.
/// </summary>
public sealed class StepContext(ScenarioModel model, ControlState state, Frame frame, AgentProgram program, Statement statement, List<HwOp> ops, List<Finding> findings)
{
    public ScenarioModel Model => model;

    public Scenario Scenario => model.Scenario;

    public DmaEnvironment Environment => model.Environment;

    /// <summary>The DMA API front end, with the dma-debug hooks when <c>dma_api_debug</c> is on and the empty stubs when it is off.</summary>
    public DmaMapping<DebugState> Dma => model.FrontEnd;

    /// <summary>Whether the DMA-API debug checks run (<c>set dma_api_debug</c>).</summary>
    public bool Debugging => Scenario.KernelConfig.DmaApiDebug;

    /// <summary>The state before the step.</summary>
    public ControlState S => state;

    public Frame Frame => frame;

    public AgentProgram Program => program;

    public Statement Statement => statement;

    public List<HwOp> Ops => ops;

    public List<Finding> Findings => findings;

    public PlatformLayout Layout => state.Dma.Kernel.Layout;

    /// <summary>The scenario line of the statement ("Mapped at:").</summary>
    public int Line => statement.Span.Line;

    /// <summary>The running thread's kernel stack, if it has used one (check_for_stack's current task).</summary>
    public TaskStack? CurrentStack => state.Dma.Kernel.Stacks.GetValueOrDefault(program.Name);

    /// <summary>The state with <paramref name="target"/> set to <paramref name="value"/> (and the other parts given).</summary>
    public ControlState Assign(string target, Value value, DmaState? dma = null, DebugState? debug = null) =>
        state.With(dma: dma, vars: state.Vars.Add(target, value), debug: debug);

    public ScenarioException Bad(string message) => new(Scenario.Source, statement.Span, message);

    public Value Lookup(ValueExpr e) =>
        e.Var is null ? new NumberValue(e.Constant)
        : frame.Locals.TryGetValue(e.Var, out var v) ? v
        : state.Vars[e.Var];

    /// <summary>The number an expression denotes: a field, a kernel address, a DMA address or a number, plus its offset.</summary>
    public ulong Number(ValueExpr e)
    {
        var v = Lookup(e);
        ulong baseValue = (v, e.Field) switch
        {
            (NumberValue n, null) => n.N,
            (CoherentBuffer b, null or "cpu") => b.Cpu,
            (CoherentBuffer b, "dma") => b.Dma,
            (KernelPointer p, null) => p.Va,
            (UserPointer p, null) => p.Va,
            (PageRef p, null) => state.Dma.Kernel.Layout.PageAddress(p.Pfn)
                ?? throw Bad($"'{e.Text}' is a highmem page: page_address() is NULL until it is mapped; use kmap_local_page({e.Var})"),
            (DmaHandle h, null) => h.Dma,
            _ => throw Bad($"'{e.Text}': a {Describe(v)} has no field '.{e.Field}'"),
        };
        return unchecked((e.Mask is { } mask ? baseValue & mask : baseValue) + (e.Var is null ? 0 : e.Constant));
    }

    /// <summary>Whether <paramref name="e"/> denotes a virtual address: a kernel pointer, a page's address, a user address, a coherent buffer's CPU side, or a number that was one.</summary>
    public bool IsVirtualAddress(ValueExpr e) =>
        e.Var is not null && Lookup(e) switch
        {
            KernelPointer or PageRef or UserPointer => true,
            CoherentBuffer => e.Field is null or "cpu",
            NumberValue n => n.KernelVirtual,
            _ => false,
        };

    public static string Describe(Value v) => v switch
    {
        CoherentBuffer => "coherent buffer",
        KernelPointer => "kernel pointer",
        PageRef => "page",
        DmaHandle => "DMA handle",
        UserPointer => "user address",
        SgTableValue => "sg table",
        SgListValue => "sg table from sg_alloc_table",
        _ => "number",
    };

    public T As<T>(ValueExpr e, string what)
        where T : Value
    {
        var value = Lookup(e);
        if (e.Var is not null && (e.Constant != 0 || e.Mask is not null))
        {
            throw Bad($"'{e.Text}': {what}, with no offset");
        }

        if (value is NumberValue { N: 0 } && typeof(T) == typeof(PageRef))
        {
            throw new KernelBugException(statement.Text, $"'{e.Text}' is NULL: the allocation failed and the driver did not check");
        }

        return value as T ?? throw Bad($"'{e.Text}' is a {Describe(value)}, but {what}");
    }

    /// <summary>The coherent buffer and size a dma_mmap_* or dma_get_sgtable names: a live buffer (not NULL) and 1 byte to 1 GiB.</summary>
    public (CoherentBuffer Buffer, ulong Size) ExportedBuffer(ValueExpr buffer, ValueExpr sizeExpr, string function)
    {
        var buf = As<CoherentBuffer>(buffer, $"{function} takes a buffer from dma_alloc_coherent/dma_alloc_attrs");
        var size = Number(sizeExpr);
        if (size == 0 || size > 1UL << 30)
        {
            throw Bad($"{function} of {size} bytes: this model takes 1 byte to 1 GiB (for an mmap, the vma and the size the driver passes are the same)");
        }

        if (buf.Cpu == 0)
        {
            throw new KernelBugException(statement.Text, $"'{buffer.Text}' is NULL: the allocation failed and the driver did not check");
        }

        if (state.Dma.Coherent.Any(a => a.Source == CoherentSource.DevCoherent && a.CpuAddr == buf.Cpu))
        {
            throw new NotModelledException($"{function} of '{buffer.Text}', which comes from its device's own coherent pool (dma_mmap_from_dev_coherent, and the sg table of pool memory)");
        }

        return (buf, size);
    }

    /// <summary>The sg table a statement names: a live table from sg_alloc_table.</summary>
    public SgTable Table(ValueExpr e, string function)
    {
        var v = As<SgListValue>(e, $"{function} takes a table from sg_alloc_table");
        return state.Dma.Kernel.SgTables[v.Id];
    }

    /// <summary>An entry index or count: below 2^31, and for an index inside the table.</summary>
    public int Index(ValueExpr e, SgTable? table, string what)
    {
        var n = Number(e);
        if (table is not null && n >= (ulong)table.OrigNents)
        {
            throw Bad($"{what} {n} is past the end of the table ({table.OrigNents} entries, numbered from 0)");
        }

        return n > int.MaxValue ? throw Bad($"{what} {n} is out of range") : (int)n;
    }
}
