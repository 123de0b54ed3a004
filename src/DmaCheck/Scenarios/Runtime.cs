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
        FrontEnd = new DmaMapping<DebugState>(Environment, scenario.KernelConfig.DmaApiDebug
            ? new DmaDebugHooks(Environment, scenario.KernelConfig)
            : NoDmaDebugHooks<DebugState>.Instance);
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

    /// <summary>The DMA API front end (mapping.c) with dma-debug's hooks, or its empty stubs when <c>dma_api_debug</c> is off.</summary>
    public DmaMapping<DebugState> FrontEnd { get; }

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

        return CallCatalogue.SemanticsOf(stmt).Inputs(stmt).All(e => e.Var is null || frame.Locals.ContainsKey(e.Var) || s.Vars.ContainsKey(e.Var));
    }

    /// <summary>The footprint of <paramref name="stmt"/>'s step: what its catalogue entry says it may read and write.</summary>
    public static Footprint FootprintOf(Statement stmt) => CallCatalogue.FootprintOf(stmt);

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
                (next, stopped, pushed) = CallCatalogue.SemanticsOf(stmt).Execute(new StepContext(this, s, frame, program, stmt, ops, findings), stmt);
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
}
