using DmaCheck.Exploration;
using DmaCheck.Fuzzing;
using DmaCheck.Reports;
using DmaCheck.Scenarios;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Tests;

/// <summary>
/// <c>poll ADDR[lo..hi] == WRITER [, max N]</c>: verdicts in both explorers, hung finals (a poll whose value can never
/// arrive, a poll that gives up after max N), the retry counter in the control key, syntax errors, the refusals of the
/// random strategy and of replay files, and that the generators behind the agreement and reduction properties emit polls.
/// </summary>
public sealed class PollTests
{
    /// <summary>A descriptor in a dma_alloc_coherent ring: the CPU's stores go straight to RAM through the NC remap.</summary>
    private const string CoherentRing = """
        scenario "coherent ring"
        profile linux-6.4-arm64
        device nic { coherent = false }
        cpu driver {
          ring = dma_alloc_coherent(nic, 4096, GFP_KERNEL)
          write ring[0..64] = payload
          write ring[64..72] = ready
        }
        dma engine by nic {
          poll dma(ring.dma)[64..72] == ready
          read dma(ring.dma)[0..64] -> seen
        }
        expect sees_payload: seen == payload
        """;

    /// <summary>A kmalloc descriptor written after dma_map_single(TO_DEVICE) and never synced: the flag is dirty in the cache.</summary>
    /// <param name="filledFirst">The fixed order: the descriptor is filled before dma_map_single, whose clean writes it to RAM before the device has a handle.</param>
    private static string Streaming(string max = "", bool filledFirst = false) => $$"""
        scenario "streaming descriptor"
        profile linux-6.4-arm64
        set dma_api_debug = off
        device nic { coherent = false }
        cpu driver {
          desc = kmalloc(128, GFP_KERNEL)
          {{(filledFirst ? "write desc[0..64] = payload\n  write desc[64..72] = ready" : "")}}
          h = dma_map_single(nic, desc, 128, DMA_TO_DEVICE)
          dma_mapping_error(nic, h)
          {{(filledFirst ? "" : "write desc[0..64] = payload\n  write desc[64..72] = ready")}}
        }
        dma engine by nic {
          poll dma(h)[64..72] == ready{{max}}
          read dma(h)[0..64] -> seen
        }
        expect sees_payload: seen == payload
        """;

    /// <summary>Before c50f11c6196f, dma_map_single(FROM_DEVICE) invalidates: the flag written before it is discarded, unless written back first.</summary>
    private const string Discarded = """
        scenario "flag discarded by the map's invalidate"
        profile linux-6.4-arm64
        set arm64.sync_for_device_from_device = inval
        device nic { coherent = false }
        cpu driver {
          desc = kmalloc(128, GFP_KERNEL)
          write desc[64..72] = ready
          h = dma_map_single(nic, desc, 128, DMA_FROM_DEVICE)
          dma_mapping_error(nic, h)
        }
        dma engine by nic {
          poll dma(h)[64..72] == ready
          read dma(h)[0..64] -> seen
        }
        expect sees_old: seen == old
        """;

    private static (ExplorationResult LineSet, ExplorationResult Brute) Both(string text)
    {
        var scenario = Binder.Load("poll.dmc", text);
        var lineSet = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        var brute = new BruteForceExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
        Assert.Null(lineSet.Inconclusive);
        Assert.Null(brute.Inconclusive);
        return (lineSet, brute);
    }

    private static void Expect(string text, Verdict verdict, int? minEvents, bool hung)
    {
        var (lineSet, brute) = Both(text);
        foreach (var r in new[] { lineSet, brute })
        {
            var v = Assert.Single(r.Verdicts);
            Assert.Equal((verdict, minEvents), (v.Verdict, v.MinEventsToFail));
            Assert.Equal(hung, r.Stats.Hung > 0);
        }
    }

    [Fact]
    public void ACoherentRingAlwaysShowsThePayload() => Expect(CoherentRing, Verdict.Always, null, hung: false);

    /// <summary>
    /// Without a sync the flag reaches RAM only by a spontaneous write-back (one event), and then the payload line can
    /// still be dirty: stale payload at one event. No run hangs: a write-back can always come.
    /// </summary>
    [Fact]
    public void AnUnsyncedStreamingDescriptorShowsStalePayloadAfterOneEvent() => Expect(Streaming(), Verdict.Sometimes, 1, hung: false);

    [Fact]
    public void FillingTheDescriptorBeforeTheMapFixesIt() => Expect(Streaming(filledFirst: true), Verdict.Always, null, hung: false);

    /// <summary>
    /// A sync after the stores is not enough: the device polls concurrently, and a spontaneous write-back of the flag
    /// before the sync shows it the flag with the payload still dirty in the cache.
    /// </summary>
    [Fact]
    public void ASyncAfterTheStoresStillRaces()
    {
        var text = Streaming().Replace("write desc[64..72] = ready", "write desc[64..72] = ready\n  dma_sync_single_for_device(nic, h, 128, DMA_TO_DEVICE)", StringComparison.Ordinal);
        Expect(text, Verdict.Sometimes, 1, hung: false);
    }

    /// <summary>With max 2 the device gives up while the flag is still dirty: hung, the payload never read, at no event.</summary>
    [Fact]
    public void WithMaxTheUnsyncedDescriptorTimesOutAtNoEvent() => Expect(Streaming(max: ", max 2"), Verdict.Sometimes, 0, hung: true);

    /// <summary>The flag is discarded and nothing can bring it back: a hung final (the payload never read), unless it was written back before the map (one event).</summary>
    [Fact]
    public void APollWhoseValueCanNeverArriveEndsHung()
    {
        var (lineSet, brute) = Both(Discarded);
        foreach (var r in new[] { lineSet, brute })
        {
            var v = Assert.Single(r.Verdicts);
            Assert.Equal((Verdict.Sometimes, (int?)0), (v.Verdict, v.MinEventsToFail));
            Assert.True(r.Stats.Hung > 0);
            Assert.True(r.Stats.Blocked >= r.Stats.Hung); // the hung agent is still at its poll
        }

        Assert.Equal(1, lineSet.Stats.Hung);
    }

    /// <summary>
    /// Some states of the polled line can still come to show the flag (it is dirty in the cache: an eviction writes it
    /// back) and some never can (it was written back, then another device overwrote RAM, and a Clean line is dropped
    /// without a write-back): the miss is split, and the runs in the second kind end hung, at the one event the
    /// write-back cost. Without that split the poll would always look able to succeed, and the verdict be Always.
    /// </summary>
    [Fact]
    public void AMissThatCanNoLongerBecomeAHitEndsHung() => Expect("""
        profile linux-6.4-arm64
        set dma_api_debug = off
        device nic { coherent = false }
        cpu driver {
          desc = kmalloc(64, GFP_KERNEL)
          h = dma_map_single(nic, desc, 64, DMA_BIDIRECTIONAL)
          write desc[0..8] = ready
          signal written
        }
        dma other by nic {
          wait written
          write dma(h)[0..8] = junk
        }
        dma engine by nic {
          poll dma(h)[0..8] == ready
          read dma(h)[8..16] -> seen
        }
        expect engine_goes_on: seen == old
        """, Verdict.Sometimes, 1, hung: true);

    /// <summary>
    /// The device polls, with max N, for a flag the CPU writes at any time: it times out when it misses N times first.
    /// One hung final whatever N (the CPU writes after the device gave up), and one state more per retry.
    /// </summary>
    [Fact]
    public void MaxNCountsMissesAndTimesOutOnce()
    {
        long previous = 0;
        foreach (var n in new[] { 1, 2, 3, 5 })
        {
            var text = CoherentRing.Replace("== ready", $"== ready, max {n}", StringComparison.Ordinal);
            var (lineSet, brute) = Both(text);
            foreach (var r in new[] { lineSet, brute })
            {
                var v = Assert.Single(r.Verdicts);
                Assert.Equal((Verdict.Sometimes, (int?)0), (v.Verdict, v.MinEventsToFail));
            }

            Assert.Equal(1, lineSet.Stats.Hung);
            Assert.True(lineSet.Stats.States > previous, $"max {n}: {lineSet.Stats.States} states, not more than {previous}");
            previous = lineSet.Stats.States;
        }
    }

    [Fact]
    public void TheRetryCounterIsPartOfTheControlKey()
    {
        var model = new ScenarioModel(Binder.Load("poll.dmc", CoherentRing.Replace("== ready", "== ready, max 3", StringComparison.Ordinal)));
        var s = model.Initial;
        var agent = s.Agents[1];
        var frame = agent.Frames.Peek();
        var retried = s.With(agents: s.Agents.SetItem(1, agent with { Frames = agent.Frames.Pop().Push(frame with { Retries = 1 }) }));
        Assert.NotEqual(s.Fingerprint, retried.Fingerprint);
        var hung = s.With(agents: s.Agents.SetItem(1, new AgentState([], "x", Hung: true)));
        var stopped = s.With(agents: s.Agents.SetItem(1, new AgentState([], "x")));
        Assert.NotEqual(hung.Fingerprint, stopped.Fingerprint);
    }

    /// <summary>The hung run's witness says who hung where, and explain prints it.</summary>
    [Fact]
    public void AHungRunsWitnessSaysWhoHungWhere()
    {
        var outcome = Checker.CheckText("poll.dmc", Discarded, ExplorationLimits.Default);
        var verdict = outcome.Result!.Verdicts.Single();
        var witness = WitnessBuilder.Build(outcome.Model!, verdict.Expectation, outcome.Explorer!.Failures[verdict.Expectation.Name]);
        var line = Assert.Single(witness.Hung);
        Assert.Contains("engine hung at 'poll dma(h)[64..72] == ready' (line 12)", line, StringComparison.Ordinal);
        Assert.Contains("** engine hung at", ExplainReport.Render(outcome, witness, verdict, Style.Plain), StringComparison.Ordinal);
        Assert.Contains("cannot be saved", Assert.Throws<ReplayException>(() => ReplayFile.From(witness, outcome.Scenario!, "test")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheTextAndJsonReportsCountHungFinals()
    {
        var outcome = Checker.CheckText("poll.dmc", Streaming(max: ", max 2"), ExplorationLimits.Default);
        var text = TextReport.Render([outcome], Style.Plain, TimeSpan.Zero);
        Assert.Contains("an agent hung at a poll", text, StringComparison.Ordinal);
        Assert.Contains("; 1 hung final state(s)", text, StringComparison.Ordinal);
        Assert.Contains("\"hungFinalStates\": 1", JsonReport.Render([outcome]), StringComparison.Ordinal);
    }

    [Fact]
    public void TheRandomStrategyRefusesPolls()
    {
        var model = new ScenarioModel(Binder.Load("poll.dmc", CoherentRing));
        var r = new LineSetExplorer().Explore(model, ExplorationLimits.Default with { Random = new RandomStrategy(1, 5) });
        Assert.Contains("does not sample runs with a poll", r.Inconclusive, StringComparison.Ordinal);
        Assert.All(r.Verdicts, v => Assert.Equal(Verdict.Inconclusive, v.Verdict));
    }

    /// <summary>A CPU thread polls a completion flag a coherent device writes; firmware polls a coherent buffer by physical address.</summary>
    [Fact]
    public void CpuAndFirmwareCanPoll()
    {
        const string cpu = """
            profile linux-6.4-arm64
            set dma_api_debug = off
            device nic { coherent = true }
            cpu driver {
              buf = kmalloc(128, GFP_KERNEL)
              h = dma_map_single(nic, buf, 128, DMA_FROM_DEVICE)
              dma_mapping_error(nic, h)
              signal mapped
              poll buf[64..72] == done
              read buf[0..64] -> seen
            }
            dma engine by nic {
              wait mapped
              write dma(h)[0..64] = data
              write dma(h)[64..72] = done
            }
            expect sees_data: seen == data
            """;
        Expect(cpu, Verdict.Always, null, hung: false);

        const string firmware = """
            profile linux-6.4-arm64
            device scm { coherent = false }
            firmware tz { access = non-cacheable }
            cpu driver {
              buf = dma_alloc_coherent(scm, 4096, GFP_KERNEL)
              write buf[8..16] = payload
              write buf[0..8] = flag
              smc tz(buf.dma)
            }
            firmware tz on smc(addr) {
              poll phys(addr)[0..8] == flag, max 1
              read phys(addr)[8..16] -> seen
            }
            expect fw_sees_payload: seen == payload
            """;
        Expect(firmware, Verdict.Always, null, hung: false);
    }

    [Theory]
    [InlineData("poll dma(h)[0..8] = ready", 3, 34, "expected '=='")]
    [InlineData("poll dma(h)[0..8] == ready, maxx 3", 3, 44, "expected 'max' after ','")]
    [InlineData("poll dma(h)[0..8] == ready, max", 3, 48, "expected the most reads")]
    [InlineData("poll dma(h)[0..8] == ready, max 0", 3, 48, "a poll gives up after 1 to 1000 reads")]
    [InlineData("poll dma(h)[0..8] == raedy", 3, 37, "no statement writes 'raedy'")]
    [InlineData("poll h[0..8] == ready", 3, 21, "a DMA engine reaches memory by DMA address")]
    [InlineData("poll dma(h)[0..8192] == ready", 3, 31, "at most 4096 bytes")]
    public void MalformedPollsAreErrorsAtTheirPlace(string poll, int line, int column, string message)
    {
        var text = $"profile linux-6.4-arm64\ndevice nic {{ coherent = false }}\ndma e by nic {{ {poll} }}\ncpu c {{\n  b = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(nic, b, 64, DMA_TO_DEVICE)\n  write b[0..8] = ready\n}}\n";
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", text));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Span.Line, e.Span.Column));
        var outcome = Checker.CheckText("t.dmc", text, ExplorationLimits.Default);
        Assert.Equal(2, Checker.ExitCode([outcome]));
        Assert.StartsWith($"t.dmc:{line}:{column}: error: ", outcome.Message, StringComparison.Ordinal);
    }

    /// <summary>The generators the agreement and reduction properties draw from emit polls, with and without max, that bind.</summary>
    [Fact]
    public void TheGeneratorsEmitPolls()
    {
        foreach (var gen in new[] { ScenarioGenerator.BruteForceFeasible(), ScenarioGenerator.Full() })
        {
            var texts = gen.Sample(200, new Rnd(20261202UL), 50).Select(g => g.Text).ToList();
            var polls = texts.Where(t => t.Contains("\n  poll ", StringComparison.Ordinal)).ToList();
            Assert.True(polls.Count >= 20, $"{polls.Count} of 200 scenarios poll");
            Assert.Contains(polls, t => t.Contains(", max ", StringComparison.Ordinal));
            Assert.Contains(polls, t => t.Split('\n').Any(l => l.StartsWith("  poll ", StringComparison.Ordinal) && !l.Contains(", max", StringComparison.Ordinal)));
            foreach (var t in polls)
            {
                Binder.Load("gen.dmc", t);
            }
        }
    }

    /// <summary>Reduced and unreduced searches agree on the poll scenarios above (the properties do so on generated ones).</summary>
    [Fact]
    public void TheReductionKeepsPollResults()
    {
        foreach (var text in new[] { CoherentRing, Streaming(), Streaming(max: ", max 2"), Discarded, CoherentRing.Replace("== ready", "== ready, max 2", StringComparison.Ordinal) })
        {
            var scenario = Binder.Load("poll.dmc", text);
            var plain = new LineSetExplorer { Reduction = false }.Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
            var reduced = new LineSetExplorer().Explore(new ScenarioModel(scenario), ExplorationLimits.Default);
            // Verdicts and findings (the summary's last field, the state and transition counts, may shrink).
            Assert.Equal(Fuzzer.Summary(plain)[..Fuzzer.Summary(plain).LastIndexOf('|')], Fuzzer.Summary(reduced)[..Fuzzer.Summary(reduced).LastIndexOf('|')]);
            Assert.True(reduced.Stats.States <= plain.Stats.States);
            Assert.Equal((plain.Stats.FinalStates, plain.Stats.Hung, plain.Stats.Blocked), (reduced.Stats.FinalStates, reduced.Stats.Hung, reduced.Stats.Blocked));
        }
    }

    /// <summary>A poll is not a plain step: the reduction's independence never lets it commute with a write to its line.</summary>
    [Fact]
    public void APollIsNotAPlainStep()
    {
        var model = new ScenarioModel(Binder.Load("poll.dmc", CoherentRing));
        var s = model.Initial;
        while (model.Current(s, 0).Statement is not AccessStmt)
        {
            s = model.Step(s, 0).Next;
        }

        var step = model.Step(s, 1);
        Assert.IsType<PollStmt>(step.Statement);
        Assert.False(StepLabel.Of(s, step, 64).Plain);
    }
}
