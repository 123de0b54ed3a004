using DmaCheck.Cli;

namespace DmaCheck.Tests;

/// <summary>
/// A declared finding that a search stopped by a limit did not reach is "not reached (inconclusive)", exit code 3: the
/// search proves nothing about what it did not reach, so it is not MISSING (issue 17, item 4).
/// </summary>
public class InconclusiveFindingTests
{
    private const string DoubleFree = "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  kfree(p)\n  kfree(p)\n}\n# expect finding double-free in kfree\n";

    private static (int Code, string Out) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var code = Program.Run(args, stdout, new StringWriter(), colour: false);
        return (code, stdout.ToString());
    }

    private static string Write(string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "s.dmc");
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("--max-states", "1")]
    [InlineData("--max-memory", "1")]
    [InlineData("--timeout", "0")]
    public void ADeclaredFindingNotReachedIsInconclusiveNotMissing(string limit, string value)
    {
        var file = Write(DoubleFree);
        Assert.Equal(0, Run("check", file).Code); // unlimited, the finding is there
        var (code, stdout) = Run("check", file, limit, value);
        Assert.Equal(3, code);
        Assert.DoesNotContain("MISSING", stdout, StringComparison.Ordinal);
        Assert.Contains("s.dmc:7:3: not reached (inconclusive): declared 'finding double-free in kfree'", stdout, StringComparison.Ordinal);
        Assert.Contains("0 finding(s), 0 not as declared, 1 declared not reached (inconclusive)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonSaysNeitherMetNorMissing()
    {
        var (code, stdout) = Run("check", Write(DoubleFree), "--max-states", "1", "--format", "json");
        Assert.Equal(3, code);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        var finding = doc.RootElement.GetProperty("scenarios")[0].GetProperty("findings")[0];
        Assert.Equal(System.Text.Json.JsonValueKind.Null, finding.GetProperty("kind").ValueKind);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, finding.GetProperty("met").ValueKind);
    }

    [Fact]
    public void SarifReportsTheLimitNotAMissingFinding()
    {
        var (code, stdout) = Run("check", Write(DoubleFree), "--max-states", "1", "--format", "sarif");
        Assert.Equal(3, code);
        Assert.Contains("\"ruleId\": \"DMC006\"", stdout, StringComparison.Ordinal); // inconclusive
        Assert.DoesNotContain("\"ruleId\": \"DMC009\"", stdout, StringComparison.Ordinal); // missing-finding
    }

    /// <summary>A search that ran to the end still reports a declared finding no run produced as MISSING, exit code 1.</summary>
    [Fact]
    public void ACompleteSearchStillReportsMissing()
    {
        var (code, stdout) = Run("check", Write(DoubleFree.Replace("  kfree(p)\n  kfree(p)\n", "  kfree(p)\n", StringComparison.Ordinal)));
        Assert.Equal(1, code);
        Assert.Contains("MISSING", stdout, StringComparison.Ordinal);
    }

    /// <summary>The bundled scenarios under a tiny state limit: no MISSING, exit code 3.</summary>
    [Fact]
    public void TheBundledSeedsUnderATinyLimitAreInconclusive()
    {
        var (code, stdout) = Run("check", Path.Combine(TestPaths.Scenarios, "seeds"), "--max-states", "3");
        Assert.Equal(3, code);
        Assert.DoesNotContain("MISSING", stdout, StringComparison.Ordinal);
        Assert.Contains("not reached (inconclusive)", stdout, StringComparison.Ordinal);
    }

    /// <summary>A declared finding none of the sampled runs reached is not reached (sampled), never MISSING.</summary>
    [Fact]
    public void ADeclaredFindingTheSampledRunsMissedIsNotMissing()
    {
        // b's store is a finding only when it falls between a's map and unmap: some interleavings have it, some not.
        var text = "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(256, GFP_KERNEL)\n  signal ready\n" +
            "  h = dma_map_single(d, p, 256, DMA_FROM_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 256, DMA_FROM_DEVICE)\n}\n" +
            "cpu b {\n  wait ready\n  write p[0..64] = x\n}\n# expect finding cpu-access-device-owned in b\n";
        var file = Write(text);
        Assert.Equal(0, Run("check", file).Code);
        var missed = 0;
        for (var seed = 1; seed <= 10; seed++)
        {
            var (code, stdout) = Run("check", file, "--strategy", "random", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--runs", "1");
            Assert.DoesNotContain("MISSING", stdout, StringComparison.Ordinal);
            Assert.Equal(0, code);
            missed += stdout.Contains("not reached (sampled)", StringComparison.Ordinal) ? 1 : 0;
        }

        Assert.InRange(missed, 1, 9); // some seeds' one run reached it, some did not
    }

    /// <summary>An undeclared finding that a limited search did find is a failure (exit 1): the run that produces it is real.</summary>
    [Fact]
    public void AnUndeclaredFindingFoundBeforeALimitStillFails()
    {
        var text = DoubleFree.Replace("# expect finding double-free in kfree\n", string.Empty, StringComparison.Ordinal) +
            "cpu other {\n  q = kmalloc(64, GFP_KERNEL)\n  write q[0..64] = x\n  write q[0..64] = y\n  write q[0..64] = z\n}\n";
        var file = Write(text);
        Assert.Equal(1, Run("check", file).Code);
        var (code, stdout) = Run("check", file, "--max-states", "12");
        Assert.Contains("double-free", stdout, StringComparison.Ordinal);
        Assert.Contains("inconclusive", stdout, StringComparison.Ordinal);
        Assert.Equal(1, code);
    }
}
