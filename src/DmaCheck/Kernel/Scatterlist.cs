using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// One struct scatterlist (include/linux/scatterlist.h, v5.10..v6.5, 64-bit with CONFIG_NEED_SG_DMA_LENGTH): the page
/// (page_link), offset and length the driver set, and the dma_address and dma_length the DMA layer filled in.
/// </summary>
/// <param name="Pfn">The entry's page, or null while page_link is 0 (sg_init_table cleared it and no sg_set_* ran).</param>
/// <param name="DmaSwiotlb">SG_DMA_SWIOTLB in sg-&gt;dma_flags (v6.5, sg_dma_mark_swiotlb): set on a list's first entry by iommu-dma when it bounced the list element by element.</param>
public sealed record SgEntry(ulong? Pfn, ulong Offset, ulong Length, ulong DmaAddress, ulong DmaLength, bool DmaSwiotlb = false)
{
    public static SgEntry Empty { get; } = new(null, 0, 0, 0, 0);

    /// <summary>sg_phys(sg): page_to_phys(sg_page(sg)) + sg->offset.</summary>
    public ulong Phys => PlatformLayout.PfnToPhys(Pfn ?? 0) + Offset;
}

/// <summary>
/// A struct sg_table from sg_alloc_table: its scatterlist array (one kmalloc object at <see cref="Va"/>), orig_nents
/// (the entries allocated) and nents (what dma_map_sgtable mapped). Freed tables stay, so a later use is caught.
/// </summary>
public sealed record SgTable(int Id, ulong Va, ImmutableArray<SgEntry> Entries, int Nents, bool Freed = false)
{
    /// <summary>sgt-&gt;orig_nents.</summary>
    public int OrigNents => Entries.Length;
}

/// <summary>lib/scatterlist.c's table allocation and the sg_set_* helpers (v5.10..v6.5).</summary>
public static class Scatterlist
{
    /// <summary>sizeof(struct scatterlist) on 64-bit: page_link, offset, length, dma_address, dma_length (and dma_flags in the padding since v6.2).</summary>
    public const ulong EntrySize = 32;

    /// <summary>SG_MAX_SINGLE_ALLOC: PAGE_SIZE / sizeof(struct scatterlist); a table of more entries is chained.</summary>
    public const int MaxSingleAlloc = (int)(PlatformLayout.PageSize / EntrySize);

    /// <summary>
    /// sg_alloc_table(table, nents, gfp) → __sg_alloc_table with sg_kmalloc: one kmalloc_array(nents, sizeof(struct
    /// scatterlist)) for fewer than SG_MAX_SINGLE_ALLOC entries, then sg_init_table: memset of the array through the
    /// linear map and sg_mark_end on the last entry. Returns null (-ENOMEM) when kmalloc fails. A chained table (128
    /// entries or more, or __get_free_page for exactly 128) is not modelled, nor is 32-bit arm, whose struct
    /// scatterlist layout (dma_addr_t width under LPAE) this model does not pin down.
    /// </summary>
    public static KernelState? SgAllocTable(KernelState k, int nents, Gfp gfp, List<HwOp> ops, out SgTable? table)
    {
        table = null;
        if (k.Layout.Arch is Arch.Mips32 or Arch.RiscV64 or Arch.Ppc32)
        {
            throw new NotModelledException($"sg_alloc_table on {k.Layout.Arch}: sizeof(struct scatterlist) there is not modelled");
        }

        if (k.Layout.Arch == Arch.Arm32)
        {
            throw new NotModelledException("sg_alloc_table on 32-bit arm: sizeof(struct scatterlist) there (dma_addr_t is 64-bit under LPAE) is not modelled");
        }

        if (nents >= MaxSingleAlloc)
        {
            throw new NotModelledException($"sg_alloc_table of {nents} entries: tables of SG_MAX_SINGLE_ALLOC ({MaxSingleAlloc}) entries or more are chained (or take a whole page), which is not modelled");
        }

        var bytes = (ulong)nents * EntrySize;
        var next = Kmalloc.Alloc(k, bytes, gfp, ops, out var va);
        if (va == 0)
        {
            return null;
        }

        next.CpuStore(va, bytes, WriterTable.Zero, "sg_init_table: memset(sgl, 0, sizeof(*sgl) * nents) through the linear map", ops);
        table = new SgTable(next.SgTables.Count, va, Enumerable.Repeat(SgEntry.Empty, nents).ToImmutableArray(), nents);
        return next with { SgTables = next.SgTables.Add(table) };
    }

    /// <summary>
    /// sg_set_page(sg, page, len, offset): sg_assign_page, sg-&gt;offset and sg-&gt;length, stores to the entry
    /// through the linear map.
    /// </summary>
    public static KernelState SgSetPage(KernelState k, SgTable table, int index, ulong pfn, ulong length, ulong offset, string function, List<HwOp> ops)
    {
        k.CpuStore(table.Va + ((ulong)index * EntrySize), 16, WriterTable.Zero, $"{function}: sg->page_link, sg->offset, sg->length of entry {index}", ops);
        var entry = table.Entries[index] with { Pfn = pfn, Offset = offset, Length = length };
        return Replace(k, table with { Entries = table.Entries.SetItem(index, entry) });
    }

    /// <summary>
    /// sg_set_buf(sg, buf, buflen) = sg_set_page(sg, virt_to_page(buf), buflen, offset_in_page(buf)). virt_to_page is
    /// linear-map arithmetic: a vmalloc or other non-linear address gives a bogus page (CONFIG_DEBUG_SG catches it
    /// with BUG_ON(!virt_addr_valid(buf))), so the model refuses it as a kernel bug.
    /// </summary>
    public static KernelState SgSetBuf(KernelState k, SgTable table, int index, ulong va, ulong length, List<HwOp> ops)
    {
        if (!k.Layout.IsLinearMapAddr(va))
        {
            var what = k.Layout.IsVmallocAddr(va) ? "a vmalloc address" : "not a linear-map address";
            throw new KernelBugException("sg_set_buf", $"0x{va:x} is {what}: virt_to_page() computes a bogus struct page (CONFIG_DEBUG_SG: BUG_ON(!virt_addr_valid(buf))); use vmalloc_to_page and sg_set_page");
        }

        return SgSetPage(k, table, index, k.Layout.VirtToPfn(va), length, va & (PlatformLayout.PageSize - 1), "sg_set_buf", ops);
    }

    /// <summary>What the DMA layer stores in an entry when it maps it: sg-&gt;dma_address and sg_dma_len(sg).</summary>
    public static KernelState SetDma(KernelState k, SgTable table, int index, ulong dmaAddress, ulong dmaLength, string function, List<HwOp> ops)
    {
        k.CpuStore(table.Va + ((ulong)index * EntrySize) + 16, 12, WriterTable.Zero, $"{function}: sg->dma_address, sg_dma_len(sg) of entry {index}", ops);
        var entry = table.Entries[index] with { DmaAddress = dmaAddress, DmaLength = dmaLength };
        return Replace(k, table with { Entries = table.Entries.SetItem(index, entry) });
    }

    /// <summary>sg_dma_mark_swiotlb(sg) (v6.5): SG_DMA_SWIOTLB into the entry's dma_flags (in the padding after dma_length); nothing clears it again.</summary>
    public static KernelState MarkSwiotlb(KernelState k, SgTable table, int index, string function, List<HwOp> ops)
    {
        k.CpuStore(table.Va + ((ulong)index * EntrySize) + 28, 4, WriterTable.Zero, $"{function}: sg_dma_mark_swiotlb, sg->dma_flags of entry {index}", ops);
        return Replace(k, table with { Entries = table.Entries.SetItem(index, table.Entries[index] with { DmaSwiotlb = true }) });
    }

    /// <summary>dma_map_sgtable sets sgt-&gt;nents to what was mapped.</summary>
    public static KernelState SetNents(KernelState k, SgTable table, int nents) => Replace(k, table with { Nents = nents });

    /// <summary>sg_free_table(table) → __sg_free_table → sg_kfree: kfree of the array.</summary>
    public static KernelState SgFreeTable(KernelState k, SgTable table, List<HwOp> ops, List<Finding> findings)
    {
        var next = Kmalloc.Free(k, table.Va, (ulong)table.OrigNents * EntrySize, ops, findings);
        return Replace(next, table with { Freed = true });
    }

    private static KernelState Replace(KernelState k, SgTable table) => k with { SgTables = k.SgTables.SetItem(table.Id, table) };
}
