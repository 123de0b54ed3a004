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
    private readonly Interned<AgentState> agentStates = new();
    private readonly Interned<SharedState> sharedStates = new();
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

    /// <summary>How many of <paramref name="agents"/> have not finished, for <see cref="Step(ReadOnlySpan{int}, int, UInt128, int, int)"/>.</summary>
    public int NotDone(ReadOnlySpan<int> agents)
    {
        var count = 0;
        foreach (var id in agents)
        {
            count += agentStates[id].Done ? 0 : 1;
        }

        return count;
    }

    /// <summary>
    /// <see cref="Step(ReadOnlySpan{int}, int, UInt128, int)"/> when <paramref name="notDone"/> of the agents have not
    /// finished (<see cref="NotDone"/>, counted once per state rather than once per agent).
    /// </summary>
    public PackedStep? Step(ReadOnlySpan<int> agents, int shared, UInt128 fingerprint, int agent, int notDone)
    {
        var key = new StepKey(agent, agents[agent], shared, notDone - (agentStates[agents[agent]].Done ? 0 : 1) == 0);
        if (steps.TryGet(key, out var known))
        {
            return known;
        }

        var s = new PackedControl(agents.ToArray(), shared, fingerprint);
        var learnt = Learn(s, agent, Materialise(s));
        steps.Add(key, learnt);
        return learnt;
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

        var learnt = Learn(s, agent, ctrl ?? Materialise(s));
        steps.Add(key, learnt);
        return learnt;
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
            if (j != agent && !agentStates[agents[j]].Done)
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
        /// <summary>The key as one number, never 0 (the table's empty slot).</summary>
        public ulong Packed => ((ulong)(uint)AgentState << 32 | (uint)Shared) * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)Agent << 1 | (OthersDone ? 1UL : 0)) ^ 1UL << 63;
    }

    /// <summary>
    /// The learnt steps, by key: an open-addressing table the expansions read without a lock (an entry is one object,
    /// published whole), written under a lock. A step is learnt a few thousand times in a search and looked up at every
    /// transition.
    /// </summary>
    private sealed class LearntSteps
    {
        private Entry?[] slots = new Entry?[256];
        private int count;

        public bool TryGet(StepKey key, out PackedStep? step)
        {
            var table = Volatile.Read(ref slots);
            var mask = table.Length - 1;
            for (var i = (int)(Mix(key.Packed) & (ulong)mask); ; i = (i + 1) & mask)
            {
                if (Volatile.Read(ref table[i]) is not { } e)
                {
                    step = null;
                    return false;
                }

                if (e.Key == key)
                {
                    step = e.Step;
                    return true;
                }
            }
        }

        public void Add(StepKey key, PackedStep? step)
        {
            lock (this)
            {
                if (TryGet(key, out _))
                {
                    return; // learnt meanwhile by another thread: the same step
                }

                if ((count + 1) * 4 > slots.Length * 3)
                {
                    var bigger = new Entry?[slots.Length * 2];
                    foreach (var e in slots)
                    {
                        if (e is not null)
                        {
                            Insert(bigger, e);
                        }
                    }

                    Volatile.Write(ref slots, bigger);
                }

                Insert(slots, new Entry(key, step));
                count++;
            }
        }

        private static void Insert(Entry?[] table, Entry e)
        {
            var mask = table.Length - 1;
            var i = (int)(Mix(e.Key.Packed) & (ulong)mask);
            while (table[i] is not null)
            {
                i = (i + 1) & mask;
            }

            Volatile.Write(ref table[i], e);
        }

        private static ulong Mix(ulong x)
        {
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9UL;
            return x ^ (x >> 29);
        }

        private sealed record Entry(StepKey Key, PackedStep? Step);
    }

    /// <summary>
    /// Objects interned by their fingerprint (<see cref="StateHasher"/>) to dense ids. Reads take no lock: an id is
    /// published only after its entry is written, and a grown array keeps every entry of the one it replaced.
    /// </summary>
    private sealed class Interned<T>
        where T : class
    {
        private readonly Dictionary<UInt128, int> ids = [];
        private (T Value, UInt128 Fingerprint)[] values = new (T, UInt128)[64];

        public T this[int id] => Volatile.Read(ref values)[id].Value;

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
                    Volatile.Write(ref values, bigger);
                }

                values[id] = (value, fingerprint);
                ids.Add(fingerprint, id);
                return id;
            }
        }
    }
}
