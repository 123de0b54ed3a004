using System.Diagnostics;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>
/// The unreduced search over a packed frontier (docs/internals-state-storage.md, "The packed frontier"): a level is a
/// <see cref="PackedLevel"/> of numbers, a step is learnt once per agent state and shared state
/// (<see cref="PackedStates"/>), a child's fingerprint is its parent's plus the step's change, and a child is written
/// into the next level only when the visited set has not seen it. With more than one thread, the nodes of a level are
/// expanded in parallel, each shard of the visited set takes the children that fall in it in parallel, and the new
/// children are written in the order one thread makes them, so every result is the same for every thread count.
/// </summary>
public sealed partial class LineSetExplorer
{
    /// <summary>
    /// With more than one thread: nodes per work item of a level (tests make it tiny, so that small scenarios take the
    /// parallel paths).
    /// </summary>
    internal int ChunkNodes { get; init; } = 256;

    /// <summary>
    /// A child an expansion found, not yet written: its fingerprint, its lines' fingerprint, the learnt step's number,
    /// and its lines: the parent's with one line set to set <see cref="EditSet"/> (when it is 0 or more), the parent's
    /// unchanged (-1), or those of its <see cref="CandidateList.Slow"/> entry (-2). Plain numbers only, so that a list
    /// of them is copied and cleared without the garbage collector's write barriers.
    /// </summary>
    private struct PackedCandidate
    {
        public UInt128 Fingerprint;
        public UInt128 Lines;
        public UInt128 EditHash;
        public ulong EditLine;
        public int EditSet;

        /// <summary>The learnt step (<see cref="PackedStates.StepAt"/>).</summary>
        public int Step;

        /// <summary>The child's entry in <see cref="CandidateList.Slow"/>, or -1: a step the general path applied.</summary>
        public int Slow;

        public int Cost;

        /// <summary>The parent's index in its level.</summary>
        public int Node;

        /// <summary>How many runs of lines the child has.</summary>
        public int RunCount;

        /// <summary>Set by the merge for a new child: its index in the next level, where it is then written.</summary>
        public int Index;

        /// <summary>Set by the merge for a new child: its number in the path store (-1 for a child seen before).</summary>
        public int Id;

        public bool Miss;

        /// <summary>A poll that missed and changed nothing: the node itself (kept for its read's findings).</summary>
        public bool Loop;

        /// <summary>Set by the visited set (or its shard): the child was not seen before.</summary>
        public bool New;
    }

    /// <summary>What the general path made of a step: the step as taken (its copies resolved), and the child's lines.</summary>
    private readonly record struct SlowChild(StepResult Taken, LineMap Map, IReadOnlyList<HwOp>? Resolved);

    /// <summary>The candidates one chunk of a window expands into, reused for the whole search.</summary>
    private sealed class CandidateList
    {
        private PackedCandidate[] items = new PackedCandidate[256];

        public int Count { get; private set; }

        /// <summary>The merge's figures for this chunk (<see cref="CountNew"/>): its candidates merged, new children, their runs and transitions.</summary>
        public int Merged { get; set; }

        public int NewCount { get; set; }

        public int RunTotal { get; set; }

        public int Transitions { get; set; }

        /// <summary>Where the chunk's new children go: their first index and run in the next level, and their first number in the path store.</summary>
        public int FirstIndex { get; set; }

        public int FirstRun { get; set; }

        public int FirstId { get; set; }

        /// <summary>The nodes the merge judges in order (<see cref="JudgeInOrder"/>).</summary>
        public List<int> Special { get; } = [];

        /// <summary>The children the general path made, by <see cref="PackedCandidate.Slow"/>.</summary>
        public List<SlowChild> Slow { get; } = [];

        public Span<PackedCandidate> Span => items.AsSpan(0, Count);

        public void Clear()
        {
            Count = 0;
            Slow.Clear();
        }

        /// <summary>A new candidate at the end, all zero, to be filled in place.</summary>
        public ref PackedCandidate Add()
        {
            if (Count == items.Length)
            {
                Array.Resize(ref items, items.Length * 2);
            }

            ref var c = ref items[Count++];
            c = default;
            return ref c;
        }

        /// <summary>Per shard of the visited set: the indices of the candidates that fall in it, in order (<see cref="Bucket"/>).</summary>
        private int[][] byShard = [];
        private int[] shardCounts = [];

        /// <summary>
        /// Sorts the first <paramref name="made"/> candidates (loops aside) by the shard of the visited set they fall in,
        /// keeping their order, so that each shard's thread reads only its own candidates.
        /// </summary>
        public void Bucket(int made, int shards)
        {
            if (byShard.Length != shards)
            {
                byShard = new int[shards][];
                shardCounts = new int[shards];
                for (var s = 0; s < shards; s++)
                {
                    byShard[s] = new int[64];
                }
            }

            Array.Clear(shardCounts);
            for (var i = 0; i < made; i++)
            {
                ref var c = ref items[i];
                if (c.Loop)
                {
                    continue;
                }

                var s = Shard(c.Fingerprint, shards);
                if (shardCounts[s] == byShard[s].Length)
                {
                    Array.Resize(ref byShard[s], byShard[s].Length * 2);
                }

                byShard[s][shardCounts[s]++] = i;
            }
        }

        /// <summary>The candidates of shard <paramref name="shard"/>, as <see cref="Bucket"/> sorted them.</summary>
        public ReadOnlySpan<int> OfShard(int shard) => byShard[shard].AsSpan(0, shardCounts[shard]);

        /// <summary>The step candidate <paramref name="c"/> took, as it ran.</summary>
        public StepResult Taken(in PackedCandidate c, PackedStates states) => c.Slow >= 0 ? Slow[c.Slow].Taken : states.StepAt(c.Step).Step;
    }

    /// <summary>What one search keeps for its packed expansions.</summary>
    private sealed class PackedSearch(IScenarioModel model, PackedStates states, LineSetIds sets, Func<ulong, bool, int> initial, Func<int, LineAccess, bool, int> applied)
    {
        public IScenarioModel Model { get; } = model;

        public PackedStates States { get; } = states;

        public LineSetIds Sets { get; } = sets;

        public Func<ulong, bool, int> Initial { get; } = initial;

        public Func<int, LineAccess, bool, int> Applied { get; } = applied;
    }

    private ExplorationResult SearchPacked(IScenarioModel model, ExplorationLimits limits)
    {
        var watch = Stopwatch.StartNew();
        var scenario = model.Scenario;
        var accumulators = scenario.Expectations.Select(e => new VerdictAccumulator(e)).ToList();
        paths = new PathStore(model);
        var hardware = model.Hardware;
        var lineSize = hardware.LineSize;
        planInitial = (pa, fillable) => InitialSet(hardware, pa, fillable);
        planApplied = (set, access, fillable) => Applied(set, access, hardware, fillable);
        var sets = new LineSetIds();
        var packed = new PackedStates(model);
        var search = new PackedSearch(model, packed, sets,
            (pa, fillable) => sets.Id(InitialSet(hardware, pa, fillable)),
            (set, access, fillable) => sets.Id(Applied(sets[set], access, hardware, fillable)));

        var initial = packed.Initial;
        var level = new PackedLevel(initial.Agents.Length);
        var next = new PackedLevel(initial.Agents.Length);
        var rootFingerprint = SearchNode.Fingerprinted(initial.Fingerprint, LineMap.Empty);
        var root = level.Reserve(0, 0);
        level.Write(root, initial.Agents, -1, 0, initial.Shared, initial.Fingerprint, LineMap.Empty.Fingerprint, rootFingerprint, 0);
        packed.StepsOf(initial.Agents, initial.Shared, initial.Fingerprint, level.StepsOf(root));
        var shards = new FingerprintSet[Math.Max(1, Threads)];
        for (var s = 0; s < shards.Length; s++)
        {
            shards[s] = new FingerprintSet();
        }

        using var release = new DisposeAll(shards);

        long Visited()
        {
            long count = 0;
            foreach (var shard in shards)
            {
                count += shard.Count;
            }

            return count;
        }

        shards[Shard(rootFingerprint, shards.Length)].Add(rootFingerprint);
        var counts = new MergeCounts();
        string? inconclusive = null;
        var findings = new FindingCollector();
        var crashes = new KernelBugAccumulator();
        var lastProgress = 0L;
        var depth = 0;
        var work = new WindowWork();

        // One thread works through a level a few nodes at a time, so the window's children are still in the caches
        // when they are merged; more threads take several chunks at once.
        var window = Threads > 1 ? ChunkNodes * Threads * 4 : PackedSmallWindow;
        while (level.Count > 0 && inconclusive is null)
        {
            next.Clear();
            if (limits.Progress is { } progress && watch.ElapsedMilliseconds - lastProgress >= 250)
            {
                lastProgress = watch.ElapsedMilliseconds;
                progress(new ExplorationProgress(Visited(), depth, watch.Elapsed));
            }

            var ctx = new MergeContext(search, level, next, depth, paths, findings, crashes, accumulators);
            for (var from = 0; from < level.Count && inconclusive is null; from += window)
            {
                inconclusive = PackedWindow(ctx, from, Math.Min(level.Count, from + window), shards, limits, watch, work, ref counts, Visited);
            }

            (level, next) = (next, level);
            depth++;
        }

        inconclusive ??= crashes.NotModelled?.Message; // some run reached what the model does not have
        var stored = paths.Bytes;
        foreach (var shard in shards)
        {
            stored += shard.Bytes;
        }

        return new ExplorationResult(scenario, Name, crashes.Expectations(accumulators, inconclusive is not null),
            new ExplorationStats(Visited(), counts.Finals, counts.Transitions, watch.Elapsed, counts.Blocked) { StoredBytes = stored, Hung = counts.Hung }, inconclusive, findings.Results())
        { KernelBugs = crashes.Verdicts(inconclusive is not null), NotModelled = crashes.NotModelled };
    }

    /// <summary>Disposes the visited set's shards when the search ends, however it ends.</summary>
    private readonly struct DisposeAll(FingerprintSet[] sets) : IDisposable
    {
        public void Dispose()
        {
            foreach (var set in sets)
            {
                set.Dispose();
            }
        }
    }

    /// <summary>The visited set's shard a fingerprint belongs to (its top bits; the table's slots use the low ones).</summary>
    private static int Shard(UInt128 fingerprint, int shards) => shards == 1 ? 0 : (int)((ulong)(fingerprint >> 64) % (ulong)shards);

    private struct MergeCounts
    {
        public long Finals;
        public long Transitions;
        public long Blocked;
        public long Hung;
        public long MemoryChecks;
    }

    private sealed record MergeContext(PackedSearch Search, PackedLevel Level, PackedLevel Next, int Depth, PathStore Paths, FindingCollector Findings,
        KernelBugAccumulator Crashes, List<VerdictAccumulator> Accumulators);

    /// <summary>Nodes a single thread expands before it merges them.</summary>
    private const int PackedSmallWindow = 64;

    /// <summary>The lists a window's chunks expand into, reused for the whole search.</summary>
    private sealed class WindowWork
    {
        public List<CandidateList> Chunks { get; } = [];

        /// <summary>Per node of the window: the end of its children in its chunk's list, complemented for a final state.</summary>
        public int[] Ends { get; set; } = [];
    }

    /// <summary>
    /// Nodes [<paramref name="from"/>, <paramref name="to"/>) of a level, in three phases: the nodes are expanded in
    /// chunks (in parallel with more than one thread); each shard of the visited set goes through every child in order
    /// and marks those new to it (the shards in parallel), so the first of equal children is the new one, as with one
    /// thread; then the children are merged in order. Null, or why the search stopped at a limit.
    /// </summary>
    private string? PackedWindow(MergeContext ctx, int from, int to, FingerprintSet[] shards, ExplorationLimits limits, Stopwatch watch, WindowWork work,
        ref MergeCounts counts, Func<long> visited)
    {
        var level = ctx.Level;
        var chunkSize = Threads > 1 ? ChunkNodes : PackedSmallWindow;
        var chunkCount = (to - from + chunkSize - 1) / chunkSize;
        while (work.Chunks.Count < chunkCount)
        {
            work.Chunks.Add(new CandidateList());
        }

        if (work.Ends.Length < to - from)
        {
            work.Ends = new int[to - from];
        }

        var ends = work.Ends;
        var chunks = work.Chunks;
        var errors = new (int Node, Exception Error)?[chunkCount];
        var states = visited();
        string? stopped = null;
        void Expand(int chunk, ParallelLoopState? loop)
        {
            var into = chunks[chunk];
            into.Clear();
            var end = Math.Min(to, from + ((chunk + 1) * chunkSize));
            for (var node = from + (chunk * chunkSize); node < end; node++)
            {
                if ((node & 15) == 0 && limits.Exceeded(watch, states, checkMemory: false) is { } why)
                {
                    Volatile.Write(ref stopped, why);
                    loop?.Stop();
                    return;
                }

                try
                {
                    var final = ExpandPacked(ctx.Search, level, node, into, limits, watch, states);
                    ends[node - from] = final ? ~into.Count : into.Count;
                }
                catch (Exception e) // rethrown at the merge, in the order one thread would have met it
                {
                    errors[chunk] = (node, e);
                    break;
                }
            }

            if (shards.Length > 1)
            {
                into.Bucket(Made(chunk), shards.Length);
            }
        }

        if (chunkCount > 1)
        {
            Parallel.For(0, chunkCount, new ParallelOptions { MaxDegreeOfParallelism = Threads }, (chunk, loop) => Expand(chunk, loop));
        }
        else
        {
            Expand(0, null);
        }

        if (stopped is not null)
        {
            return stopped;
        }

        // The children each chunk made before its error, if any (the merge stops there too).
        int Made(int chunk) => errors[chunk] is { } error
            ? (error.Node == from + (chunk * chunkSize) ? 0 : EndOf(ends[error.Node - 1 - from]))
            : chunks[chunk].Count;

        if (shards.Length == 1)
        {
            var set = shards[0];
            for (var chunk = 0; chunk < chunkCount; chunk++)
            {
                MarkNew(set, chunks[chunk].Span[..Made(chunk)]);
            }
        }
        else
        {
            Parallel.For(0, shards.Length, new ParallelOptions { MaxDegreeOfParallelism = Threads }, shard =>
            {
                for (var chunk = 0; chunk < chunkCount; chunk++)
                {
                    MarkNew(shards[shard], chunks[chunk].Span, chunks[chunk].OfShard(shard));
                }
            });
        }

        // The merge, in four steps: each chunk counts its new children (in parallel); their places in the next level and
        // numbers in the path store follow in chunk order; each chunk numbers and writes its new children (in
        // parallel); and the few nodes with findings, loops or no way on are judged in order, as one thread would.
        if (limits.Exceeded(watch, visited(), (++counts.MemoryChecks & 63) == 1) is { } why)
        {
            return why;
        }

        // The merge stops at the first error, as one thread would have met it.
        var merged = chunkCount;
        (int Node, Exception Error)? failed = null;
        for (var chunk = 0; chunk < chunkCount; chunk++)
        {
            if (errors[chunk] is { } error)
            {
                merged = chunk + 1;
                failed = error;
                break;
            }
        }

        int FirstNode(int chunk) => from + (chunk * chunkSize);
        int EndNode(int chunk) => errors[chunk] is { } error ? error.Node : Math.Min(to, from + ((chunk + 1) * chunkSize));
        void Count(int chunk) => CountNew(ctx, chunks[chunk], ends, from, FirstNode(chunk), EndNode(chunk));
        void Number(int chunk)
        {
            // Writing a child looks up its steps, and learning a step runs the model: the time limit is watched here too.
            if (NumberAndWrite(ctx, chunks[chunk], limits, watch, states) is { } why)
            {
                Volatile.Write(ref stopped, why);
            }
        }

        if (merged > 1)
        {
            Parallel.For(0, merged, new ParallelOptions { MaxDegreeOfParallelism = Threads }, Count);
        }
        else
        {
            Count(0);
        }

        var newCount = 0;
        var runCount = 0;
        for (var chunk = 0; chunk < merged; chunk++)
        {
            var list = chunks[chunk];
            list.FirstIndex = newCount;
            list.FirstRun = runCount;
            newCount += list.NewCount;
            runCount += list.RunTotal;
            counts.Transitions += list.Transitions;
        }

        var (firstIndex, firstRun) = ctx.Next.ReserveMany(newCount, runCount);
        var firstId = ctx.Paths.ReserveMany(newCount);
        for (var chunk = 0; chunk < merged; chunk++)
        {
            var list = chunks[chunk];
            list.FirstId = firstId + list.FirstIndex;
            list.FirstIndex += firstIndex;
            list.FirstRun += firstRun;
        }

        if (merged > 1)
        {
            Parallel.For(0, merged, new ParallelOptions { MaxDegreeOfParallelism = Threads }, Number);
        }
        else
        {
            Number(0);
        }

        if (stopped is not null)
        {
            return stopped;
        }

        for (var chunk = 0; chunk < merged; chunk++)
        {
            JudgeInOrder(ctx, chunks[chunk], ends, from, FirstNode(chunk), ref counts);
        }

        if (failed is { } stop)
        {
            if (stop.Error is LimitReachedException limit)
            {
                return limit.Message;
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(stop.Error).Throw();
        }

        return null;
    }

    /// <summary>The end of a node's children in its chunk's list (<see cref="WindowWork.Ends"/> complements it for a final state).</summary>
    private static int EndOf(int end) => end < 0 ? ~end : end;

    /// <summary>
    /// The merge's first step, for the nodes [<paramref name="first"/>, <paramref name="end"/>) of one chunk: counts
    /// the new children, their runs and the transitions, and notes the nodes that must be judged in order (a child with
    /// findings, a loop, or a final state).
    /// </summary>
    private static void CountNew(MergeContext ctx, CandidateList list, int[] ends, int from, int first, int end)
    {
        var states = ctx.Search.States;
        var span = list.Span;
        list.Special.Clear();
        int newCount = 0, runs = 0, transitions = 0, at = 0;
        for (var node = first; node < end; node++)
        {
            var childrenEnd = EndOf(ends[node - from]);
            var special = ends[node - from] < 0;
            for (var k = at; k < childrenEnd; k++)
            {
                ref var c = ref span[k];
                transitions++;
                if (c.Loop)
                {
                    special = true;
                    continue;
                }

                if (c.New)
                {
                    newCount++;
                    runs += c.RunCount;
                }

                special |= c.Slow >= 0 ? list.Slow[c.Slow].Taken.Findings.Count > 0 : states.StepAt(c.Step).HasFindings;
            }

            if (special)
            {
                list.Special.Add(node);
            }

            at = childrenEnd;
        }

        list.Merged = at;
        list.NewCount = newCount;
        list.RunTotal = runs;
        list.Transitions = transitions;
    }

    /// <summary>
    /// The merge's third step, for one chunk: its new children take their places in the next level and their numbers
    /// in the path store, in order from the chunk's first ones (<see cref="CandidateList.FirstIndex"/>), and are written.
    /// </summary>
    private static string? NumberAndWrite(MergeContext ctx, CandidateList list, ExplorationLimits limits, Stopwatch watch, long visited)
    {
        var states = ctx.Search.States;
        var span = list.Span[..list.Merged];
        var index = list.FirstIndex;
        var run = list.FirstRun;
        var id = list.FirstId;
        var written = 0;
        foreach (ref var c in span)
        {
            if (c.Loop || !c.New)
            {
                c.Index = -1;
                c.Id = -1;
                continue;
            }

            if ((++written & 63) == 0 && limits.Exceeded(watch, visited, checkMemory: false) is { } why)
            {
                return why; // the search stops here: the level being written is never read
            }

            c.Index = index++;
            c.Id = id++;
            ctx.Paths.Set(c.Id, ctx.Level.Id(c.Node), states.StepAt(c.Step).Agent, c.Slow >= 0 ? list.Slow[c.Slow].Resolved : null);
            ctx.Next.Place(c.Index, run, c.RunCount, c.Id);
            WriteChild(ctx, in c, list, run);
            run += c.RunCount;
        }

        return null;
    }

    /// <summary>
    /// The merge's last step, for one chunk: the findings of the nodes <see cref="CountNew"/> noted are recorded (loops
    /// last, as the one-thread queue meets them), and their final states judged, in order.
    /// </summary>
    private void JudgeInOrder(MergeContext ctx, CandidateList list, int[] ends, int from, int first, ref MergeCounts counts)
    {
        var level = ctx.Level;
        var states = ctx.Search.States;
        foreach (var node in list.Special)
        {
            var parentId = level.Id(node);
            var children = list.Span[(node == first ? 0 : EndOf(ends[node - 1 - from]))..EndOf(ends[node - from])];
            foreach (ref var c in children)
            {
                if (!c.Loop && (c.Slow >= 0 || states.StepAt(c.Step).HasFindings) && list.Taken(in c, states) is { Findings.Count: > 0 } taken)
                {
                    RecordFinding(ctx, taken, c.Id, parentId);
                }
            }

            foreach (ref var c in children)
            {
                if (c.Loop)
                {
                    RecordFinding(ctx, list.Taken(in c, states), -1, parentId);
                }
            }

            if (ends[node - from] < 0)
            {
                counts.Finals++;
                var search = ctx.Search;
                var built = new SearchNode(search.States.Materialise(level.Agents(node), level.Shared(node), level.Ctrl(node)),
                    PackedRuns.ToMap(level.Runs(node), level.Lines(node), search.Sets), null, ctx.Depth, level.Fingerprint(node), ctx.Paths, level.Cost(node))
                { Id = parentId };
                Final(search.Model, built, ctx.Accumulators, ctx.Crashes, ref counts.Blocked, ref counts.Hung);
            }
        }
    }

    /// <summary>
    /// Marks each child of <paramref name="children"/> (loops aside) that <paramref name="set"/> has not seen, adding
    /// it. The table's slots are fetched a few children ahead: the table outgrows the caches, and each probe would
    /// otherwise wait for memory.
    /// </summary>
    private static void MarkNew(FingerprintSet set, Span<PackedCandidate> children)
    {
        const int Ahead = 8;
        for (var i = 0; i < Math.Min(Ahead, children.Length); i++)
        {
            set.Prefetch(children[i].Fingerprint);
        }

        for (var i = 0; i < children.Length; i++)
        {
            if (i + Ahead < children.Length)
            {
                set.Prefetch(children[i + Ahead].Fingerprint);
            }

            ref var c = ref children[i];
            if (!c.Loop)
            {
                c.New = set.Add(c.Fingerprint);
            }
        }
    }

    /// <summary><see cref="MarkNew(FingerprintSet, Span{PackedCandidate})"/> for the children of one shard, by their indices in order.</summary>
    private static void MarkNew(FingerprintSet set, Span<PackedCandidate> children, ReadOnlySpan<int> ofShard)
    {
        const int Ahead = 8;
        for (var i = 0; i < Math.Min(Ahead, ofShard.Length); i++)
        {
            set.Prefetch(children[ofShard[i]].Fingerprint);
        }

        for (var i = 0; i < ofShard.Length; i++)
        {
            if (i + Ahead < ofShard.Length)
            {
                set.Prefetch(children[ofShard[i + Ahead]].Fingerprint);
            }

            ref var c = ref children[ofShard[i]];
            c.New = set.Add(c.Fingerprint);
        }
    }

    /// <summary>
    /// Node <paramref name="node"/>'s children, appended to <paramref name="into"/> (one per enabled agent and way its
    /// step can turn out); true when it is a final state (no step leads elsewhere).
    /// </summary>
    private bool ExpandPacked(PackedSearch search, PackedLevel level, int node, CandidateList into, ExplorationLimits limits, Stopwatch watch, long states)
    {
        var model = search.Model;
        var lineSize = model.Hardware.LineSize;
        var agents = level.Agents(node);
        var shared = level.Shared(node);
        var ctrl = level.Ctrl(node);
        var linesFingerprint = level.Lines(node);
        var cost = level.Cost(node);
        var fingerprint = level.Fingerprint(node);
        var runs = level.Runs(node);
        LineMap? map = null;
        var final = true;
        Span<PackedRun> seg = stackalloc PackedRun[8];
        var stepIds = level.Steps(node);
        for (var agent = 0; agent < stepIds.Length; agent++)
        {
            var id = stepIds[agent];
            if (id == PackedStates.Unlearnt && search.States.Step(agents, shared, ctrl, agent) is { } learnt)
            {
                id = learnt.Id; // learning it threw when the node was written: here it throws again, or was learnt since
            }

            if (id < 0)
            {
                continue; // not enabled
            }

            var step = search.States.StepAt(id);

            var plan = step.Plan ??= LinePlan.For(step.Step.Ops, search.States.SharedAt(shared).Dma.Kernel.Mmu, lineSize);
            if (plan.IsOneLine)
            {
                // One line changes: the child's line fingerprint from the parent's, edited; its runs are written only if it is new.
                var tick = 0;
                var (line, set, hash) = plan.OneLine(runs, search.Initial, search.Applied, search.Sets, lineSize, ref tick, limits, watch, states);
                var (lo, hi, n, lines) = PackedRuns.EditLine(runs, linesFingerprint, line, lineSize, set, hash, seg, search.Sets);
                ref var c = ref into.Add();
                c.Fingerprint = SearchNode.Fingerprinted(ctrl + step.Delta, lines, cost);
                c.Lines = lines;
                c.EditLine = line;
                c.EditSet = set;
                c.EditHash = hash;
                c.RunCount = runs.Length - (hi - lo) + n;
                final &= Close(ref c, step, -1, node, cost, fingerprint);
                continue;
            }

            if (plan.IsNone && step.Step.Ops.Count == 0)
            {
                // No hardware operation: the lines stay the parent's.
                ref var c = ref into.Add();
                c.Fingerprint = SearchNode.Fingerprinted(ctrl + step.Delta, linesFingerprint, cost);
                c.Lines = linesFingerprint;
                c.EditSet = -1;
                c.RunCount = runs.Length;
                final &= Close(ref c, step, -1, node, cost, fingerprint);
                continue;
            }

            map ??= PackedRuns.ToMap(runs, linesFingerprint, search.Sets);
            if (!plan.IsNone)
            {
                var tick = 0;
                var lines = plan.Apply(map, lineSize, planInitial!, planApplied!, ref tick, limits, watch, states);
                into.Slow.Add(new SlowChild(step.Step, lines, null));
                ref var c = ref into.Add();
                c.Fingerprint = SearchNode.Fingerprinted(ctrl + step.Delta, lines.Fingerprint, cost);
                c.Lines = lines.Fingerprint;
                c.EditSet = -2;
                c.RunCount = lines.RunCount;
                final &= Close(ref c, step, into.Slow.Count - 1, node, cost, fingerprint);
                continue;
            }

            foreach (var outcome in ApplyOps(model, search.States.SharedAt(shared).Dma.Kernel.Mmu, map, step.Step.Ops, limits, watch, states))
            {
                var miss = outcome.Resolved is { } r && step.Step.Missed is not null && PollOp.IsMiss(r);
                var childCost = cost + outcome.Cost;
                into.Slow.Add(new SlowChild(outcome.Resolved is { } ops ? step.Step.Resolved(ops) : step.Step, outcome.Lines, outcome.Resolved));
                ref var c = ref into.Add();
                c.Fingerprint = SearchNode.Fingerprinted(ctrl + (miss ? step.MissDelta : step.Delta), outcome.Lines.Fingerprint, childCost);
                c.Lines = outcome.Lines.Fingerprint;
                c.EditSet = -2;
                c.Miss = miss;
                c.RunCount = outcome.Lines.RunCount;
                final &= Close(ref c, step, into.Slow.Count - 1, node, childCost, fingerprint);
            }
        }

        // Only polls can step without changing the state; a node whose every step does is final (hung).
        return final;

        // The fields every candidate has; true when the child is the node itself by a poll (a loop).
        bool Close(ref PackedCandidate c, PackedStep step, int slow, int node, int cost, UInt128 nodeFingerprint)
        {
            c.Step = step.Id;
            c.Slow = slow;
            c.Cost = cost;
            c.Node = node;
            c.Loop = c.Fingerprint == nodeFingerprint && (slow >= 0 ? into.Slow[slow].Taken : step.Step).Statement is PollStmt;
            return c.Loop;
        }
    }

    /// <summary>Breadth-first: the first run to reach a finding is a shortest one.</summary>
    private static void RecordFinding(MergeContext ctx, StepResult step, int id, int parentId) =>
        ctx.Findings.Add(step, () => id >= 0 ? ctx.Paths.Path(id) : [.. ctx.Paths.Path(parentId), step]);

    /// <summary>Writes new child <paramref name="c"/> into its place in the next level.</summary>
    private static void WriteChild(MergeContext ctx, in PackedCandidate c, CandidateList list, int runStart)
    {
        var level = ctx.Level;
        var next = ctx.Next;
        var step = ctx.Search.States.StepAt(c.Step);
        var node = c.Node;
        var agentState = c.Miss ? step.MissAgent : step.NextAgent;
        var shared = c.Miss ? step.MissShared : step.NextShared;
        var ctrl = level.Ctrl(node) + (c.Miss ? step.MissDelta : step.Delta);
        next.Write(c.Index, level.Agents(node), step.Agent, agentState, shared, ctrl, c.Lines, c.Fingerprint, c.Cost);
        var states = ctx.Search.States;
        var parentAgents = level.Agents(node);
        var same = shared == level.Shared(node) && states.IsDone(agentState) == states.IsDone(parentAgents[step.Agent]);
        states.StepsOf(next.Agents(c.Index), shared, ctrl, next.StepsOf(c.Index), same ? level.Steps(node) : default, step.Agent);
        var runs = level.Runs(node);
        var into = next.RunsAt(runStart, c.RunCount);
        switch (c.EditSet)
        {
            case >= 0:
                Span<PackedRun> seg = stackalloc PackedRun[8];
                var (lo, hi, n, _) = PackedRuns.EditLine(runs, level.Lines(node), c.EditLine, ctx.Search.Model.Hardware.LineSize, c.EditSet, c.EditHash, seg, ctx.Search.Sets);
                runs[..lo].CopyTo(into);
                seg[..n].CopyTo(into[lo..]);
                runs[hi..].CopyTo(into[(lo + n)..]);
                break;
            case -1:
                runs.CopyTo(into);
                break;
            default:
                var i = 0;
                foreach (var r in list.Slow[c.Slow].Map.Runs)
                {
                    into[i++] = new PackedRun(r.Start, r.End, ctx.Search.Sets.Id(r.Set), LineMap.RunHash(r));
                }

                break;
        }
    }
}
