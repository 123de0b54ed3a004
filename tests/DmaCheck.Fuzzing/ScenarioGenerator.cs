using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Fuzzing;

/// <summary>What the <see cref="ScenarioGenerator"/> may produce.</summary>
/// <param name="BruteForceFeasible">
/// Keep every scenario small enough for <c>BruteForceExplorer</c>: it keeps one concrete state per touched line and
/// is exponential in their number, and anything that clears a whole page (dma_alloc_coherent's memset,
/// init_on_alloc or __GFP_ZERO on an allocation, init_on_free on a free) touches all 64 lines of it. With this set
/// the generator uses only kmalloc'd buffers, never lets an allocation or a free clear its page, and keeps the
/// buffers to <see cref="MaxBufferBytes"/> bytes in all.
/// </param>
/// <param name="MaxStatements">The most statements one program chooses freely (the owner thread adds the maps, signals and waits it owes).</param>
/// <param name="MaxOtherStatements">The most freely chosen statements of the second thread and the DMA engine together.</param>
/// <param name="MaxBufferBytes">The most bytes of all buffers together (each buffer is 64, 128 or 192 bytes).</param>
public sealed record ScenarioGeneratorOptions(bool BruteForceFeasible, int MaxStatements = 5, int MaxOtherStatements = 8, int MaxBufferBytes = 384)
{
    /// <summary>Small scenarios both explorers finish quickly: the cross-check of the explorers.</summary>
    public static ScenarioGeneratorOptions BruteForce { get; } = new(true, MaxStatements: 4, MaxOtherStatements: 5, MaxBufferBytes: 192);

    /// <summary>Everything the generator knows, including dma_alloc_coherent and page-clearing settings: for the line-set explorer alone.</summary>
    public static ScenarioGeneratorOptions Full { get; } = new(false);
}

/// <summary>A generated scenario: its text and a few facts about it. Prints as its text, so a failing property shows the scenario.</summary>
public sealed record GeneratedScenario(string Text, int Agents, int Reads, int Expectations, int BufferBytes)
{
    public override string ToString() => Environment.NewLine + Text;
}

/// <summary>
/// FsCheck generators of random, small, valid scenario texts (the language of scenarios/seeds). Every scenario binds
/// (fresh variables, each assigned once, every name declared) and runs without a <c>RunException</c> by construction:
/// no double free, no access past a buffer or its mapping, no use of a freed non-cacheable remap, no GFP_ATOMIC
/// dma_alloc_coherent for a non-coherent device, no DMA_NONE, no __GFP_COMP. Events are ordered so that no program
/// waits for something that cannot come: the owner thread <c>t0</c> assigns every buffer and handle and signals
/// <c>go</c> before it waits for any <c>done_*</c> event of the other programs.
/// </summary>
public static class ScenarioGenerator
{
    private const int LineSize = 64;

    private static readonly string[] Directions = ["DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_BIDIRECTIONAL"];
    private static readonly string[] WriterNames = ["p", "q", "s"];

    /// <summary>Scenarios both explorers can check in well under a second.</summary>
    public static Gen<GeneratedScenario> BruteForceFeasible() => Scenario(ScenarioGeneratorOptions.BruteForce);

    /// <summary>Scenarios using everything the generator knows (page-sized memsets included): for the line-set explorer.</summary>
    public static Gen<GeneratedScenario> Full() => Scenario(ScenarioGeneratorOptions.Full);

    /// <summary>An FsCheck <see cref="Arbitrary{T}"/> over <see cref="BruteForceFeasible"/> (no shrinking).</summary>
    public static Arbitrary<GeneratedScenario> BruteForceFeasibleArbitrary() => BruteForceFeasible().ToArbitrary();

    /// <summary>Random scenario texts under <paramref name="options"/>.</summary>
    public static Gen<GeneratedScenario> Scenario(ScenarioGeneratorOptions options) =>
        from settings in SettingsGen(options)
        from devices in DevicesGen()
        from buffers in BuffersGen(options, settings, devices)
        from agents in AgentsGen(options, devices, buffers)
        from expectations in ExpectationsGen(agents)
        select Render(settings, devices, buffers, agents, expectations);

    // ---- the plan: settings, devices, buffers -------------------------------------------------------------------

    /// <param name="FreeClears">init_on_free is on: a free clears the page.</param>
    /// <param name="ZeroFlagClears">__GFP_ZERO on an allocation clears the page (it does unless init_on_free is on).</param>
    private sealed record Settings(string Profile, IReadOnlyList<(string Key, string Value)> Lines, bool FreeClears, bool ZeroFlagClears);

    private sealed record Device(string Name, bool Coherent);

    private sealed record MapPlan(Device Device, int Offset, int Length, string Direction, bool CheckError, bool Unmap);

    /// <param name="Hot">Byte ranges most accesses to the buffer use, so that they overlap.</param>
    private sealed record BufferPlan(int Index, bool Coherent, int Size, Device Device, string Gfp, MapPlan? Map, bool Free, IReadOnlyList<(int Lo, int Hi)> Hot)
    {
        public string Name => $"b{Index}";

        public string Handle => $"h{Index}";
    }

    /// <summary>A range of memory an agent can address: an address expression and how many bytes follow it.</summary>
    /// <param name="Buffer">The buffer the region lies in; its byte 0 is byte <paramref name="Base"/> of the buffer.</param>
    private sealed record Region(string Address, int Length, Device? Device, IReadOnlyList<(int Lo, int Hi)> Hot, int Buffer, int Base);

    /// <summary>True two times in three.</summary>
    private static Gen<bool> Likely { get; } = Gen.Frequency((2, Gen.Constant(true)), (1, Gen.Constant(false)));

    private static Gen<T?> Maybe<T>(Gen<T> gen, int weightNone = 1, int weightSome = 1)
        where T : class =>
        Gen.Frequency((weightNone, Gen.Constant<T?>(null)), (weightSome, gen.Select(x => (T?)x)));

    private static Gen<string?> OptionalValue(params string[] values) =>
        Gen.Frequency((1, Gen.Constant<string?>(null)), (3, Gen.Elements(values).Select(v => (string?)v)));

    private static Gen<Settings> SettingsGen(ScenarioGeneratorOptions options) =>
        from profile in Gen.Elements("linux-6.3-arm64", "linux-6.4-arm64")
        from initOnFree in OptionalValue("on", "off")
        from initOnAllocWanted in OptionalValue("on", "off")
        from cacheInit in OptionalValue("cold", "cold", "arbitrary")
        from ivac in OptionalValue("on", "off")
        from prep in OptionalValue("clean", "clean_inval")
        from fromDevice in OptionalValue("clean", "inval")
        from order in Gen.Shuffle(new[] { 0, 1, 2, 3, 4, 5 })
        select MakeSettings(options, profile, initOnFree, initOnAllocWanted, cacheInit, ivac, prep, fromDevice, order);

    private static Settings MakeSettings(ScenarioGeneratorOptions options, string profile, string? initOnFree, string? initOnAlloc,
        string? cacheInit, string? ivac, string? prep, string? fromDevice, int[] order)
    {
        var freeClears = initOnFree == "on";

        // post_alloc_hook clears the page only when init_on_free is off; a brute-force scenario must not clear a page.
        if (options.BruteForceFeasible && !freeClears && initOnAlloc == "on")
        {
            initOnAlloc = "off";
        }

        var lines = new (string, string?)[]
        {
            ("init_on_alloc", initOnAlloc),
            ("init_on_free", initOnFree),
            ("cache_init", cacheInit),
            ("hw.ivac_as_civac", ivac),
            ("arm64.prep_coherent", prep),
            ("arm64.sync_for_device_from_device", fromDevice),
        };
        var present = order.Select(i => lines[i]).Where(l => l.Item2 is not null).Select(l => (l.Item1, l.Item2!)).ToList();
        return new Settings(profile, present, FreeClears: freeClears, ZeroFlagClears: !freeClears);
    }

    private static Gen<IReadOnlyList<Device>> DevicesGen() =>
        from count in Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Constant(2)))
        from coherent in Gen.Elements(true, false).ArrayOf(count)
        select (IReadOnlyList<Device>)coherent.Select((c, i) => new Device($"d{i}", c)).ToList();

    private static Gen<IReadOnlyList<BufferPlan>> BuffersGen(ScenarioGeneratorOptions options, Settings settings, IReadOnlyList<Device> devices)
    {
        // Sizes in cache lines, no more than MaxBufferBytes together.
        var maxLines = Math.Max(1, options.MaxBufferBytes / LineSize);
        var sizes = Gen.Frequency(
            (3, Gen.Choose(1, Math.Min(3, maxLines)).Select(n => new[] { n })),
            (maxLines >= 2 ? 2 : 0, Gen.Choose(1, Math.Min(3, maxLines - 1)).SelectMany(a => Gen.Choose(1, Math.Min(3, maxLines - a)).Select(b => new[] { a, b }))));
        return from lines in sizes
               from plans in Gen.CollectToList(lines.Select((n, i) => BufferGen(options, settings, devices, i, n * LineSize)))
               select (IReadOnlyList<BufferPlan>)plans;
    }

    private static Gen<BufferPlan> BufferGen(ScenarioGeneratorOptions options, Settings settings, IReadOnlyList<Device> devices, int index, int size) =>
        from coherent in options.BruteForceFeasible ? Gen.Constant(false) : Gen.Frequency((1, Gen.Constant(true)), (1, Gen.Constant(false)))
        from device in Gen.Elements(devices.ToArray())
        from gfp in GfpGen(options, settings, coherent, device)
        from hot in RangeGen(size).ListOf(2)
        from map in coherent ? Gen.Constant<MapPlan?>(null) : Maybe(MapGen(devices, size, hot.ToList()), 1, 3)
        from free in FreeAllowed(options, settings, coherent) ? Gen.Elements(true, false) : Gen.Constant(false)
        select new BufferPlan(index, coherent, size, device, gfp, map, free, hot.ToList());

    private static bool FreeAllowed(ScenarioGeneratorOptions options, Settings settings, bool coherent) =>
        !options.BruteForceFeasible || (!coherent && !settings.FreeClears);

    private static Gen<string> GfpGen(ScenarioGeneratorOptions options, Settings settings, bool coherent, Device device)
    {
        var choices = new List<(int, Gen<string>)>
        {
            (4, Gen.Constant("GFP_KERNEL")),
            (1, Gen.Constant("GFP_KERNEL | __GFP_NOWARN")),
            (1, Gen.Constant("GFP_KERNEL | GFP_DMA32")),
        };

        // A non-blocking dma_alloc_coherent for a non-coherent device takes the atomic pool, which is not modelled.
        if (!coherent || device.Coherent)
        {
            choices.Add((1, Gen.Constant("GFP_ATOMIC")));
            choices.Add((1, Gen.Constant("GFP_NOWAIT")));
        }

        if (!options.BruteForceFeasible || !settings.ZeroFlagClears)
        {
            choices.Add((1, Gen.Constant("GFP_KERNEL | __GFP_ZERO")));
        }

        return Gen.Frequency(choices);
    }

    private static Gen<MapPlan> MapGen(IReadOnlyList<Device> devices, int size, IReadOnlyList<(int Lo, int Hi)> hot) =>
        from device in Gen.Elements(devices.ToArray())
        from range in RangeGen(size, hot)
        from direction in Gen.Elements(Directions)
        from checkError in Gen.Elements(true, false)
        from unmap in Gen.Elements(true, false)
        select new MapPlan(device, range.Lo, range.Hi - range.Lo, direction, checkError, unmap);

    /// <summary>
    /// A byte range [Lo, Hi) inside [0, length): one of the <paramref name="hot"/> ranges (so that accesses of
    /// different programs overlap often), or whole, line-aligned, 8-byte aligned or arbitrary.
    /// </summary>
    private static Gen<(int Lo, int Hi)> RangeGen(int length, IReadOnlyList<(int Lo, int Hi)>? hot = null)
    {
        var lines = (length + LineSize - 1) / LineSize;
        var eights = length / 8;
        var choices = new List<(int, Gen<(int, int)>)>
        {
            (2, Gen.Constant((0, length))),
            (2, from a in Gen.Choose(0, lines - 1)
                from b in Gen.Choose(a + 1, lines)
                select (a * LineSize, Math.Min(b * LineSize, length))),
            (2, from lo in Gen.Choose(0, length - 1)
                from hi in Gen.Choose(lo + 1, length)
                select (lo, hi)),
        };
        if (eights > 0)
        {
            choices.Add((2, from a in Gen.Choose(0, eights - 1)
                            from b in Gen.Choose(a + 1, eights)
                            select (a * 8, b * 8)));
        }

        var usable = hot?.Where(r => r.Lo >= 0 && r.Lo < r.Hi && r.Hi <= length).ToArray() ?? [];
        if (usable.Length > 0)
        {
            choices.Add((8, Gen.Elements(usable).Select(r => (r.Lo, r.Hi))));
        }

        return Gen.Frequency(choices);
    }

    // ---- programs -----------------------------------------------------------------------------------------------

    /// <summary>One statement; a read's variable is named when its program is assembled.</summary>
    private abstract record Stmt;

    private sealed record Line(string Text) : Stmt;

    /// <summary>An access to bytes [Lo, Hi) of a region; <see cref="Base"/> places them in buffer <see cref="Buffer"/>.</summary>
    private abstract record AccessStmt(string Address, int Lo, int Hi, int Buffer, int Base) : Stmt;

    private sealed record ReadStmt(string Address, int Lo, int Hi, int Buffer, int Base) : AccessStmt(Address, Lo, Hi, Buffer, Base);

    private sealed record WriteStmt(string Address, int Lo, int Hi, int Buffer, int Base, string Writer) : AccessStmt(Address, Lo, Hi, Buffer, Base);

    /// <summary>A read's variable, its length and where it starts in which buffer; statement <c>Seq</c> of program <c>Program</c>.</summary>
    private sealed record ReadInfo(string Var, int Length, int Buffer, int Start, string Program, int Seq);

    /// <summary>A write's writer and the bytes [Start, End) of the buffer it covers; statement <c>Seq</c> of program <c>Program</c>.</summary>
    private sealed record WriteInfo(string Writer, int Buffer, int Start, int End, string Program, int Seq);

    /// <summary>A program: its header line (without the brace) and its body, with the reads it makes.</summary>
    private sealed record Program(string Header, IReadOnlyList<string> Body, IReadOnlyList<ReadInfo> Reads, IReadOnlyList<WriteInfo> Writes);

    private sealed record Agents(IReadOnlyList<Program> Programs, string? FirmwareDecl)
    {
        public IReadOnlyList<ReadInfo> Reads => Programs.SelectMany(p => p.Reads).ToList();

        public IReadOnlyList<WriteInfo> Writes => Programs.SelectMany(p => p.Writes).ToList();
    }

    /// <summary>Who does what: the other programs and events, decided before the owner thread is generated.</summary>
    private sealed record Roles(bool SecondCpu, bool Engine, bool Firmware, bool SmcOnSecondCpu, Region? SmcTarget, bool UseGo, bool SecondCpuWaitsGo, bool EngineWaitsGo, bool SecondCpuDone, bool EngineDone);

    private static Program Assemble(string header, IEnumerable<Stmt> body, string prefix)
    {
        var lines = new List<string>();
        var reads = new List<ReadInfo>();
        var writes = new List<WriteInfo>();
        foreach (var s in body)
        {
            switch (s)
            {
                case ReadStmt r:
                    var name = $"{prefix}{reads.Count}";
                    reads.Add(new ReadInfo(name, r.Hi - r.Lo, r.Buffer, r.Base + r.Lo, prefix, lines.Count));
                    lines.Add($"read {r.Address}[{r.Lo}..{r.Hi}] -> {name}");
                    break;
                case WriteStmt w:
                    writes.Add(new WriteInfo(w.Writer, w.Buffer, w.Base + w.Lo, w.Base + w.Hi, prefix, lines.Count));
                    lines.Add($"write {w.Address}[{w.Lo}..{w.Hi}] = {w.Writer}");
                    break;
                case Line l:
                    lines.Add(l.Text);
                    break;
            }
        }

        return new Program(header, lines, reads, writes);
    }

    private static IEnumerable<Region> CpuRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.Select(b => new Region(b.Name, b.Size, null, b.Hot, b.Index, 0));

    private static IEnumerable<Region> DmaRegions(IReadOnlyList<BufferPlan> buffers) =>
        buffers.SelectMany(b => b.Coherent
            ? [new Region($"{b.Name}.dma", b.Size, b.Device, b.Hot, b.Index, 0)]
            : b.Map is { } m ? [new Region(b.Handle, m.Length, m.Device, Shift(b.Hot, m.Offset, m.Length), b.Index, m.Offset)] : Array.Empty<Region>());

    /// <summary>Buffer ranges seen through a mapping of [offset, offset+length): clipped and shifted.</summary>
    private static List<(int Lo, int Hi)> Shift(IReadOnlyList<(int Lo, int Hi)> ranges, int offset, int length) =>
        ranges.Select(r => (Lo: Math.Max(r.Lo - offset, 0), Hi: Math.Min(r.Hi - offset, length))).Where(r => r.Lo < r.Hi).ToList();

    private static Gen<Stmt> AccessGen(IReadOnlyList<Region> regions, Func<string, string> address, int writeWeight = 1) =>
        from region in Gen.Elements(regions.ToArray())
        from range in RangeGen(region.Length, region.Hot)
        from write in Gen.Frequency((writeWeight, Gen.Constant(true)), (1, Gen.Constant(false)))
        from writer in Gen.Elements(WriterNames)
        select write
            ? new WriteStmt(address(region.Address), range.Lo, range.Hi, region.Buffer, region.Base, writer)
            : (Stmt)new ReadStmt(address(region.Address), range.Lo, range.Hi, region.Buffer, region.Base);

    private static Gen<Stmt> ReadGen(IReadOnlyList<Region> regions) =>
        from region in Gen.Elements(regions.ToArray())
        from range in RangeGen(region.Length, region.Hot)
        select (Stmt)new ReadStmt(region.Address, range.Lo, range.Hi, region.Buffer, region.Base);

    private static Gen<Stmt> SyncGen(BufferPlan b)
    {
        var map = b.Map!;
        return from forCpu in Gen.Elements(true, false)
               from sameDirection in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
               from other in Gen.Elements(Directions)
               from partial in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
               from range in RangeGen(map.Length, Shift(b.Hot, map.Offset, map.Length))
               let dir = sameDirection ? map.Direction : other
               let handle = partial && range.Lo > 0 ? $"{b.Handle} + {range.Lo}" : b.Handle
               let length = partial ? range.Hi - range.Lo : map.Length
               select (Stmt)new Line($"dma_sync_single_for_{(forCpu ? "cpu" : "device")}({map.Device.Name}, {handle}, {length}, {dir})");
    }

    private static Gen<Agents> AgentsGen(ScenarioGeneratorOptions options, IReadOnlyList<Device> devices, IReadOnlyList<BufferPlan> buffers)
    {
        var dmaRegions = DmaRegions(buffers).ToList();
        return from secondCpu in Gen.Frequency((1, Gen.Constant(true)), (2, Gen.Constant(false)))
               from engine in dmaRegions.Count > 0 ? Gen.Frequency((2, Gen.Constant(true)), (1, Gen.Constant(false))) : Gen.Constant(false)
               from firmware in dmaRegions.Count > 0 ? Gen.Elements(true, false) : Gen.Constant(false)
               from smcOnSecond in secondCpu && firmware ? Gen.Frequency((1, Gen.Constant(true)), (3, Gen.Constant(false))) : Gen.Constant(false)
               from smcTarget in firmware ? Gen.Elements(dmaRegions.ToArray()).Select(r => (Region?)r) : Gen.Constant<Region?>(null)
               from useGo in secondCpu || engine ? Likely : Gen.Constant(false)
               from secondWaits in Gen.Elements(true, false)
               from engineWaits in Likely
               from secondDone in Gen.Elements(true, false)
               from engineDone in Likely
               let roles = new Roles(secondCpu, engine, firmware, smcOnSecond, smcTarget, useGo,
                   secondCpu && useGo && secondWaits, engine && useGo && engineWaits,
                   secondCpu && (secondDone || buffers.Any(b => b.Free && b.Coherent)), engine && engineDone)
               from secondCount in Gen.Choose(1, Math.Max(1, Math.Min(options.MaxStatements, options.MaxOtherStatements - (engine ? 1 : 0))))
               from engineCount in Gen.Choose(1, Math.Max(1, Math.Min(options.MaxStatements - 1, options.MaxOtherStatements - (secondCpu ? secondCount : 0))))
               from second in secondCpu ? SecondCpuGen(buffers, roles, secondCount).Select(p => (Program?)p) : Gen.Constant<Program?>(null)
               from engineProgram in engine ? EngineGen(dmaRegions, roles, engineCount).Select(p => (Program?)p) : Gen.Constant<Program?>(null)
               from fw in firmware ? FirmwareGen(smcTarget!).Select(p => ((Program, string)?)p) : Gen.Constant<(Program, string)?>(null)
               from owner in OwnerGen(options, buffers, roles, new[] { second, engineProgram, fw?.Item1 }.Any(p => p is { Reads.Count: > 0 }))
               select new Agents(new[] { owner, second, engineProgram, fw?.Item1 }.OfType<Program>().ToList(), fw?.Item2);
    }

    /// <summary>Inserts <paramref name="item"/> into <paramref name="body"/> at a random position (or at its start/end).</summary>
    private static Gen<List<Stmt>> InsertAnywhere(List<Stmt> body, Stmt item) =>
        Gen.Choose(0, body.Count).Select(i =>
        {
            var copy = new List<Stmt>(body);
            copy.Insert(i, item);
            return copy;
        });

    private static Gen<Program> SecondCpuGen(IReadOnlyList<BufferPlan> buffers, Roles roles, int count)
    {
        var regions = CpuRegions(buffers).ToList();
        var mapped = buffers.Where(b => b.Map is not null).ToList();
        var choices = new List<(int, Gen<Stmt>)> { (4, AccessGen(regions, a => a)) };
        if (mapped.Count > 0)
        {
            choices.Add((1, Gen.Elements(mapped.ToArray()).SelectMany(SyncGen)));
        }

        return from body in Gen.Frequency(choices).ListOf(count)
               from withSmc in roles.SmcOnSecondCpu ? InsertAnywhere(body.ToList(), SmcLine(roles.SmcTarget!)) : Gen.Constant(body.ToList())
               from withWait in roles.SecondCpuWaitsGo ? InsertAnywhere(withSmc, new Line("wait go")) : Gen.Constant(withSmc)
               select Assemble("cpu t1", roles.SecondCpuDone ? withWait.Append(new Line("signal done_t1")) : withWait, "u");
    }

    private static Stmt SmcLine(Region target) => new Line($"smc fw({target.Address})");

    private static Gen<Program> EngineGen(IReadOnlyList<Region> regions, Roles roles, int count) =>
        from device in Gen.Elements(regions.Select(r => r.Device!).ToArray())
        from body in AccessGen(regions, a => $"dma({a})", writeWeight: 2).ListOf(count)
        from withWait in roles.EngineWaitsGo ? InsertAnywhere(body.ToList(), new Line("wait go")) : Gen.Constant(body.ToList())
        select Assemble($"dma eng by {device.Name}", roles.EngineDone ? withWait.Append(new Line("signal done_eng")) : withWait, "e");

    private static Gen<(Program Program, string Declaration)> FirmwareGen(Region target) =>
        from access in Gen.Elements("cacheable", "non-cacheable")
        from count in Gen.Choose(1, 2)
        from body in AccessGen([target with { Address = "a" }], a => $"phys({a})").ListOf(count)
        select (Assemble("firmware fw on smc(a)", body, "f"), $"firmware fw {{ access = {access} }}");

    /// <summary>What the owner thread has done so far while its middle part is generated.</summary>
    private sealed record OwnerState(IReadOnlyList<Stmt> Body, IReadOnlySet<int> Mapped, IReadOnlySet<int> Unmapped, bool Smc, bool Go, IReadOnlySet<string> Waited)
    {
        public OwnerState Add(params Stmt[] stmts) => this with { Body = Body.Concat(stmts).ToList() };
    }

    private static Gen<Program> OwnerGen(ScenarioGeneratorOptions options, IReadOnlyList<BufferPlan> buffers, Roles roles, bool othersRead)
    {
        var allocs = buffers.Select(b => (Stmt)new Line(b.Coherent
            ? $"{b.Name} = dma_alloc_coherent({b.Device.Name}, {b.Size}, {b.Gfp})"
            : $"{b.Name} = kmalloc({b.Size}, {b.Gfp})")).ToList();
        var start = new OwnerState(allocs, new HashSet<int>(), new HashSet<int>(), !roles.Firmware || roles.SmcOnSecondCpu, !roles.UseGo, new HashSet<string>());
        // An empty middle gives the plain protocol: map, go, wait for the device, take the buffer back, read.
        return from count in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(1, options.MaxStatements)))
               from middle in OwnerSteps(buffers, roles, start, count)
               from epilogue in EpilogueGen(buffers, Settle(buffers, roles, middle))
               from finalRead in ReadGen(CpuRegions(buffers).ToList())
               select Assemble("cpu t0", Finish(buffers, epilogue, othersRead, finalRead), "v");
    }

    /// <summary>
    /// Often, after the owner has waited for the others: take a mapped buffer back from the device
    /// (dma_sync_single_for_cpu or dma_unmap_single, or not) and read it.
    /// </summary>
    private static Gen<OwnerState> EpilogueGen(IReadOnlyList<BufferPlan> buffers, OwnerState s)
    {
        var open = buffers.Where(b => b.Map is not null && !s.Unmapped.Contains(b.Index)).ToArray();
        var handBack = open.Length == 0
            ? Gen.Constant(s)
            : Gen.Elements(open).SelectMany(b => Gen.Frequency(
                (1, Gen.Constant(s)),
                (2, Gen.Constant(s.Add(new Line($"dma_sync_single_for_cpu({b.Map!.Device.Name}, {b.Handle}, {b.Map.Length}, {b.Map.Direction})")))),
                (b.Map!.Unmap ? 2 : 1, Gen.Constant(s.Add(UnmapLine(b)) with { Unmapped = new HashSet<int>(s.Unmapped) { b.Index } }))));
        var read = handBack.SelectMany(h => ReadGen(CpuRegions(buffers).ToList()).Select(r => h.Add(r)));
        return Gen.Frequency((1, Gen.Constant(s)), (2, read));
    }

    private static IEnumerable<string> DoneEvents(Roles roles) =>
        (roles.SecondCpuDone ? ["done_t1"] : Array.Empty<string>()).Concat(roles.EngineDone ? ["done_eng"] : Array.Empty<string>());

    private static bool AllMapped(IReadOnlyList<BufferPlan> buffers, OwnerState s) =>
        buffers.All(b => b.Map is null || s.Mapped.Contains(b.Index));

    private static Stmt MapLine(BufferPlan b) =>
        new Line($"{b.Handle} = dma_map_single({b.Map!.Device.Name}, {(b.Map.Offset == 0 ? b.Name : $"{b.Name} + {b.Map.Offset}")}, {b.Map.Length}, {b.Map.Direction})");

    private static Stmt UnmapLine(BufferPlan b) =>
        new Line($"dma_unmap_single({b.Map!.Device.Name}, {b.Handle}, {b.Map.Length}, {b.Map.Direction})");

    private static OwnerState DoMap(OwnerState s, BufferPlan b)
    {
        var next = s.Add(MapLine(b));
        if (b.Map!.CheckError)
        {
            next = next.Add(new Line($"dma_mapping_error({b.Map.Device.Name}, {b.Handle})"));
        }

        return next with { Mapped = new HashSet<int>(s.Mapped) { b.Index } };
    }

    private static bool SmcReady(IReadOnlyList<BufferPlan> buffers, OwnerState s, Roles roles) =>
        !s.Smc && roles.SmcTarget is { } t && buffers.All(b => b.Map is null || t.Address != b.Handle || s.Mapped.Contains(b.Index));

    /// <summary>The owner's middle part, one statement (or a map and its error check) at a time.</summary>
    private static Gen<OwnerState> OwnerSteps(IReadOnlyList<BufferPlan> buffers, Roles roles, OwnerState s, int remaining)
    {
        if (remaining == 0)
        {
            return Gen.Constant(s);
        }

        var choices = new List<(int, Gen<OwnerState>)>
        {
            (4, AccessGen(CpuRegions(buffers).ToList(), a => a).Select(st => s.Add(st))),
        };
        foreach (var b in buffers.Where(b => b.Map is not null))
        {
            if (!s.Mapped.Contains(b.Index))
            {
                choices.Add((3, Gen.Constant(DoMap(s, b))));
            }
            else if (!s.Unmapped.Contains(b.Index))
            {
                choices.Add((2, SyncGen(b).Select(st => s.Add(st))));
                if (b.Map!.Unmap)
                {
                    choices.Add((1, Gen.Constant(s.Add(UnmapLine(b)) with { Unmapped = new HashSet<int>(s.Unmapped) { b.Index } })));
                }
            }
        }

        if (SmcReady(buffers, s, roles))
        {
            choices.Add((2, Gen.Constant(s.Add(SmcLine(roles.SmcTarget!)) with { Smc = true })));
        }

        if (!s.Go)
        {
            choices.Add((2, Gen.Constant(s.Add(new Line("signal go")) with { Go = true })));
        }

        // Waiting for another program is safe only once everything it may need from t0 exists.
        if (s.Go && AllMapped(buffers, s))
        {
            foreach (var e in DoneEvents(roles).Where(e => !s.Waited.Contains(e)))
            {
                choices.Add((3, Gen.Constant(s.Add(new Line($"wait {e}")) with { Waited = new HashSet<string>(s.Waited) { e } })));
            }
        }

        return Gen.Frequency(choices).SelectMany(next => OwnerSteps(buffers, roles, next, remaining - 1));
    }

    /// <summary>Adds what the owner still owes after its middle part: its maps, its smc, the go signal and its waits.</summary>
    private static OwnerState Settle(IReadOnlyList<BufferPlan> buffers, Roles roles, OwnerState s)
    {
        foreach (var b in buffers.Where(b => b.Map is not null && !s.Mapped.Contains(b.Index)))
        {
            s = DoMap(s, b);
        }

        if (SmcReady(buffers, s, roles))
        {
            s = s.Add(SmcLine(roles.SmcTarget!)) with { Smc = true };
        }

        if (!s.Go)
        {
            s = s.Add(new Line("signal go")) with { Go = true };
        }

        foreach (var e in DoneEvents(roles).Where(e => !s.Waited.Contains(e)))
        {
            s = s.Add(new Line($"wait {e}")) with { Waited = new HashSet<string>(s.Waited) { e } };
        }

        return s;
    }

    /// <summary>Completes the owner: a read if nobody reads, then the frees.</summary>
    private static IEnumerable<Stmt> Finish(IReadOnlyList<BufferPlan> buffers, OwnerState s, bool othersRead, Stmt finalRead)
    {
        if (!othersRead && !s.Body.OfType<ReadStmt>().Any())
        {
            s = s.Add(finalRead);
        }

        foreach (var b in buffers.Where(b => b.Free))
        {
            s = s.Add(new Line(b.Coherent ? $"dma_free_coherent({b.Device.Name}, {b.Size}, {b.Name})" : $"kfree({b.Name})"));
        }

        return s.Body;
    }

    // ---- expectations and text ----------------------------------------------------------------------------------

    private sealed record Atom(string Var, (int Lo, int Hi)? Range, string Writer);

    /// <summary>
    /// One or two expectations of one or two atoms each. Most atoms are plausible: the part of a read that a write
    /// of the same buffer covers (a write that does not come after the read in the same program), expected to hold
    /// that writer's bytes; the rest compare a random part of a read with a random writer (zero and old included).
    /// </summary>
    private static Gen<IReadOnlyList<IReadOnlyList<Atom>>> ExpectationsGen(Agents agents)
    {
        var reads = agents.Reads.ToArray();
        var writers = agents.Writes.Select(w => w.Writer).Distinct().ToArray();
        var writerGen = writers.Length == 0
            ? Gen.Elements("zero", "old")
            : Gen.Frequency((4, Gen.Elements(writers)), (1, Gen.Constant("zero")), (1, Gen.Constant("old")));
        var randomAtom =
            from read in Gen.Elements(reads)
            from whole in Gen.Elements(true, false)
            from range in RangeGen(read.Length)
            from writer in writerGen
            select new Atom(read.Var, whole ? null : range, writer);
        var plausible = (
            from r in reads
            from w in agents.Writes
            where w.Buffer == r.Buffer && (w.Program != r.Program || w.Seq < r.Seq)
            let lo = Math.Max(r.Start, w.Start) - r.Start
            let hi = Math.Min(r.Start + r.Length, w.End) - r.Start
            where lo < hi
            select new Atom(r.Var, lo == 0 && hi == r.Length ? null : (lo, hi), w.Writer)).Distinct().ToArray();
        var atom = plausible.Length == 0 ? randomAtom : Gen.Frequency((5, Gen.Elements(plausible)), (1, randomAtom));
        var expectation = Gen.Frequency((3, Gen.Constant(1)), (1, Gen.Constant(2))).SelectMany(n => atom.ListOf(n)).Select(l => (IReadOnlyList<Atom>)l.ToList());
        return Gen.Choose(1, 2).SelectMany(n => expectation.ListOf(n)).Select(l => (IReadOnlyList<IReadOnlyList<Atom>>)l.ToList());
    }

    private static GeneratedScenario Render(Settings settings, IReadOnlyList<Device> devices, IReadOnlyList<BufferPlan> buffers, Agents agents,
        IReadOnlyList<IReadOnlyList<Atom>> expectations)
    {
        var sb = new StringBuilder();
        sb.Append("scenario \"generated\"\n");
        sb.Append("profile ").Append(settings.Profile).Append('\n');
        foreach (var (key, value) in settings.Lines)
        {
            sb.Append("set ").Append(key).Append(" = ").Append(value).Append('\n');
        }

        sb.Append('\n');
        foreach (var d in devices)
        {
            sb.Append("device ").Append(d.Name).Append(" { coherent = ").Append(d.Coherent ? "true" : "false").Append(" }\n");
        }

        if (agents.FirmwareDecl is { } fw)
        {
            sb.Append(fw).Append('\n');
        }

        foreach (var p in agents.Programs)
        {
            sb.Append('\n').Append(p.Header).Append(" {\n");
            foreach (var line in p.Body)
            {
                sb.Append("  ").Append(line).Append('\n');
            }

            sb.Append("}\n");
        }

        sb.Append('\n');
        for (var i = 0; i < expectations.Count; i++)
        {
            var atoms = expectations[i].Select(a => a.Range is { } r ? $"{a.Var}[{r.Lo}..{r.Hi}] == {a.Writer}" : $"{a.Var} == {a.Writer}");
            sb.Append("expect x").Append(i).Append(": ").AppendJoin(" && ", atoms).Append('\n');
        }

        return new GeneratedScenario(sb.ToString(), agents.Programs.Count, agents.Reads.Count, expectations.Count, buffers.Sum(b => b.Size));
    }
}
