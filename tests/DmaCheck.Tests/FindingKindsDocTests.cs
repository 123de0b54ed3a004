using DmaCheck.Kernel;

namespace DmaCheck.Tests;

/// <summary>Every finding kind the model can report is listed, by its stable identifier, in docs/findings.md.</summary>
public class FindingKindsDocTests
{
    [Fact]
    public void EveryKindIsDocumented()
    {
        var doc = File.ReadAllText(Path.Combine(TestPaths.Root, "docs", "findings.md"));
        var kinds = FindingKindRegistry.All.Select(k => k.Id).ToList();
        var missing = kinds.Where(k => !doc.Contains($"`{k}`", StringComparison.Ordinal)).ToList();
        Assert.Empty(missing);
        Assert.Equal(kinds.Count, kinds.Distinct().Count());
    }
}
