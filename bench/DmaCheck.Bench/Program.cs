using System.Globalization;
using BenchmarkDotNet.Running;
using DmaCheck.Fuzzing;

namespace DmaCheck.Bench;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet's switcher, <c>rings</c> (rewrites bench/scenarios/rings/), or <c>fuzz [--valid N] [--invalid N] [--groups N] [--seed S] [--jobs J] [--out DIR] [--regressions DIR]</c>
    /// for a long fuzz run whose summary goes to docs/robustness.md (<c>--groups</c>: driver-shaped group scenarios whose
    /// reduced and unreduced searches are compared, issue 14). Each failing input goes to <c>--out</c> as found, and
    /// shrunk to <c>--regressions</c> (default: the repository's tests/regressions/).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "fuzz")
        {
            return Fuzz(args.Skip(1).ToArray());
        }

        if (args.Length > 0 && args[0] == "rings")
        {
            // Regenerates bench/scenarios/rings/ (RingScenariosTests checks the committed files against the generator).
            // With "rings N DIR": the three scenarios of N descriptors only, into DIR (larger rings than the committed ones).
            if (args.Length == 3 && int.TryParse(args[1], out var n))
            {
                Directory.CreateDirectory(args[2]);
                foreach (var (kind, rx, tx) in new[] { ("rx", true, false), ("tx", false, true), ("rxtx", true, true) })
                {
                    File.WriteAllText(Path.Combine(args[2], RingScenarios.FileName(kind, n)), RingScenarios.Render(n, rx, tx));
                }

                return 0;
            }

            RingScenarios.WriteAll(Path.Combine(Repository.Root(), "bench", "scenarios", "rings"));
            return 0;
        }

        if (args.Length > 0 && args[0] == "reduction")
        {
            // reduction FILE...: the reduced and the unreduced search of each file, and how they differ (issue 14).
            var differ = 0;
            foreach (var file in args.Skip(1))
            {
                var d = Fuzzer.CheckReduction(File.ReadAllText(file), out var agreed);
                Console.WriteLine($"== {file}: {(d is null ? "agree" : d.Invariant)}\n{d?.Detail ?? agreed}");
                differ += d is null ? 0 : 1;
            }

            return differ == 0 ? 0 : 1;
        }

        if (args.Length > 0 && args[0] == "stats")
        {
            return Stats(args.Skip(1).ToArray());
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }

    /// <summary>
    /// <c>stats [--no-reduction] [--threads N] [--max-states N] [--repeat N] FILE...</c>: N searches per file (default 1), in
    /// process, printing for each the states, transitions, stored bytes per state, states per second, wall time, the
    /// process's CPU time (all its threads; on a machine shared with other work, states per CPU second is the steadier
    /// figure) and garbage collections, then with N > 1 the medians of the states per second and per CPU second (the
    /// first search includes the JIT's warm-up; for docs/performance.md).
    /// </summary>
    private static int Stats(string[] args)
    {
        var reduction = true;
        var threads = 1;
        var repeat = 1;
        long maxStates = 5_000_000;
        var files = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--no-reduction": reduction = false; break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--max-states": maxStates = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeat": repeat = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: files.Add(args[i]); break;
            }
        }

        Console.WriteLine("file\tstates\ttransitions\tfinals\tbytes/state\tstates/s\tseconds\tcpu-s\tgc0/1/2\tgc-pause-ms\tinconclusive");
        foreach (var file in files)
        {
            var rates = new List<double>();
            var cpuRates = new List<double>();
            for (var run = 0; run < repeat; run++)
            {
                var model = new DmaCheck.Scenarios.ScenarioModel(DmaCheck.Scenarios.Binder.Load(file, File.ReadAllText(file)));
                var gcs = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
                var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
                var paused = GC.GetTotalPauseDuration();
                var watch = System.Diagnostics.Stopwatch.StartNew();
                var r = new DmaCheck.Exploration.LineSetExplorer { Threads = threads }.Explore(model,
                    new DmaCheck.Exploration.ExplorationLimits(MaxStates: maxStates, Threads: threads, Reduction: reduction));
                var s = watch.Elapsed.TotalSeconds;
                var cpuSeconds = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                var st = r.Stats;
                rates.Add(st.States / s);
                cpuRates.Add(st.States / cpuSeconds);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Path.GetFileName(file)}\t{st.States}\t{st.Transitions}\t{st.FinalStates}\t{(st.States == 0 ? 0 : (double)st.StoredBytes / st.States):0.0}\t{st.States / s:0}\t{s:0.000}\t{cpuSeconds:0.000}\t{GC.CollectionCount(0) - gcs.Item1}/{GC.CollectionCount(1) - gcs.Item2}/{GC.CollectionCount(2) - gcs.Item3}\t{(GC.GetTotalPauseDuration() - paused).TotalMilliseconds:0}\t{r.Inconclusive}"));
            }

            if (repeat > 1)
            {
                rates.Sort();
                cpuRates.Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Path.GetFileName(file)}\tmedian states/s over {repeat} searches: {rates[repeat / 2]:0}; per CPU second: {cpuRates[repeat / 2]:0}"));
            }
        }

        return 0;
    }

    private static int Fuzz(string[] args)
    {
        int valid = 2_000, invalid = 20_000, groups = 0, jobs = Environment.ProcessorCount;
        ulong seed = 1;
        string? output = null, regressions = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--valid": valid = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--invalid": invalid = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--groups": groups = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seed": seed = ulong.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--jobs": jobs = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--out": output = args[i + 1]; break;
                case "--regressions": regressions = args[i + 1]; break;
                default: Console.Error.WriteLine($"unknown fuzz option {args[i]}"); return 2;
            }
        }

        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "dmacheck.slnx")))
        {
            root = root.Parent;
        }

        regressions ??= Path.Combine(root?.FullName ?? ".", "tests", "regressions");
        var seeds = Directory.EnumerateFiles(Path.Combine(root?.FullName ?? ".", "scenarios"), "*.dmc", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var summaries = Enumerable.Range(0, jobs).AsParallel().WithDegreeOfParallelism(jobs)
            .Select(j => new Fuzzer(seeds, output).Run(valid / jobs, invalid / jobs, seed + (ulong)j, regressions))
            .ToList();
        var total = new FuzzSummary(
            summaries.Sum(s => s.Valid), summaries.Sum(s => s.Invalid), summaries.Sum(s => s.Crashes), summaries.Sum(s => s.Hangs),
            summaries.Sum(s => s.Disagreements), summaries.Sum(s => s.ReplayFailures), summaries.Sum(s => s.LimitFailures),
            summaries.Sum(s => s.BruteForceSkipped), watch.Elapsed, summaries.SelectMany(s => s.Failures).ToList());
        Console.WriteLine($"seed {seed}, {jobs} jobs: {total}");
        foreach (var f in total.Failures.Take(20))
        {
            Console.WriteLine("--- " + f);
        }

        // Issue 14: the interleaving reduction against the unreduced search on driver-shaped group scenarios.
        var grouped = new Fuzzer(seeds, output).RunGroups(groups, seed, regressions, jobs, Console.Error.WriteLine);
        if (groups > 0)
        {
            Console.WriteLine($"seed {seed}, {jobs} jobs: {grouped}");
            foreach (var f in grouped.Failures.Take(20))
            {
                Console.WriteLine("--- " + f);
            }
        }

        return total.Problems == 0 && grouped.Problems == 0 ? 0 : 1;
    }
}
