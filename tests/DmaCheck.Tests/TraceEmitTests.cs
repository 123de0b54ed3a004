using DmaCheck.Cli;
using DmaCheck.Exploration;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 18 item 4: <c>dmacheck trace FILE --profile P --emit-scenario OUT.dmc [--from T1 --to T2]</c> on the committed
/// real traces, and the placed buffers (<c>buffer NAME { phys = PA, size = N }</c>) the emitted scenarios are made of.
/// </summary>
public sealed class TraceEmitTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("dmacheck-emit-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Real(string name) => Path.Combine(TestPaths.Root, "tests", "fixtures", "traces", name + ".trace");

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private (string Text, ScenarioOutcome Outcome) EmitAndCheck(string trace, string profile, params string[] extra)
    {
        var output = Path.Combine(dir, "out.dmc");
        var (code, stdout, stderr) = Cli(["trace", Real(trace), "--profile", profile, "--emit-scenario", output, .. extra]);
        Assert.True(code is 0 or 1, stderr);
        Assert.Contains($"scenario written to {output}", stdout, StringComparison.Ordinal);
        var text = File.ReadAllText(output);
        return (text, Checker.CheckText(output, text, ExplorationLimits.Default));
    }

    [Fact]
    public void TheRealNvmeTraceBecomesAScenarioThatLoadsAndRunsCleanOnANonCoherentArm64Board()
    {
        // Probe and admin queue: coherent buffers (dma_alloc) and single maps.
        var (text, o) = EmitAndCheck("x86_64-6.12.118-nvme", "linux-6.4-arm64", "--from", "2.95", "--to", "3.01");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("buffer b0 { phys = 0x", text, StringComparison.Ordinal);
        Assert.Contains("device dev0 { coherent = false, dma_mask = 64 }   # 0000:00:04.0", text, StringComparison.Ordinal);
        Assert.Contains("c0 = dma_alloc_coherent(dev0, 512, GFP_KERNEL)   # line 13: trace dma_addr 0x2e1e000", text, StringComparison.Ordinal);
        Assert.Contains("4 coherent buffer(s)", text, StringComparison.Ordinal);

        // What the what-if says of this trace (no hazard), the explored scenario says too: every check holds.
        Assert.NotEmpty(o.Result!.Verdicts);
        Assert.All(o.Result.Verdicts, v => Assert.Equal(Verdict.Always, v.Verdict));
        Assert.Contains(o.Result.Verdicts, v => v.Expectation.Name == "cpu_reads_device_data_L15");
    }

    [Fact]
    public void AnSgListIsEmittedAsAListWithItsTable()
    {
        var (text, o) = EmitAndCheck("x86_64-6.12.118-nvme", "linux-6.4-arm64", "--from", "4.493", "--to", "4.4942");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("sg0 = sg_alloc_table(5, GFP_KERNEL)", text, StringComparison.Ordinal);
        Assert.Contains("n0 = dma_map_sg_attrs(dev0, sg0, 5, DMA_TO_DEVICE, DMA_ATTR_NO_WARN)   # line 41", text, StringComparison.Ordinal); // the trace's attrs=NO_WARN
        Assert.Contains("h4 = sg_dma_address(sg0, 4)", text, StringComparison.Ordinal);
        Assert.Contains("dma_unmap_sg(dev0, sg0, 5, DMA_TO_DEVICE)   # line 43", text, StringComparison.Ordinal);
        Assert.Contains("sg_free_table(sg0)", text, StringComparison.Ordinal);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"device_reads_cpu_data_L41_e{i}"), o.Result!.Verdicts.Select(v => v.Expectation.Name).Order(StringComparer.Ordinal));
        Assert.All(o.Result.Verdicts, v => Assert.Equal(Verdict.Always, v.Verdict));
    }

    [Fact]
    public void AWindowWithMoreMappingsThanTheCapIsAnErrorNamingTheFirstLeftOut()
    {
        var output = Path.Combine(dir, "never.dmc");
        var (code, _, stderr) = Cli("trace", Real("x86_64-6.12.118-nvme"), "--profile", "linux-6.4-arm64", "--emit-scenario", output);
        Assert.Equal(2, code);
        Assert.Contains("the window makes 120 streaming mappings (sg elements counted one by one), more than 8: the first left out is mapped at ", stderr, StringComparison.Ordinal);
        Assert.Contains("x86_64-6.12.118-nvme.trace:35", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));

        // --max-mappings raises the cap.
        var (text, o) = EmitAndCheck("x86_64-6.12.118-nvme", "linux-6.4-x86_64", "--to", "3.05", "--max-mappings", "12");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("streaming mapping(s)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ResourcesAndCoherentBuffersAreEmittedAndWhatIsLeftOutIsNamedByLine()
    {
        var output = Path.Combine(dir, "v612.dmc");
        var trace = Path.Combine(TestPaths.Root, "tests", "fixtures", "traces", "synthetic", "v6.12.0-trace.trace");
        var (code, stdout, stderr) = Cli("trace", trace, "--profile", "linux-6.4-arm64", "--emit-scenario", output, "--max-mappings", "64");
        Assert.True(code is 0 or 1, stderr);
        var text = File.ReadAllText(output);
        Assert.Contains("= dma_map_resource(dev0, 0xfe310000, 4, DMA_BIDIRECTIONAL, 0)   # line 25", text, StringComparison.Ordinal);
        Assert.Contains("dma_unmap_resource(dev0, r0, 4, DMA_BIDIRECTIONAL, 0)   # line 26", text, StringComparison.Ordinal);
        Assert.Contains("c0 = dma_alloc_coherent(dev0, 4096, GFP_KERNEL)   # line 17", text, StringComparison.Ordinal);

        // Every line the scenario leaves out is named, in the file and on the output.
        foreach (var notice in stdout.Split('\n').Where(l => l.StartsWith("notice: --emit-scenario: not emitted: ", StringComparison.Ordinal)))
        {
            Assert.Matches(@"\(lines? \d+", notice);
            Assert.Contains("# not emitted: " + notice["notice: --emit-scenario: not emitted: ".Length..].TrimEnd('\r'), text, StringComparison.Ordinal);
        }

        var o = Checker.CheckText(output, text, ExplorationLimits.Default);
        Assert.True(o.Error == OutcomeError.None, o.Message);

        // The trace's attributes are kept: the map with SKIP_CPU_SYNC|NO_WARN makes no maintenance (and the synthetic
        // driver makes no sync, so the device may read stale bytes).
        Assert.Contains("h3 = dma_map_single_attrs(dev0, b3, 8192, DMA_BIDIRECTIONAL, DMA_ATTR_SKIP_CPU_SYNC|DMA_ATTR_NO_WARN)   # line 27", text, StringComparison.Ordinal);
        Assert.Contains("dma_mapping_error(dev0, r0)", text, StringComparison.Ordinal);
        Assert.Contains("dma_sync_single_for_device(dev0, h1, 4096, DMA_TO_DEVICE)   # line 23 (the device owns the buffer already)", text, StringComparison.Ordinal);
    }

    /// <summary>
    /// Issue 18 item 3: each what-if hazard names its window and expectation; emitting that window and exploring it
    /// fails that expectation, and explain walks it with its fewest spontaneous events.
    /// </summary>
    [Theory]
    [InlineData("arm64-6.12.118-virtio-blk-noncoherent", "linux-6.4-arm64", "7.25")]
    [InlineData("whatif/shared-granule", "linux-6.4-arm64", null)]
    [InlineData("whatif/shared-granule", "linux-6.5-arm64", null)]
    [InlineData("arm64-6.12.118-virtio-blk-noncoherent", "linux-5.13-arm-rpi4", "7.25")]
    public void EachHazardsWindowFailsTheExpectationItNamesAndExplainWalksIt(string trace, string profile, string? until)
    {
        string[] untilArgs = until is null ? [] : ["--until", until];
        var (_, report, err) = Cli(["trace", Real(trace), "--profile", profile, .. untilArgs]);
        var explores = report.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("explore: ", StringComparison.Ordinal)).ToList();
        var hazards = report.Split('\n').Count(l => l.Contains("(what-if) in", StringComparison.Ordinal));
        Assert.True(hazards > 0, report + err);
        Assert.Equal(hazards, explores.Count);
        foreach (var explore in explores.Distinct())
        {
            var m = System.Text.RegularExpressions.Regex.Match(explore, @"^explore: dmacheck trace (\S+) --profile (\S+)((?: --device \S+)*) --emit-scenario OUT\.dmc ((?:--\S+ \S+ ?)+), then dmacheck explain OUT\.dmc --expect (\w+)$");
            Assert.True(m.Success, explore);
            var output = Path.Combine(dir, "hazard.dmc");
            var emit = Cli(["trace", m.Groups[1].Value, "--profile", m.Groups[2].Value, .. m.Groups[3].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--emit-scenario", output, .. m.Groups[4].Value.Trim().Split(' ')]);
            Assert.True(emit.Code is 0 or 1, emit.Err);
            var name = m.Groups[5].Value;
            var o = Checker.CheckText(output, File.ReadAllText(output), ExplorationLimits.Default);
            Assert.True(o.Error == OutcomeError.None, o.Message);
            var verdict = Assert.Single(o.Result!.Verdicts, v => v.Expectation.Name == name);
            Assert.NotEqual(Verdict.Always, verdict.Verdict);
            Assert.Equal(0, verdict.MinEventsToFail); // as the what-if says: "fewest spontaneous events: none"

            var (code, walk, walkErr) = Cli("explain", output, "--expect", name);
            Assert.True(code is 0 or 1, walkErr);
            Assert.Contains($"expect {name}:", walk, StringComparison.Ordinal);
            Assert.Contains("shortest failing run:", walk, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AHazardStillMappedAtUntilSaysItsWindowHasNothingToFail()
    {
        var (_, report, _) = Cli("trace", Real("arm64-6.12.118-virtio-blk-noncoherent"), "--profile", "linux-6.4-arm64", "--until", "7.215");
        var explores = report.Split('\n').Where(l => l.TrimStart().StartsWith("explore: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, explores.Count);
        Assert.All(explores, l => Assert.Contains("--to 7.215 (the buffer of line 17 is still mapped at the end (--until 7.215)", l, StringComparison.Ordinal));
        Assert.All(explores, l => Assert.DoesNotContain("dmacheck explain", l, StringComparison.Ordinal));
    }

    [Fact]
    public void TheSameWindowOnCoherentX86HasNoHazard()
    {
        var (text, o) = EmitAndCheck("arm64-6.12.118-virtio-blk", "linux-6.4-x86_64", "--to", "9.6");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("coherent = true", text, StringComparison.Ordinal);
        Assert.DoesNotContain("cpu others", text, StringComparison.Ordinal); // a 1-byte granule: nothing beside a buffer
        Assert.All(o.Result!.Verdicts, v => Assert.Equal(Verdict.Always, v.Verdict));
    }

    [Fact]
    public void AWindowKeepsOnlyItsEvents()
    {
        var (text, o) = EmitAndCheck("x86_64-6.12.118-nvme", "linux-6.4-arm64", "--from", "2.98", "--to", "2.99");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("--from 2.98 --to 2.99", text, StringComparison.Ordinal);
        Assert.Contains("2 streaming mapping(s)", text, StringComparison.Ordinal); // lines 15 and 17: 2.983103 and 2.985645
    }

    [Theory]
    [InlineData(new[] { "--from", "1" }, "--from and --to choose the window of --emit-scenario")]
    [InlineData(new[] { "--emit-scenario", "OUT" }, "--emit-scenario needs --profile P")]
    [InlineData(new[] { "--profile", "linux-6.4-arm64", "--emit-scenario", "OUT", "--from", "3", "--to", "2" }, "is before --from")]
    [InlineData(new[] { "--profile", "linux-6.4-arm64", "--emit-scenario", "OUT", "--from", "1000" }, "nothing is mapped or allocated in the window")]
    [InlineData(new[] { "--profile", "linux-6.4-arm64", "--emit-scenario", "OUT", "--max-mappings", "65" }, "--max-mappings takes a whole number from 1 to 64")]
    [InlineData(new[] { "--max-mappings", "9" }, "--max-mappings bounds --emit-scenario")]
    [InlineData(new[] { "--profile", "linux-6.4-arm64", "--emit-scenario", "OUT", "--to", "x" }, "--to takes a timestamp")]
    public void MisuseIsAnErrorAndLeavesNoFile(string[] options, string message)
    {
        var output = Path.Combine(dir, "never.dmc");
        var (code, _, stderr) = Cli(["trace", Real("x86_64-6.12.118-nvme"), .. options.Select(o => o == "OUT" ? output : o)]);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(dir)); // no temporary file left either
    }

    private static ScenarioOutcome Check(string declarations, string body = "cpu a {\n  write b[0..64] = x\n}\n") =>
        Checker.CheckText("t.dmc", "profile linux-6.4-arm64\n" + declarations + body, ExplorationLimits.Default);

    [Theory]
    [InlineData("buffer b { phys = 0x82000000, size = 64 }\nbuffer c { phys = 0x82000020, size = 64 }\n", "buffer 'c': PA 0x82000020..0x82000060 overlaps buffer b")]
    [InlineData("buffer b { phys = 0x10000, size = 64 }\n", "is not all DRAM of layout arm64-va48-4k")]
    [InlineData("buffer b { phys = 0x80200000, size = 64 }\n", "lies in the kernel image")]
    [InlineData("buffer b { phys = 0xbfffffc0, size = 128 }\n", "is not all DRAM")]
    [InlineData("buffer b { phys = 0x82000000 }\n", "must give its size")]
    [InlineData("buffer b { phys = 0x82000000, size = 8M }\n", "a placed buffer holds 1 byte to 4 MiB")]
    [InlineData("buffer b { phys = 0x82000000, size = 64, align = 8 }\n", "unknown buffer property 'align'")]
    public void APlacementTheLayoutCannotHoldIsBadInputAtTheDeclaration(string declarations, string message)
    {
        var o = Check(declarations);
        Assert.Equal(OutcomeError.BadInput, o.Error);
        Assert.Contains(message, o.Message, StringComparison.Ordinal);
        Assert.NotNull(o.At); // at the declaration's phys value, or its name
    }

    [Fact]
    public void APlacedBufferOverTheSwiotlbPoolIsBadInput()
    {
        var o = Checker.CheckText("t.dmc", "profile linux-6.4-arm64\nset swiotlb = force\nset swiotlb.slots = 128\nbuffer b { phys = 0xbffff000, size = 64 }\ncpu a {\n  write b[0..64] = x\n}\n", ExplorationLimits.Default);
        Assert.Equal(OutcomeError.BadInput, o.Error);
        Assert.Contains("overlaps the swiotlb bounce buffer", o.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TwoBuffersShareAPageNeverAByteAndTheAllocatorStepsOverThem()
    {
        var o = Check("device nic { coherent = false }\nbuffer b { phys = 0x83000000, size = 64 }\nbuffer c { phys = 0x83000040, size = 64 }\n",
            "cpu a {\n  write b[0..64] = x\n  p = kmalloc(4096, GFP_KERNEL)\n  h = dma_map_single(nic, c, 64, DMA_FROM_DEVICE)\n  dma_mapping_error(nic, h)\n}\n");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Empty(o.Result!.Findings);

        // A device overrun from c names c's neighbour by its declaration.
        var overrun = Check("device nic { coherent = true }\nbuffer b { phys = 0x83000040, size = 64 }\nbuffer c { phys = 0x83000000, size = 64 }\n",
            "cpu a {\n  h = dma_map_single(nic, c, 64, DMA_FROM_DEVICE)\n  dma_mapping_error(nic, h)\n  signal go\n}\ndma d by nic {\n  wait go\n  write dma(h)[0..128] = y\n}\n");
        var f = Assert.Single(overrun.Result!.Findings).Finding;
        Assert.Equal("b", f.Owner.Name);
        Assert.Contains("a 64-byte buffer placed at PA 0x83000040", f.Message, StringComparison.Ordinal);
    }
}
