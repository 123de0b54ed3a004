using System.Collections.Immutable;
using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// The kernel's memory-management state: page allocator, page tables (the <see cref="Mmu"/>) and the vmalloc
/// area. Immutable; every operation returns a new state and appends the hardware operations it performs, in
/// program order, to a caller's list.
/// </summary>
public sealed record KernelState(
    PlatformLayout Layout,
    KernelConfig Config,
    HardwareConfig Hardware,
    PageAllocatorState Allocator,
    Mmu Mmu,
    ulong VmallocNext,
    ImmutableDictionary<ulong, Alias> VmapAreas)
{
    public const string LinearMapName = "linear map";

    /// <summary>The state after boot: all of DRAM mapped Normal-WB by the linear map; nothing allocated.</summary>
    public static KernelState Boot(PlatformLayout layout, KernelConfig config, HardwareConfig hardware)
    {
        var linear = new Alias(LinearMapName, layout.PhysToVirt(layout.RamBase), layout.RamBase, layout.RamSize, MemoryType.NormalWriteBack);
        return new KernelState(layout, config, hardware, PageAllocatorState.Boot(layout), Mmu.Empty.Map(linear),
            layout.VmallocStart, ImmutableDictionary<ulong, Alias>.Empty);
    }

    /// <summary>MAX_ORDER as an inclusive bound (v6.4: orders 0..10, 4 MiB with 4 KiB pages; the same largest block before).</summary>
    public const int MaxOrder = 10;

    /// <summary>
    /// alloc_pages(gfp, order): takes 2^order frames and runs post_alloc_hook, which (v5.3+) clears them through
    /// the cacheable linear map when init := !want_init_on_free() &amp;&amp; want_init_on_alloc(gfp). Returns false
    /// (the kernel's NULL) for an order above <see cref="MaxOrder"/> or when DRAM is exhausted.
    /// </summary>
    public KernelState AllocPages(Gfp gfp, int order, string owner, List<HwOp> ops, out ulong pfn) =>
        TryAllocPages(gfp, order, owner, ops, out pfn) ?? throw new KernelBugException("alloc_pages", $"order {order} allocation failed and the caller cannot handle NULL");

    /// <summary>alloc_pages(gfp, order), or null when the allocation fails.</summary>
    public KernelState? TryAllocPages(Gfp gfp, int order, string owner, List<HwOp> ops, out ulong pfn)
    {
        pfn = 0;
        if (order > MaxOrder)
        {
            return null;
        }

        var alloc = Allocator;
        var reuse = alloc.FreeBlocks.FindLastIndex(b => b.Order == order);
        if (reuse >= 0)
        {
            pfn = alloc.FreeBlocks[reuse].Pfn;
            alloc = alloc with { FreeBlocks = alloc.FreeBlocks.RemoveAt(reuse) };
        }
        else
        {
            pfn = alloc.NextPfn;
            if (!Layout.PfnValid(pfn + (1UL << order) - 1))
            {
                pfn = 0;
                return null;
            }

            alloc = alloc with { NextPfn = pfn + (1UL << order) };
        }

        alloc = alloc with { Allocated = alloc.Allocated.Add(pfn, new PageBlock(pfn, order, owner)) };
        var next = this with { Allocator = alloc };
        if (!Config.WantInitOnFree() && Config.WantInitOnAlloc(gfp))
        {
            var origin = Config.InitOnAlloc ? "post_alloc_hook: kernel_init_pages (init_on_alloc)" : "post_alloc_hook: kernel_init_pages (__GFP_ZERO)";
            next.CpuStore(Layout.PageAddress(pfn), PlatformLayout.PageSize << order, WriterTable.Zero, origin, ops);
        }

        return next;
    }

    /// <summary>__free_pages(page, order): with init_on_free the frames are cleared through the linear map first (free_pages_prepare).</summary>
    public KernelState FreePages(ulong pfn, int order, List<HwOp> ops)
    {
        if (!Allocator.Allocated.TryGetValue(pfn, out var block))
        {
            var owner = Allocator.OwnerOf(pfn);
            throw new KernelBugException("__free_pages", owner is null
                ? $"frees pfn 0x{pfn:x}, which is not allocated"
                : $"frees pfn 0x{pfn:x}, which lies inside a block allocated at pfn 0x{owner.Pfn:x} by {owner.Owner}");
        }

        if (block.Order != order)
        {
            throw new KernelBugException("__free_pages", $"frees pfn 0x{pfn:x} with order {order}, allocated with order {block.Order}");
        }

        if (Config.WantInitOnFree())
        {
            CpuStore(Layout.PageAddress(pfn), PlatformLayout.PageSize << order, WriterTable.Zero, "free_pages_prepare: kernel_init_pages (init_on_free)", ops);
        }

        var alloc = Allocator with
        {
            Allocated = Allocator.Allocated.Remove(pfn),
            FreeBlocks = Allocator.FreeBlocks.Add(block),
        };
        return this with { Allocator = alloc };
    }

    /// <summary>vmap(pages, count, flags, prot) of physically contiguous frames (dma-direct passes VM_DMA_COHERENT): a new alias in the vmalloc area, followed by a guard page.</summary>
    public KernelState Vmap(ulong pfn, ulong pages, MemoryType type, string name, string origin, List<HwOp> ops, out ulong va)
    {
        va = VmallocNext;
        var size = pages * PlatformLayout.PageSize;
        if (va + size > Layout.VmallocEnd)
        {
            throw new NotModelledException("vmalloc space exhausted");
        }

        var alias = new Alias(name, va, PlatformLayout.PfnToPhys(pfn), size, type);
        ops.Add(new MapOp(origin, alias));
        return this with
        {
            Mmu = Mmu.Map(alias),
            VmallocNext = va + size + PlatformLayout.PageSize,
            VmapAreas = VmapAreas.Add(va, alias),
        };
    }

    /// <summary>vunmap(addr): removes the mapping made by <see cref="Vmap"/>. No cache maintenance.</summary>
    public KernelState Vunmap(ulong va, string origin, List<HwOp> ops)
    {
        if (!VmapAreas.TryGetValue(va, out var alias))
        {
            throw new KernelBugException("vunmap", $"0x{va:x} is not the start of a vmap area");
        }

        ops.Add(new UnmapOp(origin, alias));
        return this with { Mmu = Mmu.Unmap(alias), VmapAreas = VmapAreas.Remove(va) };
    }

    /// <summary>A CPU store of <paramref name="writer"/>'s bytes to [va, va+length) through whatever alias maps it.</summary>
    public void CpuStore(ulong va, ulong length, byte writer, string origin, List<HwOp> ops, MasterKind master = MasterKind.Cpu)
    {
        var (pa, alias) = Mmu.Translate(va, length);
        ops.Add(new MemoryOp(origin, pa, length, LineOp.Write(master, alias.Type, writer), alias));
    }

    /// <summary>One DC instruction by VA over the lines [start, end) touches; the VA must be mapped.</summary>
    public void DcacheOp(LineOpKind kind, ulong start, ulong end, string origin, List<HwOp> ops)
    {
        if (end < start)
        {
            throw new TranslationFaultException(start, 0, "the range wraps past the end of the address space");
        }

        if (end == start)
        {
            return;
        }

        var (pa, alias) = Mmu.Translate(start, end - start);
        ops.Add(new MemoryOp(origin, pa, end - start, LineOp.Maintenance(kind), alias));
    }
}
