namespace DmaCheck.Exploration;

/// <summary>
/// The visited set of the line-set explorer: 128-bit state fingerprints in one open-addressing table with linear
/// probing, 16 bytes a slot, grown by doubling at 13/16 full, so it holds between 20 and 40 bytes per state
/// (a <see cref="HashSet{T}"/> of <see cref="UInt128"/> takes 36 to 72, with a 32-byte entry and a 4-byte bucket
/// per slot). Fingerprints are hashes already, so their low bits pick the slot. The zero fingerprint marks an empty
/// slot and is kept in a flag of its own. Not thread safe: only the explorer's merge touches it
/// (docs/internals-state-storage.md).
/// The table lives outside the garbage-collected heap (<see cref="NativeTable"/>), so that growing it never
/// triggers a full collection, and a large one is backed by huge pages where the system offers them: its probes land
/// anywhere in it, and with 4 KiB pages nearly every one would also miss the TLB. Dispose it when the search ends;
/// its finalizer frees it otherwise.
/// </summary>
public sealed unsafe class FingerprintSet : IDisposable
{
    private NativeTable table;
    private UInt128* slots;
    private int mask;
    private bool hasZero;

    public FingerprintSet(int capacity = 1024)
    {
        var size = 16;
        while (size * 13L / 16 < capacity + 1)
        {
            size <<= 1;
        }

        table = NativeTable.Zeroed((nuint)size * 16);
        slots = (UInt128*)table.Pointer;
        mask = size - 1;
    }

    ~FingerprintSet() => table.Free();

    public int Count { get; private set; }

    /// <summary>The bytes the table holds (its slots), for the memory-per-state figure.</summary>
    public long Bytes => (mask + 1L) * 16;

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

        if ((Count + 1) * 16L > (mask + 1L) * 13)
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
    public void Prefetch(UInt128 fingerprint)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(slots + ((int)(ulong)fingerprint & mask));
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

    /// <summary>Frees the table; the set must not be used after.</summary>
    public void Dispose()
    {
        table.Free();
        slots = null;
        mask = -1;
        GC.SuppressFinalize(this);
    }

    private static bool Insert(UInt128* table, int mask, UInt128 fingerprint)
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
        var size = (mask + 1L) * 2;
        var bigger = NativeTable.Zeroed((nuint)size * 16);
        var biggerSlots = (UInt128*)bigger.Pointer;
        var biggerMask = (int)(size - 1);
        for (long i = 0; i <= mask; i++)
        {
            var s = slots[i];
            if (s != UInt128.Zero)
            {
                Insert(biggerSlots, biggerMask, s);
            }
        }

        table.Free();
        table = bigger;
        slots = biggerSlots;
        mask = biggerMask;
    }
}
