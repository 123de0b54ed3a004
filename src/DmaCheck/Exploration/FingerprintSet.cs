namespace DmaCheck.Exploration;

/// <summary>
/// The visited set of the line-set explorer: 128-bit state fingerprints in one open-addressing table with linear
/// probing, 16 bytes a slot, grown by doubling at 13/16 full, so it holds between 20 and 40 bytes per state
/// (a <see cref="HashSet{T}"/> of <see cref="UInt128"/> takes 36 to 72, with a 32-byte entry and a 4-byte bucket
/// per slot). Fingerprints are hashes already, so their low bits pick the slot. The zero fingerprint marks an empty
/// slot and is kept in a flag of its own. Not thread safe: only the explorer's merge touches it
/// (docs/internals-state-storage.md).
/// </summary>
public sealed class FingerprintSet
{
    private UInt128[] slots;
    private int mask;
    private bool hasZero;

    public FingerprintSet(int capacity = 1024)
    {
        var size = 16;
        while (size * 13L / 16 < capacity + 1)
        {
            size <<= 1;
        }

        slots = new UInt128[size];
        mask = size - 1;
    }

    public int Count { get; private set; }

    /// <summary>The bytes the table holds (its slots), for the memory-per-state figure.</summary>
    public long Bytes => (long)slots.Length * 16;

    /// <summary>Adds <paramref name="fingerprint"/>; false when it was there already.</summary>
    public bool Add(UInt128 fingerprint)
    {
        if (fingerprint == UInt128.Zero)
        {
            if (hasZero)
            {
                return false;
            }

            hasZero = true;
            Count++;
            return true;
        }

        if ((Count + 1) * 16L > slots.Length * 13L)
        {
            Grow();
        }

        if (!Insert(slots, mask, fingerprint))
        {
            return false;
        }

        Count++;
        return true;
    }

    /// <summary>Asks the processor to fetch the slot <paramref name="fingerprint"/> would be looked up in (a hint; it changes nothing).</summary>
    public unsafe void Prefetch(UInt128 fingerprint)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            fixed (UInt128* slot = &slots[(int)(ulong)fingerprint & mask])
            {
                System.Runtime.Intrinsics.X86.Sse.Prefetch0(slot);
            }
        }
    }

    public bool Contains(UInt128 fingerprint)
    {
        if (fingerprint == UInt128.Zero)
        {
            return hasZero;
        }

        for (var i = (int)(ulong)fingerprint & mask; ; i = (i + 1) & mask)
        {
            var s = slots[i];
            if (s == fingerprint)
            {
                return true;
            }

            if (s == UInt128.Zero)
            {
                return false;
            }
        }
    }

    private static bool Insert(UInt128[] table, int mask, UInt128 fingerprint)
    {
        for (var i = (int)(ulong)fingerprint & mask; ; i = (i + 1) & mask)
        {
            var s = table[i];
            if (s == UInt128.Zero)
            {
                table[i] = fingerprint;
                return true;
            }

            if (s == fingerprint)
            {
                return false;
            }
        }
    }

    private void Grow()
    {
        var bigger = new UInt128[slots.Length * 2];
        var biggerMask = bigger.Length - 1;
        foreach (var s in slots)
        {
            if (s != UInt128.Zero)
            {
                Insert(bigger, biggerMask, s);
            }
        }

        slots = bigger;
        mask = biggerMask;
    }
}
