using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;
using FsCheck.Xunit;

namespace DmaCheck.Tests;

/// <summary>
/// Cost flat in buffer size (docs/internals-line-sets.md, "Runs of lines"): the run-length line map, range-wise
/// expectation checks, and the law that a uniform buffer's size changes neither the verdicts, nor the fewest events,
/// nor the number of states explored.
/// </summary>
public class ScaleTests
{
    private static LineSet Set(byte writer) =>
        LineSet.Closure(new Dictionary<LineState, int> { [LineState.Fresh(LineBytes.Uniform(64, writer))] = 0 }, fillable: true);

    private static readonly LineSet A = Set(WriterTable.Old);
    private static readonly LineSet B = Set(WriterTable.Zero);

    private static string Show(LineMap map) => string.Join(" ", map.Runs.ToArray().Select(r => $"[{r.Start:x},{r.End:x}){(ReferenceEquals(r.Set, A) ? "A" : "B")}"));

    [Fact]
    public void ReplaceSplitsRunsAtItsEdgesAndMergesEqualNeighbours()
    {
        var b = LineMap.Empty.ToBuilder();
        b.Replace(0x1000, 0x2000, [new LineRange(0x1000, 0x2000, A)]);
        b.Replace(0x1400, 0x1800, [new LineRange(0x1400, 0x1800, B)]);
        Assert.Equal("[1000,1400)A [1400,1800)B [1800,2000)A", Show(b.ToImmutable()));

        // Writing A over the middle again leaves one run: the map is canonical.
        b.Replace(0x1400, 0x1800, [new LineRange(0x1400, 0x1800, A)]);
        Assert.Equal("[1000,2000)A", Show(b.ToImmutable()));

        // Pieces name the gaps (never touched) between runs.
        var pieces = new List<(ulong, ulong, LineSet?)>();
        b.Pieces(0x800, 0x2400, pieces);
        Assert.Equal([(0x800UL, 0x1000UL, (LineSet?)null), (0x1000UL, 0x2000UL, A), (0x2000UL, 0x2400UL, null)], pieces);
    }

    [Fact]
    public void EqualContentGivesEqualFingerprintsWhateverTheOrderOfEdits()
    {
        var one = LineMap.Empty.ToBuilder();
        one.Replace(0, 0x1000, [new LineRange(0, 0x1000, A)]);
        var two = LineMap.Empty.ToBuilder();
        for (ulong line = 0x1000; line > 0; line -= 64)
        {
            two.SetLine(line - 64, 64, A);
        }

        var ctrl = new ScenarioModel(Binder.Load("s.dmc", Case1(4096))).Initial;
        Assert.Equal(1, two.ToImmutable().RunCount);
        Assert.Equal(SearchNode.Fingerprinted(ctrl, one.ToImmutable()), SearchNode.Fingerprinted(ctrl, two.ToImmutable()));
        two.SetLine(0x40, 64, B);
        Assert.NotEqual(SearchNode.Fingerprinted(ctrl, one.ToImmutable()), SearchNode.Fingerprinted(ctrl, two.ToImmutable()));
    }

    /// <summary>
    /// The packed frontier's one-line edit (<see cref="PackedRuns.EditLine"/>) gives the runs a builder gives, with
    /// each run's kept hash and the map's fingerprint equal to the sums recomputed from scratch, on random edits (lines
    /// touching, inside and between runs, over ranges replaced whole).
    /// </summary>
    [Property(MaxTest = 300)]
    public bool AOneLineEditGivesTheBuildersMapAndItsFingerprint(int seed)
    {
        var random = new Random(seed);
        var sets = new[] { A, B, Set(3) };
        var ids = new LineSetIds();
        var map = LineMap.Empty;
        var seg = new PackedRun[8];
        for (var i = 0; i < 40; i++)
        {
            var set = sets[random.Next(sets.Length)];
            if (random.Next(5) == 0)
            {
                var start = (ulong)random.Next(16) * 64;
                var b = map.ToBuilder();
                b.Replace(start, start + ((ulong)random.Next(1, 6) * 64), [new LineRange(start, start + 64, set)]);
                map = b.ToImmutable();
                continue;
            }

            var line = (ulong)random.Next(16) * 64;
            var packed = map.Runs.ToArray().Select(r => new PackedRun(r.Start, r.End, ids.Id(r.Set), ids)).ToArray();
            var setId = ids.Id(set);
            var (lo, hi, n, fingerprint) = PackedRuns.EditLine(packed, map.Fingerprint, line, 64, setId, LineMap.RunHash(line, line + 64, set.Fingerprint), seg, ids);
            PackedRun[] edited = [.. packed[..lo], .. seg[..n], .. packed[hi..]];
            var builder = map.ToBuilder();
            builder.SetLine(line, 64, set);
            map = builder.ToImmutable();
            if (Show3(map) != string.Join(" ", edited.Select(r => $"[{r.Start:x},{r.End:x}){Array.IndexOf(sets, ids[r.Set])}"))
                || fingerprint != map.Fingerprint || map.Fingerprint != FromScratch(map)
                || edited.Any(r => r.Hash != LineMap.RunHash(r.Start, r.End, ids.Fingerprint(r.Set))))
            {
                return false;
            }
        }

        return true;

        string Show3(LineMap m) => string.Join(" ", m.Runs.ToArray().Select(r => $"[{r.Start:x},{r.End:x}){Array.IndexOf(sets, r.Set)}"));
        static UInt128 FromScratch(LineMap m)
        {
            UInt128 sum = 0;
            foreach (var r in m.Runs)
            {
                sum += LineMap.RunHash(r);
            }

            return sum;
        }
    }

    [Fact]
    public void AnExpectationOverAGibibyteIsThreeSpansOfLines()
    {
        var model = new ScenarioModel(Binder.Load("s.dmc", Case1(1UL << 30)));
        var pa = 0x9000_0010UL; // a read that starts and ends inside a line
        var ctrl = model.Initial.With(observed: model.Initial.Observed.SetItem(0, new ObservedRange(pa, (1UL << 30) - 0x20)));
        var checks = ExpectationChecks.For(model.Scenario.Expectations[0], ctrl, 64)!;
        Assert.Equal(3, checks.Count);
        Assert.Equal((0x9000_0000UL, 0x9000_0040UL, 0x10), (checks[0].First, checks[0].End, checks[0].Ranges[0].From));
        Assert.Equal((0x9000_0040UL, 0xcfff_ffc0UL, 64), (checks[1].First, checks[1].End, checks[1].Ranges[0].To));
        Assert.Equal(0x30, checks[2].Ranges[0].To);
        var line = ExpectationChecks.ForLine(model.Scenario.Expectations[0], ctrl, 64, 0xa000_0000)!;
        Assert.Equal((checks[1].First, checks[1].End), (line.First, line.End));
    }

    /// <summary>Seed-1 case 1 (v6.4, init_on_alloc) with a buffer of <paramref name="bytes"/>, on a 4 GiB board with a 1.5 GiB CMA area.</summary>
    internal static string Case1(ulong bytes, string profile = "linux-6.4-arm64", string initOnAlloc = "on") => $$"""
        profile {{profile}}
        set init_on_alloc = {{initOnAlloc}}
        set dram = 4G
        set cma = 1536M
        device scm { coherent = false }
        firmware tz { access = cacheable }
        cpu driver {
          buf = dma_alloc_coherent(scm, {{bytes}}, GFP_KERNEL)
          write buf[0..{{bytes}}] = payload
          smc tz(buf.dma)
        }
        firmware tz on smc(addr) {
          read phys(addr)[0..{{bytes}}] -> seen
        }
        expect fw_sees_payload: seen == payload
        """;

    [Theory]
    [InlineData("linux-6.4-arm64", "on")]
    [InlineData("linux-6.4-arm64", "off")]
    [InlineData("linux-6.3-arm64", "on")]
    public void TheBufferSizeChangesNeitherVerdictsNorEventsNorStates(string profile, string initOnAlloc)
    {
        ExplorationResult Run(ulong bytes) =>
            new LineSetExplorer().Explore(new ScenarioModel(Binder.Load("s.dmc", Case1(bytes, profile, initOnAlloc))), ExplorationLimits.Default);

        var small = Run(4096);
        Assert.Null(small.Inconclusive);
        foreach (var bytes in new[] { 1UL << 20, 1UL << 30 })
        {
            var big = Run(bytes);
            Assert.Null(big.Inconclusive);
            Assert.Equal(small.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)), big.Verdicts.Select(v => (v.Verdict, v.MinEventsToFail)));
            Assert.Equal(small.Stats.States, big.Stats.States);
        }
    }

    [Fact]
    public void AGibibyteBufferIsAFewRunsAndItsWitnessIsItsFirstLine()
    {
        var explorer = new LineSetExplorer();
        var model = new ScenarioModel(Binder.Load("s.dmc", Case1(1UL << 30)));
        var result = explorer.Explore(model, ExplorationLimits.Default);
        Assert.Equal(Verdict.Sometimes, result.Verdicts[0].Verdict);
        Assert.Equal(0, result.Verdicts[0].MinEventsToFail);
        var failure = explorer.Failures["fw_sees_payload"];
        Assert.True(failure.Node.Lines.RunCount <= 4, $"{failure.Node.Lines.RunCount} runs");
        var first = failure.Node.Lines.Runs[0].Start;
        Assert.Equal(first, failure.LinePa);

        // The witness replays the first line alone, with the same event count.
        var witness = WitnessBuilder.Build(model, model.Scenario.Expectations[0], failure);
        Assert.Equal(0, witness.Events);
        Assert.Equal(first, witness.LinePa);
    }

    /// <summary>The visited set is a set: it agrees with a HashSet on any sequence of adds, zero and duplicates included.</summary>
    [Property(MaxTest = 200)]
    public bool TheFingerprintSetAgreesWithAHashSet(ulong[] lows, byte[] highs)
    {
        var set = new FingerprintSet(capacity: 1);
        var reference = new HashSet<UInt128>();
        for (var i = 0; i < lows.Length; i++)
        {
            // Small values collide in the low bits and force long probe runs and several doublings.
            var f = new UInt128(highs.Length == 0 ? 0UL : highs[i % highs.Length], lows[i] % 64);
            if (set.Add(f) != reference.Add(f) || set.Count != reference.Count)
            {
                return false;
            }
        }

        return reference.All(set.Contains) && !set.Contains(new UInt128(1000, 1000));
    }

    /// <summary>Issue 5's memory target, as an exact account of what the search keeps per state (not a timing).</summary>
    [Fact]
    public void AStoredStateTakesAtMost48Bytes()
    {
        var text = File.ReadAllText(Path.Combine(TestPaths.Root, "bench", "scenarios", "interleave-4x10.dmc"));
        var result = new LineSetExplorer { Reduction = false }.Explore(new ScenarioModel(Binder.Load("i.dmc", text)), new ExplorationLimits(MaxStates: 30_000));
        Assert.True(result.Stats.States >= 30_000);
        var perState = (double)result.Stats.StoredBytes / result.Stats.States;
        Assert.InRange(perState, 20, 48);
    }
}
