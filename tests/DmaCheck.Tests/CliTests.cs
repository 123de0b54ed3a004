using DmaCheck.Cli;

namespace DmaCheck.Tests;

/// <summary>The command line: exit codes of design §6, usage errors, and where messages go.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Write(string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "s.dmc");
        File.WriteAllText(path, text);
        return path;
    }

    private const string Prefix = "profile linux-6.4-arm64\nset init_on_alloc = on\ndevice scm { coherent = false }\nfirmware tz { access = cacheable }\n" +
        "cpu driver {\n  buf = dma_alloc_coherent(scm, 64, GFP_KERNEL)\n  write buf[0..64] = payload\n  smc tz(buf.dma)\n}\n" +
        "firmware tz on smc(addr) {\n  read phys(addr)[0..64] -> seen\n}\nexpect ok: seen == payload\n";

    [Fact]
    public void SeedsPassWithExitZero()
    {
        var (code, stdout, _) = Run("check", Path.Combine(TestPaths.Scenarios, "seeds"));
        Assert.Equal(0, code);
        Assert.Matches(@"(\d+) expectation\(s\): \1 as declared, 0 differ, 0 inconclusive, 0 error\(s\); \d+ finding\(s\), 0 not as declared", stdout);
    }

    [Fact]
    public void ADifferingVerdictExitsOne()
    {
        var (code, stdout, _) = Run("check", Write(Prefix + "# expect ok: always\n"));
        Assert.Equal(1, code);
        Assert.Contains("DIFFERS", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUndeclaredExpectationThatCanFailExitsOne()
    {
        var (code, stdout, _) = Run("check", Write(Prefix));
        Assert.Equal(1, code);
        Assert.Contains("FAILS (undeclared)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void AMetDeclarationExitsZero() => Assert.Equal(0, Run("check", Write(Prefix + "# expect ok: sometimes, min-events 0\n")).Code);

    [Fact]
    public void BadInputExitsTwoWithTheCaretOnStderr()
    {
        var (code, _, stderr) = Run("check", Write("profile linux-9.9-arm64\n"));
        Assert.Equal(2, code);
        Assert.Contains("s.dmc:1:9: error: unknown profile", stderr, StringComparison.Ordinal);
        Assert.Contains("^~~~", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public void AnAccessPastTheBufferIsBadInputAtItsStatement()
    {
        var text = Prefix.Replace("write buf[0..64]", "write buf[0..65]", StringComparison.Ordinal);
        var (code, _, stderr) = Run("check", Write(text));
        Assert.Equal(2, code);
        Assert.Contains("s.dmc:7:3: error: the access [0..65) runs past the end of 'buf' (64 bytes)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAccessAtAnOffsetPastThePointerIsBadInput()
    {
        var text = "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  write p + 32[0..48] = x\n}\n";
        var (code, _, stderr) = Run("check", Write(text));
        Assert.Equal(2, code);
        Assert.Contains("s.dmc:4:3: error: the access [0..48) at offset 32 runs past the end of 'p' (64 bytes)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void StateLimitIsInconclusiveExitThree()
    {
        var (code, stdout, _) = Run("check", Write(Prefix + "# expect ok: sometimes, min-events 0\n"), "--max-states", "1");
        Assert.Equal(3, code);
        Assert.Contains("Inconclusive", stdout, StringComparison.Ordinal);
        Assert.Contains("state limit reached", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void ZeroTimeoutIsInconclusive() =>
        Assert.Equal(3, Run("check", Write(Prefix + "# expect ok: sometimes, min-events 0\n"), "--timeout", "0").Code);

    /// <summary>The brute force does a big buffer line by line, so its one step there is long: the limit must stop it inside the step.</summary>
    [Fact]
    public void ALimitStopsALongStepInsideABigBuffer()
    {
        var text = Prefix.Replace("[0..64]", "[0..256K]", StringComparison.Ordinal).Replace("(scm, 64,", "(scm, 256K,", StringComparison.Ordinal) + "# expect ok: sometimes, min-events 0\n";
        var (code, stdout, _) = Run("check", Write(text), "--timeout", "0.05", "--strategy", "brute-force");
        Assert.Equal(3, code);
        Assert.Contains("timeout after", stdout, StringComparison.Ordinal);
    }

    /// <summary>Beyond its line limit the brute force says so and is inconclusive (it used to overflow the stack building its initial states).</summary>
    [Fact]
    public void TheBruteForceRefusesABufferBeyondItsLineLimit()
    {
        var text = Prefix.Replace("[0..64]", "[0..4M]", StringComparison.Ordinal).Replace("(scm, 64,", "(scm, 4M,", StringComparison.Ordinal) + "# expect ok: sometimes, min-events 0\n";
        var (code, stdout, _) = Run("check", Write(text), "--strategy", "brute-force");
        Assert.Equal(3, code);
        Assert.Contains("touches 65536 lines (4096 KiB), more than its limit of 4096", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void MemoryLimitIsInconclusive()
    {
        var (code, stdout, _) = Run("check", Write(Prefix + "# expect ok: sometimes, min-events 0\n"), "--max-memory", "1");
        Assert.Equal(3, code);
        Assert.Contains("memory limit reached", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void ABlockedAgentIsReported()
    {
        var text = "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  wait never\n  read p[0..8] -> v\n}\nexpect e: v == zero\n# expect e: never, min-events 0\n";
        var (code, stdout, _) = Run("check", Write(text));
        Assert.Equal(0, code);
        Assert.Contains("some agent never finished", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void NotModelledIsInconclusiveAndSaysWhat()
    {
        var text = "profile linux-5.13-arm-imx6\nset swiotlb = force\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_TO_DEVICE)\n}\n";
        var (code, stdout, _) = Run("check", Write(text));
        Assert.Equal(3, code);
        Assert.Contains("dma_map_single under arm_dma_ops on arm32-imx6q-1g with a swiotlb pool: arm_dma_ops never bounces (dmabounce is not modelled)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void AKernelBugExitsOne()
    {
        var text = "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_NONE)\n}\n";
        var (code, _, stderr) = Run("check", Write(text));
        Assert.Equal(1, code);
        Assert.Contains("s.dmc:5:3: error: the kernel would BUG or corrupt memory: dma_map_single: BUG_ON(!valid_dma_direction(dir))", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ADoubleFreeIsAnUndeclaredFindingAndExitsOne()
    {
        var text = "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  kfree(p)\n  kfree(p)\n}\n";
        var (code, stdout, _) = Run("check", Write(text));
        Assert.Equal(1, code);
        Assert.Contains("s.dmc:5:3: memory-corruption: double-free in kfree pfn 0x81000", stdout, StringComparison.Ordinal);
        Assert.Contains("UNDECLARED", stdout, StringComparison.Ordinal);
        var (declaredCode, _, _) = Run("check", Write(text + "# expect finding double-free in kfree\n"));
        Assert.Equal(0, declaredCode);
        var (missingCode, missing, _) = Run("check", Write(text.Replace("  kfree(p)\n  kfree(p)\n", "  kfree(p)\n", StringComparison.Ordinal) + "# expect finding double-free in kfree\n"));
        Assert.Equal(1, missingCode);
        Assert.Contains("MISSING", missing, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonHasTheDocumentedShape()
    {
        var (code, stdout, _) = Run("check", Write(Prefix + "# expect ok: sometimes, min-events 0\n"), "--format", "json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        var e = doc.RootElement.GetProperty("scenarios")[0].GetProperty("expectations")[0];
        Assert.Equal("ok", e.GetProperty("name").GetString());
        Assert.Equal("sometimes", e.GetProperty("verdict").GetString());
        Assert.Equal(0, e.GetProperty("minEventsToFail").GetInt32());
        Assert.Equal("sometimes, min-events 0", e.GetProperty("declared").GetString());
        Assert.True(e.GetProperty("met").GetBoolean());
    }

    [Fact]
    public void ExplainNamesThePrepAndTheStaleLine()
    {
        var (code, stdout, _) = Run("explain", Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc"));
        Assert.Equal(0, code);
        Assert.Contains("arch_dma_prep_coherent [arm64.prep_coherent=clean]: dcache_clean_poc", stdout, StringComparison.Ordinal);
        Assert.Contains("served by the cached line Clean(zero), which is stale", stdout, StringComparison.Ordinal);
        Assert.Contains("tz: read phys(addr)[0..4096] -> seen", stdout, StringComparison.Ordinal);
    }

    private static string Case1 => Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc");

    [Fact]
    public void SweepShowsTheThreadAsAMatrix()
    {
        var (code, stdout, _) = Run("sweep", Case1, "--profile", "linux-6.3-arm64,linux-6.4-arm64", "--set", "init_on_alloc=on,off");
        Assert.Equal(0, code);
        var rows = stdout.Split('\n').Skip(2).Where(l => l.Length > 0).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal(
            ["linux-6.3-arm64 on Sometimes (1)", "linux-6.3-arm64 off Sometimes (1)", "linux-6.4-arm64 on Sometimes (0, every schedule)", "linux-6.4-arm64 off Sometimes (1)"],
            rows.Select(r => string.Join(' ', r)).ToList());
    }

    [Fact]
    public void SweepCsvAndJson()
    {
        var csv = Run("sweep", Case1, "--set", "arm64.prep_coherent=clean,clean_inval", "--format", "csv");
        Assert.Equal(0, csv.Code);
        Assert.Equal(
            "profile,arm64.prep_coherent,fw_sees_payload.verdict,fw_sees_payload.minEventsToFail\nlinux-6.4-arm64,clean,sometimes,0\nlinux-6.4-arm64,clean_inval,sometimes,1\n",
            csv.Out);
        var json = Run("sweep", Case1, "--set", "init_on_alloc=off", "--format", "json");
        using var doc = System.Text.Json.JsonDocument.Parse(json.Out);
        var point = doc.RootElement.GetProperty("points")[0];
        Assert.Equal("off", point.GetProperty("settings").GetProperty("init_on_alloc").GetString());
        Assert.Equal(1, point.GetProperty("expectations")[0].GetProperty("minEventsToFail").GetInt32());
    }

    [Theory]
    [InlineData("sweep")]
    [InlineData("sweep", "--set", "init_on_alloc=maybe")]
    [InlineData("sweep", "--set", "nosuchkey=1")]
    [InlineData("sweep", "--set", "init_on_alloc")]
    [InlineData("sweep", "--profile", "linux-2.6-arm64")]
    public void SweepUsageErrorsExitTwo(params string[] args)
    {
        var full = args.Length > 1 ? args.Take(1).Append(Case1).Concat(args.Skip(1)).ToArray() : args;
        var (code, _, stderr) = Run(full);
        Assert.Equal(2, code);
        Assert.StartsWith("dmacheck: ", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("frob")]
    [InlineData("check", "--format", "xml")]
    [InlineData("check", "--max-states", "-1")]
    [InlineData("check", "--bogus")]
    [InlineData("check", "/no/such/path.dmc")]
    [InlineData("explain")]
    public void UsageErrorsExitTwo(params string[] args)
    {
        var (code, _, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("dmacheck: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void VersionAndHelp()
    {
        Assert.Matches(@"^dmacheck \d+\.\d+\.\d+", Run("--version").Out);
        var help = Run("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("exit codes", help.Out, StringComparison.Ordinal);
        foreach (var command in new[] { "check", "explain", "sweep", "replay", "profiles" })
        {
            Assert.Equal(0, Run(command, "--help").Code);
            Assert.Contains($"dmacheck {command}", help.Out, StringComparison.Ordinal); // every command has an example
        }
    }

    [Fact]
    public void ProfilesListsEverySwitchWithItsCommit()
    {
        var (code, stdout, _) = Run("profiles");
        Assert.Equal(0, code);
        Assert.Contains("linux-6.4-arm64", stdout, StringComparison.Ordinal);
        Assert.Contains("arm64.prep_coherent = clean   (7bd6680b47fa, v6.4-rc1", stdout, StringComparison.Ordinal);
        Assert.Contains("linux-5.4-arm64", stdout, StringComparison.Ordinal);
        Assert.Contains("not modelled: dma_map_single of a vmalloc address before 4544b9f25e70", stdout, StringComparison.Ordinal);
    }
}
