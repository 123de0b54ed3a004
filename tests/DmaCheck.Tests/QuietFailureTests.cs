using System.Text.Json;
using DmaCheck.Cli;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 17, item 3: "fails with 0 events" is either every schedule of a quiet machine or only some (a software race).
/// The bundled pair shows one of each; both explorers must say the same; the table, explain and JSON tell them apart.
/// </summary>
public class QuietFailureTests
{
    private static string Race => Path.Combine(TestPaths.Scenarios, "streaming", "to-device-race-device-reads-early.dmc");

    private static string Every => Path.Combine(TestPaths.Scenarios, "streaming", "to-device-write-after-map-unsynced.dmc");

    private static (int Code, string Out) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var code = Program.Run(args, stdout, new StringWriter(), colour: false);
        return (code, stdout.ToString());
    }

    [Theory]
    [InlineData("to-device-race-device-reads-early.dmc", false)]
    [InlineData("to-device-write-after-map-unsynced.dmc", true)]
    public void BothExplorersTellEverySchedulesFromSome(string file, bool every)
    {
        var scenario = Binder.Load(file, File.ReadAllText(Path.Combine(TestPaths.Scenarios, "streaming", file)));
        var lineSet = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default).Verdicts.Single();
        var unreduced = new LineSetExplorer { Reduction = false }.Explore(new ScenarioModel(scenario), ExplorationLimits.Default).Verdicts.Single();
        var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default).Verdicts.Single();
        foreach (var v in new[] { lineSet, unreduced, brute })
        {
            Assert.Equal((Verdict.Sometimes, (int?)0, (bool?)every), (v.Verdict, v.MinEventsToFail, v.FailsOnEveryQuietRun));
        }
    }

    [Fact]
    public void TheTableSaysWhichAndADeclarationOfTheOtherDiffers()
    {
        var (code, stdout) = Run("check", Race);
        Assert.Equal(0, code);
        Assert.Contains("0 (some schedules)", stdout, StringComparison.Ordinal);
        Assert.Contains("0 (every schedule)", Run("check", Every).Out, StringComparison.Ordinal);

        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var swapped = Path.Combine(dir, "swapped.dmc");
        File.WriteAllText(swapped, File.ReadAllText(Race).Replace("min-events 0, some-schedules", "min-events 0, every-schedule", StringComparison.Ordinal));
        var (differs, text) = Run("check", swapped);
        Assert.Equal(1, differs);
        Assert.Contains("DIFFERS", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ExplainNoLongerSaysEveryTimeForARace()
    {
        var race = Run("explain", Race).Out;
        Assert.DoesNotContain("every time", race, StringComparison.Ordinal);
        Assert.Contains("on some schedules, not all: a software race", race, StringComparison.Ordinal);
        Assert.Contains("0 spontaneous hardware events on every schedule", Run("explain", Every).Out, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonNamesIt()
    {
        string Quiet(string path)
        {
            using var doc = JsonDocument.Parse(Run("check", path, "--format", "json").Out);
            return doc.RootElement.GetProperty("scenarios")[0].GetProperty("expectations")[0].GetProperty("quietFailure").GetString()!;
        }

        Assert.Equal("some-schedules", Quiet(Race));
        Assert.Equal("every-schedule", Quiet(Every));
    }
}
