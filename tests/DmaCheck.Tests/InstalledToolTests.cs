using System.Diagnostics;

namespace DmaCheck.Tests;

/// <summary>
/// The installed tool (issue 17, item 6): run as a process from a fresh directory, with the bundled scenarios beside
/// the program as the package lays them out, paths such as <c>scenarios/seeds/...</c> resolve to the bundled copies and
/// print by their short names; a replay file finds its scenario relative to itself.
/// </summary>
public class InstalledToolTests
{
    private static string FreshDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Runs the CLI as a process in <paramref name="cwd"/>, as a user of the installed tool would.</summary>
    private static (int Code, string Out, string Err) Dmacheck(string cwd, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = cwd,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(Cli.Program).Assembly.Location);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

    private const string Case1 = "scenarios/seeds/qcom-scm/case1-v6.4-init-on-alloc.dmc";

    [Fact]
    public void TheBundledScenarioOfTheReadmeExplainsFromAnyDirectory()
    {
        var (code, stdout, stderr) = Dmacheck(FreshDirectory(), "explain", Case1);
        Assert.True(code == 0, stderr);
        Assert.StartsWith($"{Case1}: case 1: v6.4 clean-only prep", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetTempPath(), stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(AppContext.BaseDirectory, stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void BundledScenariosPrintByTheirShortNames()
    {
        var (code, stdout, stderr) = Dmacheck(FreshDirectory(), "check", "scenarios/seeds/qcom-scm");
        Assert.True(code == 0, stderr);
        Assert.Contains($"\n{Case1}  ", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(AppContext.BaseDirectory, stdout, StringComparison.Ordinal);
        var all = Dmacheck(FreshDirectory(), "check", "--max-states", "1");
        Assert.Contains($"\n{Case1}  ", all.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(AppContext.BaseDirectory, all.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void APathThatIsNowhereIsStillAnError()
    {
        var (code, _, stderr) = Dmacheck(FreshDirectory(), "explain", "scenarios/seeds/no-such.dmc");
        Assert.Equal(2, code);
        Assert.Contains("no such file: scenarios/seeds/no-such.dmc", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AReplayFileFindsItsScenarioRelativeToItself()
    {
        var home = FreshDirectory();
        var work = Directory.CreateDirectory(Path.Combine(home, "work", "witnesses")).FullName;
        var scenarios = Directory.CreateDirectory(Path.Combine(home, "work", "scenarios")).FullName;
        File.Copy(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case3-v6.3-init-on-alloc.dmc"), Path.Combine(scenarios, "case3.dmc"));
        var saved = Dmacheck(Path.Combine(home, "work"), "explain", "scenarios/case3.dmc", "--save-replay", "witnesses/case3.replay");
        Assert.True(saved.Code == 0, saved.Err);
        Assert.Contains("scenario ../scenarios/case3.dmc\n", File.ReadAllText(Path.Combine(work, "case3.replay")), StringComparison.Ordinal);

        // From another directory, and after the pair has moved together.
        var (code, stdout, stderr) = Dmacheck(FreshDirectory(), "replay", Path.Combine(work, "case3.replay"));
        Assert.True(code == 0, stderr);
        Assert.Contains("reproduces with 1 spontaneous event(s)", stdout, StringComparison.Ordinal);
        var moved = Path.Combine(FreshDirectory(), "moved");
        Directory.Move(Path.Combine(home, "work"), moved);
        var again = Dmacheck(home, "replay", Path.Combine(moved, "witnesses", "case3.replay"));
        Assert.True(again.Code == 0, again.Err);
    }

    [Fact]
    public void AReplayOfABundledScenarioWorksFromAnyDirectory()
    {
        var dir = FreshDirectory();
        var saved = Dmacheck(dir, "explain", "scenarios/seeds/qcom-scm/case3-v6.3-init-on-alloc.dmc", "--save-replay", "case3.replay");
        Assert.True(saved.Code == 0, saved.Err);
        var (code, stdout, stderr) = Dmacheck(FreshDirectory(), "replay", Path.Combine(dir, "case3.replay"));
        Assert.True(code == 0, stderr);
        Assert.StartsWith("scenarios/seeds/qcom-scm/case3-v6.3-init-on-alloc.dmc: ", stdout, StringComparison.Ordinal);
    }
}
