using System.Collections.Immutable;

namespace DmaCheck.Hardware;

/// <summary>
/// Lists kept in one canonical order, whatever order their elements were added in: the streaming mappings and
/// dma-debug's entries. Two maps of disjoint buffers then leave the same state in either order, which the interleaving
/// reduction needs to treat them as commuting (docs/internals-reduction.md). Elements are ordered by the caller's key,
/// then by their derived fingerprint (<see cref="StateHasher"/>), so the order is total.
/// </summary>
public static class CanonicalList
{
    /// <summary><paramref name="list"/> with <paramref name="item"/> inserted in its place.</summary>
    public static ImmutableList<T> Insert<T>(ImmutableList<T> list, T item, Comparison<T> key)
        where T : notnull
    {
        var at = 0;
        while (at < list.Count && Compare(list[at], item, key) <= 0)
        {
            at++;
        }

        return list.Insert(at, item);
    }

    /// <summary><paramref name="list"/> with <paramref name="old"/> replaced by <paramref name="item"/>, in its place.</summary>
    public static ImmutableList<T> Replace<T>(ImmutableList<T> list, T old, T item, Comparison<T> key)
        where T : notnull => Insert(list.Remove(old), item, key);

    private static int Compare<T>(T a, T b, Comparison<T> key)
        where T : notnull
    {
        var c = key(a, b);
        return c != 0 ? c : StateHasher.Of(a).CompareTo(StateHasher.Of(b));
    }
}
