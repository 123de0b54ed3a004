using System.Collections;
using System.Reflection;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Reports;
using DmaCheck.Scenarios;
using Binder = DmaCheck.Scenarios.Binder;

namespace DmaCheck.Tests;

/// <summary>
/// State identity is derived from the types (<see cref="StateHasher"/>): changing any field of any object a state is
/// made of must change its fingerprint. These tests find every field of every type a control state or a line state
/// can hold (by reflection over the declared types, subclasses included), then mutate each one, in place, in real
/// states reached by the bundled scenarios, and check that the fingerprint moves. A field the hasher left out, or one
/// wrongly marked <see cref="NotStateAttribute"/>, fails here; so does a type no sample reaches (add a scenario that
/// reaches it).
/// The mutations are made in place on real states, whose immutable parts are shared with every other test (the empty
/// collections, boot states): the class is a collection of its own that runs with nothing else in parallel.
/// </summary>
[Collection(nameof(FingerprintMutationTests))]
public class FingerprintMutationTests
{
    private static readonly Assembly Own = typeof(StateHasher).Assembly;

    [Fact]
    public void EveryFieldOfEveryControlStateComponentChangesTheFingerprint()
    {
        var roots = SampleStates().Cast<object>().ToList();
        Check(typeof(ControlState), roots, r =>
        {
            // The root's own memoised fingerprint is a cache: forget it with the sub-objects'.
            typeof(ControlState).GetField("fingerprint", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(r, null);
            return ((ControlState)r).Fingerprint;
        });
    }

    [Fact]
    public void EveryFieldOfALineStateChangesTheLineSetFingerprint()
    {
        // Line states with and without an outer cache, data, and observations: the i.MX6 scenarios reach them all.
        var sets = new List<object>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(TestPaths.Scenarios, "streaming"), "arm32-imx6-*.dmc").Order(StringComparer.Ordinal))
        {
            var model = new ScenarioModel(Binder.Load(file, File.ReadAllText(file)));
            var explorer = new LineSetExplorer();
            explorer.Explore(model, ExplorationLimits.Default);
            foreach (var f in explorer.Failures.Values)
            {
                foreach (var run in f.Node.Lines.Runs)
                {
                    sets.Add(run.Set);
                }
            }
        }

        // The last reaches line states with a copy at another alias colour (LineState.Aliases, AliasLine): a VIVT cache.
        foreach (var file in new[] { "streaming/cpu-reads-before-sync.dmc", "streaming/from-device-partial-write-inval.dmc", "history/sd-zbc-vmalloc-report-buffer-no-vmap-flush.dmc" })
        {
            var path = Path.Combine(TestPaths.Scenarios, file);
            var explorer = new LineSetExplorer();
            explorer.Explore(new ScenarioModel(Binder.Load(path, File.ReadAllText(path))), ExplorationLimits.Default);
            sets.AddRange(explorer.Failures.Values.SelectMany(f => f.Node.Lines.Runs.ToArray()).Select(r => (object)r.Set));
        }

        Assert.NotEmpty(sets);
        var fingerprintCache = typeof(LineSet).GetField("fingerprint", BindingFlags.Instance | BindingFlags.NonPublic)!;
        Check(typeof(LineState), sets, r =>
        {
            fingerprintCache.SetValue(r, 0UL);
            return ((LineSet)r).Fingerprint;
        }, walkFrom: typeof(LineSet));
    }

    /// <summary>
    /// The L2 fingerprint bug of issue 14: two i.MX6 line sets that differ only in the outer cache's state got the
    /// same fingerprint (the hand-written fingerprint left the outer level out), although one fails with 0 events and
    /// the other with 1.
    /// </summary>
    [Fact]
    public void LineSetsThatDifferOnlyInTheOuterCacheHaveDifferentFingerprints()
    {
        var data = LineBytes.Uniform(64, 7);
        var ram = LineBytes.Uniform(64, WriterTable.Old);
        var clean = new LineState(CacheState.Invalid, null, ram, [], hasOuter: true, CacheState.Clean, data);
        var dirty = new LineState(CacheState.Invalid, null, ram, [], hasOuter: true, CacheState.Dirty, data);
        var none = new LineState(CacheState.Invalid, null, ram, [], hasOuter: true, CacheState.Invalid, null);
        var a = LineSet.Of(new Dictionary<LineState, int> { [clean] = 0 });
        var b = LineSet.Of(new Dictionary<LineState, int> { [dirty] = 0 });
        var c = LineSet.Of(new Dictionary<LineState, int> { [none] = 0 });
        Assert.NotEqual(a, b);
        Assert.NotEqual(a.Fingerprint, b.Fingerprint);
        Assert.NotEqual(a.Fingerprint, c.Fingerprint);
        Assert.NotEqual(b.Fingerprint, c.Fingerprint);
    }

    [Fact]
    public void HashBasedCollectionsHashByContentAndSequencesByOrder()
    {
        var one = System.Collections.Immutable.ImmutableDictionary<string, int>.Empty.Add("a", 1).Add("b", 2);
        var two = System.Collections.Immutable.ImmutableDictionary<string, int>.Empty.Add("b", 2).Add("a", 1);
        Assert.Equal(StateHasher.Of(one), StateHasher.Of(two));
        Assert.NotEqual(StateHasher.Of(one), StateHasher.Of(one.SetItem("a", 3)));
        Assert.NotEqual(StateHasher.Of(System.Collections.Immutable.ImmutableList.Create(1, 2)), StateHasher.Of(System.Collections.Immutable.ImmutableList.Create(2, 1)));

        // Records of different types with the same fields differ.
        Assert.NotEqual(StateHasher.Of(new KernelPointer(1, 2)), StateHasher.Of(new UserPointer(1, 2)));
    }

    /// <summary>
    /// Scenarios that reach state no bundled scenario keeps: a CMA area with a released block, a kernel crash, stops at
    /// what is not modelled (arm_dma_ops with a swiotlb pool would need dmabounce; an IOMMU device's coherent
    /// allocation), and (kept here too, whatever the bundled scenarios become) reserved memory, a device's pool, a
    /// memremap area and an assignment.
    /// </summary>
    private static readonly string[] ExtraSamples =
    [
        "profile linux-6.4-arm64\nset dram = 2G\nset cma = 256M\ndevice d { coherent = false }\ncpu c {\n  b = dma_alloc_coherent(d, 8K, GFP_KERNEL)\n  dma_free_coherent(d, 8K, b, b.dma)\n}\n",
        "profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_NONE)\n}\n",
        "profile linux-5.13-arm-imx6\nset swiotlb = force\ndevice d { coherent = false }\ncpu a {\n  p = kmalloc(64, GFP_KERNEL)\n  h = dma_map_single(d, p, 64, DMA_TO_DEVICE)\n}\n",
        "profile linux-6.4-arm64\nreserved pool { size = 64K, no-map = true }\nreserved carve { size = 16K, no-map = true }\n" +
            "device d { coherent = false, memory-region = pool }\ncpu a {\n  of_reserved_mem_device_init(d)\n  b = dma_alloc_coherent(d, 8K, GFP_KERNEL)\n" +
            "  pa = of_reserved_mem_lookup(carve)\n  m = memremap(pa, 16K, MEMREMAP_WC)\n  qcom_scm_assign_mem(pa, 16K, QCOM_SCM_VMID_MSS_MSA)\n  memunmap(m)\n}\n",
        "profile linux-6.12-arm64\ndevice d { coherent = false, iommus = smmu0 }\ncpu a {\n  b = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n}\n",
    ];

    /// <summary>States reached by short runs of every bundled scenario, and of <see cref="ExtraSamples"/>.</summary>
    private static List<ControlState> SampleStates()
    {
        var texts = Checker.Expand(TestPaths.Scenarios).Select(f => (File: f, Text: File.ReadAllText(f)))
            .Concat(ExtraSamples.Select((t, i) => (File: $"extra{i}.dmc", Text: t)));
        var states = new List<ControlState>();
        foreach (var (file, text) in texts)
        {
            ScenarioModel model;
            try
            {
                model = new ScenarioModel(Binder.Load(file, text));
            }
            catch (Exception e) when (e is ScenarioException or NotModelledException)
            {
                continue;
            }

            // Breadth-first, a bounded number of states per scenario: every statement kind runs in some scenario.
            var seen = new HashSet<UInt128>();
            var queue = new Queue<ControlState>([model.Initial]);
            while (queue.Count > 0 && seen.Count < 300)
            {
                var s = queue.Dequeue();
                if (!seen.Add(s.Fingerprint))
                {
                    continue;
                }

                states.Add(s);
                foreach (var agent in model.Enabled(s).ToList())
                {
                    try
                    {
                        var step = model.Step(s, agent);
                        queue.Enqueue(step.Next);
                        if (step.Missed is { } missed)
                        {
                            queue.Enqueue(missed.Next);
                        }
                    }
                    catch (RunException)
                    {
                    }
                }
            }
        }

        return states;
    }

    /// <summary>
    /// Every (type, field) that <paramref name="rootType"/> can reach is mutated in some object of some root, and
    /// <paramref name="fingerprint"/> of that root must change (and come back when the field is restored).
    /// </summary>
    private static void Check(Type rootType, List<object> roots, Func<object, UInt128> fingerprint, Type? walkFrom = null)
    {
        var pending = StateFields(rootType).ToHashSet();
        Assert.NotEmpty(pending);
        var pool = new Dictionary<Type, List<object>>();
        var failures = new List<string>();
        foreach (var root in roots)
        {
            if (pending.Count == 0)
            {
                break;
            }

            var objects = new List<object>();
            Collect(root, objects, new HashSet<object>(ReferenceEqualityComparer.Instance));
            foreach (var o in objects)
            {
                (pool.TryGetValue(o.GetType(), out var list) ? list : pool[o.GetType()] = []).Add(o);
            }

            foreach (var o in objects)
            {
                foreach (var f in StateHasher.FieldsOf(o.GetType()))
                {
                    if (!pending.Contains(f) || o.GetType().IsValueType)
                    {
                        continue;
                    }

                    var before = f.GetValue(o);
                    if (!TryMutate(f.FieldType, before, pool, out var after))
                    {
                        continue;
                    }

                    StateHasher.ForgetMemo();
                    var original = fingerprint(root);
                    f.SetValue(o, after);
                    StateHasher.ForgetMemo();
                    var mutated = fingerprint(root);
                    f.SetValue(o, before);
                    StateHasher.ForgetMemo();
                    var restored = fingerprint(root);
                    pending.Remove(f);
                    if (mutated == original || restored != original)
                    {
                        failures.Add($"{f.DeclaringType!.Name}.{f.Name}");
                    }
                }
            }
        }

        Assert.True(failures.Count == 0, "fields whose change leaves the fingerprint unchanged: " + string.Join(", ", failures));
        Assert.True(pending.Count == 0, "fields no sample state could mutate (reach them in a sample): " +
            string.Join(", ", pending.Select(f => $"{f.DeclaringType!.Name}.{f.Name}").Order(StringComparer.Ordinal)));
    }

    /// <summary>The objects of dmacheck's own types reachable from <paramref name="o"/>, through fields and collections.</summary>
    private static void Collect(object? o, List<object> into, HashSet<object> seen)
    {
        if (o is null || o is string || o.GetType().IsPrimitive || o.GetType().IsEnum || (!o.GetType().IsValueType && !seen.Add(o)))
        {
            return;
        }

        var type = o.GetType();
        if (type.Assembly == Own)
        {
            into.Add(o);
            foreach (var f in StateHasher.FieldsOf(type))
            {
                Collect(f.GetValue(o), into, seen);
            }
        }
        else if (o is IEnumerable items and not byte[])
        {
            foreach (var item in items)
            {
                Collect(item, into, seen);
            }
        }
        else if (type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(KeyValuePair<,>) || type.Name.StartsWith("ValueTuple`", StringComparison.Ordinal)))
        {
            foreach (var p in type.GetProperties().Where(p => p.GetIndexParameters().Length == 0))
            {
                Collect(p.GetValue(o), into, seen);
            }

            foreach (var f in type.GetFields())
            {
                Collect(f.GetValue(o), into, seen);
            }
        }
    }

    /// <summary>A different value for a field: a primitive moved by one, a reference set to null, a null set to another object of its type.</summary>
    private static bool TryMutate(Type type, object? value, Dictionary<Type, List<object>> pool, out object? mutated)
    {
        mutated = value switch
        {
            bool b => !b,
            byte b => (byte)(b + 1),
            int i => i + 1,
            uint u => u + 1,
            long l => l + 1,
            ulong u => u + 1,
            UInt128 u => u + 1,
            Enum e => Enum.ToObject(e.GetType(), Convert.ToInt64(e, System.Globalization.CultureInfo.InvariantCulture) + 1),
            string s => s + "'",
            null when Nullable.GetUnderlyingType(type) is { } underlying => Activator.CreateInstance(underlying),
            null => pool.Where(p => type.IsAssignableFrom(p.Key)).SelectMany(p => p.Value).FirstOrDefault(),
            IEnumerable items when type.IsValueType && type.IsGenericType && type.GetGenericTypeDefinition() == typeof(System.Collections.Immutable.ImmutableArray<>) =>
                items.Cast<object?>().Any() ? type.GetField("Empty")!.GetValue(null) : null,
            _ when !type.IsValueType => null,
            _ => MutateStruct(value),
        };
        return mutated is not null || (value is not null && !type.IsValueType);
    }

    /// <summary>A struct with its first mutable field changed (a nullable's value moved by one).</summary>
    private static object? MutateStruct(object value)
    {
        var type = value.GetType();
        foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            if (TryMutate(f.FieldType, f.GetValue(value), [], out var m) && m is not null)
            {
                var copy = System.Runtime.CompilerServices.RuntimeHelpers.GetObjectValue(value)!; // a new box: SetValue changes it, not the caller's
                f.SetValue(copy, m);
                return copy;
            }
        }

        return null;
    }

    /// <summary>Every field the hasher reads, of every type of dmacheck's own that a <paramref name="root"/> can hold.</summary>
    private static IEnumerable<FieldInfo> StateFields(Type root)
    {
        var types = new HashSet<Type>();
        var queue = new Queue<Type>([root]);
        while (queue.Count > 0)
        {
            var t = queue.Dequeue();
            if (t.IsArray)
            {
                queue.Enqueue(t.GetElementType()!);
                continue;
            }

            if (t.IsGenericType && t.Assembly != Own)
            {
                foreach (var a in t.GetGenericArguments())
                {
                    queue.Enqueue(a);
                }

                continue;
            }

            if (t.Assembly != Own || !types.Add(t))
            {
                continue;
            }

            foreach (var sub in Own.GetTypes().Where(s => s != t && t.IsAssignableFrom(s)))
            {
                queue.Enqueue(sub);
            }

            foreach (var f in StateHasher.FieldsOf(t))
            {
                queue.Enqueue(f.FieldType);
            }
        }

        return types.Where(t => !t.IsAbstract && !t.IsValueType && !t.IsEnum).SelectMany(StateHasher.FieldsOf);
    }
}

/// <summary>The mutation tests change shared immutable objects for a moment: nothing may run beside them.</summary>
[CollectionDefinition(nameof(FingerprintMutationTests), DisableParallelization = true)]
public sealed class FingerprintMutationCollection
{
}
