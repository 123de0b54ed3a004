using System.Collections.Immutable;
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
/// The part of a control state that no one agent owns: the DMA and kernel state, what dma-debug tracks, the
/// variables, the raised events, where observations came from, and whether the kernel crashed. One immutable object,
/// so that a step which leaves all of it alone shares it, and the explorer's packed state holds it as one interned
/// id (docs/internals-state.md).
/// </summary>
public sealed class SharedState(DmaState dma, DebugState debug, ImmutableSortedDictionary<string, Value> vars,
    ImmutableSortedSet<string> signals, ImmutableSortedDictionary<int, ObservedRange> observed, KernelCrash? crash, NotModelledStop? notModelled = null)
{
    public DmaState Dma { get; } = dma;

    /// <summary>What the DMA-API debug layer tracks.</summary>
    public DebugState Debug { get; } = debug;

    public ImmutableSortedDictionary<string, Value> Vars { get; } = vars;

    public ImmutableSortedSet<string> Signals { get; } = signals;

    public ImmutableSortedDictionary<int, ObservedRange> Observed { get; } = observed;

    /// <summary>The kernel crashed on this run; null on a run that has not crashed.</summary>
    public KernelCrash? Crash { get; } = crash;

    /// <summary>This run reached behaviour the model does not have; null on a run that has not.</summary>
    public NotModelledStop? NotModelled { get; } = notModelled;
}

/// <summary>
/// Everything but the caches and RAM: the <see cref="SharedState"/> and each agent's position. Immutable. Its
/// identity is its <see cref="Fingerprint"/>, derived from the types of its two parts.
/// </summary>
public sealed class ControlState : IEquatable<ControlState>
{
    /// <summary>The slot of the shared state in <see cref="SlotHash"/> (agents are slots 0, 1, ...).</summary>
    public const int SharedSlot = -1;

    [NotState]
    private System.Runtime.CompilerServices.StrongBox<UInt128>? fingerprint;

    public ControlState(DmaState dma, ImmutableArray<AgentState> agents, ImmutableSortedDictionary<string, Value> vars,
        ImmutableSortedSet<string> signals, ImmutableSortedDictionary<int, ObservedRange> observed, DebugState? debug = null)
        : this(new SharedState(dma, debug ?? DebugState.Empty, vars, signals, observed, null), agents)
    {
    }

    public ControlState(SharedState shared, ImmutableArray<AgentState> agents)
    {
        Shared = shared;
        Agents = agents;
    }

    /// <summary>A state whose fingerprint its builder already knows (the explorer's packed state computes a child's before building it).</summary>
    internal ControlState(SharedState shared, ImmutableArray<AgentState> agents, UInt128 knownFingerprint)
        : this(shared, agents) => fingerprint = new(knownFingerprint);

    /// <summary>What no one agent owns.</summary>
    public SharedState Shared { get; }

    public ImmutableArray<AgentState> Agents { get; }

    public DmaState Dma => Shared.Dma;

    /// <summary>What the DMA-API debug layer tracks.</summary>
    public DebugState Debug => Shared.Debug;

    public ImmutableSortedDictionary<string, Value> Vars => Shared.Vars;

    public ImmutableSortedSet<string> Signals => Shared.Signals;

    public ImmutableSortedDictionary<int, ObservedRange> Observed => Shared.Observed;

    public Mmu Mmu => Dma.Kernel.Mmu;

    /// <summary>
    /// The kernel crashed on this run (a BUG, an oops, corruption it would not survive): nothing runs after it, and the
    /// state is final. Null on a run that has not crashed.
    /// </summary>
    public KernelCrash? Crash => Shared.Crash;

    /// <summary>
    /// The run reached behaviour the model does not have: nothing runs after it, the state is final, and the whole
    /// result is inconclusive. Null on a run that has not.
    /// </summary>
    public NotModelledStop? NotModelled => Shared.NotModelled;

    public ControlState With(DmaState? dma = null, ImmutableArray<AgentState>? agents = null, ImmutableSortedDictionary<string, Value>? vars = null,
        ImmutableSortedSet<string>? signals = null, ImmutableSortedDictionary<int, ObservedRange>? observed = null, DebugState? debug = null) =>
        new(dma is null && vars is null && signals is null && observed is null && debug is null
                ? Shared
                : new SharedState(dma ?? Dma, debug ?? Debug, vars ?? Vars, signals ?? Signals, observed ?? Observed, Crash, NotModelled),
            agents ?? Agents);

    /// <summary>This state with the kernel crashed by <paramref name="crash"/>.</summary>
    public ControlState Crashed(KernelCrash crash) => new(new SharedState(Dma, Debug, Vars, Signals, Observed, crash, NotModelled), Agents);

    /// <summary>This state stopped at behaviour the model does not have.</summary>
    public ControlState Unmodelled(NotModelledStop stop) => new(new SharedState(Dma, Debug, Vars, Signals, Observed, Crash, stop), Agents);

    /// <summary>
    /// The state's 128-bit fingerprint: the sum of one <see cref="SlotHash"/> per part, the shared state's and each
    /// agent's, each part's fingerprint derived from its types (<see cref="StateHasher"/>). A sum, so that a step that
    /// changes one agent (and perhaps the shared state) changes one or two terms, and the explorer computes a child's
    /// fingerprint before it builds the child (docs/internals-state.md). Equal states have equal fingerprints, and
    /// states with equal fingerprints are taken to be equal (hash compaction).
    /// </summary>
    public UInt128 Fingerprint
    {
        get
        {
            var box = Volatile.Read(ref fingerprint);
            if (box is null)
            {
                var sum = SlotHash(SharedSlot, StateHasher.Of(Shared));
                for (var i = 0; i < Agents.Length; i++)
                {
                    sum += SlotHash(i, StateHasher.Of(Agents[i]));
                }

                box = new System.Runtime.CompilerServices.StrongBox<UInt128>(sum);
                Volatile.Write(ref fingerprint, box);
            }

            return box.Value;
        }
    }

    /// <summary>
    /// The term a part with fingerprint <paramref name="partFingerprint"/> adds to a control state's fingerprint in
    /// slot <paramref name="slot"/> (<see cref="SharedSlot"/>, or an agent's number): XxHash128 of both, so that the
    /// same part in two slots (two agents swapping states) gives two unrelated terms.
    /// </summary>
    public static UInt128 SlotHash(int slot, UInt128 partFingerprint)
    {
        Span<byte> bytes = stackalloc byte[20];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes, slot);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(bytes[4..], partFingerprint);
        return System.IO.Hashing.XxHash128.HashToUInt128(bytes);
    }

    public bool Equals(ControlState? other) => other is not null && (ReferenceEquals(this, other) || Fingerprint == other.Fingerprint);

    public override bool Equals(object? obj) => Equals(obj as ControlState);

    public override int GetHashCode() => (int)(ulong)Fingerprint;
}

/// <summary>
/// A kernel crash: the statement of which agent made the kernel BUG, oops or corrupt memory beyond recovery, and the
/// kernel's complaint. A run that crashes ends there (issue 14: an oops reachable on some runs is a terminal state
/// with a verdict of its own, not the end of the search).
/// </summary>
/// <param name="Agent">The agent whose statement crashed the kernel.</param>
/// <param name="Span">Where that statement is in the scenario.</param>
/// <param name="Message">What the kernel would do, in its own words where it has them.</param>
public sealed record KernelCrash(int Agent, SourceSpan Span, string Message)
{
    /// <summary>The crash's verdict line in reports: the statement's position.</summary>
    public string Name => $"kernel-bug@{Span.Line}:{Span.Column}";
}

/// <summary>
/// Where a run reached behaviour the model does not have (a <c>not modelled:</c> stop): the statement of which agent,
/// and what is missing. The run ends there, and a result with such a run is inconclusive (issue 14, item 3).
/// </summary>
public sealed record NotModelledStop(int Agent, SourceSpan Span, string Message);

/// <summary>How a step ended.</summary>
public enum StepOutcomeKind
{
    /// <summary>The statement ran; its agent goes on.</summary>
    Ok,

    /// <summary>The statement reported a finding (the agent may still go on).</summary>
    Finding,

    /// <summary>The agent stopped here: a fatal finding (the process faulted) or a poll that gave up.</summary>
    Stopped,

    /// <summary>The kernel crashed: the run ends here (<see cref="ControlState.Crash"/>).</summary>
    KernelBug,

    /// <summary>The statement needs behaviour the model does not have: the run ends here, and the result is inconclusive (<see cref="ControlState.NotModelled"/>).</summary>
    NotModelled,
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

    /// <summary>How the step ended.</summary>
    public StepOutcomeKind Outcome =>
        Next.NotModelled is not null ? StepOutcomeKind.NotModelled
        : Next.Crash is not null ? StepOutcomeKind.KernelBug
        : Next.Agents[Agent].Stopped is not null ? StepOutcomeKind.Stopped
        : Findings.Count > 0 ? StepOutcomeKind.Finding
        : StepOutcomeKind.Ok;

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

    /// <summary>Behaviour this version does not model: the result is inconclusive (a step meeting it ends its run, <see cref="StepOutcomeKind.NotModelled"/>; replay reports it as an error of this kind).</summary>
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
/// event not yet signalled, is not enabled. The strategies see it through <see cref="IScenarioModel"/>.
/// </summary>
public sealed class ScenarioModel : IScenarioModel
{
    public ScenarioModel(Scenario scenario)
    {
        Scenario = scenario;
        Environment = new DmaEnvironment(scenario.Profile);
        FrontEnd = new DmaMapping<DebugState>(Environment, scenario.KernelConfig.DmaApiDebug
            ? new DmaDebugHooks(Environment, scenario.KernelConfig)
            : NoDmaDebugHooks<DebugState>.Instance);
        var kernel = KernelState.Boot(scenario.Profile.Layout, scenario.KernelConfig, scenario.Hardware, scenario.Tenants, scenario.Placed);
        var agents = scenario.Agents
            .Select(p => new AgentState(ImmutableStack.Create(new Frame(p, 0, ImmutableDictionary<string, Value>.Empty)), null))
            .Select(a => Normalise(a))
            .ToImmutableArray();
        // A placed buffer is a kernel pointer from the start: its linear-map address.
        var vars = ImmutableSortedDictionary<string, Value>.Empty.WithComparers(StringComparer.Ordinal)
            .AddRange(scenario.Placed.Select(b => KeyValuePair.Create(b.Name, (Value)new KernelPointer(kernel.Layout.PhysToVirt(b.Pa), b.Size))));
        Initial = new ControlState(DmaState.Boot(kernel), agents, vars,
            ImmutableSortedSet<string>.Empty.WithComparer(StringComparer.Ordinal), scenario.InitialObserved());
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

    /// <summary>The agents that can take a step now, in agent order (none once the kernel crashed or the run reached what is not modelled).</summary>
    public IEnumerable<int> Enabled(ControlState s)
    {
        if (s.Crash is not null || s.NotModelled is not null)
        {
            yield break;
        }

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

            var unfetched = next; // a fetch's miss goes on from here
            var fetched = stmt is FetchStmt f && ops.OfType<PollOp>().Any() ? Fetched(s, frame, program, f) : null;
            if (stmt is FetchStmt && fetched is null && ops.OfType<PollOp>().Any())
            {
                // The writer's address names a variable not assigned yet, so no byte can be that writer's: the hit is
                // impossible, and an explorer never takes it (it filters the read's lines).
                next = next.Unmodelled(new NotModelledStop(agent, stmt.Span, $"internal: '{stmt.Text}' took bytes no store can have made yet"));
                stopped = "a fetch hit a stored address before its variable was assigned";
            }

            var frames = s.Agents[agent].Frames.Pop().Push(stmt is FetchStmt hit && fetched is { } address
                ? frame with { Pc = hit.Continue, Retries = 0, Locals = frame.Locals.SetItem(hit.Target, new NumberValue(address)) }
                : frame with { Pc = frame.Pc + 1, Retries = 0 });
            if (pushed is not null)
            {
                frames = frames.Push(pushed);
            }

            var state = Normalise(new AgentState(stopped is null ? frames : [], stopped));
            var after = next.With(agents: next.Agents.SetItem(agent, state));
            var accessFindings = stmt is PollStmt ? findings.ToList() : null;
            Unbind(after, findings);
            var result = new StepResult(after, agent, program, stmt, ops, findings);
            if (stmt is FetchStmt fetch && ops.OfType<PollOp>().Any())
            {
                // The bytes are not this writer's address: the next test of the chain reads; after the last, the chain
                // starts again (the bytes may have changed between two tests), and after its last round the device
                // holds bytes the model cannot read as an address.
                var rounds = frame.Retries + (fetch.Last ? 1 : 0);
                var missAfter = rounds >= FetchStmt.Rounds
                    ? unfetched.With(agents: unfetched.Agents.SetItem(agent, new AgentState([], NotAnAddress(fetch))))
                        .Unmodelled(new NotModelledStop(agent, stmt.Span, NotAnAddress(fetch)))
                    : unfetched.With(agents: unfetched.Agents.SetItem(agent, Normalise(new AgentState(
                        s.Agents[agent].Frames.Pop().Push(frame with { Pc = fetch.Last ? fetch.First : frame.Pc + 1, Retries = rounds }), null))));
                Unbind(missAfter, accessFindings!);
                result = result with { Missed = new StepResult(missAfter, agent, program, stmt, ops, accessFindings!) };
            }
            else if (stmt is PollStmt poll && ops.OfType<PollOp>().Any())
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
            return Crash(s, agent, program, stmt, ops, findings, $"the kernel would BUG or corrupt memory: {e.Message}");
        }
        catch (TranslationFaultException e)
        {
            return Crash(s, agent, program, stmt, ops, findings, $"the kernel would oops: {e.Message}");
        }
        catch (NotModelledException e)
        {
            // The model lacks what this statement needs: the run ends here, and the result will be inconclusive.
            var stopped = new AgentState([], e.Message);
            var after = s.With(agents: s.Agents.SetItem(agent, stopped)).Unmodelled(new NotModelledStop(agent, stmt.Span, e.Message));
            return new StepResult(after, agent, program, stmt, ops, findings);
        }
    }

    /// <summary>The DMA address a fetch's test takes on a hit: its writer's stored expression, now (its variables are assigned once), or 0 for <c>zero</c>; null while the expression's variable is not assigned.</summary>
    private ulong? Fetched(ControlState s, Frame frame, AgentProgram program, FetchStmt fetch) =>
        !Scenario.Pointers.TryGetValue(fetch.Writer, out var stored) ? 0
        : stored.Var is { } v && !s.Vars.ContainsKey(v) ? null
        : new StepContext(this, s, frame, program, fetch, [], []).Number(stored);

    private string NotAnAddress(FetchStmt fetch) =>
        $"'{fetch.Text[..fetch.Text.LastIndexOf(" (holds", StringComparison.Ordinal)]}' (line {fetch.Span.Line}) reads bytes that are no DMA address the scenario stored "
        + "(memory never written, another writer's data, or parts of two addresses): the device would use them as an address, which the model cannot follow";

    /// <summary>
    /// The step on which the kernel crashes: the agent stops with the kernel's complaint, the operations done before the
    /// crash stand, and the state is final (<see cref="ControlState.Crash"/>): no agent runs after a kernel crash.
    /// </summary>
    private StepResult Crash(ControlState s, int agent, AgentProgram program, Statement stmt, List<HwOp> ops, List<Finding> findings, string message)
    {
        var stopped = new AgentState([], message);
        var after = s.With(agents: s.Agents.SetItem(agent, stopped)).Crashed(new KernelCrash(agent, stmt.Span, message));
        return new StepResult(after, agent, program, stmt, ops, findings);
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
