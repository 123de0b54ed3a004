using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// A control state in packed form: the interned id of each agent's state and of the shared state, and the state's
/// fingerprint, which is the sum of one slot hash per part (<see cref="ControlState.Fingerprint"/>). The explorer's
/// hot path works on these; a <see cref="ControlState"/> is built from one only when something needs it
/// (docs/internals-state.md).
/// </summary>
internal readonly struct PackedControl(int[] agents, int shared, UInt128 fingerprint)
{
    /// <summary>Each agent's state, by its id in <see cref="PackedStates"/>; null in the default value (no packed state).</summary>
    public int[] Agents { get; } = agents;

    /// <summary>The shared state's id in <see cref="PackedStates"/>.</summary>
    public int Shared { get; } = shared;

    /// <summary>Equal to <see cref="ControlState.Fingerprint"/> of the state this packs.</summary>
    public UInt128 Fingerprint { get; } = fingerprint;
}

/// <summary>
/// What one agent's step does to a packed state, learnt once from <see cref="IScenarioModel.Step"/> and then reused
/// by every state with the same agent state, shared state and "every other agent finished" (the step's inputs, by
/// the model's contract). <see cref="Step"/> says what ran, its operations and findings; its
/// <see cref="StepResult.Next"/> is the state of whichever parent the step was first learnt from, and is never used
/// for another.
/// </summary>
internal sealed class PackedStep(StepResult step, int agent, int nextAgent, int nextShared, UInt128 delta, int missAgent, int missShared, UInt128 missDelta)
{
    public StepResult Step { get; } = step;

    /// <summary>Whether <see cref="Step"/> reported findings (read at every transition, so kept).</summary>
    public bool HasFindings { get; } = step.Findings.Count > 0;

    public int Agent { get; } = agent;

    /// <summary>The agent's state after the step (for a poll: after its read hits).</summary>
    public int NextAgent { get; } = nextAgent;

    public int NextShared { get; } = nextShared;

    /// <summary>What the step adds to the fingerprint (a difference of slot hashes, modulo 2^128).</summary>
    public UInt128 Delta { get; } = delta;

    /// <summary>For a poll: the agent's state, the shared state and the fingerprint's change when its read misses.</summary>
    public int MissAgent { get; } = missAgent;

    public int MissShared { get; } = missShared;

    public UInt128 MissDelta { get; } = missDelta;

    /// <summary>What the step does to the lines, compiled by the explorer the first time it applies it.</summary>
    public LinePlan? Plan { get; set; }

    /// <summary>The step's number in its <see cref="PackedStates"/> (<see cref="PackedStates.StepAt"/>), so that the frontier can name it without a reference.</summary>
    public int Id { get; set; } = -1;
}

/// <summary>
/// The interned parts of the packed states of one search, and the steps learnt over them. Agent and shared states
/// are interned by fingerprint to dense ids; a step is learnt per (agent, agent state, shared state, whether every
/// other agent has finished) and then costs one table lookup: the child's fingerprint is its parent's plus the step's
/// delta, computed before any child is built, and only children the visited set has not seen are built at all.
/// Thread safe: the expansions of one level may run in parallel.
/// </summary>
internal sealed class PackedStates
{
    private readonly IScenarioModel model;
    private readonly Interned<AgentState> agentStates = new(a => a.Done ? 1 : 0);
    private readonly Interned<SharedState> sharedStates = new(_ => 0);
    private readonly LearntSteps steps = new();

    public PackedStates(IScenarioModel model)
    {
        this.model = model;
        var initial = model.Initial;
        var agents = new int[initial.Agents.Length];
        for (var i = 0; i < agents.Length; i++)
        {
            agents[i] = InternAgent(initial.Agents[i]);
        }

        Initial = new PackedControl(agents, sharedStates.Intern(initial.Shared), initial.Fingerprint);
    }

    public PackedControl Initial { get; }

    /// <summary>Learnt step number <paramref name="id"/> (<see cref="PackedStep.Id"/>).</summary>
    public PackedStep StepAt(int id) => steps.At(id);

    /// <summary>The shared state of <paramref name="s"/>.</summary>
    public SharedState Shared(PackedControl s) => sharedStates[s.Shared];

    /// <summary>Shared state number <paramref name="id"/>.</summary>
    public SharedState SharedAt(int id) => sharedStates[id];

    /// <summary>The control state <paramref name="s"/> packs, built.</summary>
    public ControlState Materialise(PackedControl s) => Materialise(s.Agents, s.Shared, s.Fingerprint);

    /// <summary>The control state of agent states <paramref name="agents"/> and shared state <paramref name="shared"/>, whose fingerprint is <paramref name="fingerprint"/>, built.</summary>
    public ControlState Materialise(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint)
    {
        var built = ImmutableArray.CreateBuilder<AgentState>(agents.Length);
        foreach (var id in agents)
        {
            built.Add(agentStates[id]);
        }

        return new ControlState(sharedStates[shared], built.MoveToImmutable(), fingerprint);
    }

    /// <summary>
    /// <see cref="Step(PackedControl, int, ControlState?)"/> for the state of agent states <paramref name="agents"/>
    /// and shared state <paramref name="shared"/> (fingerprint <paramref name="fingerprint"/>), as the packed frontier
    /// keeps it: a lookup, and a packed state is built only to learn a step not seen before.
    /// </summary>
    public PackedStep? Step(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint, int agent) => Step(agents, shared, fingerprint, agent, NotDone(agents));

    /// <summary>
    /// The learnt step of every agent from the state of agent states <paramref name="agents"/> and shared state
    /// <paramref name="shared"/> (fingerprint <paramref name="fingerprint"/>), by number, -1 where the agent is not
    /// enabled. When <paramref name="parent"/> holds the steps of a state that differs only in agent
    /// <paramref name="changed"/>'s state, with the same shared state and that agent as finished or not as before, the
    /// other agents' steps are the parent's (a step's key is its agent's state, the shared state and whether every
    /// other agent has finished), and only the changed agent's is looked up.
    /// </summary>
    public void StepsOf(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint, Span<int> into, ReadOnlySpan<int> parent = default, int changed = -1)
    {
        var notDone = NotDone(agents);
        if (!parent.IsEmpty)
        {
            parent.CopyTo(into);
            into[changed] = IdOf(agents, shared, fingerprint, changed, notDone);
            return;
        }

        for (var agent = 0; agent < agents.Length; agent++)
        {
            into[agent] = IdOf(agents, shared, fingerprint, agent, notDone);
        }
    }

    /// <summary>A step's number for <see cref="StepsOf"/>: -1 when not enabled, <see cref="Unlearnt"/> when learning it threw.</summary>
    private int IdOf(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint, int agent, int notDone)
    {
        try
        {
            return Step(agents, shared, fingerprint, agent, notDone)?.Id ?? -1;
        }
        catch (Exception)
        {
            return Unlearnt; // the expansion learns it again, and meets the error in the order one thread would
        }
    }

    /// <summary>In <see cref="StepsOf"/>: a step whose learning threw, to be learnt again by the node's expansion.</summary>
    public const int Unlearnt = -2;

    /// <summary>Whether agent state <paramref name="id"/> has finished.</summary>
    public bool IsDone(int id) => agentStates.Tags[id] != 0;

    /// <summary>How many of <paramref name="agents"/> have not finished, for <see cref="Step(ReadOnlySpan{int}, int, UInt128, int, int)"/>.</summary>
    public int NotDone(ReadOnlySpan<int> agents)
    {
        var count = 0;
        var done = agentStates.Tags;
        foreach (var id in agents)
        {
            count += 1 - done[id];
        }

        return count;
    }

    /// <summary>
    /// <see cref="Step(ReadOnlySpan{int}, int, UInt128, int)"/> when <paramref name="notDone"/> of the agents have not
    /// finished (<see cref="NotDone"/>, counted once per state rather than once per agent).
    /// </summary>
    public PackedStep? Step(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint, int agent, int notDone)
    {
        var id = agents[agent];
        var key = new StepKey(agent, id, shared, notDone - (1 - agentStates.Tags[id]) == 0);
        if (steps.TryGet(key, out var known))
        {
            return known;
        }

        var s = new PackedControl(agents.ToArray(), shared, fingerprint);
        return steps.Add(key, Learn(s, agent, Materialise(s)));
    }

    /// <summary>
    /// <paramref name="agent"/>'s step from <paramref name="s"/>, or null when the agent is not enabled there.
    /// <paramref name="ctrl"/>: the state <paramref name="s"/> packs, when it is built already.
    /// </summary>
    public PackedStep? Step(PackedControl s, int agent, ControlState? ctrl)
    {
        var key = new StepKey(agent, s.Agents[agent], s.Shared, OthersDone(s, agent));
        if (steps.TryGet(key, out var known))
        {
            return known;
        }

        return steps.Add(key, Learn(s, agent, ctrl ?? Materialise(s)));
    }

    /// <summary>The child of <paramref name="s"/> by <paramref name="step"/> (its miss, for a poll that missed).</summary>
    public PackedControl Child(PackedControl s, PackedStep step, bool miss)
    {
        var agents = new int[s.Agents.Length];
        s.Agents.AsSpan().CopyTo(agents);
        agents[step.Agent] = miss ? step.MissAgent : step.NextAgent;
        return new PackedControl(agents, miss ? step.MissShared : step.NextShared, s.Fingerprint + (miss ? step.MissDelta : step.Delta));
    }

    private bool OthersDone(PackedControl s, int agent) => OthersDone(s.Agents, agent);

    private bool OthersDone(ReadOnlySpan<int> agents, int agent)
    {
        for (var j = 0; j < agents.Length; j++)
        {
            if (j != agent && agentStates.Tags[agents[j]] == 0)
            {
                return false;
            }
        }

        return true;
    }

    private PackedStep? Learn(PackedControl s, int agent, ControlState ctrl)
    {
        if (!model.Enabled(ctrl).Contains(agent))
        {
            return null;
        }

        var step = model.Step(ctrl, agent);
        var (nextAgent, nextShared, delta) = Packed(s, ctrl, agent, step.Next);
        var (missAgent, missShared, missDelta) = step.Missed is { } missed ? Packed(s, ctrl, agent, missed.Next) : (-1, -1, UInt128.Zero);
        return new PackedStep(step, agent, nextAgent, nextShared, delta, missAgent, missShared, missDelta);
    }

    /// <summary>The ids of <paramref name="next"/>'s changed parts, and the fingerprint's change; refuses a step that changed another agent (the model's contract).</summary>
    private (int Agent, int Shared, UInt128 Delta) Packed(PackedControl s, ControlState before, int agent, ControlState next)
    {
        for (var j = 0; j < next.Agents.Length; j++)
        {
            if (j != agent && !ReferenceEquals(next.Agents[j], before.Agents[j]))
            {
                throw new InvalidOperationException($"agent {agent}'s step changed agent {j}'s state: the model breaks the contract of {nameof(IScenarioModel)}.{nameof(IScenarioModel.Step)}");
            }
        }

        var oldAgent = agentStates.FingerprintOf(s.Agents[agent]);
        var newAgent = InternAgent(next.Agents[agent]);
        var delta = ControlState.SlotHash(agent, agentStates.FingerprintOf(newAgent)) - ControlState.SlotHash(agent, oldAgent);
        var shared = s.Shared;
        if (!ReferenceEquals(next.Shared, sharedStates[s.Shared]))
        {
            shared = sharedStates.Intern(next.Shared);
            delta += ControlState.SlotHash(ControlState.SharedSlot, sharedStates.FingerprintOf(shared))
                - ControlState.SlotHash(ControlState.SharedSlot, sharedStates.FingerprintOf(s.Shared));
        }

        return (newAgent, shared, delta);
    }

    private int InternAgent(AgentState a) => agentStates.Intern(a);

    private readonly record struct StepKey(int Agent, int AgentState, int Shared, bool OthersDone)
    {
        /// <summary>The agent and its state, as one number.</summary>
        public ulong High => (ulong)(uint)AgentState << 32 | (uint)Agent << 1 | (OthersDone ? 1UL : 0);

        /// <summary>The shared state, as one number, never 0 (the table's empty slot).</summary>
        public uint Low => (uint)Shared + 1;

        public ulong Hash => HashOf(High, Low);

        public static ulong HashOf(ulong high, uint low)
        {
            var x = high * 0x9E3779B97F4A7C15UL ^ low;
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9UL;
            return x ^ (x >> 29);
        }
    }

    /// <summary>
    /// The learnt steps, by key: an open-addressing table of plain numbers that the expansions read without a lock,
    /// written under a lock. A slot's key is written last, so a reader that sees it sees the step's number too; a grown
    /// table is published whole. A step is learnt a few thousand times in a search and looked up at every transition.
    /// </summary>
    private sealed class LearntSteps
    {
        private Slot[] slots = new Slot[256];
        private PackedStep?[] learnt = new PackedStep?[64];
        private int count;

        public PackedStep At(int id) => Volatile.Read(ref learnt)[id]!;

        public bool TryGet(StepKey key, out PackedStep? step)
        {
            var table = Volatile.Read(ref slots);
            var mask = table.Length - 1;
            var high = key.High;
            var low = key.Low;
            for (var i = (int)(key.Hash & (ulong)mask); ; i = (i + 1) & mask)
            {
                ref var slot = ref table[i];
                var l = Volatile.Read(ref slot.Low);
                if (l == 0)
                {
                    step = null;
                    return false;
                }

                if (l == low && slot.High == high)
                {
                    step = Volatile.Read(ref learnt)[slot.Step];
                    return true;
                }
            }
        }

        /// <summary>Adds the step learnt for <paramref name="key"/>, and returns the one the table holds (another thread's, when it learnt the same step meanwhile).</summary>
        public PackedStep? Add(StepKey key, PackedStep? step)
        {
            lock (this)
            {
                if (TryGet(key, out var known))
                {
                    return known; // learnt meanwhile by another thread: the same step
                }

                if (count == learnt.Length)
                {
                    var more = new PackedStep?[learnt.Length * 2];
                    learnt.CopyTo(more, 0);
                    Volatile.Write(ref learnt, more);
                }

                learnt[count] = step;
                if (step is not null)
                {
                    step.Id = count;
                }

                if ((count + 1) * 2 > slots.Length)
                {
                    var bigger = new Slot[slots.Length * 2];
                    foreach (var s in slots)
                    {
                        if (s.Low != 0)
                        {
                            Insert(bigger, s.High, s.Low, s.Step);
                        }
                    }

                    Volatile.Write(ref slots, bigger);
                }

                Insert(slots, key.High, key.Low, count);
                count++;
                return step;
            }
        }

        private static void Insert(Slot[] table, ulong high, uint low, int step)
        {
            var mask = table.Length - 1;
            var i = (int)(StepKey.HashOf(high, low) & (ulong)mask);
            while (table[i].Low != 0)
            {
                i = (i + 1) & mask;
            }

            table[i].High = high;
            table[i].Step = step;
            Volatile.Write(ref table[i].Low, low);
        }

        private struct Slot
        {
            public ulong High;
            public int Step;
            public uint Low;
        }
    }

    /// <summary>
    /// Objects interned by their fingerprint (<see cref="StateHasher"/>) to dense ids. Reads take no lock: an id is
    /// published only after its entry is written, and a grown array keeps every entry of the one it replaced.
    /// </summary>
    private sealed class Interned<T>(Func<T, int> tag)
        where T : class
    {
        private readonly Dictionary<UInt128, int> ids = [];
        private (T Value, UInt128 Fingerprint)[] values = new (T, UInt128)[64];
        private int[] tags = new int[64];

        public T this[int id] => Volatile.Read(ref values)[id].Value;

        /// <summary>Each value's tag, by id (read without a lock, as the values are).</summary>
        public int[] Tags => Volatile.Read(ref tags);

        public UInt128 FingerprintOf(int id) => Volatile.Read(ref values)[id].Fingerprint;

        public int Intern(T value)
        {
            var fingerprint = StateHasher.Of(value);
            lock (ids)
            {
                if (ids.TryGetValue(fingerprint, out var id))
                {
                    return id;
                }

                id = ids.Count;
                if (id == values.Length)
                {
                    var bigger = new (T, UInt128)[values.Length * 2];
                    values.CopyTo(bigger, 0);
                    var biggerTags = new int[values.Length * 2];
                    tags.CopyTo(biggerTags, 0);
                    Volatile.Write(ref values, bigger);
                    Volatile.Write(ref tags, biggerTags);
                }

                values[id] = (value, fingerprint);
                tags[id] = tag(value);
                ids.Add(fingerprint, id);
                return id;
            }
        }
    }
}
