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
        var (text, o) = EmitAndCheck("x86_64-6.12.118-nvme", "linux-6.4-arm64");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("of 120 in the window", text, StringComparison.Ordinal); // the first 8 of the trace's mappings
        Assert.Contains("buffer b0 { phys = 0x", text, StringComparison.Ordinal);
        Assert.Contains("device dev0 { coherent = false, dma_mask = 64 }   # 0000:00:04.0", text, StringComparison.Ordinal);
        // What the what-if says of this trace (no hazard), the explored scenario says too: every check holds.
        Assert.NotEmpty(o.Result!.Verdicts);
        Assert.All(o.Result.Verdicts, v => Assert.Equal(Verdict.Always, v.Verdict));
    }

    [Fact]
    public void TheRealArm64VirtioTracesHazardShowsAsAFailingCheckInItsScenario()
    {
        // The what-if finds virtio-blk's 1-byte DMA_FROM_DEVICE status buffers sharing a 128-byte granule with the
        // request header before them; the scenario, with the memory beside the buffer written by another thread, fails
        // the device's data on some schedule with no spontaneous event.
        var whatIf = Cli("trace", Real("arm64-6.12.118-virtio-blk"), "--profile", "linux-6.4-arm64");
        Assert.Contains("noncoherent-buffer-shares-granule", whatIf.Out, StringComparison.Ordinal);
        var (text, o) = EmitAndCheck("arm64-6.12.118-virtio-blk", "linux-6.4-arm64");
        Assert.True(o.Error == OutcomeError.None, o.Message);
        Assert.Contains("set cache.line = 128", text, StringComparison.Ordinal);
        Assert.Contains("cpu others {", text, StringComparison.Ordinal);
        var failing = Assert.Single(o.Result!.Verdicts, v => v.Verdict != Verdict.Always);
        Assert.StartsWith("cpu_reads_device_data_", failing.Expectation.Name, StringComparison.Ordinal);
        Assert.Equal(0, failing.MinEventsToFail);
    }

    [Fact]
    public void TheSameWindowOnCoherentX86HasNoHazard()
    {
        var (text, o) = EmitAndCheck("arm64-6.12.118-virtio-blk", "linux-6.4-x86_64");
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
    [InlineData(new[] { "--profile", "linux-6.4-arm64", "--emit-scenario", "OUT", "--from", "1000" }, "no streaming mapping is made in the window")]
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
