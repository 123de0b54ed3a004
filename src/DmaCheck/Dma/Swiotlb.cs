using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// One live bounce allocation: what swiotlb keeps per slot (io_tlb_slot: orig_addr, alloc_size, and list = 0 for a
/// used slot), held once for the run of slots.
/// </summary>
/// <param name="Index">The first slot.</param>
/// <param name="Slots">nr_slots(alloc_size + offset).</param>
/// <param name="Offset">swiotlb_align_offset(): the low bits of the original address the bounce address keeps.</param>
/// <param name="OrigAddr">The original buffer's physical address (slot k records OrigAddr + k * IO_TLB_SIZE).</param>
/// <param name="AllocSize">The bytes allocated (slot k records AllocSize - k * IO_TLB_SIZE).</param>
/// <param name="Owner">Who mapped it, for findings and traces.</param>
public sealed record SwiotlbAllocation(int Index, int Slots, ulong Offset, ulong OrigAddr, ulong AllocSize, string Owner);

/// <summary>
/// The default swiotlb pool (kernel/dma/swiotlb.c, io_tlb_default_mem) as of v6.4 with one area: 2 KiB slots in
/// segments of 128, a rotating search index, and the live allocations. The pool's memory is ordinary DRAM reserved at
/// boot (<see cref="KernelState.SwiotlbPfn"/>); what it holds is the hardware's business. Immutable.
/// </summary>
public sealed record SwiotlbPool(ulong Start, int Slots, bool ForceBounce, int SearchIndex, ImmutableSortedDictionary<int, SwiotlbAllocation> Used)
{
    /// <summary>IO_TLB_SHIFT: slots are 2 KiB.</summary>
    public const int SlotShift = 11;

    /// <summary>IO_TLB_SIZE.</summary>
    public const ulong SlotSize = 1UL << SlotShift;

    /// <summary>IO_TLB_SEGSIZE: a bounce never spans a segment of 128 slots (256 KiB).</summary>
    public const int SegmentSlots = 128;

    public ulong End => Start + ((ulong)Slots << SlotShift);

    /// <summary>is_swiotlb_buffer(dev, paddr).</summary>
    public bool Contains(ulong pa) => pa >= Start && pa < End;

    public static SwiotlbPool? Boot(KernelState kernel) =>
        kernel.SwiotlbPfn is { } pfn
            ? new SwiotlbPool(PlatformLayout.PfnToPhys(pfn), kernel.Config.SwiotlbSlotCount(kernel.Layout), kernel.Config.SwiotlbMode(kernel.Layout) == SwiotlbBoot.Force, 0, ImmutableSortedDictionary<int, SwiotlbAllocation>.Empty)
            : null;

    /// <summary>slot_addr(mem->start, index).</summary>
    public ulong SlotAddress(int index) => Start + ((ulong)index << SlotShift);

    /// <summary>swiotlb_align_offset(dev, orig_addr): orig_addr &amp; dma_get_min_align_mask(dev) &amp; (IO_TLB_SIZE - 1).</summary>
    public static ulong AlignOffset(DmaDevice dev, ulong origAddr) => origAddr & dev.MinAlignMask & (SlotSize - 1);

    /// <summary>
    /// swiotlb_area_find_slots (v6.4, one area): the slot stride follows the device's min_align_mask above the slot size,
    /// doubled to page alignment for requests of a page or more; from the area's index (aligned up to the stride), the
    /// first slot that matches the original address in the min_align_mask bits above IO_TLB_SIZE and starts a free run
    /// of nslots within its segment wins, and the index moves past it. Null when no slot fits ("swiotlb buffer is full").
    /// </summary>
    public SwiotlbPool? Allocate(DmaDevice dev, ulong origAddr, ulong allocSize, string owner, out SwiotlbAllocation allocation)
    {
        allocation = null!;
        var offset = AlignOffset(dev, origAddr);
        var nslots = (int)((allocSize + offset + SlotSize - 1) >> SlotShift);
        var iotlbAlignMask = dev.MinAlignMask & ~(SlotSize - 1);
        var stride = (int)(iotlbAlignMask >> SlotShift) + 1;
        if (allocSize >= PlatformLayout.PageSize)
        {
            stride = Math.Max(stride, stride << (PlatformLayout.PageShift - SlotShift));
        }

        if (nslots > SegmentSlots || nslots > Slots)
        {
            return null;
        }

        var index = Wrap(AlignUp(SearchIndex, stride));
        var wrap = index;
        for (var steps = 0; steps <= 2 * Slots; steps++)
        {
            if ((SlotAddress(index) & iotlbAlignMask) != (origAddr & iotlbAlignMask))
            {
                index = Wrap(index + 1);
            }
            else if (FreeRun(index) >= nslots)
            {
                allocation = new SwiotlbAllocation(index, nslots, offset, origAddr, allocSize, owner);
                return this with { Used = Used.Add(index, allocation), SearchIndex = Wrap(index + nslots) };
            }
            else
            {
                index = Wrap(index + stride);
            }

            if (index == wrap)
            {
                break;
            }
        }

        return null;
    }

    /// <summary>The slots in use, for the "swiotlb buffer is full" message.</summary>
    public int UsedSlots => Used.Values.Sum(a => a.Slots);

    /// <summary>swiotlb_release_slots: the allocation that starts at the bounce address's slot is freed (its slots' list counts are merged).</summary>
    public SwiotlbPool Release(SwiotlbAllocation allocation) => this with { Used = Used.Remove(allocation.Index) };

    /// <summary>The live allocation holding <paramref name="tlbAddr"/>, if any (a slot with orig_addr set).</summary>
    public SwiotlbAllocation? AllocationAt(ulong tlbAddr)
    {
        if (!Contains(tlbAddr))
        {
            return null;
        }

        var slot = (int)((tlbAddr - Start) >> SlotShift);
        foreach (var a in Used.Values)
        {
            if (slot >= a.Index && slot < a.Index + a.Slots)
            {
                return a;
            }
        }

        return null;
    }

    /// <summary>io_tlb_slot.list: the free slots from <paramref name="index"/> to the next used slot or the end of its segment.</summary>
    private int FreeRun(int index)
    {
        var segmentEnd = Math.Min(Slots, (index / SegmentSlots + 1) * SegmentSlots);
        var end = segmentEnd;
        foreach (var a in Used.Values)
        {
            if (a.Index + a.Slots > index && a.Index < end)
            {
                if (a.Index <= index)
                {
                    return 0;
                }

                end = a.Index;
            }
        }

        return end - index;
    }

    private int Wrap(int index) => index >= Slots ? 0 : index;

    private static int AlignUp(int value, int stride) => (value + stride - 1) / stride * stride;
}

/// <summary>swiotlb_bounce and its callers: which copies a mapping makes, per the history of reference §6.4.</summary>
public static class SwiotlbBounce
{
    /// <summary>
    /// swiotlb_bounce(dev, tlb_addr, size, dir): the original address comes from the slot's bookkeeping, adjusted by
    /// the offset of tlb_addr in its slot (negative for later slots); a size beyond the allocation's remaining bytes
    /// WARNs "Buffer overflow detected" and is truncated. DMA_TO_DEVICE copies orig → bounce, the others bounce → orig,
    /// with memcpy through the linear map. A bounce address in no allocation copies nothing (orig_addr is INVALID).
    /// </summary>
    public static void Bounce(DmaState s, SwiotlbPool pool, ulong tlbAddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops, List<Finding> findings)
    {
        if (pool.AllocationAt(tlbAddr) is not { } a || size == 0)
        {
            return;
        }

        var position = tlbAddr - pool.SlotAddress(a.Index) - a.Offset; // bytes from the start of the mapping
        var orig = a.OrigAddr + position;
        var remaining = a.AllocSize - position;
        if (size > remaining)
        {
            findings.Add(new Finding(FindingKinds.SwiotlbOverflow, caller, tlbAddr >> PlatformLayout.PageShift, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                $"swiotlb_bounce: Buffer overflow detected. Allocation size: {remaining}. Mapping size: {size}. (the {size}-byte sync at bounce address 0x{tlbAddr:x} runs past {a.Owner}'s bounce slots; the copy is truncated)"));
            size = remaining;
        }

        var layout = s.Kernel.Layout;
        if (!layout.IsLowmemPfn(orig >> PlatformLayout.PageShift) || !layout.IsLowmemPfn((orig + size - 1) >> PlatformLayout.PageShift))
        {
            throw new NotModelledException("swiotlb_bounce of a highmem original (copied page by page under kmap_atomic) is not modelled");
        }

        var toDevice = dir == DmaDirection.DMA_TO_DEVICE;
        var origin = $"{caller}: swiotlb_bounce({dir}) memcpy {(toDevice ? $"0x{orig:x} → bounce 0x{tlbAddr:x}" : $"bounce 0x{tlbAddr:x} → 0x{orig:x}")}, {size} bytes";
        ops.Add(toDevice
            ? new CopyOp(origin, MasterKind.Cpu, orig, MemoryType.NormalWriteBack, tlbAddr, MemoryType.NormalWriteBack, size)
            : new CopyOp(origin, MasterKind.Cpu, tlbAddr, MemoryType.NormalWriteBack, orig, MemoryType.NormalWriteBack, size));
    }
}
