using System.Diagnostics;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>
/// <c>--shard K/N</c> and <c>merge</c> (issue 17, item 10): N shards run as separate processes, merged, give byte for byte
/// the report and the exit code of the unsharded run.
/// </summary>
public class ShardTests
{
    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = TestPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(Cli.Program).Assembly.Location);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["NO_COLOR"] = "1";
        return Process.Start(start)!;
    }

    private static (int Code, string Out) Finish(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _ = stderr.Result;
        var result = (p.ExitCode, stdout);
        p.Dispose();
        return result;
    }

    private static string Failing()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "differs.dmc"),
            "profile linux-6.4-arm64\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  kfree(p)\n  kfree(p)\n}\n");
        return dir;
    }

    [Theory]
    [InlineData(3, false, null)]
    [InlineData(4, true, null)]
    [InlineData(2, false, "3")]
    public void ShardsRunApartMergeToTheUnshardedReport(int n, bool withFailure, string? maxStates)
    {
        string[] args = ["check", "scenarios/seeds", .. withFailure ? new[] { Failing() } : [], "--format", "json", .. maxStates is null ? [] : new[] { "--max-states", maxStates }];
        var whole = Start(args);
        var shards = Enumerable.Range(1, n).Select(k => Start([.. args, "--shard", $"{k}/{n}"])).ToList(); // N processes at once
        var (wholeCode, wholeJson) = Finish(whole);
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        foreach (var (p, k) in shards.Select((p, i) => (p, i + 1)))
        {
            var (_, json) = Finish(p);
            files.Add(Path.Combine(dir, $"shard-{k}.json"));
            File.WriteAllText(files[^1], json);
        }

        files.Reverse(); // any order
        var (mergeCode, merged) = Finish(Start(["merge", .. files]));
        Assert.Equal(wholeJson, merged);
        Assert.Equal(wholeCode, mergeCode);
        Assert.Equal(withFailure ? 1 : maxStates is null ? 0 : 3, wholeCode);
    }

    [Fact]
    public void SweepShardsMergeToTheUnshardedSweep()
    {
        var file = Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm", "case1-v6.4-init-on-alloc.dmc");
        string[] args = ["sweep", file, "--profile", "linux-6.3-arm64,linux-6.4-arm64", "--set", "init_on_alloc=on,off", "--format", "json"];
        var (code, whole) = Finish(Start(args));
        var shards = Enumerable.Range(1, 3).Select(k => ($"{k}.json", Finish(Start([.. args, "--shard", $"{k}/3"])).Out)).ToList();
        var (merged, mergedCode) = ShardMerge.Merge(shards);
        Assert.Equal(whole, merged);
        Assert.Equal(code, mergedCode);
    }

    [Fact]
    public void EveryItemIsInExactlyOneShard()
    {
        var items = Enumerable.Range(0, 23).ToList();
        var slices = Enumerable.Range(1, 5).Select(k => new Shard(k, 5)).ToList();
        Assert.Equal(items, slices.SelectMany(s => s.Take(items)).Order());
        Assert.All(slices, s => Assert.Equal(s.Take(items).Count, s.Size(items.Count)));
    }

    [Theory]
    [InlineData("0/3")]
    [InlineData("4/3")]
    [InlineData("1/0")]
    [InlineData("x")]
    [InlineData("-1/2")]
    public void AMalformedShardIsBadInput(string shard)
    {
        var stderr = new StringWriter();
        Assert.Equal(2, Cli.Program.Run(["check", "--shard", shard], new StringWriter(), stderr, colour: false));
        Assert.Contains("--shard takes K/N", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AnIncompleteOrMixedShardSetIsRefused()
    {
        string Shard(int k, int n, int total, int items) =>
            $"{{\"version\": 1, \"shard\": {{\"index\": {k}, \"count\": {n}, \"total\": {total}}}, \"scenarios\": [{string.Join(", ", Enumerable.Repeat("{}", items))}]}}";
        Assert.Contains("2/2 missing", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", Shard(1, 2, 3, 2))])).Message, StringComparison.Ordinal);
        Assert.Contains("given twice", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", Shard(1, 2, 3, 2)), ("b", Shard(1, 2, 3, 2))])).Message, StringComparison.Ordinal);
        Assert.Contains("shards of different runs", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", Shard(1, 2, 3, 2)), ("b", Shard(2, 2, 4, 2))])).Message, StringComparison.Ordinal);
        Assert.Contains("should hold 1 item(s), not 2", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", Shard(1, 2, 3, 2)), ("b", Shard(2, 2, 3, 2))])).Message, StringComparison.Ordinal);
        Assert.Contains("not a shard's report", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", "{\"version\": 1, \"scenarios\": []}")])).Message, StringComparison.Ordinal);
        Assert.Contains("not JSON", Assert.Throws<MergeException>(() => ShardMerge.Merge([("a", "\u0000")])).Message, StringComparison.Ordinal);
    }
}
