using DmaCheck.Exploration;
using DmaCheck.Kernel;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>The finding-kind registry is the one list: every finding a bundled scenario produces has a registered kind and one of its severities.</summary>
public class FindingKindRegistryTests
{
    [Theory]
    [MemberData(nameof(ScenarioSuiteTests.BundledScenarios), MemberType = typeof(ScenarioSuiteTests))]
    public void EveryFindingHasARegisteredKindAndSeverity(string relativePath)
    {
        var outcome = Checker.CheckFile(Path.Combine(TestPaths.Root, relativePath), ExplorationLimits.Default, relativePath);
        foreach (var f in outcome.Result!.Findings.Select(f => f.Finding))
        {
            var kind = FindingKindRegistry.Find(f.Kind);
            Assert.True(kind is not null, $"{relativePath}: finding kind {f.Kind} is not in the registry");
            Assert.True(kind.Severities.Contains(f.Severity), $"{relativePath}: {f.Kind} with severity {f.Severity}, registered as {string.Join(", ", kind.Severities)}");
        }
    }

    [Fact]
    public void IdentifiersAreUniqueAndClassesKnown()
    {
        Assert.Equal(FindingKindRegistry.All.Count, FindingKindRegistry.All.Select(k => k.Id).Distinct().Count());
        Assert.All(FindingKindRegistry.All, k => Assert.Matches("^(model|ownership|what-if|E([1-9]|1[0-9]|2[0-3]))$", k.Class));
        Assert.All(FindingKindRegistry.All, k => Assert.NotEmpty(k.Severities));
    }
}
