using DmaCheck.Hardware;

namespace DmaCheck.Scenarios;

/// <summary>
/// The transition system an exploration strategy walks, after Stateright's <c>Model</c>: the initial state, the agents
/// that may step in a state, what one agent's step does, and what a final state says. <see cref="ScenarioModel"/> is
/// the implementation; the strategies (src/DmaCheck/Exploration/Strategies/) need no more than this.
/// </summary>
public interface IScenarioModel
{
    /// <summary>The bound scenario the model runs (its expectations are what a strategy judges final states by).</summary>
    Scenario Scenario { get; }

    /// <summary>The machine under the kernel: line size, caches, memory.</summary>
    HardwareConfig Hardware { get; }

    /// <summary>Every agent at its first statement, the kernel just booted.</summary>
    ControlState Initial { get; }

    /// <summary>The agents that can take a step in <paramref name="s"/>, in agent order; none in a final state.</summary>
    IEnumerable<int> Enabled(ControlState s);

    /// <summary>Executes the next statement of <paramref name="agent"/>, which must be enabled.</summary>
    /// <remarks>
    /// The contract the explorers' packed states rely on (docs/internals-state.md): whether an agent is enabled, and
    /// what its step does, depend only on that agent's state, <paramref name="s"/>'s <see cref="ControlState.Shared"/>
    /// state and whether every other agent has finished; and a step changes only its agent and the shared state.
    /// </remarks>
    StepResult Step(ControlState s, int agent);

    /// <summary>The statement <paramref name="agent"/> runs next, and the program it is in.</summary>
    (AgentProgram Program, Statement Statement) Current(ControlState s, int agent);

    /// <summary>Whether every agent ran to its end.</summary>
    bool IsFinished(ControlState s);

    /// <summary>The agents hung at a poll in the final state <paramref name="s"/>, each with what it hung at.</summary>
    IEnumerable<(int Agent, string Why)> Hung(ControlState s);

    /// <summary>Whether some agent hung in the final state <paramref name="s"/>.</summary>
    bool IsHung(ControlState s);
}
