using System.Text.Json;
using DmaCheck.Exploration;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>The SARIF output carries every property SARIF 2.1.0 requires (checked by hand: no schema validator restores here).</summary>
public class SarifTests
{
    private static JsonElement Render(params ScenarioOutcome[] outcomes) => JsonDocument.Parse(SarifReport.Render(outcomes, "0.1.0")).RootElement;

    private static void AssertValid(JsonElement root)
    {
        Assert.Equal("2.1.0", root.GetProperty("version").GetString());
        Assert.StartsWith("https://", root.GetProperty("$schema").GetString(), StringComparison.Ordinal);
        var run = Assert.Single(root.GetProperty("runs").EnumerateArray());
        var driver = run.GetProperty("tool").GetProperty("driver");
        Assert.Equal("dmacheck", driver.GetProperty("name").GetString());
        var rules = driver.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(rules.Count, rules.Select(r => r.GetProperty("id").GetString()).Distinct().Count());
        foreach (var rule in rules)
        {
            Assert.False(string.IsNullOrEmpty(rule.GetProperty("shortDescription").GetProperty("text").GetString()));
            Assert.Contains(rule.GetProperty("defaultConfiguration").GetProperty("level").GetString(), new[] { "none", "note", "warning", "error" });
        }

        foreach (var result in run.GetProperty("results").EnumerateArray())
        {
            var index = result.GetProperty("ruleIndex").GetInt32();
            Assert.Equal(rules[index].GetProperty("id").GetString(), result.GetProperty("ruleId").GetString());
            Assert.False(string.IsNullOrEmpty(result.GetProperty("message").GetProperty("text").GetString()));
            Assert.Contains(result.GetProperty("level").GetString(), new[] { "none", "note", "warning", "error" });
            var location = Assert.Single(result.GetProperty("locations").EnumerateArray()).GetProperty("physicalLocation");
            var uri = location.GetProperty("artifactLocation").GetProperty("uri").GetString()!;
            Assert.DoesNotContain('\\', uri);
            Assert.True(location.GetProperty("region").GetProperty("startLine").GetInt32() >= 1);
            Assert.True(location.GetProperty("region").GetProperty("startColumn").GetInt32() >= 1);
        }
    }

    [Fact]
    public void SeedResultsPointAtTheirExpectations()
    {
        var outcomes = Checker.Expand(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm"))
            .Select(f => Checker.CheckFile(f, ExplorationLimits.Default, Path.GetRelativePath(TestPaths.Root, f))).ToArray();
        var root = Render(outcomes);
        AssertValid(root);
        var results = root.GetProperty("runs")[0].GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(6, results.Count); // cases 1, 2, 3, 4 and 8 fail, as they declare; case 8 also has its declared ownership finding
        Assert.Equal(5, results.Count(r => r.GetProperty("ruleId").GetString() == "DMC003"));
        Assert.Equal(1, results.Count(r => r.GetProperty("ruleId").GetString() == "DMC008"));
        var case1 = results.Single(r => r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("artifactLocation").GetProperty("uri").GetString()!.Contains("case1", StringComparison.Ordinal));
        Assert.Equal(21, case1.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt32());
        Assert.Contains("fails with 0 spontaneous hardware event(s)", case1.GetProperty("message").GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorsAndUndeclaredFailuresAreErrors()
    {
        var limits = ExplorationLimits.Default;
        var bad = Checker.CheckText("bad.dmc", "profile linux-6.4-arm64\ncpu a {\n  frob(1)\n}\n", limits);
        var bug = Checker.CheckText("bug.dmc", "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_NONE)\n}\n", limits);
        var finding = Checker.CheckText("finding.dmc", "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  kfree(p)\n  kfree(p)\n}\n", limits);
        var fails = Checker.CheckText("fails.dmc", "profile linux-6.4-arm64\nset init_on_alloc = on\ndevice d { coherent = false }\nfirmware f { access = non-cacheable }\n" +
            "cpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_TO_DEVICE)\n  write p[0..64] = x\n  smc f(h)\n}\nfirmware f on smc(q) {\n  read phys(q)[0..64] -> v\n}\nexpect e: v == x\n", limits);
        var root = Render(bad, bug, finding, fails);
        AssertValid(root);
        var results = root.GetProperty("runs")[0].GetProperty("results").EnumerateArray()
            .Select(r => (Rule: r.GetProperty("ruleId").GetString(), Line: r.GetProperty("locations")[0].GetProperty("physicalLocation").GetProperty("region").GetProperty("startLine").GetInt32()))
            .ToList();
        // fails.dmc writes its buffer after mapping it: the undeclared ownership finding is an error too.
        Assert.Equal([("DMC005", 3), ("DMC004", 5), ("DMC007", 5), ("DMC007", 8), ("DMC001", 14)], results);
    }
}
