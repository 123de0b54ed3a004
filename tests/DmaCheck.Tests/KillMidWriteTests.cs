using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 7: the real <c>dmacheck</c> process, killed (SIGKILL) while it writes a large HTML report, never leaves a
/// truncated report. The target either keeps its previous content or holds the complete new report, byte for byte;
/// the only other thing a kill may leave is AtomicFile's temporary file, hidden, beside the target, named after the
/// target and the killed process (docs/robustness.md).
/// </summary>
public partial class KillMidWriteTests(ITestOutputHelper output)
{
    /// <summary>Expectations in the scenario: each fails, and each failure gets a timeline in the report (about 12 MB).</summary>
    private const int Reads = 150;

    private const string Target = "report.html";

    private const string Previous = "<!DOCTYPE html>\n<html><body>the report of an earlier run</body></html>\n";

    [GeneratedRegex(@"^\.report\.html\.(\d+)\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TempName();

    /// <summary>A scenario whose HTML report is large: <see cref="Reads"/> firmware reads, each with a failing expectation.</summary>
    private static string BigScenario()
    {
        var text = new StringBuilder();
        text.Append("profile linux-6.4-arm64\nset init_on_alloc = on\ndevice scm { coherent = false }\nfirmware tz { access = cacheable }\n");
        text.Append($"cpu driver {{\n  buf = dma_alloc_coherent(scm, {Reads * 64}, GFP_KERNEL)\n  write buf[0..{Reads * 64}] = payload\n  smc tz(buf.dma)\n}}\n");
        text.Append("firmware tz on smc(addr) {\n");
        for (var i = 0; i < Reads; i++)
        {
            text.Append($"  read phys(addr)[{i * 64}..{(i + 1) * 64}] -> s{i}\n");
        }

        text.Append("}\n");
        for (var i = 0; i < Reads; i++)
        {
            text.Append($"expect e{i}: s{i} == payload\n");
        }

        return text.ToString();
    }

    /// <summary>Starts the CLI's build output (copied beside the tests by the project reference) as its own process.</summary>
    private static Process Start(string dir)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "DmaCheck.Cli.dll");
        Assert.True(File.Exists(cli), $"the CLI build output is missing: {cli}");
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { cli, "check", "big.dmc", "--html", Target, "--no-color" })
        {
            info.ArgumentList.Add(a);
        }

        var p = Process.Start(info)!;
        // Drain the pipes so that a full pipe never blocks the writer.
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void Kill(Process p)
    {
        try
        {
            p.Kill();
        }
        catch (InvalidOperationException)
        {
            // it had already exited
        }

        Assert.True(p.WaitForExit(30_000), "the killed process did not exit");
    }

    /// <summary>
    /// Checks the directory after a run: the target is absent, the previous report or the complete new one, and any
    /// other file is a temporary file of the killed process (returned, so the caller can count and remove it).
    /// </summary>
    private static List<string> CheckDirectory(string dir, int pid, string? before, byte[] complete, string when)
    {
        var path = Path.Combine(dir, Target);
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            var ok = bytes.AsSpan().SequenceEqual(complete) || (before is not null && Encoding.UTF8.GetString(bytes) == before);
            Assert.True(ok, $"{when}: {Target} is neither the previous report nor the complete new one: {bytes.Length} of {complete.Length} bytes, " +
                $"ending '{Encoding.UTF8.GetString(bytes[Math.Max(0, bytes.Length - 40)..])}'");
        }
        else
        {
            Assert.Null(before); // a report that was there before the run must not be lost
        }

        var temps = new List<string>();
        foreach (var f in Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Where(f => f is not ("big.dmc" or Target)))
        {
            var m = TempName().Match(f!);
            Assert.True(m.Success, $"{when}: unexpected file {f} left in the output directory");
            Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Groups[1].Value);
            temps.Add(Path.Combine(dir, f!));
        }

        return temps;
    }

    [Fact]
    public void AKilledWriterNeverLeavesATruncatedReport()
    {
        var dir = Path.Combine(Path.GetTempPath(), "dmacheck-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "big.dmc"), BigScenario());
        var target = Path.Combine(dir, Target);

        // A complete run: the reference report (the output is deterministic) and how long a run takes.
        var watch = Stopwatch.StartNew();
        using (var p = Start(dir))
        {
            Assert.True(p.WaitForExit(120_000), "the reference run did not finish");
            Assert.Equal(1, p.ExitCode); // every expectation can fail, none is declared
        }

        var duration = watch.Elapsed;
        var complete = File.ReadAllBytes(target);
        Assert.True(complete.Length > 4_000_000, $"the report is only {complete.Length} bytes: too small to be caught mid-write");
        Assert.EndsWith("</html>\n", Encoding.UTF8.GetString(complete[^20..]), StringComparison.Ordinal);
        Assert.Empty(CheckDirectory(dir, 0, null, complete, "after the complete run"));

        var leftovers = 0;
        var killedWhileWriting = 0;

        // Kills as soon as anything new appears in the directory: the moment the write has started.
        for (var run = 0; run < 4; run++)
        {
            File.Delete(target);
            using var p = Start(dir);
            while (!p.HasExited && !Directory.EnumerateFileSystemEntries(dir).Any(e => Path.GetFileName(e) != "big.dmc"))
            {
                Thread.SpinWait(100);
            }

            var wasRunning = !p.HasExited;
            Kill(p);
            var temps = CheckDirectory(dir, p.Id, null, complete, $"kill on the first new file, run {run}");
            if (wasRunning && p.ExitCode != 1)
            {
                killedWhileWriting++;
            }

            leftovers += temps.Count;
            temps.ForEach(File.Delete);
        }

        // Kills after seeded random delays over the whole run, half of them over the report of an earlier run.
        var random = new Random(7);
        for (var run = 0; run < 8; run++)
        {
            string? before = null;
            if (run % 2 == 0)
            {
                File.WriteAllText(target, Previous);
                before = Previous;
            }
            else
            {
                File.Delete(target);
            }

            using var p = Start(dir);
            Thread.Sleep(TimeSpan.FromMilliseconds(random.NextDouble() * duration.TotalMilliseconds * 1.2));
            Kill(p);
            var temps = CheckDirectory(dir, p.Id, before, complete, $"kill after a random delay, run {run}");
            leftovers += temps.Count;
            temps.ForEach(File.Delete);
        }

        Assert.True(killedWhileWriting > 0, "no run was killed while it was writing the report, so nothing was tested");
        output.WriteLine($"report {complete.Length} bytes, a run {duration.TotalMilliseconds:0} ms; {killedWhileWriting} of 4 first-sight kills landed " +
            $"while the report was being written; {leftovers} temporary file(s) left by the 12 kills, all hidden and named after the killed process");
        Directory.Delete(dir, recursive: true);
    }
}
