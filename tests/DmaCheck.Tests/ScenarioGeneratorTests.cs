using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Tests;

public sealed class ScenarioGeneratorTests
{
    private const int Samples = 60;
    private const int Size = 50;

    [Fact]
    public void GeneratorIsDeterministicForASeedAndItsScenariosBind()
    {
        foreach (var options in new[] { ScenarioGeneratorOptions.BruteForce, ScenarioGeneratorOptions.Full })
        {
            var gen = ScenarioGenerator.Scenario(options);
            var first = gen.Sample(Samples, new Rnd(20240611UL), Size).Select(s => s.Text).ToList();
            var second = gen.Sample(Samples, new Rnd(20240611UL), Size).Select(s => s.Text).ToList();
            Assert.Equal(first, second);
            Assert.True(first.Distinct().Count() > Samples / 2, "the generator should vary its scenarios");
            foreach (var text in first)
            {
                var scenario = LoadOrExplain(text);
                Assert.NotEmpty(scenario.Expectations);
                Assert.NotEmpty(scenario.ObservedVars);
            }
        }
    }

    [Fact]
    public void BruteForceFeasibleScenariosTouchFewLines()
    {
        var options = ScenarioGeneratorOptions.BruteForce;
        foreach (var generated in ScenarioGenerator.Scenario(options).Sample(Samples, new Rnd(7UL), Size))
        {
            var lines = TouchedLines(new ScenarioModel(LoadOrExplain(generated.Text)));
            Assert.True(lines <= options.MaxBufferBytes / 64, $"{lines} lines touched by:\n{generated.Text}");
        }
    }

    [Fact]
    public void FullScenariosExploreWithoutRunErrors()
    {
        foreach (var generated in ScenarioGenerator.Full().Sample(Samples, new Rnd(11UL), Size))
        {
            var model = new ScenarioModel(LoadOrExplain(generated.Text));
            ExplorationResult result;
            try
            {
                result = new LineSetExplorer().Explore(model, ExplorationLimits.Default);
            }
            catch (RunException e)
            {
                throw new InvalidOperationException($"{e.Kind} at {e.Location}: {e.Message}\n{generated.Text}", e);
            }

            Assert.True(result.Inconclusive is null, $"{result.Inconclusive}\n{generated.Text}");
        }
    }

    private static Scenario LoadOrExplain(string text)
    {
        try
        {
            return Binder.Load("gen.dmc", text);
        }
        catch (ScenarioException e)
        {
            throw new InvalidOperationException($"the generator made a scenario the binder rejects: {e.Message}\n{text}", e);
        }
    }

    /// <summary>The lines any interleaving touches: what the brute-force explorer keeps a state for.</summary>
    private static int TouchedLines(ScenarioModel model)
    {
        var lines = new HashSet<ulong>();
        var seen = new HashSet<ControlState> { model.Initial };
        var work = new Stack<ControlState>([model.Initial]);
        while (work.TryPop(out var state))
        {
            foreach (var agent in model.Enabled(state))
            {
                var step = model.Step(state, agent);
                foreach (var op in step.Ops.OfType<MemoryOp>())
                {
                    lines.UnionWith(op.Lines(model.Hardware.LineSize).Select(l => l.LinePa));
                }

                if (seen.Add(step.Next))
                {
                    work.Push(step.Next);
                }
            }
        }

        return lines.Count;
    }
}
