using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The virtual machines a Qualcomm secure monitor or hypervisor can give memory to (include/linux/firmware/qcom/qcom_scm.h,
/// v6.4: QCOM_SCM_VMID_HLOS 0x3, MSS_MSA 0xF, WLAN 0x18, WLAN_CE 0x19, NAV 0x2B). HLOS is the non-secure world Linux
/// runs in.
/// </summary>
public static class ScmVmids
{
    public const string Hlos = "QCOM_SCM_VMID_HLOS";

    /// <summary>The names the scenario language accepts, with the ids the header gives them.</summary>
    public static IReadOnlyDictionary<string, int> All { get; } = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        [Hlos] = 0x3,
        ["QCOM_SCM_VMID_MSS_MSA"] = 0xF,
        ["QCOM_SCM_VMID_WLAN"] = 0x18,
        ["QCOM_SCM_VMID_WLAN_CE"] = 0x19,
        ["QCOM_SCM_VMID_NAV"] = 0x2B,
    };
}

/// <summary>Memory <c>qcom_scm_assign_mem</c> gave away from HLOS: [Pa, Pa+Size) now belongs to <see cref="Vmid"/>.</summary>
public sealed record ScmAssignment(ulong Pa, ulong Size, string Vmid)
{
    public bool Overlaps(ulong pa, ulong size) => pa < Pa + Size && Pa < pa + size;
}

/// <summary>
/// qcom_scm_assign_mem (drivers/firmware/qcom/qcom_scm.c, v6.4): the secure world reassigns a physical range between
/// virtual machines and reprograms the memory protection (an XPU or MPU, or the hypervisor's stage-2 tables) to match.
/// The kernel's own mappings are left as they are: the linear map of ordinary RAM still maps the range cacheable, which
/// is what makes a speculative linefill or the eviction of a dirty line through it fatal (the memory protection unit
/// raises an abort and, on Qualcomm SoCs, the secure world resets the board). The hardware keeps the assignment per line
/// (<see cref="LineOpKind.Assign"/>); the kernel keeps what it asked for, to check that a give-back matches.
/// </summary>
/// <remarks>
/// Not modelled: the SCM call's own argument buffer (v6.4 allocates it with dma_alloc_coherent, the subject of seed 1),
/// permissions other than RWX, and assignment to several VMs at once. srcvm is what the kernel records: a range is
/// given away from HLOS and given back to it whole, or the call fails with -EINVAL as the secure world's check does.
/// </remarks>
public static class QcomScm
{
    /// <summary>
    /// Assigns [pa, pa+size) to <paramref name="vmid"/>; with <see cref="ScmVmids.Hlos"/>, gives back an earlier
    /// assignment of exactly that range. Faults on lines assigned away are recorded in <paramref name="faultVar"/> as
    /// <paramref name="faultWriter"/>'s bytes. Returns null with <paramref name="error"/> set when the secure world
    /// refuses the call.
    /// </summary>
    public static KernelState? AssignMem(KernelState k, ulong pa, ulong size, string vmid, int faultVar, byte faultWriter, string origin, List<HwOp> ops, out string? error)
    {
        error = null;
        if (vmid == ScmVmids.Hlos)
        {
            if (!k.ScmAssignments.TryGetValue(pa, out var held) || held.Size != size)
            {
                error = $"qcom_scm_assign_mem(0x{pa:x}, 0x{size:x}) back to HLOS returns -EINVAL: no earlier assignment covers exactly that range (srcvm does not name its owner)";
                return null;
            }

            ops.Add(new MemoryOp(origin, pa, size, LineOp.Assign(-1, 0), null));
            return k with { ScmAssignments = k.ScmAssignments.Remove(pa) };
        }

        if (k.ScmAssignments.Values.FirstOrDefault(a => a.Overlaps(pa, size)) is { } owner)
        {
            error = $"qcom_scm_assign_mem(0x{pa:x}, 0x{size:x}) returns -EINVAL: PA 0x{owner.Pa:x}..0x{owner.Pa + owner.Size:x} already belongs to {owner.Vmid}, not HLOS";
            return null;
        }

        ops.Add(new MemoryOp(origin, pa, size, LineOp.Assign(faultVar, faultWriter), null));
        k = k with { ScmAssignments = k.ScmAssignments.Add(pa, new ScmAssignment(pa, size, vmid)) };
        ReachOps(k, pa, size, origin, ops, coveredOnly: true);
        return k;
    }

    /// <summary>
    /// Tells the assigned lines among [pa, pa+size) whether a Normal non-cacheable alias maps them now
    /// (<see cref="LineOpKind.Reach"/>): after a mapping of that range changed, or when it was assigned
    /// (<paramref name="coveredOnly"/>: only the runs an alias covers, the others being unmapped already).
    /// </summary>
    public static void ReachOps(KernelState k, ulong pa, ulong size, string origin, List<HwOp> ops, bool coveredOnly = false)
    {
        foreach (var a in k.ScmAssignments.Values)
        {
            var lo = Math.Max(pa, a.Pa);
            var hi = Math.Min(pa + size, a.Pa + a.Size);
            if (lo >= hi)
            {
                continue;
            }

            var nc = k.Mmu.Aliases.Where(x => x.Type == MemoryType.NormalNonCacheable).ToList();
            var cuts = new SortedSet<ulong> { lo, hi };
            foreach (var x in nc)
            {
                foreach (var at in new[] { x.Pa, x.Pa + x.Size })
                {
                    if (at > lo && at < hi)
                    {
                        cuts.Add(at);
                    }
                }
            }

            var edges = cuts.ToList();
            for (var i = 0; i + 1 < edges.Count; i++)
            {
                var covered = nc.Any(x => x.ContainsPa(edges[i]));
                if (covered || !coveredOnly)
                {
                    ops.Add(new MemoryOp(origin, edges[i], edges[i + 1] - edges[i], LineOp.Reach(covered), null));
                }
            }
        }
    }

    /// <summary>The assignment covering any of [pa, pa+size), if one does.</summary>
    public static ScmAssignment? AssignedAt(KernelState k, ulong pa, ulong size) => k.ScmAssignments.Values.FirstOrDefault(a => a.Overlaps(pa, size));

    /// <summary>An empty table of assignments.</summary>
    public static ImmutableSortedDictionary<ulong, ScmAssignment> None { get; } = ImmutableSortedDictionary<ulong, ScmAssignment>.Empty;
}
