using System.Text;
using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace DmaCheck.Tests;

/// <summary>The arbitraries the properties of this file draw from.</summary>
public static class GeneratedScenarioArbitraries
{
    public static Arbitrary<GeneratedScenario> Scenarios() => ScenarioGenerator.BruteForceFeasibleArbitrary();
}

/// <summary>Random variants of the bundled seed scenarios.</summary>
public static class SeedVariantArbitraries
{
    private static readonly string[] Seeds = Directory.GetFiles(Path.Combine(TestPaths.Scenarios, "seeds", "qcom-scm"), "*.dmc")
        .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    public static Arbitrary<GeneratedScenario> Scenarios() =>
        (from seed in Gen.Elements(Seeds)
         from size in Gen.Elements(64, 100, 128, 192)
         from profile in Gen.Elements("linux-6.3-arm64", "linux-6.4-arm64")
         from initOnAlloc in Gen.Elements("on", "off")
         from initOnFree in Gen.Elements("on", "off")
         from cache in Gen.Elements("cold", "arbitrary")
         from ivac in Gen.Elements("on", "off")
         from fromDevice in Gen.Elements("clean", "inval")
         from coherent in Gen.Elements("true", "false")
         from access in Gen.Elements("cacheable", "non-cacheable", "device")
         select Variant(seed, size, profile, initOnAlloc, initOnFree, cache, ivac, fromDevice, coherent, access)).ToArbitrary();

    private static GeneratedScenario Variant(string seed, int size, string profile, string initOnAlloc, string initOnFree, string cache, string ivac, string fromDevice, string coherent, string access)
    {
        var lines = seed.Split('\n').Where(l => !l.StartsWith("# expect", StringComparison.Ordinal)).Select(l =>
            l.StartsWith("profile ", StringComparison.Ordinal) ? $"profile {profile}\nset init_on_free = {initOnFree}\nset cache_init = {cache}\nset hw.ivac_as_civac = {ivac}\nset arm64.sync_for_device_from_device = {fromDevice}"
            : l.StartsWith("set init_on_alloc", StringComparison.Ordinal) ? $"set init_on_alloc = {initOnAlloc}"
            : l.StartsWith("device scm", StringComparison.Ordinal) ? $"device scm {{ coherent = {coherent} }}"
            : l.StartsWith("firmware tz {", StringComparison.Ordinal) ? $"firmware tz {{ access = {access} }}"
            : l.Replace("4096", size.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        var text = string.Join('\n', lines);
        return new GeneratedScenario(text, 1, 1, 1, size);
    }
}

/// <summary>
/// Random variants of the seed-2 scenarios: both values of both vmalloc-address switches, init_on_alloc, the
/// initial cache, the device's coherence and the bytes read and written (one to three lines).
/// </summary>
public static class Seed2VariantArbitraries
{
    private static readonly string[] Seeds = Directory.GetFiles(Path.Combine(TestPaths.Scenarios, "seeds", "vmalloc-cpu-addr"), "*.dmc")
        .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    public static Arbitrary<GeneratedScenario> Scenarios() =>
        (from seed in Gen.Elements(Seeds)
         from bytes in Gen.Elements(64, 100, 128, 192)
         from common in Gen.Elements("virt_to_page", "vmalloc_aware")
         from xenFree in Gen.Elements("virt_to_page", "vmalloc_aware")
         from initOnAlloc in Gen.Elements("on", "off")
         from cache in Gen.Elements("cold", "arbitrary")
         from coherent in Gen.Elements("true", "false")
         select Variant(seed, bytes, common, xenFree, initOnAlloc, cache, coherent)).ToArbitrary();

    private static GeneratedScenario Variant(string seed, int bytes, string common, string xenFree, string initOnAlloc, string cache, string coherent)
    {
        var n = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var lines = seed.Split('\n')
            .Where(l => !l.StartsWith("# expect", StringComparison.Ordinal) && !l.StartsWith("set ", StringComparison.Ordinal))
            .Select(l =>
                l.StartsWith("profile ", StringComparison.Ordinal) ? $"{l}\nset dma_common_vaddr_to_page = {common}\nset xen_free_coherent_page = {xenFree}\nset init_on_alloc = {initOnAlloc}\nset cache_init = {cache}"
                : l.StartsWith("device ", StringComparison.Ordinal) ? l.Replace("coherent = false", $"coherent = {coherent}", StringComparison.Ordinal)
                : l.Replace("[0..4096]", $"[0..{n}]", StringComparison.Ordinal).Replace("[0..8192]", $"[0..{n}]", StringComparison.Ordinal).Replace("[0..64]", $"[0..{n}]", StringComparison.Ordinal));
        return new GeneratedScenario(string.Join('\n', lines), 1, 1, 1, bytes);
    }
}

/// <summary>
/// Random variants of the 32-bit arm streaming scenarios on the i.MX6 layout, whose PL310 outer cache is on: the
/// buffer's size (whole lines, or a partial last line for the edge rules of both levels) and the initial cache.
/// </summary>
public static class OuterCacheVariantArbitraries
{
    private static readonly string[] Seeds = Directory.GetFiles(Path.Combine(TestPaths.Scenarios, "streaming"), "arm32-imx6-*.dmc")
        .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    public static Arbitrary<GeneratedScenario> Scenarios() =>
        (from seed in Gen.Elements(Seeds)
         from bytes in Gen.Elements(32, 64, 100, 128, 160)
         from cache in Gen.Elements("cold", "arbitrary")
         select Variant(seed, bytes, cache)).ToArbitrary();

    private static GeneratedScenario Variant(string seed, int bytes, string cache)
    {
        var n = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var lines = seed.Split('\n')
            .Where(l => !l.StartsWith("# expect", StringComparison.Ordinal) && !l.StartsWith("set ", StringComparison.Ordinal))
            .Select(l => l.StartsWith("profile ", StringComparison.Ordinal) ? $"{l}\nset cache_init = {cache}"
                : System.Text.RegularExpressions.Regex.Replace(l, @"\b(64|128)\b", n));
        return new GeneratedScenario(string.Join('\n', lines), 2, 1, 1, bytes);
    }
}

/// <summary>
/// Random variants of the IOMMU scenarios (scenarios/iommu/: streaming maps, bouncing, sg merging, remap allocations):
/// strict or lazy domain (the lazy flush-queue program and the stale IOTLB), the device's coherence (IOMMU_CACHE, no
/// maintenance), the initial cache, and the bounce path's history (where iommu_dma_map_page syncs a bounce for the
/// device, which padding it clears, how much it maps around a bounce, and where the sg syncs of a bounced list look). The scenario's other settings (swiotlb residue and the like) stay.
/// </summary>
public static class IommuVariantArbitraries
{
    private static readonly string[] Seeds = Directory.GetFiles(Path.Combine(TestPaths.Scenarios, "iommu"), "*.dmc")
        .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    private static readonly string[] Varied = ["set cache_init", "set iommu.strict", "set iommu_dma.bounce_map_sync", "set iommu_dma.bounce_padding", "set iommu_dma.bounce_map_size", "set iommu_dma.sync_sg_bounce"];

    public static Arbitrary<GeneratedScenario> Scenarios() =>
        (from seed in Gen.Elements(Seeds)
         from strict in Gen.Elements("on", "off")
         from coherent in Gen.Elements("true", "false")
         from cache in Gen.Elements("cold", "arbitrary")
         from mapSync in Gen.Elements("none", "original", "bounce")
         from padding in Gen.Elements("from_bounce", "pre_post_untrusted")
         from mapSize in Gen.Elements("aligned", "size")
         from syncSg in Gen.Elements("sg_phys", "dma_address")
         select Variant(seed, strict, coherent, cache, mapSync, padding, mapSize, syncSg)).ToArbitrary();

    private static GeneratedScenario Variant(string seed, string strict, string coherent, string cache, string mapSync, string padding, string mapSize, string syncSg)
    {
        var lines = seed.Split('\n')
            .Where(l => !l.StartsWith("# expect", StringComparison.Ordinal) && !Varied.Any(v => l.StartsWith(v, StringComparison.Ordinal)))
            .Select(l => l.StartsWith("profile ", StringComparison.Ordinal)
                ? $"{l}\nset cache_init = {cache}\nset iommu.strict = {strict}\nset iommu_dma.bounce_map_sync = {mapSync}\nset iommu_dma.bounce_padding = {padding}\nset iommu_dma.bounce_map_size = {mapSize}\nset iommu_dma.sync_sg_bounce = {syncSg}"
                : l.Replace("coherent = false", $"coherent = {coherent}", StringComparison.Ordinal));
        return new GeneratedScenario(string.Join('\n', lines), 2, 1, 1, 64);
    }
}

/// <summary>The full generator: dma_alloc_coherent, page clearing and frees. Feasible for the brute force because it keeps only observed lines.</summary>
public static class FullScenarioArbitraries
{
    public static Arbitrary<GeneratedScenario> Scenarios() => ScenarioGenerator.Full().ToArbitrary();
}

/// <summary>
/// The line-set explorer against the brute-force explorer on random small scenarios: per expectation the same
/// verdict, the same fewest events to fail, whether 0 events fail it on every schedule or on some, and the same
/// answers to "can it hold" and "can it fail". (The run
/// counts themselves are not compared: the line-set explorer counts final control states, the brute-force one
/// final states with their lines.)
/// </summary>
public sealed class ExplorerAgreementProperties
{
    /// <summary>
    /// A cap on the brute force, as a guard against a generator change that makes scenarios too big: a case that
    /// reaches it is discarded (and counted), not reported as a disagreement. The generator keeps well below it.
    /// </summary>
    private static readonly ExplorationLimits BruteForceLimits = new(MaxStates: 400_000);

    [Property(MaxTest = 200, Arbitrary = [typeof(GeneratedScenarioArbitraries)])]
    public Property LineSetAndBruteForceAgree(GeneratedScenario generated) => Agree(generated);

    [Property(MaxTest = 150, Arbitrary = [typeof(FullScenarioArbitraries)])]
    public Property LineSetAndBruteForceAgreeWithCoherentAllocations(GeneratedScenario generated) => Agree(generated);

    /// <summary>
    /// The seed cases, where the races live, with their knobs turned at random: profile, switches, init_on_alloc /
    /// init_on_free, the initial cache, stage-2 IVAC, the device's coherence, the firmware's attribute and the
    /// buffer size (one to three lines).
    /// </summary>
    [Property(MaxTest = 120, Arbitrary = [typeof(SeedVariantArbitraries)])]
    public Property LineSetAndBruteForceAgreeOnSeedVariants(GeneratedScenario generated) => Agree(generated);

    /// <summary>The i.MX6 streaming cases with the PL310 outer cache on: both levels, both explorers, every size and initial cache.</summary>
    [Property(MaxTest = 60, Arbitrary = [typeof(OuterCacheVariantArbitraries)])]
    public Property LineSetAndBruteForceAgreeWithTheOuterCache(GeneratedScenario generated) => Agree(generated);

    /// <summary>The IOMMU cases (issue 16): strict and lazy domains, translation and permission faults, IOVA reuse, the stale IOTLB, swiotlb bouncing and its history switches, sg merging, remap allocations with dma_mmap_coherent; verdicts and findings.</summary>
    [Property(MaxTest = 40, Arbitrary = [typeof(IommuVariantArbitraries)])]
    public Property LineSetAndBruteForceAgreeOnIommuVariants(GeneratedScenario generated) => Agree(generated);

    /// <summary>The seed-2 cases: Xen and dma-direct, arm64 and arm32, tenants, user mappings, sg tables, pools; verdicts and findings.</summary>
    [Property(MaxTest = 120, Arbitrary = [typeof(Seed2VariantArbitraries)])]
    public Property LineSetAndBruteForceAgreeOnSeed2Variants(GeneratedScenario generated) => Agree(generated);

    /// <summary>
    /// The line-set explorer with two threads against one: the same verdicts, minimum events, run counts, findings and
    /// state counts (the levels are merged in one thread's order), on the full generator and on the seed-2 variants.
    /// </summary>
    [Property(MaxTest = 100, Arbitrary = [typeof(FullScenarioArbitraries)])]
    public Property OneAndTwoThreadsGiveTheSameResult(GeneratedScenario generated) => SameWithThreads(generated);

    [Property(MaxTest = 60, Arbitrary = [typeof(Seed2VariantArbitraries)])]
    public Property OneAndTwoThreadsGiveTheSameResultOnSeed2Variants(GeneratedScenario generated) => SameWithThreads(generated);

    /// <summary>
    /// The unreduced search (the packed frontier) with two threads and work items of one or a few nodes, so that every
    /// level of a small scenario is expanded, marked and written in parallel, against one thread: the same verdicts,
    /// minimum events, findings, state and transition counts, and the same witness runs.
    /// </summary>
    [Property(MaxTest = 60, Arbitrary = [typeof(FullScenarioArbitraries)])]
    public Property OneAndTwoThreadsGiveTheSameUnreducedSearch(GeneratedScenario generated, PositiveInt chunk)
    {
        var scenario = Binder.Load("gen.dmc", generated.Text);
        var limits = ExplorationLimits.Default with { Reduction = false };
        var oneExplorer = new LineSetExplorer { Threads = 1 };
        var twoExplorer = new LineSetExplorer { Threads = 2, ChunkNodes = 1 + (chunk.Get % 4) };
        var one = oneExplorer.Explore(new ScenarioModel(scenario), limits);
        var two = twoExplorer.Explore(new ScenarioModel(scenario), limits);
        var a = Fuzzer.Summary(one) + $"|{one.Stats.States}/{one.Stats.Transitions}|{one.Inconclusive}|" + Witnesses(oneExplorer);
        var b = Fuzzer.Summary(two) + $"|{two.Stats.States}/{two.Stats.Transitions}|{two.Inconclusive}|" + Witnesses(twoExplorer);
        return (a == b).Label($"one thread:\n{a}\ntwo threads:\n{b}\n--- scenario ---\n{generated.Text}");

        static string Witnesses(LineSetExplorer explorer) => string.Join(";", explorer.Failures.OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => $"{f.Key}:{f.Value.Cost}:{string.Join(",", f.Value.Node.Path().Select(s => $"{s.Agent}@{s.Statement.Span.Line}"))}"));
    }

    /// <summary>
    /// Issue 14: the reduced line-set explorer against the brute force on the smaller driver-shaped group scenarios
    /// (<see cref="GroupScenarios.Small"/>): verdicts, fewest events, quiet failures and findings. A case the brute force
    /// cannot finish within its cap is discarded and counted.
    /// </summary>
    [Property(MaxTest = GroupCases, Arbitrary = [typeof(SmallGroupScenarioArbitraries)])]
    public Property LineSetAndBruteForceAgreeOnGroupScenarios(GroupScenario generated)
    {
        var scenario = Binder.Load("gen.dmc", generated.Text);
        var lineSet = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), GroupBruteForceLimits);
        var disagreements = Compare(lineSet, brute);
        return (lineSet.Inconclusive is null && disagreements.Count == 0)
            .Label(Report(generated.Text, lineSet, brute, disagreements))
            .When(brute.Inconclusive is null)
            .Classify(generated.Groups > 1, "several groups")
            .Classify(lineSet.Findings.Count > 0, "findings")
            .Classify(lineSet.Verdicts.Any(v => v.MinEventsToFail > 0), "some expectation needs events to fail")
            .Classify(generated.Variants.Count > 0, "dependent variant")
            .Classify(true, $"platform {generated.Platform}");
    }

    /// <summary>How many small group scenarios CI checks against the brute force.</summary>
    private const int GroupCases = 60;

    /// <summary>A tighter cap than <see cref="BruteForceLimits"/>: the brute force is far slower per state on these rings.</summary>
    private static readonly ExplorationLimits GroupBruteForceLimits = new(MaxStates: 50_000);

    private static Property SameWithThreads(GeneratedScenario generated)
    {
        var scenario = Binder.Load("gen.dmc", generated.Text);
        var one = new LineSetExplorer { Threads = 1 }.Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var two = new LineSetExplorer { Threads = 2 }.Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var a = Fuzzer.Summary(one) + $"|{one.Inconclusive}";
        var b = Fuzzer.Summary(two) + $"|{two.Inconclusive}";
        return (a == b).Label($"one thread:\n{a}\ntwo threads:\n{b}\n--- scenario ---\n{generated.Text}");
    }

    private static Property Agree(GeneratedScenario generated)
    {
        var scenario = Binder.Load("gen.dmc", generated.Text);
        var lineSet = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), BruteForceLimits);
        var disagreements = Compare(lineSet, brute);
        var agree = lineSet.Inconclusive is null && disagreements.Count == 0;
        return agree
            .Label(Report(generated.Text, lineSet, brute, disagreements))
            .When(brute.Inconclusive is null)
            .Classify(lineSet.Verdicts.Any(v => v.Verdict == Verdict.Sometimes), "some expectation Sometimes")
            .Classify(lineSet.Verdicts.Any(v => v.MinEventsToFail > 0), "some expectation needs events to fail")
            .Classify(generated.Text.Contains("\n  poll ", StringComparison.Ordinal), "polls")
            .Classify(lineSet.Stats.Hung > 0, "some run hung at a poll");
    }

    /// <summary>Every way the two results differ, in words; empty when they agree.</summary>
    public static IReadOnlyList<string> Compare(ExplorationResult lineSet, ExplorationResult brute)
    {
        var differences = new List<string>();
        if (lineSet.Inconclusive is not null)
        {
            differences.Add($"line-set is inconclusive: {lineSet.Inconclusive}");
        }

        var findingsA = lineSet.Findings.Select(f => f.Key).Order(StringComparer.Ordinal).ToList();
        var findingsB = brute.Findings.Select(f => f.Key).Order(StringComparer.Ordinal).ToList();
        if (!findingsA.SequenceEqual(findingsB))
        {
            differences.Add($"findings [{string.Join(", ", findingsA)}] (line-set) vs [{string.Join(", ", findingsB)}] (brute-force)");
        }

        if (lineSet.Verdicts.Count != brute.Verdicts.Count)
        {
            differences.Add($"line-set has {lineSet.Verdicts.Count} verdicts, brute-force {brute.Verdicts.Count}");
            return differences;
        }

        for (var i = 0; i < lineSet.Verdicts.Count; i++)
        {
            var a = lineSet.Verdicts[i];
            var b = brute.Verdicts[i];
            var name = a.Expectation.Name;
            if (a.Verdict != b.Verdict)
            {
                differences.Add($"{name}: verdict {a.Verdict} (line-set) vs {b.Verdict} (brute-force)");
            }

            if (a.MinEventsToFail != b.MinEventsToFail)
            {
                differences.Add($"{name}: min events to fail {a.MinEventsText} (line-set) vs {b.MinEventsText} (brute-force)");
            }

            if (a.FailsOnEveryQuietRun != b.FailsOnEveryQuietRun)
            {
                differences.Add($"{name}: with 0 events fails on {a.QuietFailureName ?? "none"} (line-set) vs {b.QuietFailureName ?? "none"} (brute-force)");
            }

            if (a.HoldingRuns > 0 != b.HoldingRuns > 0)
            {
                differences.Add($"{name}: can hold {a.HoldingRuns > 0} (line-set) vs {b.HoldingRuns > 0} (brute-force)");
            }

            if (a.FailingRuns > 0 != b.FailingRuns > 0)
            {
                differences.Add($"{name}: can fail {a.FailingRuns > 0} (line-set) vs {b.FailingRuns > 0} (brute-force)");
            }
        }

        return differences;
    }

    /// <summary>The scenario, both results and the differences: what a failing case prints.</summary>
    public static string Report(string text, ExplorationResult lineSet, ExplorationResult brute, IReadOnlyList<string> differences)
    {
        var sb = new StringBuilder();
        sb.Append("the explorers disagree:\n");
        foreach (var d in differences)
        {
            sb.Append("  ").Append(d).Append('\n');
        }

        sb.Append("--- scenario ---\n").Append(text);
        sb.Append("--- line-set ---\n").Append(Describe(lineSet));
        sb.Append("--- brute-force ---\n").Append(Describe(brute));
        return sb.ToString();
    }

    public static string Describe(ExplorationResult result)
    {
        var sb = new StringBuilder();
        foreach (var v in result.Verdicts)
        {
            sb.Append($"  {v.Expectation.Name}: {v.Verdict}, min events {v.MinEventsCell}, holding runs {v.HoldingRuns}, failing runs {v.FailingRuns}\n");
        }

        sb.Append($"  states {result.Stats.States}, final states {result.Stats.FinalStates}, {result.Stats.Elapsed.TotalMilliseconds:0} ms");
        if (result.Inconclusive is not null)
        {
            sb.Append(", inconclusive: ").Append(result.Inconclusive);
        }

        return sb.Append('\n').ToString();
    }
}
