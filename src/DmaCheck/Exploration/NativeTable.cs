using System.Runtime.InteropServices;

namespace DmaCheck.Exploration;

/// <summary>
/// A zeroed block of memory outside the garbage-collected heap, for the explorer's large tables
/// (<see cref="FingerprintSet"/>). A block of 4 MiB or more is aligned to 2 MiB and, on Linux, advised to be backed by
/// transparent huge pages (<c>madvise(MADV_HUGEPAGE)</c>), so that random probes over it do not each miss the TLB
/// (docs/internals-state-storage.md, "The visited set"). The owner frees it exactly once.
/// </summary>
internal unsafe partial struct NativeTable
{
    private const nuint HugePage = 2 << 20;
    private const int MadvHugePage = 14;
    private static bool noMadvise;
    private bool aligned;

    public void* Pointer { get; private set; }

    /// <summary>A zeroed block of <paramref name="bytes"/> bytes.</summary>
    public static NativeTable Zeroed(nuint bytes)
    {
        if (bytes < 2 * HugePage)
        {
            return new NativeTable { Pointer = NativeMemory.AllocZeroed(bytes) };
        }

        var p = NativeMemory.AlignedAlloc(bytes, HugePage);
        if (OperatingSystem.IsLinux() && !noMadvise)
        {
            try
            {
                _ = Madvise((nint)p, bytes, MadvHugePage); // a hint: where huge pages are off, nothing changes
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                noMadvise = true; // a C library without it: plain pages
            }
        }

        NativeMemory.Clear(p, bytes);
        return new NativeTable { Pointer = p, aligned = true };
    }

    /// <summary>Frees the block (once; a freed or empty table frees nothing).</summary>
    public void Free()
    {
        if (Pointer is null)
        {
            return;
        }

        if (aligned)
        {
            NativeMemory.AlignedFree(Pointer);
        }
        else
        {
            NativeMemory.Free(Pointer);
        }

        Pointer = null;
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
