using DmaCheck.Cli;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// The command line on System.CommandLine (issue 17): per-command options, an option that does not apply is an error
/// (exit 2) and writes nothing, "did you mean" for every kind of name, and shell completion.
/// </summary>
public class CliOptionTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = Program.Run(args, stdout, stderr, colour: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Case1 => Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc");

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Each of these used to exit 0 and print text, or write nothing: every one is now refused, and no file is written.</summary>
    [Theory]
    [InlineData("sweep", "--html", "OUT", "'--html' does not apply to 'sweep'")]
    [InlineData("check", "--vcd", "OUT", "'--vcd' does not apply to 'check'")]
    [InlineData("explain", "--format", "json", "'--format' does not apply to 'explain'")]
    [InlineData("sweep", "--format", "sarif", "--format for 'sweep' is text, json or csv, not 'sarif'")]
    [InlineData("check", "--format", "csv", "--format for 'check' is text, json or sarif, not 'csv'")]
    [InlineData("explain", "--strategy", "brute-force", "--strategy brute-force does not apply to 'explain': it keeps no witnesses")]
    [InlineData("explain", "--strategy", "replay", "--strategy replay follows one saved run, and 'explain' has none to follow: run 'dmacheck replay FILE.replay'")]
    [InlineData("sweep", "--strategy", "replay", "--strategy replay follows one saved run, and 'sweep' has none to follow")]
    [InlineData("sweep", "--save-replay", "OUT", "'--save-replay' does not apply to 'sweep'")]
    [InlineData("replay", "--max-states", "3", "'--max-states' does not apply to 'replay'")]
    public void AnOptionThatDoesNotApplyIsAnError(string command, string option, string value, string message)
    {
        var dir = TempDir();
        var written = Path.Combine(dir, "out");
        var (code, stdout, stderr) = Run(command, Case1, option, value == "OUT" ? written : value);
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout);
        Assert.StartsWith("dmacheck: ", stderr, StringComparison.Ordinal);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(written));
    }

    [Fact]
    public void ExplainWithTheBruteForceAndHtmlIsRefused()
    {
        var html = Path.Combine(TempDir(), "x.html");
        var (code, _, stderr) = Run("explain", Case1, "--strategy", "brute-force", "--html", html);
        Assert.Equal(2, code);
        Assert.Contains("--strategy brute-force does not apply to 'explain'", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(html));
    }

    [Theory]
    [InlineData("--strategy", "brute-force", "--html", "OUT", "--html does not apply to --strategy brute-force: it keeps no witnesses")]
    [InlineData("--strategy", "brute-force", "--threads", "2", "--threads does not apply to --strategy brute-force (only --strategy exhaustive takes it)")]
    [InlineData("--strategy", "brute-force", "--no-reduction", null, "--no-reduction does not apply to --strategy brute-force (only --strategy exhaustive takes it)")]
    [InlineData("--strategy", "random", "--threads", "2", "--threads does not apply to --strategy random (only --strategy exhaustive takes it)")]
    [InlineData("--strategy", "brute-force", "--seed", "3", "--seed does not apply to --strategy brute-force (only --strategy random takes it)")]
    [InlineData("--seed", "3", null, null, "--seed does not apply to --strategy exhaustive (only --strategy random takes it)")]
    [InlineData("--runs", "10", null, null, "--runs does not apply to --strategy exhaustive (only --strategy random takes it)")]
    [InlineData("--strategy", "replay", null, null, "--strategy replay follows one saved run, and 'check' has none to follow: run 'dmacheck replay FILE.replay'")]
    [InlineData("--explorer", "brute-force", null, null, "'--explorer' is gone: explorers are strategies now, picked with --strategy NAME")]
    public void OptionsThatConflictAreErrors(string a, string b, string? c, string? d, string message)
    {
        var html = Path.Combine(TempDir(), "x.html");
        string[] args = ["check", Case1, a, b, .. c is null ? [] : new[] { c }, .. d is null ? [] : new[] { d == "OUT" ? html : d }];
        var (code, stdout, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(html));
    }

    [Theory]
    [InlineData("--timeout", "--timeout needs a value (SECONDS)")]
    [InlineData("--html", "--html needs a value (OUT)")]
    public void AnOptionWithoutItsValueSaysSo(string option, string message)
    {
        var (code, _, stderr) = Run("check", Case1, option);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ProfilesTakesNoOptions()
    {
        var (code, _, stderr) = Run("profiles", "--format", "json");
        Assert.Equal(2, code);
        Assert.Contains("'--format' does not apply to 'profiles'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AVcdOfAnExpectationThatNeverFailsIsAnErrorNotSilence()
    {
        var vcd = Path.Combine(TempDir(), "x.vcd");
        var holds = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case6-dma-coherent.dmc");
        var (code, _, stderr) = Run("explain", holds, "--vcd", vcd);
        Assert.Equal(2, code);
        Assert.Contains("never fails: there is no witness for --vcd to write", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(vcd));
    }

    [Theory]
    [InlineData(new[] { "chek" }, "unknown command 'chek' (did you mean 'check'?)")]
    [InlineData(new[] { "check", "--max-stats", "3" }, "unknown option '--max-stats' for 'check' (did you mean '--max-states'?)")]
    [InlineData(new[] { "check", "--fromat", "json" }, "(did you mean '--format'?)")]
    [InlineData(new[] { "check", "--format", "jsn" }, "not 'jsn' (did you mean 'json'?)")]
    [InlineData(new[] { "check", "--strategy", "randon" }, "--strategy is exhaustive, random, brute-force or replay, not 'randon' (did you mean 'random'?)")]
    [InlineData(new[] { "explain", "CASE1", "--strategy", "brute-forse" }, "not 'brute-forse' (did you mean 'brute-force'?)")]
    [InlineData(new[] { "sweep", "CASE1", "--profile", "linux-6.4-arm" }, "unknown profile 'linux-6.4-arm' (did you mean 'linux-6.4-arm64'?")]
    [InlineData(new[] { "sweep", "CASE1", "--set", "init_on_aloc=on" }, "unknown setting 'init_on_aloc' (did you mean 'init_on_alloc'?)")]
    [InlineData(new[] { "sweep", "CASE1", "--set", "arm64.prep_coheren=clean" }, "did you mean 'arm64.prep_coherent'?")]
    [InlineData(new[] { "explain", "CASE1", "--expect", "fw_sees_paylod" }, "no expectation 'fw_sees_paylod' (did you mean 'fw_sees_payload'?")]
    public void MistypedNamesGetADidYouMean(string[] args, string message)
    {
        var (code, _, stderr) = Run(args.Select(a => a == "CASE1" ? Case1 : a).ToArray());
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void AMistypedKernelFunctionGetsTheNearestNamesNotTheWholeList()
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc",
            "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_singel(d, p, 64, DMA_TO_DEVICE)\n}\n"));
        Assert.Equal("unknown or unmodelled kernel function 'dma_map_singel' (did you mean 'dma_map_single'?)", e.Message);
        var far = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", "profile linux-6.4-arm64\ncpu a {\n  frobnicate(1)\n}\n"));
        Assert.True(far.Message.Length < 160, far.Message);
        Assert.DoesNotContain("dma_alloc_coherent", far.Message, StringComparison.Ordinal);
    }

    /// <summary>The suggestion list is the binder's own: every name in it is a function the binder knows.</summary>
    [Fact]
    public void EveryKnownKernelFunctionIsBound()
    {
        foreach (var name in KernelFunctions.Known)
        {
            var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", $"profile linux-6.4-arm64\ncpu a {{\n  x = {name}()\n}}\n"));
            Assert.DoesNotContain("unknown or unmodelled kernel function", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AMistypedProfileInAScenarioGetsADidYouMean()
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", "profile linux-6.4-arm\ncpu a { signal x }\n"));
        Assert.Contains("unknown profile 'linux-6.4-arm' (did you mean 'linux-6.4-arm64'? known: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EachCommandHasItsOwnHelp()
    {
        var explain = Run("explain", "--help");
        Assert.Equal(0, explain.Code);
        Assert.Contains("dmacheck explain <FILE> [options]", explain.Out, StringComparison.Ordinal);
        Assert.Contains("--save-replay", explain.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--format", explain.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--explorer", explain.Out, StringComparison.Ordinal);
        var check = Run("check", "--help");
        Assert.Contains("--html", check.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--vcd", check.Out, StringComparison.Ordinal);
        Assert.Equal(explain.Out, Run("help", "explain").Out);
    }

    [Theory]
    [InlineData("bash", "complete -o default")]
    [InlineData("zsh", "compdef _dmacheck_complete dmacheck")]
    public void CompletionPrintsAScript(string shell, string expected)
    {
        var (code, stdout, _) = Run("completion", shell);
        Assert.Equal(0, code);
        Assert.Contains(expected, stdout, StringComparison.Ordinal);
        Assert.Contains("[suggest:", stdout, StringComparison.Ordinal);
        Assert.Equal(2, Run("completion", "fish").Code);
    }

    /// <summary>The scripts ask dmacheck itself through the [suggest:N] directive: commands, options, and option values.</summary>
    [Theory]
    [InlineData("dmacheck chec", "check")]
    [InlineData("dmacheck check --fo", "--format")]
    [InlineData("dmacheck check --format ", "sarif")]
    [InlineData("dmacheck explain x.dmc --save", "--save-replay")]
    [InlineData("dmacheck sweep x.dmc --profile linux-6.", "linux-6.4-arm64")]
    [InlineData("dmacheck sweep x.dmc --set init_on_a", "init_on_alloc=")]
    public void CompletionOffersNamesAndValues(string line, string expected)
    {
        var (code, stdout, _) = Run($"[suggest:{line.Length}]", line);
        Assert.Equal(0, code);
        Assert.Contains(expected, stdout.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void ExplainDoesNotCompleteOptionsItDoesNotTake()
    {
        var line = "dmacheck explain x.dmc --";
        var (_, stdout, _) = Run($"[suggest:{line.Length}]", line);
        Assert.Contains("--vcd", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("--explorer", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("--format", stdout, StringComparison.Ordinal);
    }
}
