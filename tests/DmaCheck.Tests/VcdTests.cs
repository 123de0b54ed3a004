using System.Diagnostics;
using System.Globalization;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>The VCD waveform of a witness survives a round trip through GTKWave's vcd2fst and fst2vcd with every value intact.</summary>
public class VcdTests
{
    private static (string Vcd, Witness Witness) Case3()
    {
        var file = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case3-v6.3-init-on-alloc.dmc");
        var outcome = Checker.CheckFile(file, ExplorationLimits.Default, "case3.dmc");
        var v = outcome.Result!.Verdicts[0];
        var witness = WitnessBuilder.Build(outcome.Model!, v.Expectation, outcome.Explorer!.Failures[v.Expectation.Name]);
        return (VcdReport.Render(witness, outcome.Scenario!, "test"), witness);
    }

    /// <summary>The value of every signal (by scoped name) at every timestamp.</summary>
    internal static SortedDictionary<long, Dictionary<string, long>> Timeline(string vcd)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var scope = new List<string>();
        var current = new Dictionary<string, long>(StringComparer.Ordinal);
        var timeline = new SortedDictionary<long, Dictionary<string, long>>();
        long? time = null;
        foreach (var raw in vcd.Split('\n'))
        {
            var line = raw.Trim();
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
            {
                continue;
            }

            switch (words[0])
            {
                case "$scope":
                    scope.Add(words[2]);
                    continue;
                case "$upscope":
                    scope.RemoveAt(scope.Count - 1);
                    continue;
                case "$var":
                    names[words[3]] = string.Join('.', scope.Append(words[4]));
                    continue;
            }

            if (line.StartsWith('#'))
            {
                if (time is { } t)
                {
                    timeline[t] = new Dictionary<string, long>(current);
                }

                time = long.Parse(line[1..], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith('b') && words.Length == 2 && names.TryGetValue(words[1], out var name))
            {
                current[name] = Convert.ToInt64(words[0][1..], 2);
            }
        }

        if (time is { } last)
        {
            timeline[last] = new Dictionary<string, long>(current);
        }

        return timeline;
    }

    [Fact]
    public void TheWaveformFollowsTheWitness()
    {
        var (vcd, witness) = Case3();
        var timeline = Timeline(vcd);
        var end = timeline.Last().Value;
        Assert.Equal(1, end["witness.line_81000000.cache"]); // Clean
        Assert.Equal(1, end["witness.line_81000000.cached_writer"]); // zero
        Assert.Equal(2, end["witness.line_81000000.ram_writer"]); // payload
        Assert.Equal(witness.Events, end["witness.spontaneous_events"]);
        Assert.Contains(timeline.Values, v => v["witness.agents.driver_stmt_line"] == 13);
    }

    [SkippableFact]
    public void RoundTripsThroughGtkWave()
    {
        string? Tool(string name) => Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
        var vcd2fst = Tool("vcd2fst");
        var fst2vcd = Tool("fst2vcd");
        Requires.Tool(vcd2fst, "vcd2fst (Debian package gtkwave)");
        Requires.Tool(fst2vcd, "fst2vcd (Debian package gtkwave)");

        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var (vcd, _) = Case3();
        var input = Path.Combine(dir, "w.vcd");
        var fst = Path.Combine(dir, "w.fst");
        File.WriteAllText(input, vcd);
        Run(vcd2fst, $"\"{input}\" \"{fst}\"");
        var back = Run(fst2vcd, $"\"{fst}\"");
        var original = Timeline(vcd);
        var roundTrip = Timeline(back);
        foreach (var (t, values) in original)
        {
            var other = roundTrip.Where(p => p.Key <= t).Last().Value;
            foreach (var (name, value) in values)
            {
                Assert.True(other.TryGetValue(name, out var v) && v == value, $"at #{t}, {name} is {value} before and {(other.TryGetValue(name, out var w) ? w : -1)} after the round trip");
            }
        }
    }

    private static string Run(string tool, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{tool} {args} failed: {error}");
        return output;
    }
}
