using System.Collections.Immutable;
using System.Text;
using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

/// <summary>A runtime value held by a scenario variable.</summary>
public abstract record Value
{
    /// <summary>The bytes an access through this value may cover, when known.</summary>
    public abstract ulong? Size { get; }
}

/// <summary>The result of dma_alloc_coherent: the CPU address and the DMA handle. <see cref="Cookie"/>: the CPU "address" is a DMA_ATTR_NO_KERNEL_MAPPING page cookie.</summary>
public sealed record CoherentBuffer(ulong Cpu, ulong Dma, ulong Bytes, bool Cookie = false) : Value
{
    public override ulong? Size => Bytes;
}

/// <summary>A user-space address from dma_mmap_*: the start of the process's mapping.</summary>
public sealed record UserPointer(ulong Va, ulong Bytes) : Value
{
    public override ulong? Size => Bytes;
}

/// <summary>A one-entry sg table from dma_get_sgtable: the page and the entry's length.</summary>
public sealed record SgTableValue(ulong Pfn, ulong Length) : Value
{
    public override ulong? Size => Length;
}

/// <summary>A struct sg_table from sg_alloc_table, by its id in <see cref="KernelState.SgTables"/>.</summary>
public sealed record SgListValue(int Id) : Value
{
    public override ulong? Size => null;
}

/// <summary>A kernel pointer from kmalloc.</summary>
public sealed record KernelPointer(ulong Va, ulong Bytes) : Value
{
    public override ulong? Size => Bytes;
}

/// <summary>A struct page from alloc_pages, by frame number.</summary>
public sealed record PageRef(ulong Pfn, int Order) : Value
{
    public override ulong? Size => PlatformLayout.PageSize << Order;
}

/// <summary>A DMA address from dma_map_*.</summary>
public sealed record DmaHandle(ulong Dma, ulong Bytes) : Value
{
    public override ulong? Size => Bytes;
}

/// <summary>A plain number (an smc argument, a literal).</summary>
/// <param name="KernelVirtual">The number is a kernel or user virtual address (passed on, for example, as an smc argument), so using it as a physical or DMA address is a driver bug.</param>
public sealed record NumberValue(ulong N, bool KernelVirtual = false) : Value
{
    public override ulong? Size => null;
}

/// <summary>Where an observed variable's bytes came from: [Pa, Pa+Length).</summary>
public sealed record ObservedRange(ulong Pa, ulong Length);

/// <summary>An activation of a program: which program, the next statement, and its parameters.</summary>
/// <param name="Retries">Reads the poll at <paramref name="Pc"/> has missed so far, when it has <c>max N</c> (else 0).</param>
public sealed record Frame(int Program, int Pc, ImmutableDictionary<string, Value> Locals, int Retries = 0);

/// <summary>One agent: a stack of frames (a CPU thread in firmware has two) and whether it stopped early.</summary>
/// <param name="Hung">It stopped because a poll with <c>max N</c> missed N times (a device timeout).</param>
public sealed record AgentState(ImmutableStack<Frame> Frames, string? Stopped, bool Hung = false)
{
    public bool Done => Frames.IsEmpty;
}

/// <summary>
/// Everything but the caches and RAM: the DMA and kernel state, each agent's position, the variables, the raised
/// events and where observations came from. Immutable, compared by a canonical key.
/// </summary>
public sealed class ControlState : IEquatable<ControlState>
{
    private string? key;

    public ControlState(DmaState dma, ImmutableArray<AgentState> agents, ImmutableSortedDictionary<string, Value> vars,
        ImmutableSortedSet<string> signals, ImmutableSortedDictionary<int, ObservedRange> observed, DebugState? debug = null)
    {
        Dma = dma;
        Debug = debug ?? DebugState.Empty;
        Agents = agents;
        Vars = vars;
        Signals = signals;
        Observed = observed;
    }

    public DmaState Dma { get; }

    /// <summary>What the DMA-API debug layer tracks.</summary>
    public DebugState Debug { get; }

    public ImmutableArray<AgentState> Agents { get; }

    public ImmutableSortedDictionary<string, Value> Vars { get; }

    public ImmutableSortedSet<string> Signals { get; }

    public ImmutableSortedDictionary<int, ObservedRange> Observed { get; }

    public Mmu Mmu => Dma.Kernel.Mmu;

    public ControlState With(DmaState? dma = null, ImmutableArray<AgentState>? agents = null, ImmutableSortedDictionary<string, Value>? vars = null,
        ImmutableSortedSet<string>? signals = null, ImmutableSortedDictionary<int, ObservedRange>? observed = null, DebugState? debug = null) =>
        new(dma ?? Dma, agents ?? Agents, vars ?? Vars, signals ?? Signals, observed ?? Observed, debug ?? Debug);

    /// <summary>A canonical text of the whole state; equal states have equal keys.</summary>
    public string Key => key ??= BuildKey();

    /// <summary>Sub-keys of the DMA and debug states, cached per immutable object: most steps leave them unchanged.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DmaState, string> DmaKeys = [];
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<DebugState, string> DebugKeys = [];

    /// <summary>Sub-keys of each agent and of the variables, cached per immutable object: a step changes one agent, and most steps no variable.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<AgentState, string> AgentKeys = [];
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ImmutableSortedDictionary<string, Value>, string> VarKeys = [];

    private string BuildKey()
    {
        var sb = new StringBuilder(256);
        foreach (var a in Agents)
        {
            sb.Append(AgentKeys.GetValue(a, AgentKey));
        }

        sb.Append("|V").Append(VarKeys.GetValue(Vars, VarsKey));

        sb.Append("|S").AppendJoin(',', Signals).Append("|O");
        foreach (var (k, v) in Observed)
        {
            sb.Append(k).Append('=').Append(v.Pa).Append('+').Append(v.Length).Append(';');
        }

        sb.Append(DmaKeys.GetValue(Dma, DmaKey));
        sb.Append("|G").Append(DebugKeys.GetValue(Debug, d => d.Key));
        return sb.ToString();
    }

    private static string AgentKey(AgentState a)
    {
        var sb = new StringBuilder(64);
        sb.Append('A').Append(a.Stopped);
        if (a.Hung)
        {
            sb.Append("!h");
        }

        foreach (var f in a.Frames)
        {
            sb.Append('/').Append(f.Program).Append(':').Append(f.Pc);
            if (f.Retries != 0)
            {
                sb.Append('r').Append(f.Retries); // a poll's misses so far: states that differ in it must not merge
            }

            foreach (var (k, v) in f.Locals.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append(',').Append(k).Append('=');
                AppendValue(sb, v);
            }
        }

        return sb.ToString();
    }

    private static string VarsKey(ImmutableSortedDictionary<string, Value> vars)
    {
        var sb = new StringBuilder(64);
        foreach (var (k, v) in vars)
        {
            sb.Append(k).Append('=');
            AppendValue(sb, v);
            sb.Append(';');
        }

        return sb.ToString();
    }

    /// <summary>A value's canonical text, without the slow reflection-free but allocation-heavy record ToString.</summary>
    private static void AppendValue(StringBuilder sb, Value v)
    {
        switch (v)
        {
            case CoherentBuffer b:
                sb.Append('c').Append(b.Cpu).Append('/').Append(b.Dma).Append('/').Append(b.Bytes).Append(b.Cookie ? "k" : string.Empty);
                break;
            case KernelPointer p:
                sb.Append('k').Append(p.Va).Append('/').Append(p.Bytes);
                break;
            case UserPointer u:
                sb.Append('u').Append(u.Va).Append('/').Append(u.Bytes);
                break;
            case SgTableValue t:
                sb.Append('s').Append(t.Pfn).Append('/').Append(t.Length);
                break;
            case SgListValue g:
                sb.Append('g').Append(g.Id);
                break;
            case PageRef r:
                sb.Append('p').Append(r.Pfn).Append('/').Append(r.Order);
                break;
            case DmaHandle h:
                sb.Append('h').Append(h.Dma).Append('/').Append(h.Bytes);
                break;
            case NumberValue n:
                sb.Append('n').Append(n.N).Append(n.KernelVirtual ? "v" : string.Empty);
                break;
            default:
                throw new InvalidOperationException(v.GetType().Name);
        }
    }

    private static string DmaKey(DmaState dma)
    {
        var sb = new StringBuilder(256);
        var k2 = dma.Kernel;
        sb.Append("|K").Append(k2.Allocator.NextPfn).Append(';').Append(k2.Allocator.NextHighPfn).Append(';').Append(k2.UserNext).Append(';').Append(k2.KmapNext).Append(';');
        foreach (var m in k2.UserMappings.Values)
        {
            sb.Append('u').Append(m.Alias.Va).Append('/').Append(m.Pfn).Append('/').Append(m.Pages).Append(m.IntendedOwner);
        }

        if (dma.Pool is { } pool)
        {
            sb.Append("|P").Append(pool.Va);
            foreach (var (o, n) in pool.Chunks)
            {
                sb.Append(',').Append(o).Append('+').Append(n);
            }
        }

        foreach (var b in k2.Allocator.FreeBlocks)
        {
            sb.Append('f').Append(b.Pfn).Append('/').Append(b.Order).Append(b.Owner); // the owner: findings name a free frame's last user
        }

        foreach (var b in k2.Allocator.Cma?.Released ?? [])
        {
            sb.Append('r').Append(b.Pfn).Append('/').Append(b.Pages).Append(b.Owner); // who last used a free CMA frame, for findings
        }

        foreach (var b in k2.Allocator.Allocated.Values)
        {
            sb.Append('a').Append(b.Pfn).Append('/').Append(b.Order).Append(b.Owner);
        }

        foreach (var (name, st) in k2.Stacks)
        {
            sb.Append("|K").Append(name).Append(',').Append(st.Va).Append(',').Append(st.Pfn).Append(',').Append(st.Used);
        }

        foreach (var t in k2.SgTables)
        {
            // Every field of every entry: the next map, sync or unmap reads them.
            sb.Append("|L").Append(t.Id).Append(',').Append(t.Va).Append(',').Append(t.Nents).Append(t.Freed ? "f" : string.Empty);
            foreach (var e in t.Entries)
            {
                sb.Append(';').Append(e.Pfn?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-").Append('+').Append(e.Offset).Append('/').Append(e.Length).Append('@').Append(e.DmaAddress).Append('/').Append(e.DmaLength);
            }
        }

        sb.Append("|M").Append(k2.VmallocNext);
        foreach (var a in k2.Mmu.Aliases)
        {
            sb.Append(a.Name).Append(',').Append(a.Va).Append(',').Append(a.Pa).Append(',').Append(a.Size).Append(',').Append((int)a.Type).Append(';');
        }

        sb.Append("|D");
        foreach (var m in dma.Mappings)
        {
            sb.Append(m.Device).Append(',').Append(m.Handle).Append(',').Append(m.Phys).Append(',').Append(m.Size).Append(',').Append((int)m.Direction).Append(',').Append(m.Function);
            if (m.Tlb is { } tlb)
            {
                sb.Append(",t").Append(tlb);
                foreach (var (lo, hi) in m.Stale ?? [])
                {
                    sb.Append(',').Append(lo).Append('-').Append(hi);
                }
            }

            sb.Append(';');
        }

        if (dma.Swiotlb is { } tlbPool)
        {
            sb.Append("|T").Append(tlbPool.SearchIndex);
            foreach (var a in tlbPool.Used.Values)
            {
                sb.Append(',').Append(a.Index).Append('+').Append(a.Slots).Append('@').Append(a.Offset).Append('/').Append(a.OrigAddr).Append('/').Append(a.AllocSize).Append('/').Append(a.Owner);
            }
        }

        sb.Append("|B");
        foreach (var (size, cache) in k2.Slab.Caches)
        {
            sb.Append(size).Append(':').Append(cache.SlabVa).Append('+').Append(cache.Next);
            foreach (var free in cache.Free)
            {
                sb.Append(',').Append(free);
            }

            sb.Append(';');
        }

        foreach (var (va, size) in k2.Slab.Live)
        {
            sb.Append('l').Append(va).Append('/').Append(size);
        }

        foreach (var c in dma.Coherent)
        {
            sb.Append(c.Device).Append(',').Append(c.CpuAddr).Append(',').Append(c.Handle).Append(',').Append(c.Size).Append(',').Append(c.Pfn).Append(',').Append(c.Order).Append(',').Append((int)c.Source).Append(';');
        }

        return sb.ToString();
    }

    public bool Equals(ControlState? other) => other is not null && (ReferenceEquals(this, other) || Key == other.Key);

    public override bool Equals(object? obj) => Equals(obj as ControlState);

    public override int GetHashCode() => Key.GetHashCode(StringComparison.Ordinal);
}

/// <summary>What one agent step did: the statement, the hardware operations it caused in program order, and any findings.</summary>
/// <remarks>
/// A poll's step describes its hit: <see cref="Next"/> is past the poll. <see cref="Missed"/> is the same step when the
/// read misses (the agent stays at the poll, counts the miss or gives up); an explorer picks one by what the read saw.
/// </remarks>
public sealed record StepResult(ControlState Next, int Agent, AgentProgram Program, Statement Statement, IReadOnlyList<HwOp> Ops, IReadOnlyList<Finding> Findings)
{
    /// <summary>For a poll that made its read: the step as it is when the read misses.</summary>
    public StepResult? Missed { get; init; }

    /// <summary>The step with its operations resolved (copies to their values, a poll to a branch): a poll's miss is its <see cref="Missed"/> step.</summary>
    public StepResult Resolved(IReadOnlyList<HwOp> ops) =>
        (Missed is { } missed && PollOp.IsMiss(ops) ? missed : this) with { Ops = ops, Missed = null };
}

public enum RunErrorKind
{
    /// <summary>The scenario uses something wrongly (out-of-bounds access, a handle of the wrong kind): exit 2.</summary>
    BadScenario,

    /// <summary>The kernel would crash, BUG or corrupt memory: reported as a failure.</summary>
    KernelBug,

    /// <summary>Behaviour this version does not model: the result is inconclusive.</summary>
    NotModelled,
}

/// <summary>A statement could not be executed; carries where, and what kind of problem it is.</summary>
public sealed class RunException(RunErrorKind kind, Scenario scenario, Statement statement, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public RunErrorKind Kind { get; } = kind;

    public Scenario Scenario { get; } = scenario;

    public Statement Statement { get; } = statement;

    public string Location => $"{Scenario.File}:{Statement.Span.Line}:{Statement.Span.Column}";
}

/// <summary>
/// The executable semantics of a bound scenario: the initial state, which agents may step, and what a step does.
/// Agents interleave at statement boundaries; a statement whose inputs are not yet assigned, or a wait on an
/// event not yet signalled, is not enabled.
/// </summary>
public sealed class ScenarioModel
{
    public ScenarioModel(Scenario scenario)
    {
        Scenario = scenario;
        Environment = new DmaEnvironment(scenario.Profile);
        var kernel = KernelState.Boot(scenario.Profile.Layout, scenario.KernelConfig, scenario.Hardware, scenario.Tenants);
        var agents = scenario.Agents
            .Select(p => new AgentState(ImmutableStack.Create(new Frame(p, 0, ImmutableDictionary<string, Value>.Empty)), null))
            .Select(a => Normalise(a))
            .ToImmutableArray();
        Initial = new ControlState(DmaState.Boot(kernel), agents, ImmutableSortedDictionary<string, Value>.Empty.WithComparers(StringComparer.Ordinal),
            ImmutableSortedSet<string>.Empty.WithComparer(StringComparer.Ordinal), ImmutableSortedDictionary<int, ObservedRange>.Empty);
    }

    public Scenario Scenario { get; }

    public DmaEnvironment Environment { get; }

    /// <summary>Whether the DMA-API debug checks run (<c>set dma_api_debug</c>).</summary>
    private bool Debugging => Scenario.KernelConfig.DmaApiDebug;

    public HardwareConfig Hardware => Scenario.Hardware;

    public ControlState Initial { get; }

    public bool IsFinished(ControlState s) => s.Agents.All(a => a.Done);

    /// <summary>The agents that can take a step now, in agent order.</summary>
    public IEnumerable<int> Enabled(ControlState s)
    {
        for (var i = 0; i < s.Agents.Length; i++)
        {
            var agent = s.Agents[i];
            if (!agent.Done && IsReady(s, agent.Frames.Peek()))
            {
                yield return i;
            }
        }
    }

    public (AgentProgram Program, Statement Statement) Current(ControlState s, int agent)
    {
        var frame = s.Agents[agent].Frames.Peek();
        var program = Scenario.Programs[frame.Program];
        return (program, program.Body[frame.Pc]);
    }

    private bool IsReady(ControlState s, Frame frame)
    {
        var stmt = Scenario.Programs[frame.Program].Body[frame.Pc];
        if (stmt is EventStmt { IsWait: true } wait && !s.Signals.Contains(wait.Event))
        {
            return false;
        }

        return Inputs(stmt).All(e => e.Var is null || frame.Locals.ContainsKey(e.Var) || s.Vars.ContainsKey(e.Var));
    }

    private static IEnumerable<ValueExpr> Inputs(Statement stmt) => stmt switch
    {
        AllocCoherentStmt a => [a.Size],
        MmapStmt m => [m.Buffer, m.Size],
        GetSgtableStmt g => [g.Buffer, g.Size],
        DeriveStmt d => [d.Source],
        FreeCoherentStmt f => [f.Size, f.CpuAddr, f.Handle],
        KmallocStmt k => [k.Size],
        KfreeStmt k => [k.Pointer],
        FreePagesStmt f => [f.Page],
        MapStmt m => m.Offset is null ? [m.Address, m.Size] : [m.Address, m.Offset, m.Size],
        SyncStmt y => [y.Handle, y.Size],
        MappingErrorStmt e => [e.Handle],
        SgAllocStmt g => [g.Nents],
        ResourceStmt r => [r.Address, r.Size],
        SgSetStmt g => g.Offset is null ? [g.Table, g.Index, g.Address, g.Length] : [g.Table, g.Index, g.Address, g.Length, g.Offset],
        SgFreeStmt g => [g.Table],
        SgFieldStmt g => [g.Table, g.Index],
        SgDmaStmt g => g.Nents is null ? [g.Table] : [g.Table, g.Nents],
        AccessStmt a => [a.Address],
        PollStmt p => [p.Address],
        SmcStmt c => c.Args,
        _ => [],
    };

    /// <summary>Executes the next statement of <paramref name="agent"/>.</summary>
    public StepResult Step(ControlState s, int agent)
    {
        var frame = s.Agents[agent].Frames.Peek();
        var program = Scenario.Programs[frame.Program];
        var stmt = program.Body[frame.Pc];
        var ops = new List<HwOp>();
        var findings = new List<Finding>();
        try
        {
            ControlState next;
            string? stopped;
            Frame? pushed;
            try
            {
                (next, stopped, pushed) = Execute(s, frame, program, stmt, ops, findings);
            }
            catch (FatalFindingException e)
            {
                // The kernel oopses or the process takes a fault here: this agent stops, with the operations done so far.
                findings.Add(e.Finding);
                (next, stopped, pushed) = (s, $"{e.Finding.Kind}: {e.Finding.Message}", null);
            }

            var frames = s.Agents[agent].Frames.Pop().Push(frame with { Pc = frame.Pc + 1, Retries = 0 });
            if (pushed is not null)
            {
                frames = frames.Push(pushed);
            }

            var state = Normalise(new AgentState(stopped is null ? frames : [], stopped));
            var after = next.With(agents: next.Agents.SetItem(agent, state));
            var accessFindings = stmt is PollStmt ? findings.ToList() : null;
            Unbind(after, findings);
            var result = new StepResult(after, agent, program, stmt, ops, findings);
            if (stmt is PollStmt poll && ops.OfType<PollOp>().Any())
            {
                // The read misses: the agent stays at the poll, one miss more, or gives up after max N.
                var retries = frame.Retries + 1;
                var missState = poll.Max is { } max && retries >= max
                    ? new AgentState([], $"hung: '{poll.Text}' (line {poll.Span.Line}) missed {max} time(s) and gave up (a device timeout)", Hung: true)
                    : new AgentState(s.Agents[agent].Frames.Pop().Push(frame with { Retries = poll.Max is null ? 0 : retries }), null);
                var missAfter = next.With(agents: next.Agents.SetItem(agent, missState));
                Unbind(missAfter, accessFindings!);
                result = result with { Missed = new StepResult(missAfter, agent, program, stmt, ops, accessFindings!) };
            }

            return result;
        }
        catch (ScenarioException e)
        {
            throw new RunException(RunErrorKind.BadScenario, Scenario, stmt, e.Message, e);
        }
        catch (KernelBugException e)
        {
            throw new RunException(RunErrorKind.KernelBug, Scenario, stmt, $"the kernel would BUG or corrupt memory: {e.Message}", e);
        }
        catch (TranslationFaultException e)
        {
            throw new RunException(RunErrorKind.KernelBug, Scenario, stmt, $"the kernel would oops: {e.Message}", e);
        }
        catch (NotModelledException e)
        {
            throw new RunException(RunErrorKind.NotModelled, Scenario, stmt, e.Message, e);
        }
    }

    /// <summary>The scenario ends and the driver is unbound: dma_debug_device_change (BUS_NOTIFY_UNBOUND_DRIVER).</summary>
    private void Unbind(ControlState after, List<Finding> findings)
    {
        if (Debugging && Scenario.KernelConfig.DebugUnbindAtEnd && IsFinished(after))
        {
            DmaDebug.Unbind(after.Debug, after.Dma, findings);
        }
    }

    /// <summary>
    /// The agents hung in <paramref name="s"/>, a final state: those whose poll gave up after <c>max N</c>, and those
    /// still at a poll (in a final state, a poll left can never see its value), each with what it hung at.
    /// </summary>
    public IEnumerable<(int Agent, string Why)> Hung(ControlState s)
    {
        for (var i = 0; i < s.Agents.Length; i++)
        {
            var a = s.Agents[i];
            var name = Scenario.Programs[Scenario.Agents[i]].Name;
            if (a.Hung)
            {
                yield return (i, $"{name} {a.Stopped}");
            }
            else if (!a.Done && Current(s, i).Statement is PollStmt p)
            {
                yield return (i, $"{name} hung at '{p.Text}' (line {p.Span.Line}): the value can never arrive on this run");
            }
        }
    }

    /// <summary>Whether some agent hung in the final state <paramref name="s"/>.</summary>
    public bool IsHung(ControlState s) => Hung(s).Any();

    /// <summary>Pops finished frames, so an agent whose last statement ran is Done.</summary>
    private AgentState Normalise(AgentState a)
    {
        var frames = a.Frames;
        while (!frames.IsEmpty && frames.Peek().Pc >= Scenario.Programs[frames.Peek().Program].Body.Count)
        {
            frames = frames.Pop();
        }

        return a with { Frames = frames };
    }

    private ScenarioException Bad(Statement stmt, string message) => new(Scenario.Source, stmt.Span, message);

    private Value Lookup(ControlState s, Frame frame, ValueExpr e) =>
        e.Var is null ? new NumberValue(e.Constant)
        : frame.Locals.TryGetValue(e.Var, out var v) ? v
        : s.Vars[e.Var];

    /// <summary>The number an expression denotes: a field, a kernel address, a DMA address or a number, plus its offset.</summary>
    private ulong Number(ControlState s, Frame frame, ValueExpr e, Statement stmt)
    {
        var v = Lookup(s, frame, e);
        ulong baseValue = (v, e.Field) switch
        {
            (NumberValue n, null) => n.N,
            (CoherentBuffer b, null or "cpu") => b.Cpu,
            (CoherentBuffer b, "dma") => b.Dma,
            (KernelPointer p, null) => p.Va,
            (UserPointer p, null) => p.Va,
            (PageRef p, null) => s.Dma.Kernel.Layout.PageAddress(p.Pfn)
                ?? throw Bad(stmt, $"'{e.Text}' is a highmem page: page_address() is NULL until it is mapped; use kmap_local_page({e.Var})"),
            (DmaHandle h, null) => h.Dma,
            _ => throw Bad(stmt, $"'{e.Text}': a {Describe(v)} has no field '.{e.Field}'"),
        };
        return unchecked(baseValue + (e.Var is null ? 0 : e.Constant));
    }

    /// <summary>Whether <paramref name="e"/> denotes a virtual address: a kernel pointer, a page's address, a user address, a coherent buffer's CPU side, or a number that was one.</summary>
    private bool IsVirtualAddress(ControlState s, Frame frame, ValueExpr e) =>
        e.Var is not null && Lookup(s, frame, e) switch
        {
            KernelPointer or PageRef or UserPointer => true,
            CoherentBuffer => e.Field is null or "cpu",
            NumberValue n => n.KernelVirtual,
            _ => false,
        };

    private static string Describe(Value v) => v switch
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

    private T As<T>(ControlState s, Frame frame, ValueExpr e, Statement stmt, string what)
        where T : Value
    {
        var value = Lookup(s, frame, e);
        if (e.Var is not null && e.Constant != 0)
        {
            throw Bad(stmt, $"'{e.Text}': {what}, with no offset");
        }

        if (value is NumberValue { N: 0 } && typeof(T) == typeof(PageRef))
        {
            throw new KernelBugException(stmt.Text, $"'{e.Text}' is NULL: the allocation failed and the driver did not check");
        }

        return value as T ?? throw Bad(stmt, $"'{e.Text}' is a {Describe(value)}, but {what}");
    }

    private (ControlState Next, string? Stopped, Frame? Pushed) Execute(ControlState s, Frame frame, AgentProgram program, Statement stmt, List<HwOp> ops, List<Finding> findings)
    {
        var env = Environment;
        var dma = s.Dma;
        switch (stmt)
        {
            case AllocCoherentStmt a:
                {
                    var size = Number(s, frame, a.Size, stmt);
                    if (size == 0 || size > 1UL << 30)
                    {
                        throw Bad(stmt, $"dma_alloc_coherent of {size} bytes: this model takes 1 byte to 1 GiB");
                    }

                    dma = DmaApi.DmaAllocAttrs(env, dma, a.Device, size, a.Gfp, a.Attrs, ops, out var cpu, out var handle);
                    var cookie = cpu != 0 && (a.Attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0;
                    var debug = Debugging ? DmaDebug.AllocCoherent(s.Debug, dma, a.Device, cpu, handle, size, stmt.Span.Line, findings, a.Attrs) : s.Debug;
                    return (s.With(dma: dma, vars: s.Vars.Add(a.Target, new CoherentBuffer(cpu, handle, size, cookie)), debug: debug), null, null);
                }

            case FreeCoherentStmt f:
                {
                    var size = Number(s, frame, f.Size, stmt);
                    var cpu = Number(s, frame, f.CpuAddr, stmt);
                    var handle = Number(s, frame, f.Handle, stmt);
                    var debug = s.Debug;
                    if (Debugging && cpu != 0)
                    {
                        // debug_dma_free_coherent runs before the backend.
                        debug = DmaDebug.Unmap(debug, dma, f.Device, handle, size, DebugType.Coherent, DmaDirection.DMA_BIDIRECTIONAL, cpu, "dma_free_coherent", findings);
                    }

                    dma = DmaApi.DmaFreeAttrs(env, dma, f.Device, size, cpu, handle, f.Attrs, ops, findings);
                    return (s.With(dma: dma, debug: debug), null, null);
                }

            case MmapStmt m:
                {
                    var (buf, size) = ExportedBuffer(s, frame, stmt, m.Buffer, m.Size, "dma_mmap_*");

                    dma = DmaApi.DmaMmapAttrs(env, dma, m.Device, buf.Cpu, buf.Dma, size, m.Attrs, m.Buffer.Text, ops, findings, out var va);
                    return (s.With(dma: dma, vars: s.Vars.Add(m.Target, new UserPointer(va, PlatformLayout.PageAlign(size)))), null, null);
                }

            case GetSgtableStmt g:
                {
                    var (buf, size) = ExportedBuffer(s, frame, stmt, g.Buffer, g.Size, "dma_get_sgtable");

                    var (pfn, length) = DmaApi.DmaGetSgtableAttrs(env, dma, g.Device, buf.Cpu, buf.Dma, size, g.Buffer.Text, findings);
                    return (s.With(vars: s.Vars.Add(g.Target, new SgTableValue(pfn, length))), null, null);
                }

            case DeriveStmt d:
                return (Derive(s, frame, d, ops), null, null);

            case KmallocStmt k:
                {
                    var size = Number(s, frame, k.Size, stmt);
                    if (size == 0)
                    {
                        throw Bad(stmt, "kmalloc(0) returns ZERO_SIZE_PTR, which cannot be accessed; ask for at least one byte");
                    }

                    // Above KMALLOC_MAX_SIZE (4 MiB here) or with memory exhausted, kmalloc returns NULL (va 0).
                    var kernel = Kmalloc.Alloc(dma.Kernel, size, k.Gfp, ops, out var va);
                    return (s.With(dma: dma with { Kernel = kernel }, vars: s.Vars.Add(k.Target, new KernelPointer(va, size))), null, null);
                }

            case KfreeStmt k:
                {
                    var p = As<KernelPointer>(s, frame, k.Pointer, stmt, "kfree takes a kmalloc pointer");
                    if (p.Va == 0)
                    {
                        return (s, null, null); // kfree(NULL) does nothing
                    }

                    return (s.With(dma: dma with { Kernel = Kmalloc.Free(dma.Kernel, p.Va, p.Bytes, ops, findings) }), null, null);
                }

            case AllocPagesStmt a:
                {
                    if (dma.Kernel.TryAllocPages(a.Gfp, a.Order, "alloc_pages", ops, out var pfn) is not { } kernel)
                    {
                        return (s.With(vars: s.Vars.Add(a.Target, new NumberValue(0))), null, null); // NULL
                    }

                    return (s.With(dma: dma with { Kernel = kernel }, vars: s.Vars.Add(a.Target, new PageRef(pfn, a.Order))), null, null);
                }

            case FreePagesStmt f:
                {
                    var page = As<PageRef>(s, frame, f.Page, stmt, "__free_pages takes a page from alloc_pages");
                    return (s.With(dma: dma with { Kernel = dma.Kernel.FreePages(page.Pfn, f.Order, null, "__free_pages", ops, findings) }), null, null);
                }

            case MapStmt m:
                {
                    var size = Number(s, frame, m.Size, stmt);
                    ulong handle;
                    ulong? mappedPfn = null;
                    var pageOffset = 0UL;
                    if (m.Offset is null)
                    {
                        var ptr = Number(s, frame, m.Address, stmt);
                        dma = DmaApi.DmaMapSingle(env, dma, m.Device, ptr, size, m.Direction, m.Attrs, m.Function, ops, findings, out handle);
                        if (dma.Kernel.Layout.IsLinearMapAddr(ptr))
                        {
                            (mappedPfn, pageOffset) = (dma.Kernel.Layout.VirtToPfn(ptr), ptr & (PlatformLayout.PageSize - 1));
                        }
                    }
                    else
                    {
                        var page = As<PageRef>(s, frame, m.Address, stmt, "dma_map_page takes a page from alloc_pages");
                        pageOffset = Number(s, frame, m.Offset, stmt);
                        mappedPfn = page.Pfn;
                        dma = DmaApi.DmaMapPage(env, dma, m.Device, page.Pfn, pageOffset, size, m.Direction, m.Attrs, m.Function, ops, findings, out handle);
                    }

                    if (Debugging && !DmaApi.DmaMappingErrorCheck(handle) && mappedPfn is { } pagePfn)
                    {
                        // debug_dma_map_page: check_for_stack, then check_for_illegal_area, before the entry is added.
                        DmaDebug.CheckForStack(dma, m.Device, dma.Kernel.Stacks.GetValueOrDefault(program.Name), pagePfn, pageOffset, m.Function, findings);
                        DmaDebug.CheckForIllegalArea(dma, m.Device, pagePfn, pageOffset, size, m.Function, findings);
                    }

                    // dma-debug records the buffer's physical address; the device reaches the bounce slots when bouncing.
                    var mapped = dma.Mappings.LastOrDefault(x => x.Handle == handle && x.Device == m.Device.Name);
                    var debug = Debugging
                        ? DmaDebug.Map(s.Debug, dma, m.Device, handle, mapped?.Phys ?? dma.Kernel.Layout.DmaToPhys(handle), size, m.Direction, m.Function, stmt.Span.Line, findings, mapped?.Tlb, m.Attrs)
                        : s.Debug;
                    return (s.With(dma: dma, vars: s.Vars.Add(m.Target, new DmaHandle(handle, size)), debug: debug), null, null);
                }

            case SyncStmt y:
                {
                    var handle = Number(s, frame, y.Handle, stmt);
                    var size = Number(s, frame, y.Size, stmt);
                    var debug = s.Debug;
                    switch (y.Kind)
                    {
                        case SyncKind.Unmap:
                            dma = DmaApi.DmaUnmap(env, dma, y.Device, handle, size, y.Direction, y.Attrs, y.Function, ops, findings);
                            debug = Debugging ? DmaDebug.Unmap(debug, dma, y.Device, handle, size, DebugType.Single, y.Direction, null, y.Function, findings) : debug;
                            break;
                        case SyncKind.ForCpu:
                            DmaApi.SyncForCpu(env, dma, y.Device, handle, size, y.Direction, y.Function, ops, findings);
                            debug = Debugging ? DmaDebug.Sync(debug, dma, y.Device, handle, size, y.Direction, true, y.Function, findings) : debug;
                            break;
                        default:
                            dma = DmaApi.SyncForDevice(env, dma, y.Device, handle, size, y.Direction, y.Function, ops, findings);
                            debug = Debugging ? DmaDebug.Sync(debug, dma, y.Device, handle, size, y.Direction, false, y.Function, findings) : debug;
                            break;
                    }

                    return (s.With(dma: dma, debug: debug), null, null);
                }

            case ResourceStmt r:
                {
                    var size = Number(s, frame, r.Size, stmt);
                    if (size == 0)
                    {
                        throw Bad(stmt, $"{(r.IsUnmap ? "dma_unmap_resource" : "dma_map_resource")} of 0 bytes");
                    }

                    if (r.IsUnmap)
                    {
                        // dma_unmap_resource: dma-direct has no unmap_resource, so only debug_dma_unmap_resource (check_unmap) runs.
                        var handle = Number(s, frame, r.Address, stmt);
                        var unmapped = Debugging ? DmaDebug.Unmap(s.Debug, dma, r.Device, handle, size, DebugType.Resource, r.Direction, null, "dma_unmap_resource", findings) : s.Debug;
                        return (s.With(debug: unmapped), null, null);
                    }

                    if (IsVirtualAddress(s, frame, r.Address))
                    {
                        throw new KernelBugException("dma_map_resource", $"'{r.Address.Text}' is a kernel virtual address; dma_map_resource takes a physical address (phys_addr_t)");
                    }

                    var phys = Number(s, frame, r.Address, stmt);
                    dma = DmaApi.DmaMapResource(env, dma, r.Device, phys, size, r.Direction, "dma_map_resource", findings, out var h);
                    var debug = Debugging
                        ? DmaDebug.MapResource(s.Debug, dma, r.Device, h, phys, size, r.Direction, env.Profile.Value(Switches.MapResourceRamCheck) == "debug_report", stmt.Span.Line, findings)
                        : s.Debug;
                    return (s.With(dma: dma, vars: s.Vars.Add(r.Target!, new DmaHandle(h, size)), debug: debug), null, null);
                }

            case SgAllocStmt or SgSetStmt or SgFreeStmt or SgFieldStmt or SgDmaStmt:
                return Scatter(s, frame, program, stmt, ops, findings);

            case MappingErrorStmt e:
                {
                    var handle = Number(s, frame, e.Handle, stmt);
                    var checkedState = Debugging ? s.With(debug: DmaDebug.MappingError(s.Debug, e.Device, handle)) : s;
                    return DmaApi.DmaMappingErrorCheck(handle)
                        ? (checkedState, "dma_mapping_error() returned true: the driver gives up", null)
                        : (checkedState, null, null);
                }

            case AccessStmt a:
                return (Access(s, frame, program, a, ops, findings), null, null);
            case PollStmt p:
                return (Access(s, frame, program, p.AsRead, ops, findings, p), null, null);
            case SmcStmt c:
                {
                    var fw = Scenario.Programs[c.Firmware];
                    var locals = ImmutableDictionary<string, Value>.Empty;
                    for (var i = 0; i < fw.Parameters.Count; i++)
                    {
                        locals = locals.Add(fw.Parameters[i], new NumberValue(Number(s, frame, c.Args[i], stmt), IsVirtualAddress(s, frame, c.Args[i])));
                    }

                    return (s, null, fw.Body.Count == 0 ? null : new Frame(c.Firmware, 0, locals));
                }

            case EventStmt ev:
                return (ev.IsWait ? s : s.With(signals: s.Signals.Add(ev.Event)), null, null);
            default:
                throw new InvalidOperationException(stmt.GetType().Name);
        }
    }

    /// <summary>The coherent buffer and size a dma_mmap_* or dma_get_sgtable names: a live buffer (not NULL) and 1 byte to 1 GiB.</summary>
    private (CoherentBuffer Buffer, ulong Size) ExportedBuffer(ControlState s, Frame frame, Statement stmt, ValueExpr buffer, ValueExpr sizeExpr, string function)
    {
        var buf = As<CoherentBuffer>(s, frame, buffer, stmt, $"{function} takes a buffer from dma_alloc_coherent/dma_alloc_attrs");
        var size = Number(s, frame, sizeExpr, stmt);
        if (size == 0 || size > 1UL << 30)
        {
            throw Bad(stmt, $"{function} of {size} bytes: this model takes 1 byte to 1 GiB (for an mmap, the vma and the size the driver passes are the same)");
        }

        if (buf.Cpu == 0)
        {
            throw new KernelBugException(stmt.Text, $"'{buffer.Text}' is NULL: the allocation failed and the driver did not check");
        }

        return (buf, size);
    }

    /// <summary>The sg table a statement names: a live table from sg_alloc_table.</summary>
    private SgTable Table(ControlState s, Frame frame, ValueExpr e, Statement stmt, string function)
    {
        var v = As<SgListValue>(s, frame, e, stmt, $"{function} takes a table from sg_alloc_table");
        return s.Dma.Kernel.SgTables[v.Id];
    }

    /// <summary>An entry index or count: below 2^31, and for an index inside the table.</summary>
    private int Index(ControlState s, Frame frame, ValueExpr e, Statement stmt, SgTable? table, string what)
    {
        var n = Number(s, frame, e, stmt);
        if (table is not null && n >= (ulong)table.OrigNents)
        {
            throw Bad(stmt, $"{what} {n} is past the end of the table ({table.OrigNents} entries, numbered from 0)");
        }

        return n > int.MaxValue ? throw Bad(stmt, $"{what} {n} is out of range") : (int)n;
    }

    /// <summary>The scatter-gather statements: sg tables (lib/scatterlist.c) and the dma_*_sg calls over them.</summary>
    private (ControlState Next, string? Stopped, Frame? Pushed) Scatter(ControlState s, Frame frame, AgentProgram program, Statement stmt, List<HwOp> ops, List<Finding> findings)
    {
        var env = Environment;
        var dma = s.Dma;
        switch (stmt)
        {
            case SgAllocStmt a:
                {
                    var n = Index(s, frame, a.Nents, stmt, null, "sg_alloc_table of");
                    if (n == 0)
                    {
                        throw Bad(stmt, "sg_alloc_table(0) returns -EINVAL: a table has at least one entry");
                    }

                    if (Scatterlist.SgAllocTable(dma.Kernel, n, a.Gfp, ops, out var table) is not { } k)
                    {
                        return (s, "sg_alloc_table returned -ENOMEM (kmalloc of the scatterlist failed): the driver gives up", null);
                    }

                    return (s.With(dma: dma with { Kernel = k }, vars: s.Vars.Add(a.Target, new SgListValue(table!.Id))), null, null);
                }

            case SgSetStmt g:
                {
                    var table = Table(s, frame, g.Table, stmt, g.Function);
                    if (table.Freed)
                    {
                        throw new KernelBugException(g.Function, "the sg table was freed by sg_free_table (use after free)");
                    }

                    var i = Index(s, frame, g.Index, stmt, table, "entry");
                    var length = Number(s, frame, g.Length, stmt);
                    if (length == 0 || length > uint.MaxValue)
                    {
                        throw Bad(stmt, $"sg->length is an unsigned int of at least 1 byte, not {length}");
                    }

                    KernelState k;
                    if (g.Offset is null)
                    {
                        k = Scatterlist.SgSetBuf(dma.Kernel, table, i, Number(s, frame, g.Address, stmt), length, ops);
                    }
                    else
                    {
                        var page = As<PageRef>(s, frame, g.Address, stmt, "sg_set_page takes a page from alloc_pages");
                        k = Scatterlist.SgSetPage(dma.Kernel, table, i, page.Pfn, length, Number(s, frame, g.Offset, stmt), "sg_set_page", ops);
                    }

                    return (s.With(dma: dma with { Kernel = k }), null, null);
                }

            case SgFreeStmt f:
                {
                    var table = Table(s, frame, f.Table, stmt, "sg_free_table");
                    if (table.Freed)
                    {
                        throw new KernelBugException("sg_free_table", "the sg table is freed twice: kfree of its scatterlist again (double free)");
                    }

                    return (s.With(dma: dma with { Kernel = Scatterlist.SgFreeTable(dma.Kernel, table, ops, findings) }), null, null);
                }

            case SgFieldStmt g:
                {
                    var table = Table(s, frame, g.Table, stmt, g.Function);
                    if (table.Freed)
                    {
                        throw new KernelBugException(g.Function, "the sg table was freed by sg_free_table: reading its entry reads freed memory (use after free)");
                    }

                    var e = table.Entries[Index(s, frame, g.Index, stmt, table, "entry")];
                    Value v = g.Function == "sg_dma_address" ? new DmaHandle(e.DmaAddress, e.DmaLength) : new NumberValue(e.DmaLength);
                    return (s.With(vars: s.Vars.Add(g.Target, v)), null, null);
                }

            case SgDmaStmt m:
                {
                    var table = Table(s, frame, m.Table, stmt, m.Function);
                    var nents = m.Nents is null ? table.OrigNents : Index(s, frame, m.Nents, stmt, null, "nents");
                    if (nents == 0)
                    {
                        throw Bad(stmt, $"{m.Function} of 0 entries: there is nothing to map (the kernel WARNs and fails)");
                    }

                    // for_each_sg over a freed table or past its end marker: before dma-debug walks it too.
                    DmaApi.CheckSgList(table, nents, m.Function);
                    var debug = s.Debug;
                    switch (m.Kind)
                    {
                        case SgDmaKind.Map:
                            {
                                dma = DmaApi.DmaMapSg(env, dma, m.Device, table, nents, m.Direction, m.Attrs, m.Function, ops, findings, out var mapped);
                                if (mapped == 0)
                                {
                                    var error = m.Nents is null ? "an error (-EIO since v5.16, -EINVAL before)" : "0";
                                    return (s.With(dma: dma), $"{m.Function} returned {error}: the driver gives up", null);
                                }

                                var mappedTable = dma.Kernel.SgTables[table.Id];
                                if (m.Nents is null)
                                {
                                    dma = dma with { Kernel = Scatterlist.SetNents(dma.Kernel, mappedTable, mapped) };
                                }

                                debug = Debugging ? DmaDebug.MapSg(debug, dma, m.Device, mappedTable, nents, mapped, m.Direction, m.Attrs, Scenario.KernelConfig.DebugSg, m.Function, stmt.Span.Line, findings, dma.Kernel.Stacks.GetValueOrDefault(program.Name)) : debug;
                                var vars = m.Target is null ? s.Vars : s.Vars.Add(m.Target, new NumberValue(m.Nents is null ? 0UL : (ulong)mapped));
                                return (s.With(dma: dma, vars: vars, debug: debug), null, null);
                            }

                        case SgDmaKind.Unmap:
                            // dma_unmap_sg_attrs: debug_dma_unmap_sg runs before the backend.
                            debug = Debugging ? DmaDebug.UnmapSg(debug, dma, m.Device, table, nents, m.Direction, m.Function, findings) : debug;
                            dma = DmaApi.DmaUnmapSg(env, dma, m.Device, table, nents, m.Direction, m.Attrs, m.Function, ops, findings);
                            break;
                        case SgDmaKind.ForCpu:
                            DmaApi.SyncSgForCpu(env, dma, m.Device, table, nents, m.Direction, m.Function, ops, findings);
                            debug = Debugging ? DmaDebug.SyncSg(debug, dma, m.Device, table, nents, m.Direction, true, m.Function, findings) : debug;
                            break;
                        default:
                            dma = DmaApi.SyncSgForDevice(env, dma, m.Device, table, nents, m.Direction, m.Function, ops, findings);
                            debug = Debugging ? DmaDebug.SyncSg(debug, dma, m.Device, table, nents, m.Direction, false, m.Function, findings) : debug;
                            break;
                    }

                    return (s.With(dma: dma, debug: debug), null, null);
                }

            default:
                throw new InvalidOperationException(stmt.GetType().Name);
        }
    }

    /// <summary><c>sg_page(sgt)</c>, <c>sg_phys(sgt)</c>, <c>kmap_local_page(pg)</c>.</summary>
    private ControlState Derive(ControlState s, Frame frame, DeriveStmt d, List<HwOp> ops)
    {
        var layout = s.Dma.Kernel.Layout;
        switch (d.Function)
        {
            case "sg_page":
                {
                    var sgt = As<SgTableValue>(s, frame, d.Source, d, "sg_page takes an sg table from dma_get_sgtable");
                    return s.With(vars: s.Vars.Add(d.Target, new PageRef(sgt.Pfn, PlatformLayout.GetOrder(sgt.Length))));
                }

            case "stack_buffer":
                {
                    var size = Number(s, frame, d.Source, d);
                    if (size == 0)
                    {
                        throw Bad(d, "stack_buffer(0): a buffer of at least one byte");
                    }

                    var k = Stacks.Buffer(s.Dma.Kernel, Scenario.Programs[frame.Program].Name, size, ops, out var va);
                    return s.With(dma: s.Dma with { Kernel = k }, vars: s.Vars.Add(d.Target, new KernelPointer(va, size)));
                }

            case "static_const":
                {
                    // A `static const` object of the kernel image (its .rodata): it exists from boot, so its address is
                    // fixed; each static_const statement of the scenario has its own 64 KiB slot, in file order.
                    var size = Number(s, frame, d.Source, d);
                    if (size == 0 || size > StaticConstSlot)
                    {
                        throw Bad(d, $"static_const({size}): an object of 1 to {StaticConstSlot} bytes");
                    }

                    if (layout.KernelImageSections is not { } sections)
                    {
                        throw new NotModelledException($"static_const on {layout.Arch}: the kernel image is mapped outside the linear map there (KIMAGE_VADDR, __START_KERNEL_map), so its objects, virt_to_page of them and their maintenance are not modelled (and check_for_illegal_area, which compares page_address() with the image's addresses, cannot fire)");
                    }

                    var slot = (ulong)StaticConstIndex(d);
                    var va = sections.Rodata.Start + (slot * StaticConstSlot);
                    if (va + size > sections.Rodata.End)
                    {
                        throw Bad(d, $"more static_const objects than the model's .rodata holds ({(sections.Rodata.End - sections.Rodata.Start) / StaticConstSlot})");
                    }

                    return s.With(vars: s.Vars.Add(d.Target, new KernelPointer(va, size)));
                }

            case "vmalloc_to_page":
                {
                    var va = Number(s, frame, d.Source, d);
                    var pfn = layout.IsVmallocAddr(va) ? s.Dma.Kernel.VmallocToPfn(va) : null;
                    return pfn is { } p
                        ? s.With(vars: s.Vars.Add(d.Target, new PageRef(p, 0)))
                        : throw new KernelBugException("vmalloc_to_page", $"0x{va:x} is not a mapped vmalloc address: vmalloc_to_page returns NULL, which the driver then uses");
                }

            case "offset_in_page":
                return s.With(vars: s.Vars.Add(d.Target, new NumberValue(Number(s, frame, d.Source, d) & (PlatformLayout.PageSize - 1))));

            case "virt_to_phys":
                {
                    // virt_to_phys: linear-map arithmetic, meaningful only for a linear-map address.
                    var va = Number(s, frame, d.Source, d);
                    if (!layout.IsLinearMapAddr(va))
                    {
                        throw new KernelBugException("virt_to_phys", $"0x{va:x} is not a linear-map address: virt_to_phys() gives a bogus physical address (CONFIG_DEBUG_VIRTUAL warns)");
                    }

                    return s.With(vars: s.Vars.Add(d.Target, new NumberValue(layout.VirtToPhys(va))));
                }

            case "sg_phys":
                {
                    // sg_phys(sg) = page_to_phys(sg_page(sg)) + sg->offset: arithmetic on whatever page the table holds.
                    var sgt = As<SgTableValue>(s, frame, d.Source, d, "sg_phys takes an sg table from dma_get_sgtable");
                    return s.With(vars: s.Vars.Add(d.Target, new NumberValue(unchecked(sgt.Pfn << PlatformLayout.PageShift))));
                }

            default:
                {
                    // kmap_local_page(page): page_address() for lowmem (and for any page on arm64, where it is
                    // arithmetic); a temporary pkmap mapping for a highmem page on arm32, which reads the page's
                    // flags first (PageHighMem) and so needs the struct page to exist.
                    var page = As<PageRef>(s, frame, d.Source, d, "kmap_local_page takes a page (from alloc_pages or sg_page)");
                    var k = s.Dma.Kernel;
                    if (layout.Arch == Arch.Arm32 && !layout.StructPageExists(page.Pfn))
                    {
                        throw new FatalFindingException(new Finding(FindingKinds.BogusStructPage, "kmap_local_page", page.Pfn, k.OwnerOf(page.Pfn), Severity.Fault,
                            $"kmap_local_page reads the flags of {layout.DescribePage(page.Pfn)}, beyond mem_map: the kernel oopses", Fatal: true));
                    }

                    ulong va;
                    if (layout.PageAddress(page.Pfn) is { } lowmem)
                    {
                        va = lowmem;
                    }
                    else
                    {
                        k = k.KmapHighmem(page.Pfn, ops, out va);
                    }

                    var bytes = layout.Arch == Arch.Arm32 && !layout.IsLowmemPfn(page.Pfn) ? PlatformLayout.PageSize : PlatformLayout.PageSize << page.Order;
                    return s.With(dma: s.Dma with { Kernel = k }, vars: s.Vars.Add(d.Target, new KernelPointer(va, bytes)));
                }
        }
    }

    /// <summary>The room each static_const object gets in the model's .rodata.</summary>
    private const ulong StaticConstSlot = 64 * 1024;

    /// <summary>Which static_const statement of the scenario <paramref name="d"/> is, counting programs and statements in file order.</summary>
    private int StaticConstIndex(DeriveStmt d)
    {
        var index = 0;
        foreach (var stmt in Scenario.Programs.SelectMany(p => p.Body))
        {
            if (ReferenceEquals(stmt, d))
            {
                return index;
            }

            index += stmt is DeriveStmt { Function: "static_const" } ? 1 : 0;
        }

        throw new InvalidOperationException("a static_const statement outside the scenario's programs");
    }

    private ControlState Access(ControlState s, Frame frame, AgentProgram program, AccessStmt a, List<HwOp> ops, List<Finding> findings, PollStmt? poll = null)
    {
        // An access through a variable that knows its size (a buffer, a pointer, a page, a handle) must stay inside it.
        var value = a.Address.Var is null ? null : Lookup(s, frame, a.Address);
        if (value is CoherentBuffer { Cookie: true } && a.Address.Field is not "dma")
        {
            throw Bad(a, $"'{a.Address.Text}' is a DMA_ATTR_NO_KERNEL_MAPPING cookie (a struct page pointer), not a kernel address: dereferencing it corrupts struct pages");
        }

        if (program.Kind == AgentKind.User && value is not UserPointer)
        {
            throw Bad(a, $"user process '{program.Name}' reaches memory only through its own mappings: '{a.Address.Text}' is a {(value is null ? "number" : Describe(value))}");
        }
        if (value is CoherentBuffer && a.Address.Field is null && a.Space != AddressSpace.Virtual)
        {
            throw Bad(a, $"'{a.Address.Text}' is a coherent buffer: its DMA address is '{a.Address.Var}.dma'");
        }

        if (a.Address.Var is { } name && value!.Size is { } size && (a.Address.Constant > size || a.High > size - a.Address.Constant))
        {
            var at = a.Address.Constant == 0 ? string.Empty : $" at offset {a.Address.Constant}";
            throw Bad(a, $"the access [{a.Low}..{a.High}){at} runs past the end of '{name}' ({size} bytes)");
        }

        var address = Number(s, frame, a.Address, a);
        var length = a.High - a.Low;
        if (a.Space != AddressSpace.Virtual && address == DmaApi.DmaMappingError)
        {
            throw new KernelBugException(program.Name, $"'{a.Address.Text}' is DMA_MAPPING_ERROR: the mapping failed and the driver did not check dma_mapping_error()");
        }

        // Whether an address is virtual is known from where it came from, not from its value: on 32-bit arm with a bus
        // offset, DMA addresses and PAGE_OFFSET overlap.
        if (a.Space != AddressSpace.Virtual && a.Address.Var is not null && IsVirtualAddress(s, frame, a.Address))
        {
            var space = a.Space == AddressSpace.Physical ? "physical" : "DMA";
            throw new KernelBugException(program.Name, $"'{a.Address.Text}' is 0x{address:x}, a kernel virtual address used as a {space} address: the driver passed the wrong address (use a DMA handle or buf.dma)");
        }

        if (a.Low > ulong.MaxValue - address || length > ulong.MaxValue - (address + a.Low))
        {
            throw Bad(a, $"the access [{a.Low}..{a.High}) at 0x{address:x} wraps past the end of the address space");
        }

        var start = address + a.Low;
        var origin = $"{program.Name}: {a.Text}";
        ulong pa;
        Alias? via = null;
        MemoryType type;
        switch (a.Space)
        {
            case AddressSpace.Virtual:
                if (a.IsWrite && s.Dma.Kernel.Layout.KernelImageSectionAt(start, length) is { } section)
                {
                    throw new KernelBugException(program.Name, $"{program.Name} stores to the kernel's {section} at 0x{start:x}: with CONFIG_STRICT_KERNEL_RWX (on by default for ARMv7) those pages are mapped read-only, and the store faults");
                }

                (pa, via) = s.Mmu.Translate(start, length);
                type = via.Type;
                break;
            case AddressSpace.Physical:
                pa = start;
                type = program.Access;
                break;
            default:
                pa = s.Dma.Kernel.Layout.DmaToPhys(start);
                type = program.Access;
                break;
        }

        var kernel = s.Dma.Kernel;
        var layout = kernel.Layout;
        var verb = a.IsWrite ? "writes" : "reads";
        if (!layout.IsRam(pa, length))
        {
            var pfn = pa >> PlatformLayout.PageShift;
            throw new FatalFindingException(new Finding(FindingKinds.AccessOutsideRam, program.Name, pfn, kernel.OwnerOf(pfn), Severity.Fault,
                $"{program.Name} {verb} PA 0x{pa:x}..0x{pa + length:x}{(via is null ? string.Empty : $" through {via.Name}")}, outside the RAM Linux manages: nothing the model knows answers there, so the access faults (an address-size fault or external abort; the process is killed) or reaches whatever sits there (a firmware carve-out, MMIO). dmacheck stops {program.Name} here",
                Fatal: true));
        }

        if (a.Space == AddressSpace.Virtual && value is KernelPointer or PageRef && kernel.OwnerOf(pa >> PlatformLayout.PageShift) is { Kind: OwnerKind.Free } freed)
        {
            var pfn = pa >> PlatformLayout.PageShift;
            findings.Add(new Finding(FindingKinds.UseAfterFree, program.Name, pfn, freed, a.IsWrite ? Severity.Corruption : Severity.InformationLeak,
                $"{program.Name} {verb} pfn 0x{pfn:x} through '{a.Address.Text}' after it was freed: the page belongs to {freed.Describe()}"));
        }

        if (Debugging)
        {
            if (program.Kind is AgentKind.Cpu or AgentKind.User)
            {
                DmaDebug.CpuAccess(s.Debug, s.Dma, program.Name, pa, length, a.IsWrite, findings);
                if (Scenario.KernelConfig.DebugAssertIdle)
                {
                    DmaDebug.AssertIdle(s.Debug, s.Dma, program.Name, pa, length, findings);
                }
            }
            else if (program.Kind == AgentKind.Device)
            {
                DmaDebug.DeviceAccess(s.Debug, s.Dma, program.Device!, program.Name, pa, length, a.IsWrite, findings);
            }
        }

        if (via is not null && kernel.UserMappingAt(start) is { IntendedOwner: { } intended })
        {
            var pfn = pa >> PlatformLayout.PageShift;
            var now = s.Dma.OwnerOf(pfn);
            if (now != intended)
            {
                findings.Add(new Finding(FindingKinds.UseAfterFree, program.Name, pfn, now, a.IsWrite ? Severity.Corruption : Severity.InformationLeak,
                    $"{program.Name} {verb} pfn 0x{pfn:x} through {via.Name}, made for {intended.Describe()}, but the page now belongs to {now.Describe()}: the mapping outlived the buffer (use after free)"));
            }
        }

        if (!a.IsWrite && s.Observed.ContainsKey(a.Var))
        {
            throw Bad(a, $"'{Scenario.ObservedVars[a.Var]}' is read a second time on this run ({program.Name} runs this read again): each read needs its own variable");
        }

        if (poll is not null)
        {
            // What the agent does next depends on the bytes read: the explorer splits the run (PollOp.Branches).
            ops.Add(new PollOp(origin, pa, length, program.Master, type, poll.Writer, poll.Max is not null, via));
            return s;
        }

        var op = a.IsWrite ? LineOp.Write(program.Master, type, a.Writer) : LineOp.Read(program.Master, type, a.Var);
        ops.Add(new MemoryOp(origin, pa, length, op, via));
        if (a.IsWrite && program.Kind == AgentKind.Device)
        {
            s = s.With(dma: DmaApi.DeviceWrote(s.Dma, pa, length));
        }

        return a.IsWrite ? s : s.With(observed: s.Observed.SetItem(a.Var, new ObservedRange(pa, length)));
    }
}
