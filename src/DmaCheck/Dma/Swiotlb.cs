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
/// <param name="PadSlots">io_tlb_slot.pad_slots (v6.9, af133562d5af): whole slots at the start of the run, before the
/// one the bounce address is in, taken to keep an offset of IO_TLB_SIZE or more; Index and Slots count them, the
/// bookkeeping (OrigAddr, AllocSize, Offset) starts after them.</param>
public sealed record SwiotlbAllocation(int Index, int Slots, ulong Offset, ulong OrigAddr, ulong AllocSize, string Owner, int PadSlots = 0);

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
    /// The slot search of the profile's era (<see cref="Switches.SwiotlbSlotSearch"/>); by default, and described here,
    /// swiotlb_area_find_slots (v6.4, after 0eee5ae10256 "swiotlb: fix slot alignment checks", one area): the alignment
    /// mask is the device's min_align_mask, plus page alignment when the request (with its offset) is a page or more,
    /// without the bits inside a slot; the stride is that mask in slots. From the area's index, a slot whose address
    /// differs from the original in the mask's bits is skipped by one, and otherwise the slot wins if a free run of
    /// nslots starts there within its segment, or the search moves on by the stride; every slot is checked at most
    /// once. On success the index moves past the allocation. Null when no slot fits ("swiotlb buffer is full").
    /// </summary>
    public SwiotlbPool? Allocate(DmaDevice dev, ulong origAddr, ulong allocSize, string owner, out SwiotlbAllocation allocation,
        SwiotlbSlotSearchMode search = SwiotlbSlotSearchMode.AddressMask)
    {
        allocation = null!;
        var offset = search == SwiotlbSlotSearchMode.PageStride ? 0 : AlignOffset(dev, origAddr);
        var size = allocSize + offset; // swiotlb_find_slots(dev, orig_addr, alloc_size + offset, ...)
        var nslots = (int)((size + SlotSize - 1) >> SlotShift);
        if (nslots > SegmentSlots || nslots > Slots)
        {
            return null;
        }

        int? found = search switch
        {
            SwiotlbSlotSearchMode.PageStride => StridedSearch(0, size >= PlatformLayout.PageSize ? 2 : 1, origAddr, nslots),
            SwiotlbSlotSearchMode.MinAlignStride => MinAlignStrideSearch(dev, origAddr, size, nslots),
            SwiotlbSlotSearchMode.PageUnlessMinAlign => PageUnlessMinAlignSearch(dev, origAddr, size, nslots),
            _ => AddressMaskSearch(AddressMaskV64(dev, size), origAddr, nslots),
        };
        if (found is not { } index)
        {
            return null;
        }

        allocation = new SwiotlbAllocation(index, nslots, offset, origAddr, allocSize, owner);
        return this with { Used = Used.Add(index, allocation), SearchIndex = Wrap(index + nslots) };
    }

    /// <summary>
    /// swiotlb_tbl_map_single with an alloc_align_mask, as iommu_dma_map_page passes iova_mask (v6.10, after 327e2c97c46a
    /// and 04867a7a3332/14cebf689a78): the offset the bounce address keeps is swiotlb_align_offset(dev, alloc_align_mask,
    /// orig_addr) = orig_addr &amp; min_align_mask &amp; (alloc_align_mask | (IO_TLB_SIZE - 1)), whose whole slots become
    /// pad slots before the bounce (af133562d5af, v6.9); the request is ALIGN(mapping_size + offset, alloc_align_mask + 1), so whole IOVA granules of slots are taken; swiotlb_search_pool_area skips by one
    /// a slot whose address has any bit of alloc_align_mask (at least the slot's own bits) set or differs from the
    /// original in the bits of min_align_mask above it, and otherwise takes it when a free run of nslots starts there,
    /// or moves on by the stride (get_max_slots of the larger mask). Each slot's alloc_size is the request less the
    /// offset and the slots before it. Null when nothing fits ("swiotlb buffer is full").
    /// </summary>
    public SwiotlbPool? AllocateAligned(DmaDevice dev, ulong origAddr, ulong mappingSize, ulong allocAlignMask, string owner, out SwiotlbAllocation allocation)
    {
        allocation = null!;
        var mask = allocAlignMask | (SlotSize - 1);
        var offset = AlignedOffset(dev, origAddr, allocAlignMask);

        var size = (mappingSize + offset + allocAlignMask) & ~allocAlignMask;
        var nslots = (int)((size + SlotSize - 1) >> SlotShift);
        if (nslots > SegmentSlots || nslots > Slots)
        {
            return null;
        }

        var iotlbAlignMask = dev.MinAlignMask & ~mask;
        var stride = (int)(Math.Max(mask, iotlbAlignMask) >> SlotShift) + 1;
        var index = Wrap(SearchIndex);
        for (var checkedSlots = 0; checkedSlots < Slots;)
        {
            if ((SlotAddress(index) & mask) != 0 || (SlotAddress(index) & iotlbAlignMask) != (origAddr & iotlbAlignMask))
            {
                index = Wrap(index + 1);
                checkedSlots++;
                continue;
            }

            if (FreeRun(index) >= nslots)
            {
                allocation = new SwiotlbAllocation(index, nslots, offset & (SlotSize - 1), origAddr, size - offset, owner, (int)(offset >> SlotShift));
                return this with { Used = Used.Add(index, allocation), SearchIndex = Wrap(index + nslots) };
            }

            index = Wrap(index + stride);
            checkedSlots += stride;
        }

        return null;
    }

    /// <summary>swiotlb_align_offset(dev, align_mask, addr) (v6.9 on): addr &amp; min_align_mask &amp; (align_mask | (IO_TLB_SIZE - 1)).</summary>
    public static ulong AlignedOffset(DmaDevice dev, ulong origAddr, ulong allocAlignMask) => origAddr & dev.MinAlignMask & (allocAlignMask | (SlotSize - 1));

    /// <summary>v6.3..v6.8 (0eee5ae10256): min_align_mask, plus page alignment for a request of a page or more, without the bits inside a slot.</summary>
    private static ulong AddressMaskV64(DmaDevice dev, ulong size)
    {
        var mask = dev.MinAlignMask;
        if (size >= PlatformLayout.PageSize)
        {
            mask |= PlatformLayout.PageSize - 1;
        }

        return mask & ~(SlotSize - 1);
    }

    /// <summary>
    /// The search of v6.3 on (one area): from the area's index, a slot whose address differs from the original in
    /// <paramref name="iotlbAlignMask"/> is skipped by one; otherwise it wins if a free run of nslots starts there, or
    /// the search moves on by the stride, (mask &gt;&gt; IO_TLB_SHIFT) + 1. Every slot is checked at most once.
    /// </summary>
    private int? AddressMaskSearch(ulong iotlbAlignMask, ulong origAddr, int nslots) =>
        SearchFrom(Wrap(SearchIndex), iotlbAlignMask, (int)(iotlbAlignMask >> SlotShift) + 1, origAddr, nslots);

    /// <summary>
    /// swiotlb_find_slots of v5.12..v6.2 (1f221a0d0dbf; one area): iotlb_align_mask = min_align_mask without the bits
    /// inside a slot, stride = (mask &gt;&gt; IO_TLB_SHIFT) + 1, doubled (PAGE_SHIFT - IO_TLB_SHIFT) for a request of a
    /// page or more; the search starts at the index aligned up to the stride.
    /// </summary>
    private int? MinAlignStrideSearch(DmaDevice dev, ulong origAddr, ulong size, int nslots)
    {
        var mask = dev.MinAlignMask & ~(SlotSize - 1);
        var stride = (int)(mask >> SlotShift) + 1;
        if (size >= PlatformLayout.PageSize)
        {
            stride <<= PlatformLayout.PageShift - SlotShift;
        }

        return StridedSearch(mask, stride, origAddr, nslots);
    }

    /// <summary>
    /// swiotlb_search_pool_area of v6.9 on (14cebf689a78; one area, no alloc_align_mask for a streaming map): the mask
    /// compared with the original is min_align_mask above the slot; a device without one gets page alignment for a
    /// request of a page or more, a placement this model does not follow (it stops as not modelled).
    /// </summary>
    private int? PageUnlessMinAlignSearch(DmaDevice dev, ulong origAddr, ulong size, int nslots)
    {
        if (dev.MinAlignMask == 0 && size >= PlatformLayout.PageSize)
        {
            throw new NotModelledException($"swiotlb_search_pool_area (v6.9+, {Switches.SwiotlbSlotSearch.Key}=page_unless_min_align) for a {size}-byte mapping of {dev.Name}, which has no min_align_mask: the page-aligned placement of 14cebf689a78 is not modelled");
        }

        return AddressMaskSearch(dev.MinAlignMask & ~(SlotSize - 1), origAddr, nslots);
    }

    /// <summary>
    /// The strided search before v6.3: index = ALIGN(index, stride), wrapped; a slot that differs from the original in
    /// <paramref name="mask"/> is skipped by one, else it wins with a free run of nslots, else the search moves by the
    /// stride. With a zero mask and a stride of 2 for a page or more this is v5.4..v5.11's swiotlb_tbl_map_single.
    /// </summary>
    private int? StridedSearch(ulong mask, int stride, ulong origAddr, int nslots) =>
        SearchFrom(Wrap((SearchIndex + stride - 1) / stride * stride), mask, stride, origAddr, nslots);

    /// <summary>
    /// The walk both searches share, from slot <paramref name="index"/>: a slot that differs from the original in
    /// <paramref name="mask"/> is skipped by one, else it wins with a free run of nslots, else the walk moves by
    /// <paramref name="stride"/>. Every slot is checked at most once.
    /// </summary>
    private int? SearchFrom(int index, ulong mask, int stride, ulong origAddr, int nslots)
    {
        for (var checkedSlots = 0; checkedSlots < Slots;)
        {
            if ((SlotAddress(index) & mask) != (origAddr & mask))
            {
                index = Wrap(index + 1);
                checkedSlots++;
                continue;
            }

            if (FreeRun(index) >= nslots)
            {
                return index;
            }

            index = Wrap(index + stride);
            checkedSlots += stride;
        }

        return null;
    }

    /// <summary>The slots in use, for the "swiotlb buffer is full" message.</summary>
    public int UsedSlots => Used.Values.Sum(a => a.Slots);

    /// <summary>swiotlb_release_slots: the allocation that starts at the bounce address's slot is freed (its slots' list counts are merged).</summary>
    public SwiotlbPool Release(SwiotlbAllocation allocation) => this with { Used = Used.Remove(allocation.Index) };

    /// <summary>
    /// swiotlb_release_slots(dev, tlb_addr) for a bounce address inside an allocation: from that address's slot,
    /// nr_slots(slots[index].alloc_size + offset) slots are freed, which is the rest of the allocation; the slots before
    /// it stay in use, leaked.
    /// </summary>
    public SwiotlbPool Release(SwiotlbAllocation allocation, ulong tlbAddr)
    {
        var slot = (int)(((tlbAddr - allocation.Offset) - Start) >> SlotShift) - allocation.PadSlots;
        if (slot <= allocation.Index)
        {
            return Release(allocation);
        }

        var kept = allocation with { Slots = Math.Min(allocation.Slots, slot - allocation.Index) };
        return this with { Used = Used.SetItem(allocation.Index, kept) };
    }

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

    /// <summary>wrap_area_index: an index at or past the end of the area wraps to 0.</summary>
    private int Wrap(int index) => index >= Slots ? 0 : index;
}

/// <summary>swiotlb_bounce and its callers: which copies a mapping makes, per the history of reference §6.4.</summary>
public static class SwiotlbBounce
{
    /// <summary>
    /// swiotlb_bounce(dev, tlb_addr, size, dir): the original address comes from the slot's bookkeeping, adjusted by
    /// the offset of tlb_addr in its slot as <see cref="Switches.SwiotlbSyncOffset"/> says (v5.15..v6.8 by default:
    /// 868c9ddc182b's checks); a size beyond the allocation's remaining bytes WARNs "Buffer overflow detected" and is
    /// truncated (from v5.12). DMA_TO_DEVICE copies orig → bounce, the others bounce → orig,
    /// with memcpy through the linear map. A bounce address in no allocation copies nothing (orig_addr is INVALID).
    /// </summary>
    /// <returns>The bytes copied, as the original buffer's PA and length; null when nothing is copied.</returns>
    public static (ulong Orig, ulong Size)? Bounce(DmaState s, SwiotlbPool pool, ulong tlbAddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops, List<Finding> findings,
        SwiotlbSyncOffsetMode syncOffset = SwiotlbSyncOffsetMode.Checked)
    {
        if (pool.AllocationAt(tlbAddr) is not { } a || size == 0)
        {
            return null;
        }

        // The slot's own bookkeeping: slot k of the allocation records orig_addr + k * IO_TLB_SIZE and
        // alloc_size - k * IO_TLB_SIZE; the in-slot offset is compared with the original's aligned offset.
        var slotIndex = (int)((tlbAddr - pool.Start) >> SwiotlbPool.SlotShift) - a.Index - a.PadSlots;
        if (slotIndex < 0)
        {
            return null; // a pad slot: its orig_addr is INVALID_PHYS_ADDR
        }

        var k = (ulong)slotIndex;
        var slotOrig = a.OrigAddr + (k << SwiotlbPool.SlotShift);
        var slotAlloc = (long)a.AllocSize - (long)(k << SwiotlbPool.SlotShift);
        var tlbOffset = tlbAddr & (SwiotlbPool.SlotSize - 1);
        var origOffset = a.Offset;
        var owner = new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner);
        var pfn = tlbAddr >> PlatformLayout.PageShift;
        var how = $"[{Switches.SwiotlbSyncOffset.Key}={SwitchValues.SwiotlbSyncOffset.Def.Values[(int)syncOffset].Name}]";
        long delta; // what is added to the slot's orig_addr (and taken from its alloc_size)
        switch (syncOffset)
        {
            case SwiotlbSyncOffsetMode.SlotOffset:
                // v5.4..v5.11 swiotlb_tbl_sync_single: orig_addr += tlb_addr & (IO_TLB_SIZE - 1), no size check.
                if (tlbAddr + size > pool.End)
                {
                    throw new NotModelledException($"{caller}: a {size}-byte swiotlb copy at 0x{tlbAddr:x} that runs past the end of the pool (no size check before v5.12)");
                }

                return Copy(s, slotOrig + tlbOffset, tlbAddr, size, dir, $"{caller} {how}", ops);
            case SwiotlbSyncOffsetMode.SlotStart:
                // 16fc3cef33a0: the slot's orig_addr as it is, whatever tlb_addr's offset in the slot.
                delta = 0;
                break;
            case SwiotlbSyncOffsetMode.AlignOffset:
                // 5f89468e2f06: tlb_offset (an unsigned int) = (tlb_addr & (IO_TLB_SIZE - 1)) - swiotlb_align_offset(dev, orig_addr).
                if (tlbOffset < origOffset)
                {
                    throw new NotModelledException($"{caller}: bounce address 0x{tlbAddr:x} lies {origOffset - tlbOffset} bytes before the aligned offset of its slot; 5f89468e2f06's unsigned tlb_offset then wraps (orig_addr moves by about 4 GiB)");
                }

                delta = (long)(tlbOffset - origOffset);
                break;
            case SwiotlbSyncOffsetMode.Signed:
                // e8068f2d756d: the same difference, signed, and no check but the size one below.
                delta = (long)tlbOffset - (long)origOffset;
                break;
            default:
                // 868c9ddc182b: refuse an offset before the original's, or past alloc_size.
                if (tlbOffset < origOffset)
                {
                    findings.Add(new Finding(FindingKinds.SwiotlbAccessBeforeStart, caller, pfn, owner, Severity.ContractViolation,
                        $"swiotlb_bounce: Access before mapping start detected. orig offset {origOffset}, requested offset {tlbOffset}. (bounce address 0x{tlbAddr:x} in {a.Owner}'s slot {k}; nothing is copied)"));
                    return null;
                }

                delta = (long)(tlbOffset - origOffset);
                if (delta > slotAlloc)
                {
                    findings.Add(new Finding(FindingKinds.SwiotlbOverflow, caller, pfn, owner, Severity.ContractViolation,
                        $"swiotlb_bounce: Buffer overflow detected. Allocation size: {slotAlloc}. Mapping size: {size}+{delta}. (bounce address 0x{tlbAddr:x} is past {a.Owner}'s bounce slots; nothing is copied)"));
                    return null;
                }

                break;
        }

        var orig = (ulong)((long)slotOrig + delta);
        var remainingSigned = slotAlloc - delta;
        if (remainingSigned <= 0)
        {
            throw new NotModelledException($"{caller}: bounce address 0x{tlbAddr:x} is at or past the end of {a.Owner}'s allocation {how}; swiotlb_bounce's size arithmetic there is not modelled");
        }

        var remaining = (ulong)remainingSigned;
        if (size > remaining)
        {
            findings.Add(new Finding(FindingKinds.SwiotlbOverflow, caller, pfn, owner, Severity.ContractViolation,
                $"swiotlb_bounce: Buffer overflow detected. Allocation size: {remaining}. Mapping size: {size}. (the {size}-byte sync at bounce address 0x{tlbAddr:x} runs past {a.Owner}'s bounce slots; the copy is truncated)"));
            size = remaining;
        }

        return Copy(s, orig, tlbAddr, size, dir, $"{caller}{(syncOffset == SwiotlbSyncOffsetMode.Checked ? string.Empty : " " + how)}", ops);
    }

    /// <summary>The memcpy of swiotlb_bounce between the original buffer at <paramref name="orig"/> and the slots at <paramref name="tlbAddr"/>, through the linear map.</summary>
    private static (ulong Orig, ulong Size)? Copy(DmaState s, ulong orig, ulong tlbAddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops)
    {
        if (size == 0)
        {
            return null;
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
        return (orig, size);
    }
}

// swiotlb_map and the bounce bookkeeping of kernel/dma/swiotlb.c that the backends call.
public static partial class DmaApi
{
    /// <summary>
    /// swiotlb_map() → swiotlb_tbl_map_single() (v6.4, one area): find slots, record the original address, copy the
    /// buffer into the slots as <see cref="Switches.SwiotlbMapBounce"/> says; the handle is phys_to_dma of the bounce
    /// address, refused ("swiotlb addr ... overflow") when the device cannot reach it; a non-coherent device gets
    /// arch_sync_dma_for_device on the bounce slots unless DMA_ATTR_SKIP_CPU_SYNC. <paramref name="via"/> names the
    /// caller in the operations' labels (xen_swiotlb_map_page takes the same steps through swiotlb_tbl_map_single).
    /// </summary>
    private static DmaState SwiotlbMap(DmaEnvironment env, DmaState s, SwiotlbPool pool, DmaDevice dev, ulong phys, ulong size, DmaDirection dir, DmaAttrs attrs, string function, string via, List<HwOp> ops, List<Finding> findings, out ulong handle)
    {
        if (dev.SegBoundaryMask != ulong.MaxValue)
        {
            throw new NotModelledException($"{function}: {dev.Name} sets seg_boundary_mask 0x{dev.SegBoundaryMask:x}, which swiotlb's slot search honours (dma_get_seg_boundary); that part of the search is not modelled");
        }

        var owner = $"{function}({dev.Name}) of PA 0x{phys:x}";
        if (pool.Allocate(dev, phys, size, owner, out var slots, env.SwiotlbSlotSearch) is not { } allocated)
        {
            if ((attrs & DmaAttrs.DMA_ATTR_NO_WARN) == 0)
            {
                findings.Add(new Finding(FindingKinds.SwiotlbFull, function, null, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                    $"swiotlb_tbl_map_single: swiotlb buffer is full (sz: {size} bytes), total {pool.Slots} (slots), used {pool.UsedSlots} (slots); the mapping fails with DMA_MAPPING_ERROR"));
            }

            handle = DmaMappingError;
            return s;
        }

        var tlb = allocated.SlotAddress(slots.Index) + slots.Offset;
        if (((tlb ^ phys) & dev.MinAlignMask) != 0)
        {
            // The device computes addresses from the handle's low bits (NVMe PRP entries); swiotlb did not keep them.
            findings.Add(new Finding(FindingKinds.SwiotlbMinAlignLost, function, phys >> PlatformLayout.PageShift, s.OwnerOf(phys >> PlatformLayout.PageShift), Severity.Corruption,
                $"the bounce address 0x{tlb:x} of PA 0x{phys:x} differs from it in bits 0x{(tlb ^ phys) & dev.MinAlignMask:x} of {dev.Name}'s min_align_mask 0x{dev.MinAlignMask:x} [{Switches.SwiotlbSlotSearch.Key}={env.Profile.Value(Switches.SwiotlbSlotSearch)}]: a device that builds its addresses from those bits of the handle (NVMe PRP entries) reads and writes the wrong bytes of the bounce buffer"));
        }

        var skip = (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) != 0;
        var bounce = env.SwiotlbMapBounce switch
        {
            SwiotlbMapBounceMode.ToDeviceOnly => !skip && dir is DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL,
            SwiotlbMapBounceMode.UnlessOverwrite => !skip && ((attrs & DmaAttrs.DMA_ATTR_OVERWRITE) == 0 || dir != DmaDirection.DMA_FROM_DEVICE),
            SwiotlbMapBounceMode.Always => true,
            _ => throw new InvalidOperationException($"{Switches.SwiotlbMapBounce.Key}: no behaviour for {env.SwiotlbMapBounce}"),
        };
        var next = s with { Swiotlb = allocated };
        var mapping = new StreamingMapping(dev.Name, env.Layout.PhysToDma(tlb), phys, size, dir, function, tlb, [(0UL, size)]);
        if (bounce)
        {
            SwiotlbBounce.Bounce(next, allocated, tlb, size, DmaDirection.DMA_TO_DEVICE, $"{via}: swiotlb_tbl_map_single [{Switches.SwiotlbMapBounce.Key}={env.Profile.Value(Switches.SwiotlbMapBounce)}]", ops, findings, env.SwiotlbSyncOffset);
            mapping = mapping.Filled(0, size);
        }

        if (!DmaCapable(env, dev, mapping.Handle, size))
        {
            // swiotlb_map: swiotlb_tbl_unmap_single(..., DMA_ATTR_SKIP_CPU_SYNC), then the WARN.
            findings.Add(new Finding(FindingKinds.DmaAddrOverflow, function, tlb >> PlatformLayout.PageShift, new PageOwner(OwnerKind.Allocation, KernelState.SwiotlbOwner), Severity.ContractViolation,
                $"swiotlb addr 0x{mapping.Handle:x16}+{size} overflow (mask {dev.DmaMask:x}, bus limit {(env.Layout.DmaLimit == ulong.MaxValue ? 0 : env.Layout.DmaLimit):x}): {dev.Name} cannot reach the bounce slots either; the map returns DMA_MAPPING_ERROR"));
            handle = DmaMappingError;
            return s with { Swiotlb = allocated.Release(slots) };
        }

        handle = mapping.Handle;
        if (!dev.Coherent && !skip)
        {
            ArchSyncDmaForDevice(env, next.Kernel, tlb, size, dir, via, ops);
        }

        return next with { Mappings = CanonicalList.Insert(next.Mappings, mapping, StreamingMapping.Order) };
    }

    /// <summary>A device wrote [pa, pa+length): bounce slots it covers no longer hold stale bytes.</summary>
    public static DmaState DeviceWrote(DmaState s, ulong pa, ulong length) => s.Swiotlb is { } pool && pool.Contains(pa) ? Filled(s, pa, length) : s;

    private static DmaState Filled(DmaState s, ulong pa, ulong length)
    {
        var mappings = s.Mappings;
        foreach (var m in s.Mappings)
        {
            if (m.Tlb is { } tlb && pa < tlb + m.Size && tlb < pa + length)
            {
                var lo = Math.Max(pa, tlb) - tlb;
                var hi = Math.Min(pa + length, tlb + m.Size) - tlb;
                mappings = CanonicalList.Replace(mappings, m, m.Filled(lo, hi), StreamingMapping.Order);
            }
        }

        return s with { Mappings = mappings };
    }

    /// <summary>
    /// A copy back from bounce slots that still hold bytes from before the mapping (not copied in at map, not written by
    /// the device) puts the pool's previous contents (another user's bounce data) into the buffer: an information leak.
    /// </summary>
    private static void StaleBytes(DmaState s, ulong orig, ulong size, string function, List<Finding> findings)
    {
        foreach (var m in s.Mappings)
        {
            if (m.Tlb is not { } tlb || m.Stale is null || orig < m.Phys || orig >= m.Phys + m.Size)
            {
                continue;
            }

            var lo = orig - m.Phys;
            var hi = Math.Min(m.Size, lo + size);
            foreach (var (a, b) in m.Stale)
            {
                var from = Math.Max(a, lo);
                var to = Math.Min(b, hi);
                if (from < to)
                {
                    findings.Add(new Finding(FindingKinds.SwiotlbStaleBytes, function, (m.Phys + from) >> PlatformLayout.PageShift, s.OwnerOf((m.Phys + from) >> PlatformLayout.PageShift), Severity.InformationLeak,
                        $"bytes {from}..{to} of {m.Function}'s {m.Direction} mapping are copied back from bounce slots at 0x{tlb + from:x} that neither the map nor the device wrote: the buffer receives whatever the swiotlb pool held before (another user's data)"));
                    return;
                }
            }
        }
    }
}

// The sync and unmap halves of kernel/dma/swiotlb.c that dma-direct and swiotlb-xen call.
public static partial class DmaApi
{
    /// <summary>
    /// swiotlb_sync_single_for_cpu(dev, tlb_addr, size, dir) (kernel/dma/swiotlb.c, v5.13..v6.4): DMA_FROM_DEVICE and
    /// DMA_BIDIRECTIONAL copy the slots back into the buffer; a copy of bytes nobody wrote is reported.
    /// </summary>
    private static void SwiotlbSyncSingleForCpu(DmaEnvironment env, DmaState s, SwiotlbPool pool, ulong tlbAddr, ulong size, DmaDirection dir, string caller, string function, List<HwOp> ops, List<Finding> findings)
    {
        if (dir is DmaDirection.DMA_FROM_DEVICE or DmaDirection.DMA_BIDIRECTIONAL &&
            SwiotlbBounce.Bounce(s, pool, tlbAddr, size, DmaDirection.DMA_FROM_DEVICE, $"{caller}: swiotlb_sync_single_for_cpu", ops, findings, env.SwiotlbSyncOffset) is { } copied)
        {
            StaleBytes(s, copied.Orig, copied.Size, function, findings);
        }
    }

    /// <summary>
    /// swiotlb_sync_single_for_device(dev, tlb_addr, size, dir) (v5.13..v6.4): copies the buffer into the slots for the
    /// directions <see cref="Switches.SwiotlbSyncForDeviceBounce"/> names.
    /// </summary>
    private static DmaState SwiotlbSyncSingleForDevice(DmaEnvironment env, DmaState s, SwiotlbPool pool, ulong tlbAddr, ulong size, DmaDirection dir, string caller, List<HwOp> ops, List<Finding> findings)
    {
        if (!env.SwiotlbSyncForDeviceAlwaysBounces && dir is not (DmaDirection.DMA_TO_DEVICE or DmaDirection.DMA_BIDIRECTIONAL))
        {
            return s;
        }

        SwiotlbBounce.Bounce(s, pool, tlbAddr, size, DmaDirection.DMA_TO_DEVICE,
            $"{caller}: swiotlb_sync_single_for_device [{Switches.SwiotlbSyncForDeviceBounce.Key}={(env.SwiotlbSyncForDeviceAlwaysBounces ? "always" : "by_direction")}]", ops, findings, env.SwiotlbSyncOffset);
        return Filled(s, tlbAddr, size);
    }

    /// <summary>
    /// swiotlb_tbl_unmap_single(dev, tlb_addr, size, dir, attrs) (v5.13..v6.4): unless DMA_ATTR_SKIP_CPU_SYNC, a
    /// DMA_FROM_DEVICE or DMA_BIDIRECTIONAL mapping is copied back; then the slots are released
    /// (<see cref="SwiotlbPool.Release(SwiotlbAllocation, ulong)"/>).
    /// </summary>
    private static DmaState SwiotlbTblUnmapSingle(DmaEnvironment env, DmaState s, SwiotlbPool pool, ulong tlbAddr, ulong size, DmaDirection dir, DmaAttrs attrs, string caller, string function, List<HwOp> ops, List<Finding> findings)
    {
        if ((attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0 && dir is DmaDirection.DMA_FROM_DEVICE or DmaDirection.DMA_BIDIRECTIONAL &&
            SwiotlbBounce.Bounce(s, pool, tlbAddr, size, DmaDirection.DMA_FROM_DEVICE, $"{caller}: swiotlb_tbl_unmap_single", ops, findings, env.SwiotlbSyncOffset) is { } copied)
        {
            StaleBytes(s, copied.Orig, copied.Size, function, findings);
        }

        return pool.AllocationAt(tlbAddr) is { } slots ? s with { Swiotlb = pool.Release(slots, tlbAddr) } : s;
    }
}
