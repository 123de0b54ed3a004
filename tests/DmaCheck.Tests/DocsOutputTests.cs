using System.Text;
using System.Text.RegularExpressions;
using DmaCheck.Cli;

namespace DmaCheck.Tests;

/// <summary>
/// Documentation that shows dmacheck's output stays true (issue 17 item 7). In README.md and docs/*.md every fenced
/// block has an info string. A <c>```text</c> block is command output: each of its commands, a line
/// <c>$ dmacheck ARGS</c> or <c>$ dotnet run --project src/DmaCheck.Cli -- ARGS</c>, is rerun from the repository
/// root and must print exactly the lines that follow it (timings aside). Any other info string (<c>sh</c>,
/// <c>dmc</c>, <c>json</c>, <c>ebnf</c>...) marks a block that is not command output, and may not show a
/// <c>$ </c> prompt. tools/regen-docs.sh (DMACHECK_UPDATE_DOCS=1) rewrites the output of every command block.
/// </summary>
public partial class DocsOutputTests
{
    private const string DotnetRun = "dotnet run --project src/DmaCheck.Cli -- ";

    private const string Regenerate = "regenerate with tools/regen-docs.sh (it runs this test with DMACHECK_UPDATE_DOCS=1) and review the diff";

    [GeneratedRegex(@" in \d+ ms")]
    private static partial Regex Timing();

    private static string Normalise(string text) => Timing().Replace(text, " in N ms");

    private static bool Updating =>
        Environment.GetEnvironmentVariable("DMACHECK_UPDATE_DOCS") == "1" || Environment.GetEnvironmentVariable("DMACHECK_UPDATE_GOLDEN") == "1";

    /// <summary>README.md and every docs/*.md, relative to the repository root.</summary>
    public static TheoryData<string> Docs()
    {
        var data = new TheoryData<string> { "README.md" };
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.Root, "docs"), "*.md").Order(StringComparer.Ordinal))
        {
            data.Add("docs/" + Path.GetFileName(f));
        }

        return data;
    }

    /// <summary>The arguments of a command line in a doc, or null when it is not a dmacheck command.</summary>
    private static string? Arguments(string line) =>
        line.StartsWith("$ dmacheck ", StringComparison.Ordinal) ? line["$ dmacheck ".Length..]
        : line.StartsWith("$ " + DotnetRun, StringComparison.Ordinal) ? line[("$ " + DotnetRun).Length..]
        : null;

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

    private sealed record Block(int Line, string Info, List<string> Body);

    /// <summary>The fenced blocks of a Markdown file, with the line of their opening fence.</summary>
    private static List<Block> Blocks(string[] lines)
    {
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("```", StringComparison.Ordinal))
            {
                continue;
            }

            var block = new Block(i + 1, lines[i][3..].Trim(), []);
            for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++)
            {
                block.Body.Add(lines[i]);
            }

            blocks.Add(block);
        }

        return blocks;
    }

    /// <summary>
    /// A text block split at its commands: each command's arguments (a line ending in " \\" continues on the next),
    /// the lines that show it, and the output lines that follow.
    /// </summary>
    private static List<(string Args, List<string> Shown, List<string> Output)> Commands(Block block)
    {
        var commands = new List<(string Args, List<string> Shown, List<string> Output)>();
        var continued = false;
        foreach (var line in block.Body)
        {
            if (continued)
            {
                var (args, shown, output) = commands[^1];
                shown.Add(line);
                commands[^1] = (args + " " + line.TrimEnd('\\').Trim(), shown, output);
                continued = line.EndsWith('\\');
            }
            else if (Arguments(line) is { } args)
            {
                commands.Add((args.TrimEnd('\\').Trim(), [line], []));
                continued = line.EndsWith('\\');
            }
            else if (commands.Count > 0)
            {
                commands[^1].Output.Add(line);
            }
        }

        return commands;
    }

    [Theory]
    [MemberData(nameof(Docs))]
    public void CommandOutputsInTheDocsAreCurrent(string doc)
    {
        var path = Path.Combine(TestPaths.Root, doc);
        var text = File.ReadAllText(path);
        var lines = text.Split('\n');
        var problems = new StringBuilder();
        var stale = new StringBuilder();
        var replacements = new List<(int First, int Count, List<string> Body)>();
        foreach (var block in Blocks(lines))
        {
            var where = $"{doc}:{block.Line}";
            if (block.Info.Length == 0)
            {
                problems.AppendLine($"  {where}: a fenced block without an info string: mark it ```text (command output) or ```sh, ```dmc, ```json... (not command output)");
                continue;
            }

            if (block.Info != "text")
            {
                if (block.Body.FirstOrDefault(l => l.StartsWith("$ ", StringComparison.Ordinal)) is { } prompt)
                {
                    problems.AppendLine($"  {where}: '{prompt}' shows a command with a prompt in a ```{block.Info} block, which is not checked: make it a ```text block");
                }

                continue;
            }

            if (block.Body.Count == 0 || Arguments(block.Body[0]) is null)
            {
                problems.AppendLine($"  {where}: a ```text block is command output and must start with '$ dmacheck ARGS' or '$ {DotnetRun}ARGS'; mark other text as ```txt-example if it is not output");
                continue;
            }

            var body = new List<string>();
            foreach (var (args, shown, output) in Commands(block))
            {
                if (args.Contains('"', StringComparison.Ordinal) || args.Contains('\'', StringComparison.Ordinal))
                {
                    problems.AppendLine($"  {where}: '{args}': quoted arguments are not supported in doc commands");
                    continue;
                }

                var actual = Output(args).TrimEnd('\n');
                body.AddRange(shown);
                body.AddRange(actual.Split('\n'));
                if (Normalise(actual) != Normalise(string.Join('\n', output).TrimEnd('\n')))
                {
                    stale.AppendLine($"  {where}: $ dmacheck {args}");
                }
            }

            replacements.Add((block.Line, block.Body.Count, body));
        }

        if (Updating && stale.Length > 0)
        {
            var updated = lines.ToList();
            foreach (var (first, count, body) in Enumerable.Reverse(replacements))
            {
                updated.RemoveRange(first, count);
                updated.InsertRange(first, body);
            }

            File.WriteAllText(path, string.Join('\n', updated));
            stale.Clear();
        }

        Assert.True(problems.Length == 0, $"{doc} has fenced blocks that are neither checked command output nor marked as something else:\n{problems}");
        Assert.True(stale.Length == 0, $"{doc} shows output that dmacheck no longer prints; {Regenerate}:\n{stale}");
    }

    /// <summary>The regenerate script exists and runs this test in update mode (it is what the failure message names).</summary>
    [Fact]
    public void TheRegenerateScriptRunsTheseTestsInUpdateMode()
    {
        var script = File.ReadAllText(Path.Combine(TestPaths.Root, "tools", "regen-docs.sh"));
        Assert.Contains("DMACHECK_UPDATE_DOCS=1", script, StringComparison.Ordinal);
        Assert.Contains(nameof(DocsOutputTests), script, StringComparison.Ordinal);
    }
}
