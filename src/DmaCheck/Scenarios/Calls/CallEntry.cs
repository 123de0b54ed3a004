namespace DmaCheck.Scenarios;

/// <summary>What one step of a statement leaves behind: the state after it, whether the agent stops, and a frame it pushes (smc).</summary>
public readonly record struct StepOutcome(ControlState Next, string? Stopped = null, Frame? Pushed = null)
{
    public static implicit operator StepOutcome(ControlState next) => new(next);
}

/// <summary>The kind of a kernel call's parameter, as the scenario language spells it.</summary>
public enum ParamKind
{
    Device,
    Size,
    Gfp,
    Attrs,
    Direction,
    Order,

    /// <summary>A buffer from dma_alloc_coherent / dma_alloc_attrs.</summary>
    CoherentBuffer,

    /// <summary>A coherent buffer's CPU address (buf or buf.cpu).</summary>
    CpuAddress,

    /// <summary>A DMA address (a handle, buf.dma, sg_dma_address).</summary>
    Handle,

    /// <summary>A kernel virtual address (a kmalloc pointer, a stack buffer...).</summary>
    KernelPointer,

    /// <summary>A struct page (alloc_pages, sg_page, vmalloc_to_page).</summary>
    Page,

    /// <summary>A byte offset.</summary>
    Offset,

    /// <summary>A struct sg_table from sg_alloc_table.</summary>
    SgList,

    /// <summary>A one-entry table from dma_get_sgtable.</summary>
    SgTable,

    /// <summary>An entry index or count.</summary>
    Count,

    /// <summary>A physical address.</summary>
    PhysAddress,

    /// <summary>Any number or address.</summary>
    Number,
}

/// <summary>What a kernel call returns to the scenario.</summary>
public enum ResultKind
{
    /// <summary>Nothing to assign.</summary>
    None,

    /// <summary>The value may be assigned or not (dma_map_sg's count).</summary>
    OptionalNumber,
    CoherentBuffer,
    UserPointer,
    SgTable,
    SgList,
    KernelPointer,
    Page,
    Handle,
    Number,
}

/// <summary>A call's parameter lists (more than one when the language accepts two spellings) and its result.</summary>
public sealed record CallSignature(IReadOnlyList<IReadOnlyList<ParamKind>> Overloads, ResultKind Result)
{
    public CallSignature(ResultKind result, params ParamKind[] parameters)
        : this([parameters], result)
    {
    }

    /// <summary>The argument counts the binder accepts.</summary>
    public IEnumerable<int> Arities => Overloads.Select(o => o.Count).Distinct();
}

/// <summary>How the fuzzing generator (tests/DmaCheck.Fuzzing/ScenarioGenerator.cs) may emit a call.</summary>
/// <param name="Generated">Whether generated scenarios contain it (a test checks both ways on a sample).</param>
/// <param name="How">In what construct the generator emits it, or why it does not.</param>
public sealed record CallGeneration(bool Generated, string How)
{
    public static CallGeneration By(string how) => new(true, how);

    public static CallGeneration Not(string why) => new(false, why);
}

/// <summary>
/// The semantics of one kind of step: which expressions must be assigned before it is enabled, what it does, and
/// which parts of the control state it may read and write (<see cref="Footprint"/>). Kernel calls are
/// <see cref="CallEntry"/>s; the language's own statements (accesses, polls, smc, events) are
/// <see cref="CallCatalogue.Statements"/>.
/// </summary>
public abstract class StepSemantics(string name, Footprint footprint)
{
    public string Name => name;

    /// <summary>What the step may read and write. A test checks the writes on every bundled and generated scenario.</summary>
    public Footprint Footprint => footprint;

    /// <summary>The bound statement type this semantics executes.</summary>
    public abstract Type StatementType { get; }

    /// <summary>The expressions whose variables must be assigned before the statement is enabled.</summary>
    public abstract IEnumerable<ValueExpr> Inputs(Statement stmt);

    /// <summary>Executes the statement in <paramref name="ctx"/>.</summary>
    public abstract StepOutcome Execute(StepContext ctx, Statement stmt);
}

/// <summary>The semantics of a statement of one bound type.</summary>
public class StepSemantics<TStmt>(string name, Footprint footprint, Func<TStmt, IEnumerable<ValueExpr>> inputs, Func<StepContext, TStmt, StepOutcome> execute)
    : StepSemantics(name, footprint)
    where TStmt : Statement
{
    public override Type StatementType => typeof(TStmt);

    public override IEnumerable<ValueExpr> Inputs(Statement stmt) => inputs((TStmt)stmt);

    public override StepOutcome Execute(StepContext ctx, Statement stmt) => execute(ctx, (TStmt)stmt);
}

/// <summary>
/// One kernel call of the scenario language: its name, signature, binder (call syntax to a bound statement, with the
/// binder's error messages and spans), handler (its kernel semantics), footprint and generator hook. Adding a call
/// is adding one entry to <see cref="CallCatalogue"/> plus the kernel semantics it calls.
/// </summary>
public abstract class CallEntry(string name, CallSignature signature, Footprint footprint, CallGeneration generation)
    : StepSemantics(name, footprint)
{
    public CallSignature Signature => signature;

    public CallGeneration Generation => generation;

    /// <summary>Binds a call of this function; throws <see cref="ScenarioException"/> on bad arguments.</summary>
    public abstract Statement Bind(Binder.CallBinding call);

    public override string ToString() => Name;
}

/// <summary>A <see cref="CallEntry"/> whose statement is a <typeparamref name="TStmt"/>.</summary>
public sealed class CallEntry<TStmt>(string name, CallSignature signature, Func<Binder.CallBinding, TStmt> bind, Func<TStmt, IEnumerable<ValueExpr>> inputs,
    Func<StepContext, TStmt, StepOutcome> execute, Footprint footprint, CallGeneration generation)
    : CallEntry(name, signature, footprint, generation)
    where TStmt : Statement
{
    public override Type StatementType => typeof(TStmt);

    public override Statement Bind(Binder.CallBinding call) => bind(call);

    public override IEnumerable<ValueExpr> Inputs(Statement stmt) => inputs((TStmt)stmt);

    public override StepOutcome Execute(StepContext ctx, Statement stmt) => execute(ctx, (TStmt)stmt);
}
