using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>docs/profiles.md is generated from the code and must not go stale.</summary>
public class ProfilesDocTests
{
    [Fact]
    public void ProfilesDocIsUpToDate()
    {
        var path = Path.Combine(TestPaths.Root, "docs", "profiles.md");
        var expected = ProfilesReport.Markdown();
        if (Environment.GetEnvironmentVariable("DMACHECK_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, expected);
        }

        Assert.True(File.Exists(path), "docs/profiles.md is missing; run the tests with DMACHECK_UPDATE_GOLDEN=1");
        Assert.True(File.ReadAllText(path) == expected, "docs/profiles.md is out of date; run the tests with DMACHECK_UPDATE_GOLDEN=1 and commit it");
    }
}
