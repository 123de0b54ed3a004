using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace DmaCheck.Fuzzing;

/// <summary>What a group scenario of <see cref="GroupScenarios"/> holds, for classifying and for the tests' counts.</summary>
/// <param name="Platform">The platform kind it was drawn for (arm64-noncoherent, arm64-coherent, swiotlb, xen, imx6, arm32, x86).</param>
/// <param name="Variants">The dependent variants injected (shared-line, shared-descriptor, small-buffers, cross-handle, free, missing-sync, cross-signal).</param>
/// <param name="Interleavings">A rough bound on the unreduced search's size: the product over the concurrent agents of their steps plus one (<see cref="GroupScenarios.Interleavings"/>).</param>
public sealed record GroupScenario(string Text, string Platform, int Groups, int Descriptors, IReadOnlySet<string> Variants, IReadOnlySet<string> Constructs, long Interleavings)
{
    public override string ToString() => Environment.NewLine + Text;
}

/// <summary>
/// Seeded generator of driver-shaped multi-agent scenarios, the shape the interleaving reduction targets (issue 14,
/// bench/scenarios/rings/): one to three <em>groups</em>, each a CPU thread and the DMA engine of a device, sometimes a
/// second CPU thread (an IRQ/NAPI completion half that unmaps handles the first thread mapped) or firmware called by
/// <c>smc</c>. Each group has one to three descriptors in a <c>dma_alloc_coherent</c> ring, RX, TX or bidirectional,
/// polled by the engine (for the post word) and by the thread (for the status word), with and without <c>max N</c>; the
/// packet buffers are <c>dma_map_single</c>'d kmalloc objects, <c>dma_map_page</c>'d pages or one-entry scatterlists
/// (<c>dma_map_sg</c>), synced and unmapped. Platforms: arm64 non-coherent and coherent (v5.13, v6.3, v6.4, v6.5 with its
/// small kmalloc alignment), swiotlb on and forced, a Xen dom0 (arm64 and 32-bit arm), the i.MX6 layout with its PL310
/// outer cache, 32-bit arm with LPAE, x86_64; dma-debug on or off, sometimes with the unbind check.
/// <para>
/// On top, <em>dependent variants</em> are injected at random, so that the groups are not always independent: two
/// threads of different groups writing the same line (a shared statistics object, or a word of another group's ring
/// line), a device and a CPU sharing a descriptor line (packed 16-byte descriptors), buffers of different groups in one
/// cache line (small kmalloc sizes), a handle mapped in one group and read by another group's engine, a free (kfree,
/// dma_free_coherent) in a thread's future, a missing sync or unmap (so findings appear), and a wait/signal between
/// groups.
/// </para>
/// <para>
/// Every scenario binds; a run may still end with a finding, a hung poll, a blocked agent or a run-time error (an
/// access after a free, say): the reduced and unreduced searches must agree on all of those. Scenarios are kept small
/// (at most three descriptors and four DMA-touching agents in all) so that the unreduced search finishes in well under
/// a second. The scenario is built from one seed drawn by FsCheck, so a run is reproduced by its FsCheck seed.
/// </para>
/// </summary>
public static class GroupScenarios
{
    /// <summary>Random group scenarios.</summary>
    public static Gen<GroupScenario> Scenarios() => Scenarios(maxDescriptors: 3);

    /// <summary>Smaller ones (at most two descriptors in all): what the brute-force explorer can check too.</summary>
    public static Gen<GroupScenario> Small() => Scenarios(maxDescriptors: 2);

    /// <summary>Random group scenarios with at most <paramref name="maxDescriptors"/> descriptors over all groups.</summary>
    public static Gen<GroupScenario> Scenarios(int maxDescriptors) => Scenarios(maxDescriptors, DefaultBudget);

    /// <summary><paramref name="count"/> scenarios from <paramref name="seed"/>: the same ones on every call.</summary>
    public static GroupScenario[] Sample(int count, ulong seed, int maxDescriptors = 3, long budget = DefaultBudget) =>
        Scenarios(maxDescriptors, budget).Sample(count, new Rnd(seed), 30);

    /// <summary>The <see cref="GroupScenario.Interleavings"/> a scenario may have: the unreduced search then takes well under a second.</summary>
    public const long DefaultBudget = 1_000;

    /// <summary>
    /// Random group scenarios with at most <paramref name="maxDescriptors"/> descriptors over all groups and at most
    /// <paramref name="budget"/> interleavings: a draw over the budget is drawn again from the same seeded sequence.
    /// </summary>
    public static Gen<GroupScenario> Scenarios(int maxDescriptors, long budget) =>
        Gen.Choose(0, int.MaxValue).Select(seed =>
        {
            var r = new Random(seed);
            while (true)
            {
                var g = Build(r, maxDescriptors);
                if (g.Interleavings <= budget)
                {
                    return g;
                }
            }
        });

    /// <summary>
    /// A rough bound on the interleavings: the product over the groups of one plus the statements of the group's
    /// agents (its threads and its engine, which its polls keep roughly in step), counting a poll as its reads
    /// (<c>max N</c>, or two) and an smc as its firmware's statements. The probe thread runs alone before them and is
    /// left out. Groups are told apart by the digit that ends their agents' names.
    /// </summary>
    public static long Interleavings(string text)
    {
        var firmware = new Dictionary<string, int>(StringComparer.Ordinal);
        var blocks = new List<(string Header, List<string> Body)>();
        List<string>? body = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (body is null && line.EndsWith('{') && (line.StartsWith("cpu ", StringComparison.Ordinal) || line.StartsWith("dma ", StringComparison.Ordinal) || line.StartsWith("firmware ", StringComparison.Ordinal)) && !line.Contains(" access ", StringComparison.Ordinal))
            {
                body = [];
                blocks.Add((line, body));
            }
            else if (line == "}")
            {
                body = null;
            }
            else if (body is not null && line.Length > 0)
            {
                body.Add(line);
            }
        }

        static int Steps(string stmt)
        {
            if (!stmt.StartsWith("poll ", StringComparison.Ordinal))
            {
                return 1;
            }

            var max = stmt.IndexOf(", max ", StringComparison.Ordinal);
            return max < 0 ? 2 : int.Parse(stmt[(max + 6)..], CultureInfo.InvariantCulture);
        }

        foreach (var (header, lines) in blocks.Where(b => b.Header.StartsWith("firmware ", StringComparison.Ordinal)))
        {
            firmware[header.Split(' ')[1]] = lines.Sum(Steps);
        }

        var perGroup = new Dictionary<char, int>();
        foreach (var (header, lines) in blocks.Where(b => !b.Header.StartsWith("firmware ", StringComparison.Ordinal) && b.Header != "cpu probe {"))
        {
            var name = header.Split(' ')[1];
            var steps = lines.Sum(l => l.StartsWith("smc ", StringComparison.Ordinal) ? 1 + firmware.GetValueOrDefault(l[4..l.IndexOf('(', StringComparison.Ordinal)], 0) : Steps(l));
            perGroup[name[^1]] = perGroup.GetValueOrDefault(name[^1]) + steps;
        }

        return perGroup.Values.Aggregate(1L, (product, steps) => checked(product * (steps + 1)));
    }

    private sealed record Platform(string Kind, string Profile, bool Coherent, bool Sg, bool SmallKmalloc, string[] Sets);

    private enum Dir
    {
        Rx,
        Tx,
        Bidi,
    }

    private enum MapKind
    {
        Single,
        Page,
        Sg,
    }

    /// <summary>How a completion hands a buffer back to the CPU.</summary>
    private enum Completion
    {
        /// <summary>Unmap, then read.</summary>
        Unmap,

        /// <summary>dma_sync_*_for_cpu, read, then unmap.</summary>
        SyncThenUnmap,

        /// <summary>Read while still mapped (a missing sync or unmap): a finding where dma-debug is on.</summary>
        Missing,

        /// <summary>Read, then unmap: the read comes too early.</summary>
        ReadThenUnmap,
    }

    private sealed record Desc(int Group, int Index, Dir Dir, MapKind Map, int Size, int PageOffset, Completion Completion)
    {
        private string Id => $"{Group}_{Index}";

        public string Buf => $"b{Id}";

        public string Page => $"pg{Id}";

        public string Handle => $"h{Id}";

        public string Sgt => $"sgt{Id}";

        /// <summary>The address the CPU reaches the buffer by: the kmalloc pointer, or the page (its page_address).</summary>
        public string Cpu => Map == MapKind.Page ? Page : Buf;

        public string Direction => Dir switch { Dir.Rx => "DMA_FROM_DEVICE", Dir.Tx => "DMA_TO_DEVICE", _ => "DMA_BIDIRECTIONAL" };

        public string Pkt => $"pkt{Id}";

        public string Rx => $"rx{Id}";

        public string Got => $"got{Id}";

        public string Sent => $"sent{Id}";

        public string Post => $"post{Id}";

        public string Done => $"done{Id}";
    }

    private static readonly Platform[] Platforms =
    [
        new("arm64-noncoherent", "linux-6.4-arm64", false, true, false, []),
        new("arm64-noncoherent", "linux-6.3-arm64", false, true, false, []),
        new("arm64-noncoherent", "linux-5.13-arm64", false, true, false, []),
        new("arm64-coherent", "linux-6.4-arm64", true, true, false, []),
        new("arm64-small-kmalloc", "linux-6.5-arm64", false, true, true, ["swiotlb = on"]),
        new("swiotlb", "linux-6.4-arm64", false, true, false, ["swiotlb = force"]),
        new("swiotlb", "linux-6.4-arm64", false, true, false, ["swiotlb = force", "swiotlb.residue = secret"]),
        new("swiotlb", "linux-6.3-arm64", true, true, false, ["swiotlb = force"]),
        new("xen", "linux-5.14-arm-xen-rpi4", false, false, true, []),
        new("xen", "linux-5.14-arm-xen-rpi4", false, false, true, ["swiotlb = force"]),
        new("xen", "linux-5.8-arm64-xen", false, true, false, []),
        new("xen", "linux-5.14-arm64-xen", false, true, false, ["swiotlb = on"]),
        new("imx6", "linux-5.13-arm-imx6", false, false, true, []),
        new("arm32", "linux-5.13-arm-rpi4", false, false, true, []),
        new("x86", "linux-6.4-x86_64", true, true, true, []),
        new("x86", "linux-6.4-x86_64", true, true, true, ["swiotlb = force"]),
    ];

    private static T Pick<T>(Random r, params T[] xs) => xs[r.Next(xs.Length)];

    private static bool Chance(Random r, int percent) => r.Next(100) < percent;

    private static string N(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static GroupScenario Build(Random r, int maxDescriptors)
    {
        var platform = Pick(r, Platforms);
        var variants = new HashSet<string>(StringComparer.Ordinal);
        var constructs = new HashSet<string>(StringComparer.Ordinal);
        bool Variant(string name, int percent)
        {
            if (Chance(r, percent))
            {
                variants.Add(name);
                return true;
            }

            return false;
        }

        // Groups and their descriptors: at most maxDescriptors in all, each group at least one.
        var groups = r.Next(1, Math.Min(3, maxDescriptors) + 1);
        var perGroup = Enumerable.Repeat(1, groups).ToArray();
        for (var extra = r.Next(0, maxDescriptors - groups + 1); extra > 0; extra--)
        {
            perGroup[r.Next(groups)]++;
        }

        var small = platform.SmallKmalloc && Variant("small-buffers", 40);
        var packed = Variant("shared-descriptor", 25);
        var sharedLine = groups > 1 && Variant("shared-line", 30);
        var crossHandle = groups > 1 && Variant("cross-handle", 25);
        var crossSignal = groups > 1 && Variant("cross-signal", 25);
        var free = Variant("free", 25);
        var missing = Variant("missing-sync", 20);
        var probe = Chance(r, 50);
        var devicePerGroup = Chance(r, 30);
        var debug = Chance(r, 80);
        var unbind = debug && Chance(r, 15);
        var arbitrary = Chance(r, 10);

        var descs = new List<List<Desc>>();
        for (var g = 0; g < groups; g++)
        {
            var dir = Pick(r, Dir.Rx, Dir.Tx, Dir.Bidi);
            var list = new List<Desc>();
            for (var i = 0; i < perGroup[g]; i++)
            {
                var map = platform.Sg ? Pick(r, MapKind.Single, MapKind.Single, MapKind.Page, MapKind.Sg) : Pick(r, MapKind.Single, MapKind.Single, MapKind.Page);
                var size = small && map != MapKind.Page ? Pick(r, 16, 32) : Pick(r, 64, 128, 256);
                var offset = map == MapKind.Page ? Pick(r, 0, 0, 64, 1024) : 0;
                var completion = missing && Chance(r, 50) ? Pick(r, Completion.Missing, Completion.ReadThenUnmap) : Pick(r, Completion.Unmap, Completion.Unmap, Completion.SyncThenUnmap);
                list.Add(new Desc(g, i, dir, map, size, offset, completion));
                constructs.Add(map.ToString().ToLowerInvariant());
                constructs.Add(dir.ToString().ToLowerInvariant());
            }

            descs.Add(list);
        }

        // Descriptor i of a ring: its post word and its status word, in a line of its own or packed 16 bytes apart.
        (int Post, int Status) Slot(int i) => packed ? (i * 16, (i * 16) + 8) : (i * 64, (i * 64) + 8);

        var sb = new StringBuilder();
        sb.Append("scenario \"group scenario\"\n");
        sb.Append("profile ").Append(platform.Profile).Append('\n');
        foreach (var s in platform.Sets)
        {
            sb.Append("set ").Append(s).Append('\n');
        }

        if (!debug)
        {
            sb.Append("set dma_api_debug = off\n");
        }
        else if (unbind)
        {
            sb.Append("set dma_api_debug.unbind_at_end = on\n");
        }

        if (arbitrary)
        {
            sb.Append("set cache_init = arbitrary\n");
        }

        sb.Append('\n');
        string Dev(int g) => devicePerGroup ? $"nic{g}" : "nic";
        var coherent = platform.Coherent ? "true" : "false";
        for (var g = 0; g < (devicePerGroup ? groups : 1); g++)
        {
            sb.Append("device ").Append(Dev(g)).Append(" { coherent = ").Append(coherent).Append(" }\n");
        }

        // Firmware a group's thread hands a buffer's physical address to (never a scatterlist or page buffer: a kmalloc one).
        var firmware = new int?[groups];
        for (var g = 0; g < groups; g++)
        {
            if (descs[g][0].Map != MapKind.Page && Chance(r, 15))
            {
                firmware[g] = 0;
                constructs.Add("firmware");
                sb.Append("firmware fw").Append(N(g)).Append(" { access = ").Append(Pick(r, "cacheable", "non-cacheable")).Append(" }\n");
            }
        }

        var secondThread = Enumerable.Range(0, groups).Select(_ => Chance(r, 20)).ToArray();
        var statsWriters = sharedLine ? Enumerable.Range(0, groups).Where(_ => Chance(r, 70)).ToList() : [];
        var statsOnRing = sharedLine && Chance(r, 50);
        if (sharedLine && statsWriters.Count < 2)
        {
            statsWriters = [0, 1];
        }

        var expectations = new List<string>();

        // The allocations a group needs: its ring and its buffers (and the shared statistics object).
        IEnumerable<string> Allocations(int g)
        {
            yield return $"ring{g} = dma_alloc_coherent({Dev(g)}, 4096, GFP_KERNEL)";
            foreach (var d in descs[g])
            {
                yield return d.Map == MapKind.Page ? $"{d.Page} = alloc_pages(GFP_KERNEL, 0)" : $"{d.Buf} = kmalloc({N(d.Size)}, GFP_KERNEL)";
            }
        }

        var statsAlloc = sharedLine && !statsOnRing ? "stats = kmalloc(64, GFP_KERNEL)" : null;
        if (probe)
        {
            sb.Append("\ncpu probe {\n");
            for (var g = 0; g < groups; g++)
            {
                foreach (var a in Allocations(g))
                {
                    sb.Append("  ").Append(a).Append('\n');
                }
            }

            if (statsAlloc is not null)
            {
                sb.Append("  ").Append(statsAlloc).Append('\n');
            }

            sb.Append("  signal up\n}\n");
            constructs.Add("probe");
        }

        for (var g = 0; g < groups; g++)
        {
            var ring = $"ring{g}";
            var dev = Dev(g);
            var post = new List<string>();
            var complete = new List<string>();
            if (probe)
            {
                post.Add("wait up");
            }
            else
            {
                post.AddRange(Allocations(g));
                if (g == 0 && statsAlloc is not null)
                {
                    post.Add(statsAlloc);
                }
            }

            if (crossSignal && g > 0 && Chance(r, 50))
            {
                post.Add($"wait gdone{g - 1}");
            }

            foreach (var d in descs[g])
            {
                if (d.Dir != Dir.Rx)
                {
                    post.Add($"write {d.Cpu}[{N(d.PageOffset)}..{N(d.PageOffset + d.Size)}] = {d.Pkt}");
                }

                switch (d.Map)
                {
                    case MapKind.Single:
                        post.Add($"{d.Handle} = dma_map_single({dev}, {d.Buf}, {N(d.Size)}, {d.Direction})");
                        break;
                    case MapKind.Page:
                        post.Add($"{d.Handle} = dma_map_page({dev}, {d.Page}, {N(d.PageOffset)}, {N(d.Size)}, {d.Direction})");
                        break;
                    default:
                        post.Add($"{d.Sgt} = sg_alloc_table(1, GFP_KERNEL)");
                        post.Add($"sg_set_buf({d.Sgt}, 0, {d.Buf}, {N(d.Size)})");
                        post.Add($"dma_map_sg({dev}, {d.Sgt}, 1, {d.Direction})");
                        post.Add($"{d.Handle} = sg_dma_address({d.Sgt}, 0)");
                        break;
                }

                if (d.Map != MapKind.Sg && Chance(r, 60))
                {
                    post.Add($"dma_mapping_error({dev}, {d.Handle})");
                }

                var (p, _) = Slot(d.Index);
                post.Add($"write {ring}[{N(p)}..{N(p + 8)}] = {d.Post}");
            }

            if (statsWriters.Contains(g))
            {
                // Two threads of different groups writing the same line: the statistics object, or the spare words of
                // group 0's first ring line (next to its first descriptor, which its engine polls).
                var target = statsOnRing ? "ring0" : "stats";
                var at = statsOnRing ? 32 + (g * 8) : g * 8;
                post.Add($"write {target}[{N(at)}..{N(at + 8)}] = st{g}");
            }

            foreach (var d in descs[g])
            {
                var (_, s) = Slot(d.Index);
                complete.Add(Chance(r, 50) ? $"poll {ring}[{N(s)}..{N(s + 8)}] == {d.Done}" : $"poll {ring}[{N(s)}..{N(s + 8)}] == {d.Done}, max {N(r.Next(1, 4))}");
                var unmap = d.Map switch
                {
                    MapKind.Single => $"dma_unmap_single({dev}, {d.Handle}, {N(d.Size)}, {d.Direction})",
                    MapKind.Page => $"dma_unmap_page({dev}, {d.Handle}, {N(d.Size)}, {d.Direction})",
                    _ => $"dma_unmap_sg({dev}, {d.Sgt}, 1, {d.Direction})",
                };
                var sync = d.Map == MapKind.Sg ? $"dma_sync_sg_for_cpu({dev}, {d.Sgt}, 1, {d.Direction})" : $"dma_sync_single_for_cpu({dev}, {d.Handle}, {N(d.Size)}, {d.Direction})";
                var read = d.Dir == Dir.Tx ? null : $"read {d.Cpu}[{N(d.PageOffset)}..{N(d.PageOffset + d.Size)}] -> {d.Got}";
                if (read is not null)
                {
                    expectations.Add($"{d.Got} == {d.Rx}");
                }

                switch (d.Completion)
                {
                    case Completion.Unmap:
                        complete.Add(unmap);
                        complete.AddRange(read is null ? [] : [read]);
                        break;
                    case Completion.SyncThenUnmap:
                        complete.Add(sync);
                        complete.AddRange(read is null ? [] : [read]);
                        complete.Add(unmap);
                        break;
                    case Completion.Missing:
                        complete.AddRange(read is null ? [] : [read]);
                        break;
                    default:
                        complete.AddRange(read is null ? [] : [read]);
                        complete.Add(unmap);
                        break;
                }

                if (free && d.Completion != Completion.Missing && Chance(r, 50))
                {
                    complete.Add(d.Map switch
                    {
                        MapKind.Page => $"__free_pages({d.Page}, 0)",
                        MapKind.Sg => $"kfree({d.Buf})",
                        _ => $"kfree({d.Buf})",
                    });
                    constructs.Add("free");
                }
            }

            if (firmware[g] is not null)
            {
                var d = descs[g][0];
                complete.Add($"pa{g} = virt_to_phys({d.Buf})");
                complete.Add($"smc fw{g}(pa{g})");
            }

            if (sharedLine && g == 0 && Chance(r, 50))
            {
                var target = statsOnRing ? "ring0" : "stats";
                var at = statsOnRing ? 32 : 0;
                complete.Add($"read {target}[{N(at)}..{N(at + 16)}] -> stview");
                expectations.Add($"stview[0..8] == st0");
            }

            if (free && Chance(r, 40))
            {
                complete.Add($"dma_free_coherent({dev}, 4096, {ring})");
                constructs.Add("free-coherent");
            }

            if (crossSignal && g + 1 < groups)
            {
                complete.Add($"signal gdone{g}");
            }

            // The completion half runs in the group's second thread (an IRQ or NAPI context) when it has one.
            if (secondThread[g])
            {
                sb.Append("\ncpu xmit").Append(N(g)).Append(" {\n");
                foreach (var l in post)
                {
                    sb.Append("  ").Append(l).Append('\n');
                }

                sb.Append("}\n\ncpu irq").Append(N(g)).Append(" {\n");
                foreach (var l in complete)
                {
                    sb.Append("  ").Append(l).Append('\n');
                }

                sb.Append("}\n");
                constructs.Add("second-thread");
            }
            else
            {
                sb.Append("\ncpu drv").Append(N(g)).Append(" {\n");
                foreach (var l in post.Concat(complete))
                {
                    sb.Append("  ").Append(l).Append('\n');
                }

                sb.Append("}\n");
            }

            // The engine: fetch each descriptor, move its packet, report it done.
            sb.Append("\ndma eng").Append(N(g)).Append(" by ").Append(dev).Append(" {\n");
            foreach (var d in descs[g])
            {
                var (p, s) = Slot(d.Index);
                sb.Append("  ").Append(Chance(r, 60) ? $"poll dma({ring}.dma)[{N(p)}..{N(p + 8)}] == {d.Post}" : $"poll dma({ring}.dma)[{N(p)}..{N(p + 8)}] == {d.Post}, max {N(r.Next(1, 4))}").Append('\n');
                if (d.Dir != Dir.Rx)
                {
                    sb.Append("  read dma(").Append(d.Handle).Append(")[0..").Append(N(d.Size)).Append("] -> ").Append(d.Sent).Append('\n');
                    expectations.Add($"{d.Sent} == {d.Pkt}");
                }

                if (d.Dir != Dir.Tx)
                {
                    sb.Append("  write dma(").Append(d.Handle).Append(")[0..").Append(N(d.Size)).Append("] = ").Append(d.Rx).Append('\n');
                }

                sb.Append("  write dma(").Append(ring).Append(".dma)[").Append(N(s)).Append("..").Append(N(s + 8)).Append("] = ").Append(d.Done).Append('\n');
            }

            if (crossHandle && g == groups - 1)
            {
                // A handle mapped by group 0 read by this group's engine (as a second engine sharing a buffer would).
                var other = descs[0][0];
                sb.Append("  read dma(").Append(other.Handle).Append(")[0..").Append(N(Math.Min(other.Size, 16))).Append("] -> xr\n");
                expectations.Add(other.Dir == Dir.Rx ? "xr == zero" : $"xr == {other.Pkt}");
            }

            sb.Append("}\n");
            if (firmware[g] is not null)
            {
                var d = descs[g][0];
                sb.Append("\nfirmware fw").Append(N(g)).Append(" on smc(p) {\n  read phys(p)[0..").Append(N(d.Size)).Append("] -> fwseen").Append(N(g)).Append("\n}\n");
                expectations.Add($"fwseen{g} == {(d.Dir == Dir.Tx ? d.Pkt : d.Rx)}");
            }
        }

        sb.Append('\n');
        for (var i = 0; i < expectations.Count; i++)
        {
            sb.Append("expect e").Append(N(i)).Append(": ").Append(expectations[i]).Append('\n');
        }

        var text = sb.ToString();
        return new GroupScenario(text, platform.Kind, groups, perGroup.Sum(), variants, constructs, Interleavings(text));
    }
}
