using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>Bounds on a search. Hitting one makes every verdict inconclusive.</summary>
/// <summary>Where a running search is, for a progress line: states stored, the breadth-first depth, time so far.</summary>
public readonly record struct ExplorationProgress(long States, int Depth, TimeSpan Elapsed);

/// <param name="Threads">Threads the line-set explorer expands each breadth-first level with; the results do not depend on it.</param>
/// <param name="Progress">Called about four times a second while the line-set explorer runs (for a progress line on a terminal).</param>
/// <param name="Reduction">Let the line-set explorer skip interleavings that only reorder commuting steps (<c>--no-reduction</c> turns it off); the results do not depend on it.</param>
public sealed record ExplorationLimits(long MaxStates = 5_000_000, TimeSpan? Timeout = null, long? MaxMemoryBytes = null, int Threads = 1,
    Action<ExplorationProgress>? Progress = null, bool Reduction = true)
{
    public static ExplorationLimits Default { get; } = new();

    /// <summary>Why the search must stop now, or null. Memory is sampled, so call it every few hundred states.</summary>
    /// <param name="checkMemory">Whether to read the managed heap's size this time: it costs more than a step of a small scenario, so searches sample it.</param>
    public string? Exceeded(System.Diagnostics.Stopwatch watch, long states, bool checkMemory = true)
    {
        if (Timeout is { } t && watch.Elapsed > t)
        {
            return $"timeout after {watch.Elapsed.TotalSeconds:0.###} s with {states} states explored";
        }

        if (states > MaxStates)
        {
            return $"state limit reached: {MaxStates} states explored";
        }

        var m = MaxMemoryBytes ?? DefaultMemoryLimit;
        if (checkMemory && GC.GetTotalMemory(false) is var used && used > m)
        {
            return $"memory limit reached: {used / (1 << 20)} MiB in use (limit {m / (1 << 20)} MiB) with {states} states explored";
        }

        return null;
    }

    /// <summary>Without --max-memory: three quarters of the memory available to the process, so a run ends inconclusive before the machine swaps.</summary>
    public static long DefaultMemoryLimit { get; } = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4 * 3;
}

/// <summary>
/// The parameters of <see cref="RandomStrategy"/> (<c>--strategy random --seed S --runs N</c>): N runs, each choosing
/// the next agent uniformly at random from a generator seeded with S (System.Random's seeded sequence, the same on
/// every run and platform). Each run's hardware is still explored exactly (every cache behaviour of that
/// interleaving), but interleavings not drawn are not: the verdicts are sampled, not proven.
/// </summary>
public sealed record RandomSampling(int Seed, int Runs)
{
    /// <summary>The sampling without --seed and --runs.</summary>
    public static RandomSampling Default { get; } = new(1, 1000);

    public string Describe() => $"sampled: {Runs} random interleaving(s), seed {Seed}; every cache behaviour of each, but not every interleaving: a verdict is what these runs show, not a proof";
}

/// <summary>Thrown inside a step when a limit is reached; the explorer turns it into an inconclusive result.</summary>
internal sealed class LimitReachedException(string reason) : Exception(reason);

internal static class LimitChecks
{
    /// <summary>Checks the limits every 4096 calls: for long loops inside one step (a step over a large buffer).</summary>
    public static void Tick(ref int counter, ExplorationLimits limits, System.Diagnostics.Stopwatch watch, long states)
    {
        if ((++counter & 4095) == 0 && limits.Exceeded(watch, states) is { } reason)
        {
            throw new LimitReachedException(reason);
        }
    }
}

/// <summary>The verdict on one expectation.</summary>
/// <param name="MinEventsToFail">The fewest spontaneous hardware events on any run where the expectation fails; null if it never fails.</param>
/// <param name="HoldingRuns">Final control states on which the expectation can hold.</param>
/// <param name="FailingRuns">Final control states on which it can fail.</param>
/// <param name="FailsOnEveryQuietRun">
/// With <paramref name="MinEventsToFail"/> 0: whether it fails on every run of a quiet machine (no spontaneous
/// hardware event), whatever the schedule of the agents' steps (true), or only on some (false: a software race, or
/// with <c>cache_init = arbitrary</c> what the cache held at the start). Null when it never fails with 0 events.
/// </param>
public sealed record ExpectationVerdict(Expectation Expectation, Verdict Verdict, int? MinEventsToFail, long HoldingRuns, long FailingRuns,
    bool? FailsOnEveryQuietRun = null)
{
    public string MinEventsText => MinEventsToFail is { } n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-";

    /// <summary>The verdict table's "min events" cell: 0 says whether every schedule fails or only some.</summary>
    public string MinEventsCell => (MinEventsToFail, FailsOnEveryQuietRun) switch
    {
        (0, true) => "0 (every schedule)",
        (0, false) => "0 (some schedules)",
        _ => MinEventsText,
    };

    /// <summary>The JSON <c>quietFailure</c> value: "every-schedule", "some-schedules", or null when 0 events never fail it.</summary>
    public string? QuietFailureName => (MinEventsToFail, FailsOnEveryQuietRun) switch
    {
        (0, true) => "every-schedule",
        (0, false) => "some-schedules",
        _ => null,
    };
}

/// <summary>How much a search did.</summary>
/// <param name="Blocked">Final states in which some agent had not finished: it waits for an event or a value that never comes.</param>
public sealed record ExplorationStats(long States, long FinalStates, long Transitions, TimeSpan Elapsed, long Blocked = 0)
{
    /// <summary>
    /// What the line-set explorer keeps per stored state when the search ends: its visited set and path store, in bytes
    /// (their allocated capacity). The frontier's full states are not in it: they live one level at a time. 0 when not measured.
    /// </summary>
    public long StoredBytes { get; init; }

    /// <summary>Final states in which some agent hung at a poll: it gave up after <c>max N</c> misses, or its value can never arrive.</summary>
    public long Hung { get; init; }
}

/// <summary>The result of exploring a scenario: a verdict per expectation, or why there is none.</summary>
/// <param name="Inconclusive">Why the verdicts are inconclusive (a limit was hit, or something is not modelled), or null.</param>
/// <param name="Findings">What the kernel model did wrong on some run, whatever the caches did.</param>
/// <param name="Sampled">Set when the interleavings were sampled (<see cref="RandomStrategy"/>, with these parameters): the verdicts are not proven.</param>
public sealed record ExplorationResult(Scenario Scenario, string Explorer, IReadOnlyList<ExpectationVerdict> Verdicts, ExplorationStats Stats, string? Inconclusive,
    IReadOnlyList<FoundFinding> Findings, RandomSampling? Sampled = null)
{
    /// <summary>The kernel crashes some runs reach, each a verdict of its own; expectations are judged on the other runs.</summary>
    public IReadOnlyList<KernelBugVerdict> KernelBugs { get; init; } = [];

    /// <summary>
    /// Some run reached behaviour the model does not have (the first such stop in file order); the result is then
    /// inconclusive, and <see cref="Inconclusive"/> says what is missing.
    /// </summary>
    public NotModelledStop? NotModelled { get; init; }

    /// <summary>
    /// Declared findings matched against the findings: every finding must match a declaration and every declaration
    /// (other than "no findings") some finding. Inconclusive searches compare nothing.
    /// </summary>
    public IEnumerable<(FoundFinding? Found, DeclaredFinding? Declared)> FindingRows
    {
        get
        {
            var declared = Scenario.DeclaredFindings.Where(d => d.Kind is not null).ToList();
            foreach (var f in Findings)
            {
                yield return (f, declared.FirstOrDefault(d => d.Matches(f.Finding)));
            }

            foreach (var d in declared.Where(d => !Findings.Any(f => d.Matches(f.Finding))))
            {
                yield return (null, d);
            }
        }
    }

    /// <summary>
    /// Whether a search that did not cover every run (stopped by a limit, or sampled) may have missed a finding: then a
    /// declared finding it did not reach is "not reached", not missing.
    /// </summary>
    public bool Partial => Inconclusive is not null || Sampled is not null;

    /// <summary>
    /// Whether the findings are what the file declares (no declaration: none expected). A finding that was found and
    /// not declared is a failure whatever the search covered: the run that produces it is real. A declared finding no
    /// run produced is a failure only when the search covered every run (<see cref="Partial"/>).
    /// </summary>
    public bool FindingsMet => FindingRows.All(r => r.Declared is not null && (r.Found is not null || Partial));
}

/// <summary>Accumulates outcomes of one expectation over the final states of a search.</summary>
internal sealed class VerdictAccumulator(Expectation expectation)
{
    public Expectation Expectation { get; } = expectation;

    public long Holding { get; private set; }

    public long Failing { get; private set; }

    public int? MinFail { get; private set; }

    /// <summary>Final states reachable with no spontaneous event on which some quiet outcome holds.</summary>
    public long QuietHolding { get; private set; }

    /// <summary>Records one final state's outcome; returns true when it improves the least failing cost.</summary>
    /// <param name="quietAlwaysFails">
    /// Whether every outcome of this final state that needs no spontaneous event fails (true) or some holds (false);
    /// null when it cannot be reached without one.
    /// </param>
    public bool Record(bool canHold, int? failCost, bool? quietAlwaysFails)
    {
        if (canHold)
        {
            Holding++;
        }

        if (quietAlwaysFails == false)
        {
            QuietHolding++;
        }

        if (failCost is not { } c)
        {
            return false;
        }

        Failing++;
        if (MinFail is null || c < MinFail)
        {
            MinFail = c;
            return true;
        }

        return false;
    }

    public ExpectationVerdict Verdict(bool inconclusive) => new(
        Expectation,
        inconclusive ? Scenarios.Verdict.Inconclusive
            : Failing == 0 ? Scenarios.Verdict.Always
            : Holding == 0 ? Scenarios.Verdict.Never
            : Scenarios.Verdict.Sometimes,
        inconclusive ? null : MinFail,
        Holding,
        Failing,
        inconclusive || MinFail != 0 ? null : QuietHolding == 0);
}

/// <summary>
/// A kernel crash some runs reach, as a verdict of its own: <see cref="Verdict.Always"/> when every run crashes there,
/// <see cref="Verdict.Sometimes"/> when some do (or when the search stopped early), with the fewest spontaneous
/// hardware events a crashing run needs.
/// </summary>
/// <param name="CrashedRuns">Final states that crashed here.</param>
public sealed record KernelBugVerdict(KernelCrash Crash, Verdict Verdict, int MinEvents, long CrashedRuns)
{
    /// <summary>The row's name in reports: the statement's position.</summary>
    public string Name => Crash.Name;
}

/// <summary>Accumulates the crashed final states of a search, one verdict per crash site and message.</summary>
internal sealed class KernelBugAccumulator
{
    private readonly Dictionary<(int Line, int Column, string Message), (KernelCrash Crash, long Runs, int Min)> crashes = [];
    private long others;

    /// <summary>The not-modelled stop some final state reached, the first in file order; null when none did.</summary>
    public NotModelledStop? NotModelled { get; private set; }

    /// <summary>
    /// Records a final state; returns true when it is a crash whose least cost it improves (a new witness). A run that
    /// reached what is not modelled is neither a crash nor judged.
    /// </summary>
    public bool Record(ControlState final, int cost)
    {
        if (final.NotModelled is { } stop)
        {
            if (NotModelled is not { } first || (stop.Span.Line, stop.Span.Column).CompareTo((first.Span.Line, first.Span.Column)) < 0
                || (stop.Span == first.Span && string.CompareOrdinal(stop.Message, first.Message) < 0))
            {
                NotModelled = stop;
            }

            return false;
        }

        if (final.Crash is not { } crash)
        {
            others++;
            return false;
        }

        var key = (crash.Span.Line, crash.Span.Column, crash.Message);
        if (crashes.TryGetValue(key, out var known))
        {
            crashes[key] = (known.Crash, known.Runs + 1, Math.Min(known.Min, cost));
            return cost < known.Min;
        }

        crashes[key] = (crash, 1, cost);
        return true;
    }

    /// <summary>Whether some final state did not crash (expectations are judged on those).</summary>
    public bool AnyOther => others > 0;

    public IReadOnlyList<KernelBugVerdict> Verdicts(bool inconclusive) =>
        [.. crashes.Values.OrderBy(c => c.Crash.Span.Line).ThenBy(c => c.Crash.Span.Column).ThenBy(c => c.Crash.Message, StringComparer.Ordinal)
            .Select(c => new KernelBugVerdict(c.Crash, others == 0 && crashes.Count == 1 && !inconclusive ? Scenarios.Verdict.Always : Scenarios.Verdict.Sometimes, c.Min, c.Runs))];

    /// <summary>
    /// The expectations' verdicts: judged on the runs that did not crash; an expectation with no such run has no
    /// verdict (every run crashed the kernel first).
    /// </summary>
    public List<ExpectationVerdict> Expectations(List<VerdictAccumulator> accumulators, bool inconclusive) =>
        [.. accumulators.Select(a => crashes.Count > 0 && others == 0
            ? new ExpectationVerdict(a.Expectation, Scenarios.Verdict.Inconclusive, null, 0, 0)
            : a.Verdict(inconclusive))];
}

/// <summary>A finding, where it happened: the statement, the agent that ran it, and the shortest run reaching it (when the explorer keeps runs).</summary>
public sealed record FoundFinding(Kernel.Finding Finding, Statement Statement, string Agent, IReadOnlyList<StepResult>? Trace = null)
{
    public string Key => $"{Finding.Kind}|{Finding.Function}|{Finding.Pfn}|{Finding.Owner.Name}|{Statement.Span.Line}:{Statement.Span.Column}";
}

/// <summary>Collects the distinct findings of a search. Findings depend only on control flow, so every explorer finds the same set.</summary>
public sealed class FindingCollector
{
    private readonly Dictionary<string, FoundFinding> found = new(StringComparer.Ordinal);

    /// <summary>Records a step's findings; <paramref name="trace"/> gives the run up to and including it (called only for a new finding).</summary>
    public void Add(StepResult step, Func<IReadOnlyList<StepResult>>? trace = null)
    {
        foreach (var f in step.Findings)
        {
            var ff = new FoundFinding(f, step.Statement, step.Program.Name);
            if (!found.ContainsKey(ff.Key))
            {
                found[ff.Key] = ff with { Trace = trace?.Invoke() };
            }
        }
    }

    /// <summary>The findings in file order, then by kind and page frame.</summary>
    public IReadOnlyList<FoundFinding> Results() =>
        found.Values.OrderBy(f => f.Statement.Span.Line).ThenBy(f => f.Statement.Span.Column)
            .ThenBy(f => f.Finding.Kind, StringComparer.Ordinal).ThenBy(f => f.Finding.Pfn).ToList();
}
