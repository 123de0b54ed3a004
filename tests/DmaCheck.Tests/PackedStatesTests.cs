using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Tests;

/// <summary>
/// The packed states of the unreduced search (docs/internals-state.md, "Packed states"): a step is learnt once per
/// agent state, shared state and "every other agent finished", and reused in every state that has them. That is
/// sound only if a step depends on nothing else (the contract of <see cref="IScenarioModel.Step"/>). These tests walk
/// the packed states of every bundled scenario and of generated ones, and check in each that every learnt step gives
/// the child the model's own step gives from that very state, fingerprint included.
/// </summary>
public class PackedStatesTests
{
    public static TheoryData<string> BundledScenarios() => ScenarioSuiteTests.BundledScenarios();

    [Theory]
    [MemberData(nameof(BundledScenarios))]
    public void ALearntStepIsTheModelsStepInEveryStateOfABundledScenario(string relativePath)
    {
        var path = Path.Combine(TestPaths.Root, relativePath);
        var (steps, wrong) = Check(new ScenarioModel(Binder.Load(path, File.ReadAllText(path))), 2000);
        Assert.True(steps > 0, $"{relativePath}: no step ran");
        Assert.True(wrong.Count == 0, string.Join("\n", wrong.Take(5)));
    }

    [Fact]
    public void ALearntStepIsTheModelsStepInEveryStateOfAGeneratedScenario()
    {
        var wrong = new List<string>();
        var steps = 0;
        foreach (var generated in ScenarioGenerator.Full().Sample(60, new Rnd(20261206UL), 50))
        {
            var (n, w) = Check(new ScenarioModel(Binder.Load("generated.dmc", generated.Text)), 500);
            steps += n;
            wrong.AddRange(w.Select(x => $"{x}\n--- in ---\n{generated.Text}"));
        }

        Assert.True(steps > 500, $"only {steps} steps ran");
        Assert.True(wrong.Count == 0, string.Join("\n", wrong.Take(3)));
    }

    /// <summary>The check can fail: a model whose step reads another agent's state breaks the contract, and is caught.</summary>
    [Fact]
    public void AStepThatChangesAnotherAgentIsRefused()
    {
        var model = new ScenarioModel(Binder.Load("t.dmc", "profile linux-6.4-arm64\ncpu a {\n  b = kmalloc(64, GFP_KERNEL)\n}\ncpu c {\n  d = kmalloc(64, GFP_KERNEL)\n}\n"));
        var packed = new PackedStates(new OtherAgentModel(model));
        Assert.Throws<InvalidOperationException>(() => packed.Step(packed.Initial, 0, null));
    }

    private static (int Steps, List<string> Wrong) Check(ScenarioModel model, int maxStates)
    {
        var packed = new PackedStates(model);
        var wrong = new List<string>();
        var seen = new HashSet<UInt128> { packed.Initial.Fingerprint };
        var queue = new Queue<PackedControl>([packed.Initial]);
        var steps = 0;
        while (queue.Count > 0 && seen.Count < maxStates)
        {
            var s = queue.Dequeue();
            var ctrl = packed.Materialise(s);
            if (ctrl.Fingerprint != new ControlState(ctrl.Shared, ctrl.Agents).Fingerprint)
            {
                wrong.Add("a packed state's fingerprint is not the one its control state has");
            }

            var enabled = model.Enabled(ctrl).ToHashSet();
            for (var agent = 0; agent < ctrl.Agents.Length; agent++)
            {
                PackedStep? step;
                try
                {
                    step = packed.Step(s, agent, null);
                }
                catch (RunException)
                {
                    continue; // the statement fails in this state; the explorers report it as such
                }

                if ((step is not null) != enabled.Contains(agent))
                {
                    wrong.Add($"agent {agent}: enabled is {enabled.Contains(agent)}, the learnt step says {step is not null}");
                    continue;
                }

                if (step is null)
                {
                    continue;
                }

                steps++;
                var direct = model.Step(ctrl, agent);
                var outcomes = new List<(bool Miss, ControlState Next)> { (false, direct.Next) };
                if (direct.Missed is { } missed)
                {
                    outcomes.Add((true, missed.Next));
                }

                if (direct.Statement != step.Step.Statement || direct.Ops.Count != step.Step.Ops.Count
                    || !direct.Findings.Select(f => f.Message).SequenceEqual(step.Step.Findings.Select(f => f.Message)))
                {
                    wrong.Add($"agent {agent} at '{direct.Statement.Text}': the learnt step ran another statement, or made other operations or findings");
                }

                foreach (var (miss, next) in outcomes)
                {
                    var child = packed.Child(s, step, miss);
                    if (child.Fingerprint != next.Fingerprint)
                    {
                        wrong.Add($"agent {agent} at '{direct.Statement.Text}'{(miss ? " (missed)" : "")}: the learnt step's child differs from the model's");
                    }
                    else if (seen.Add(child.Fingerprint))
                    {
                        queue.Enqueue(child);
                    }
                }
            }
        }

        return (steps, wrong);
    }

    /// <summary>A model that breaks the contract: agent 0's step also moves agent 1.</summary>
    private sealed class OtherAgentModel(ScenarioModel inner) : IScenarioModel
    {
        public Scenario Scenario => inner.Scenario;

        public DmaCheck.Hardware.HardwareConfig Hardware => inner.Hardware;

        public ControlState Initial => inner.Initial;

        public IEnumerable<int> Enabled(ControlState s) => inner.Enabled(s);

        public StepResult Step(ControlState s, int agent)
        {
            var step = inner.Step(s, agent);
            var other = inner.Step(s, 1 - agent).Next.Agents[1 - agent];
            return step with { Next = step.Next.With(agents: step.Next.Agents.SetItem(1 - agent, other)) };
        }

        public (AgentProgram Program, Statement Statement) Current(ControlState s, int agent) => inner.Current(s, agent);

        public bool IsFinished(ControlState s) => inner.IsFinished(s);

        public IEnumerable<(int Agent, string Why)> Hung(ControlState s) => inner.Hung(s);

        public bool IsHung(ControlState s) => inner.IsHung(s);
    }
}
