using System.Diagnostics;
using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// A limit stops the search within about a second of its value, whatever the search is doing (issue 17, item 11:
/// --timeout 120 on a four-agent ring scenario returned after 159 s, because the limits were checked only while a
/// breadth-first level was merged, after the whole level had been expanded). Not a speed measurement: the bound is the
/// limit plus a margin, on a search whose levels grow to several seconds each.
/// </summary>
public class LimitOvershootTests
{
    /// <summary>Twelve threads of three steps, explored without the reduction: the levels widen to tens of thousands of states.</summary>
    private static string Wide()
    {
        var sb = new StringBuilder("profile linux-6.4-arm64\n");
        for (var a = 0; a < 12; a++)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"cpu t{a} {{\n  b{a} = kmalloc(64, GFP_KERNEL)\n  write b{a}[0..64] = w{a}\n  write b{a}[0..8] = v{a}\n}}\n");
        }

        return sb.ToString();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ATimeoutStopsInsideALevel(int threads)
    {
        var model = new ScenarioModel(Binder.Load("wide.dmc", Wide()));
        var timeout = TimeSpan.FromSeconds(2);
        var watch = Stopwatch.StartNew();
        var result = new LineSetExplorer { Threads = threads }.Explore(model, new ExplorationLimits(Timeout: timeout, Threads: threads, Reduction: false));
        watch.Stop();
        Assert.NotNull(result.Inconclusive);
        Assert.StartsWith("timeout after", result.Inconclusive, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < timeout + TimeSpan.FromSeconds(1), $"stopped {watch.Elapsed.TotalSeconds:0.00} s after the start, for a {timeout.TotalSeconds} s timeout");
    }
}
