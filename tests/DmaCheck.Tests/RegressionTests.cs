using System.Security.Cryptography;
using System.Text;
using DmaCheck.Fuzzing;

namespace DmaCheck.Tests;

/// <summary>
/// Every shrunk fuzz failure kept in tests/regressions/ is checked against the same invariants as when it was found,
/// so that once fixed it stays fixed (tests/regressions/README.md).
/// </summary>
public class RegressionTests
{
    private static string Kept => Path.Combine(TestPaths.Root, "tests", "regressions");

    [Fact]
    public void EveryKeptFuzzFailureStaysFixed()
    {
        Assert.True(File.Exists(Path.Combine(Kept, "README.md")), "tests/regressions/README.md is missing");
        var problems = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Kept).Where(f => Path.GetFileName(f) != "README.md").Order(StringComparer.Ordinal))
        {
            var (kind, invariant, text) = Regression.Load(file);
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
            Assert.Equal($"{invariant}-{hash}.dmc", Path.GetFileName(file));
            problems.AddRange(Regression.Check(kind, text).Select(f => $"{Path.GetFileName(file)} still breaks '{f.Invariant}': {f.Detail}"));
        }

        Assert.True(problems.Count == 0, string.Join("\n---\n", problems));
    }

    [Fact]
    public void ASavedFailureLoadsBackExactlyWithItsInvariant()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        // Hostile bytes a mutant can hold: NUL, U+FFFF, CRLF, a header look-alike, no final line break.
        var text = "#! fuzz-regression valid crash: not a header\r\nprofile linux-6.4-arm64\n\u0000\uffff é\tcpu {";
        var finding = new Finding("unlocated", "unlocated", "m7.dmc: error: no location\nsecond line \u0000");
        var path = Regression.Save(dir, InputKind.Any, finding, text);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
        Assert.Equal(Path.Combine(dir, $"unlocated-{hash}.dmc"), path);
        Assert.StartsWith("#! fuzz-regression any unlocated: m7.dmc: error: no location\n", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal((InputKind.Any, "unlocated", text), Regression.Load(path));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void AFileWithoutAHeaderIsRejected()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "crash-000000000000.dmc");
        File.WriteAllText(path, "profile linux-6.4-arm64\n");
        Assert.Throws<FormatException>(() => Regression.Load(path));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void AValidScenarioAndAMutantPassTheChecksARegressionGets()
    {
        var seed = File.ReadAllText(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc"));
        Assert.Empty(Regression.Check(InputKind.Valid, seed));
        Assert.Empty(Regression.Check(InputKind.Any, seed.Replace("payload", "payload[", StringComparison.Ordinal)));
        // A valid-input regression must still load: bad input breaks the valid-input invariants.
        Assert.Contains(Regression.Check(InputKind.Valid, seed.Replace("profile", "profle", StringComparison.Ordinal)), f => f.Invariant == "crash");
    }
}
