using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>Every bundled scenario declares a verdict for each expectation, and the checker meets it.</summary>
public class ScenarioSuiteTests
{
    public static TheoryData<string> BundledScenarios()
    {
        var data = new TheoryData<string>();
        foreach (var file in Checker.Expand(TestPaths.Scenarios))
        {
            data.Add(Path.GetRelativePath(TestPaths.Root, file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BundledScenarios))]
    public void BundledScenarioMeetsItsDeclaredVerdicts(string relativePath)
    {
        var outcome = Checker.CheckFile(Path.Combine(TestPaths.Root, relativePath), ExplorationLimits.Default, relativePath);
        Assert.True(outcome.Error == OutcomeError.None, outcome.Message);
        Assert.Null(outcome.Result!.Inconclusive);
        Assert.True(outcome.Rows.Any() || outcome.Scenario!.DeclaredFindings.Count > 0, $"{relativePath} checks nothing: no expectation and no declared finding");
        foreach (var (found, declared) in outcome.Result.FindingRows)
        {
            Assert.True(found is not null && declared is not null,
                found is null ? $"{relativePath}: declared '{declared}' but no run produces it" : $"{relativePath}: undeclared finding {found.Finding.Kind} in {found.Finding.Function}: {found.Finding.Message}");
        }

        foreach (var (verdict, declared, met) in outcome.Rows)
        {
            Assert.True(declared is not null, $"{relativePath}: expectation {verdict.Expectation.Name} declares no verdict");
            Assert.True(met == true, $"{relativePath}: {verdict.Expectation.Name} is {verdict.Verdict} (min events {verdict.MinEventsText}), declared {declared}");
        }
    }

    [Fact]
    public void TheSeedDirectoryHoldsTheEightCases() =>
        Assert.Equal(8, Checker.Expand(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm")).Count());

    [Fact]
    public void BruteForceAgreesOnTheSeedCasesAtOneLine()
    {
        // The seed cases at 64 bytes (one line), where the brute-force explorer is cheap.
        foreach (var file in Checker.Expand(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm")))
        {
            var text = File.ReadAllText(file).Replace("4096", "64", StringComparison.Ordinal);
            var fast = Checker.CheckText(file, text, ExplorationLimits.Default);
            var slow = Checker.CheckText(file, text, ExplorationLimits.Default, () => new BruteForceStrategy());
            Assert.Equal(
                fast.Result!.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)),
                slow.Result!.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)));
            Assert.Equal(fast.Rows.Select(r => r.Met), slow.Rows.Select(r => r.Met));
        }
    }
}
