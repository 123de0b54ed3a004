using System.Buffers.Binary;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text;

namespace DmaCheck.Hardware;

/// <summary>
/// A 128-bit fingerprint of a state, derived from its types: every instance field of every object reached, in a
/// fixed order, except those marked <see cref="NotStateAttribute"/> (caches). Nothing is listed by hand, so a
/// field added to any state type is part of the fingerprint the moment it exists (docs/internals-state.md).
/// </summary>
/// <remarks>
/// <para>Values are encoded with their runtime type, so two records of different types with equal fields differ.
/// Sequences (arrays, lists, stacks, sorted dictionaries and sets) are hashed in order; hash-based dictionaries and
/// sets, whose enumeration order depends on hash codes and insertion history, as multisets (a sum of their entries'
/// mixed fingerprints), so equal contents give equal fingerprints whatever the order of edits.</para>
/// <para>Immutable state is shared between states: a sub-object's fingerprint is memoised per object (by reference),
/// so a step that changes one agent rehashes that agent and the path to it, not the kernel state it left alone. The
/// memo is per thread and bounded.</para>
/// <para>XxHash128 (System.IO.Hashing) over a canonical byte encoding: the same on every run and build. Two states
/// with equal fingerprints are taken to be equal (hash compaction, docs/internals-state-storage.md).</para>
/// </remarks>
public static class StateHasher
{
    /// <summary>The fingerprint of <paramref name="value"/> (any state object, or null).</summary>
    public static UInt128 Of(object? value)
    {
        if (value is null)
        {
            return 0;
        }

        var w = Writer.Rent();
        try
        {
            Write(w, value, value.GetType());
            return w.Hash();
        }
        finally
        {
            Writer.Return(w);
        }
    }

    /// <summary>Whether <paramref name="type"/>'s fields are walked (a type of dmacheck's own) rather than encoded as a value or a collection.</summary>
    private static bool IsOwn(Type type) => type.Assembly == typeof(StateHasher).Assembly;

    /// <summary>
    /// The memo of sub-object fingerprints, per thread, in two generations: when the young one is full it becomes the
    /// old one, and entries still in use (the kernel state most steps leave alone) are promoted back on their next use.
    /// The memo holds its objects, so it is bounded: it is only a cache.
    /// </summary>
    [ThreadStatic]
    private static Dictionary<object, UInt128>? young;

    [ThreadStatic]
    private static Dictionary<object, UInt128>? old;

    /// <summary>The most sub-object fingerprints one generation of the memo keeps.</summary>
    private const int MaxMemo = 1 << 15;

    private static UInt128 Memoised(object value, Type type)
    {
        var y = young ??= new Dictionary<object, UInt128>(ReferenceEqualityComparer.Instance);
        if (y.TryGetValue(value, out var known))
        {
            return known;
        }

        if (old is null || !old.TryGetValue(value, out known))
        {
            known = Compute(value, type);
        }

        if (y.Count >= MaxMemo)
        {
            old = y;
            young = y = new Dictionary<object, UInt128>(ReferenceEqualityComparer.Instance);
        }

        y[value] = known;
        return known;
    }

    private static readonly ConcurrentDictionary<Type, FieldInfo[]> Fields = new();
    private static readonly ConcurrentDictionary<Type, ulong> TypeIds = new();

    private static void Write(Writer w, object? value, Type declared)
    {
        switch (value)
        {
            case null:
                w.Byte(0);
                return;
            case string s:
                w.Byte(1);
                w.Int(s.Length);
                w.Bytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.AsSpan()));
                return;
            case bool b:
                w.Byte(b ? (byte)3 : (byte)2);
                return;
            case byte u8:
                w.Byte(4);
                w.Byte(u8);
                return;
            case int i32:
                w.Byte(5);
                w.Int(i32);
                return;
            case uint u32:
                w.Byte(6);
                w.Int(unchecked((int)u32));
                return;
            case long i64:
                w.Byte(7);
                w.Long(unchecked((ulong)i64));
                return;
            case ulong u64:
                w.Byte(8);
                w.Long(u64);
                return;
            case UInt128 u128:
                w.Byte(9);
                w.Long((ulong)u128);
                w.Long((ulong)(u128 >> 64));
                return;
            case Enum e:
                w.Byte(10);
                w.Long(TypeId(e.GetType()));
                w.Long(Convert.ToUInt64(e, System.Globalization.CultureInfo.InvariantCulture));
                return;
            case byte[] raw:
                w.Byte(13);
                w.Int(raw.Length);
                w.Bytes(raw);
                return;
            case short or ushort or sbyte or char:
                w.Byte(11);
                w.Long(Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                return;
        }

        var type = value.GetType();
        if (type.IsValueType && ShapeOf(type) == Shape.Unsupported)
        {
            throw new NotSupportedException($"state fingerprint: no encoding for a value of type {type} (a field of {declared})");
        }

        if (!type.IsValueType)
        {
            // Shared immutable sub-objects: hash once per object.
            var known = Memoised(value, type);
            w.Byte(12);
            w.Long((ulong)known);
            w.Long((ulong)(known >> 64));
            return;
        }

        WriteBody(w, value, type);
    }

    private static UInt128 Compute(object value, Type type)
    {
        var w = Writer.Rent();
        try
        {
            WriteBody(w, value, type);
            return w.Hash();
        }
        finally
        {
            Writer.Return(w);
        }
    }

    private static void WriteBody(Writer w, object value, Type type)
    {
        w.Long(TypeId(type));
        var shape = ShapeOf(type);
        if (shape is Shape.Map or Shape.UnorderedMap)
        {
            // Maps by their entries, read through the non-generic interface (no reflection over the BCL's pair type).
            var dictionary = (IDictionary)value;
            var unordered = shape == Shape.UnorderedMap;
            UInt128 sum = 0;
            var n = 0;
            var entries = dictionary.GetEnumerator();
            while (entries.MoveNext())
            {
                if (unordered)
                {
                    var pair = Writer.Rent();
                    try
                    {
                        Write(pair, entries.Key, typeof(object));
                        Write(pair, entries.Value, typeof(object));
                        sum += Mix(pair.Hash());
                    }
                    finally
                    {
                        Writer.Return(pair);
                    }
                }
                else
                {
                    Write(w, entries.Key, typeof(object));
                    Write(w, entries.Value, typeof(object));
                }

                n++;
            }

            w.Int(n);
            if (unordered)
            {
                // A multiset: the sum of the entries' mixed fingerprints, whatever order they enumerate in.
                w.Long((ulong)sum);
                w.Long((ulong)(sum >> 64));
            }

            return;
        }

        if (shape is Shape.Sequence or Shape.Multiset)
        {
            var sequence = (IEnumerable)value;
            if (shape == Shape.Multiset)
            {
                // A multiset: the sum of the entries' mixed fingerprints, whatever order they enumerate in.
                UInt128 sum = 0;
                var count = 0;
                foreach (var item in sequence)
                {
                    sum += Mix(Of(item));
                    count++;
                }

                w.Int(count);
                w.Long((ulong)sum);
                w.Long((ulong)(sum >> 64));
                return;
            }

            var n = 0;
            foreach (var item in sequence)
            {
                Write(w, item, typeof(object));
                n++;
            }

            w.Int(n);
            return;
        }

        if (shape != Shape.Fields)
        {
            throw new NotSupportedException($"state fingerprint: no encoding for {type}");
        }

        foreach (var (getter, fieldType) in GettersOf(type))
        {
            Write(w, getter(value), fieldType);
        }
    }

    /// <summary>How a type's values are encoded, decided once per type.</summary>
    private enum Shape
    {
        /// <summary>Elements in order: arrays, lists, stacks, sorted collections.</summary>
        Sequence,

        /// <summary>Elements as a multiset: hash-based sets, whose order depends on hash codes and history.</summary>
        Multiset,

        /// <summary>Entries in order: sorted maps.</summary>
        Map,

        /// <summary>Entries as a multiset: hash-based maps.</summary>
        UnorderedMap,

        /// <summary>Every field: dmacheck's own types and value tuples.</summary>
        Fields,

        /// <summary>No encoding: refused with the field's name.</summary>
        Unsupported,
    }

    private static readonly ConcurrentDictionary<Type, Shape> Shapes = new();

    /// <summary>
    /// Collections are encoded by their elements, never by their internal layout (an AVL tree's shape, a hash table's
    /// buckets); hash-based ones, whose enumeration order is not part of their value, as multisets.
    /// </summary>
    private static Shape ShapeOf(Type type) => Shapes.GetOrAdd(type, static t =>
    {
        if (IsOwn(t) || (t.IsValueType && t.IsGenericType && t.Namespace == "System" && t.Name.StartsWith("ValueTuple`", StringComparison.Ordinal)))
        {
            return Shape.Fields;
        }

        var collection = t.IsArray || (t.IsGenericType && t.Namespace is "System.Collections.Immutable" or "System.Collections.Generic");
        if (!collection || !typeof(IEnumerable).IsAssignableFrom(t))
        {
            return Shape.Unsupported;
        }

        var d = t.IsGenericType ? t.GetGenericTypeDefinition() : null;
        var unordered = d == typeof(ImmutableDictionary<,>) || d == typeof(ImmutableHashSet<>) || d == typeof(Dictionary<,>) || d == typeof(HashSet<>);
        return typeof(IDictionary).IsAssignableFrom(t)
            ? (unordered ? Shape.UnorderedMap : Shape.Map)
            : (unordered ? Shape.Multiset : Shape.Sequence);
    });

    private static UInt128 Mix(UInt128 x)
    {
        // A bijective mix, so that a sum of entries is not fooled by entries that cancel in plain addition patterns.
        var lo = (ulong)x;
        var hi = (ulong)(x >> 64);
        lo ^= hi >> 29;
        lo *= 0xbf58476d1ce4e5b9UL;
        hi ^= lo >> 31;
        hi *= 0x94d049bb133111ebUL;
        return ((UInt128)hi << 64) | lo;
    }

    /// <summary>The instance fields of <paramref name="type"/> and its base types, base types first and each type's by name (Native AOT has no metadata tokens to order by declaration), caches left out.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "State types are dmacheck's own, whose assembly the CLI roots (TrimmerRootAssembly), so their fields survive trimming.")]
    internal static FieldInfo[] FieldsOf(Type type) => Fields.GetOrAdd(type, static t =>
    {
        var chain = new List<Type>();
        for (var c = t; c is not null && c != typeof(object); c = c.BaseType)
        {
            chain.Add(c);
        }

        chain.Reverse();
        return [.. chain.SelectMany(c => c.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
            .Where(f => f.GetCustomAttribute<NotStateAttribute>() is null)
            .OrderBy(f => f.Name, StringComparer.Ordinal))];
    });

    private static readonly ConcurrentDictionary<Type, (Func<object, object?> Get, Type FieldType)[]> Getters = new();

    /// <summary>
    /// A reader per field of <see cref="FieldsOf"/>: a compiled expression where the runtime can compile (the JIT),
    /// else the field's own <see cref="FieldInfo.GetValue"/> (Native AOT interprets expressions, which is slower).
    /// </summary>
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Expression compilation is used only when RuntimeFeature.IsDynamicCodeCompiled says it is.")]
    private static (Func<object, object?> Get, Type FieldType)[] GettersOf(Type type) => Getters.GetOrAdd(type, static t =>
        [.. FieldsOf(t).Select(f => (System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeCompiled ? Compile(f) : f.GetValue, f.FieldType))]);

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Called only when dynamic code is compiled.")]
    private static Func<object, object?> Compile(FieldInfo f)
    {
        var o = System.Linq.Expressions.Expression.Parameter(typeof(object), "o");
        var read = System.Linq.Expressions.Expression.Field(System.Linq.Expressions.Expression.Convert(o, f.DeclaringType!), f);
        return System.Linq.Expressions.Expression.Lambda<Func<object, object?>>(System.Linq.Expressions.Expression.Convert(read, typeof(object)), o).Compile();
    }

    private static ulong TypeId(Type type) => TypeIds.GetOrAdd(type, static t =>
        System.IO.Hashing.XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(t.FullName ?? t.Name)));

    /// <summary>A growable byte buffer, pooled per thread.</summary>
    private sealed class Writer
    {
        [ThreadStatic]
        private static Stack<Writer>? pool;

        private byte[] buffer = new byte[256];
        private int length;

        public static Writer Rent()
        {
            var p = pool ??= new Stack<Writer>();
            return p.Count > 0 ? p.Pop() : new Writer();
        }

        public static void Return(Writer w)
        {
            w.length = 0;
            (pool ??= new Stack<Writer>()).Push(w);
        }

        public UInt128 Hash() => System.IO.Hashing.XxHash128.HashToUInt128(buffer.AsSpan(0, length));

        private Span<byte> Take(int n)
        {
            if (length + n > buffer.Length)
            {
                Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + n));
            }

            var span = buffer.AsSpan(length, n);
            length += n;
            return span;
        }

        public void Byte(byte b) => Take(1)[0] = b;

        public void Int(int v) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), v);

        public void Long(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);

        public void Bytes(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Take(bytes.Length));
    }

    /// <summary>Forgets the memo of this thread (for tests that mutate objects in place).</summary>
    internal static void ForgetMemo()
    {
        young = null;
        old = null;
    }
}
