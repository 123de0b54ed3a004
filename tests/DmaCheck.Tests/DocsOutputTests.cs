using System.Text;
using System.Text.RegularExpressions;
using DmaCheck.Cli;

namespace DmaCheck.Tests;

/// <summary>
/// Documentation that shows dmacheck's output stays true: every fenced block that starts with
/// <c>$ dmacheck ARGS</c> is rerun and compared, timings aside. DMACHECK_UPDATE_GOLDEN=1 rewrites the blocks.
/// </summary>
public partial class DocsOutputTests
{
    [GeneratedRegex(@"```\n\$ dmacheck (?<args>[^\n]*)\n(?<output>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CommandBlock();

    [GeneratedRegex(@" in \d+ ms")]
    private static partial Regex Timing();

    private static string Normalise(string text) => Timing().Replace(text, " in N ms");

    /// <summary>Runs the CLI as a user would, from the repository root, so paths print as the docs show them.</summary>
    private static string Output(string args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            WorkingDirectory = TestPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var a in args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["NO_COLOR"] = "1";
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return stderr.Result + stdout;
    }

    [Theory]
    [InlineData("docs/seed2.md")]
    [InlineData("docs/trace.md")]
    [InlineData("README.md")]
    public void CommandOutputsInTheDocsAreCurrent(string doc)
    {
        var path = Path.Combine(TestPaths.Root, doc);
        var text = File.ReadAllText(path);
        var blocks = CommandBlock().Matches(text);
        Assert.NotEmpty(blocks);
        if (Environment.GetEnvironmentVariable("DMACHECK_UPDATE_GOLDEN") == "1")
        {
            var updated = CommandBlock().Replace(text, m => $"```\n$ dmacheck {m.Groups["args"].Value}\n{Output(m.Groups["args"].Value)}```");
            File.WriteAllText(path, updated);
            text = updated;
            blocks = CommandBlock().Matches(text);
        }

        var stale = new StringBuilder();
        foreach (Match m in blocks)
        {
            var args = m.Groups["args"].Value;
            if (Normalise(Output(args)) != Normalise(m.Groups["output"].Value))
            {
                stale.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"  $ dmacheck {args}");
            }
        }

        Assert.True(stale.Length == 0, $"{doc} shows output that dmacheck no longer prints; regenerate with DMACHECK_UPDATE_GOLDEN=1:\n{stale}");
    }
}
