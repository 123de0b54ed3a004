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
    ImmutableDictionary<ulong, Alias> VmapAreas,
    ulong UserNext,
    ImmutableSortedDictionary<ulong, UserMapping> UserMappings,
    ulong KmapNext)
{
    public const string LinearMapName = "linear map";

    /// <summary>
    /// The state after boot: the lowmem part of every DRAM bank mapped Normal-WB by the linear map; the declared
    /// tenants' pages allocated (GFP_HIGHUSER: highmem first where there is highmem) and, for highmem, mapped
    /// cacheable in the tenant's own address space; nothing else allocated.
    /// </summary>
    /// <param name="placed">Buffers the scenario places at given physical addresses (<see cref="PlacedBuffers"/>), reserved after the swiotlb pool and before the tenants.</param>
    public static KernelState Boot(PlatformLayout layout, KernelConfig config, HardwareConfig hardware, IReadOnlyList<TenantSpec>? tenants = null, IReadOnlyList<PlacedBufferSpec>? placed = null)
    {
        var mmu = Mmu.Empty.WithSpeculation(hardware.SpeculativeFill);
        foreach (var bank in layout.Banks)
        {
            var end = Math.Min(bank.End, layout.LowmemLimit);
            if (end > bank.Base)
            {
                mmu = mmu.Map(new Alias(LinearMapName, layout.PhysToVirt(bank.Base), bank.Base, end - bank.Base, MemoryType.NormalWriteBack));
            }
        }

        var k = new KernelState(layout, config, hardware, PageAllocatorState.Boot(layout), mmu,
            layout.VmallocStart, ImmutableDictionary<ulong, Alias>.Empty, layout.UserBase, ImmutableSortedDictionary<ulong, UserMapping>.Empty, layout.PkmapBase);
        if (config.ReservedMemory.Length > 0)
        {
            // arm64_memblock_init → early_init_fdt_scan_reserved_mem, before CMA and swiotlb.
            k = Kernel.ReservedMemory.Reserve(k, config.ReservedMemory);
        }
        if (config.CmaBytes > 0)
        {
            // arm64 bootmem_init: dma_contiguous_reserve(arm64_dma_phys_limit), before mem_init's swiotlb_init.
            k = Cma.Reserve(k, config.CmaBytes, Math.Min(layout.RamEnd, 1UL << 32));
        }

        if (config.SwiotlbMode(layout) != SwiotlbBoot.Off)
        {
            if (layout.Arch is Arch.Mips32 or Arch.Ppc32)
            {
                // Neither the 32-bit MIPS boards nor the powerpc 8xx select SWIOTLB.
                throw new NotModelledException($"a swiotlb pool on {layout.Name}: these {layout.Arch} kernels have no CONFIG_SWIOTLB");
            }

            k = k.ReserveSwiotlb();
        }

        if (placed is { Count: > 0 })
        {
            k = PlacedBuffers.Place(k, placed);
        }

        foreach (var t in tenants ?? [])
        {
            k = k.PlaceTenant(t);
        }

        return k;
    }

    /// <summary>The name of the swiotlb pool's pages as an owner.</summary>
    public const string SwiotlbOwner = "the swiotlb bounce buffer (io_tlb_default_mem)";

    /// <summary>The kmalloc caches.</summary>
    public SlabState Slab { get; init; } = SlabState.Empty;

    /// <summary>The kernel stacks of the scenario's CPU threads, by agent name, made at a thread's first stack buffer.</summary>
    public ImmutableSortedDictionary<string, TaskStack> Stacks { get; init; } = ImmutableSortedDictionary.Create<string, TaskStack>(StringComparer.Ordinal);

    /// <summary>The sg tables sg_alloc_table made, by id (freed ones included).</summary>
    public ImmutableList<SgTable> SgTables { get; init; } = ImmutableList<SgTable>.Empty;

    /// <summary>The DT reserved-memory regions placed at boot, by node name (<see cref="Kernel.ReservedMemory"/>).</summary>
    public ImmutableSortedDictionary<string, ReservedRegion> ReservedMemory { get; init; } = Kernel.ReservedMemory.None;

    /// <summary>Memory qcom_scm_assign_mem gave away from HLOS, by physical address (<see cref="QcomScm"/>).</summary>
    public ImmutableSortedDictionary<ulong, ScmAssignment> ScmAssignments { get; init; } = QcomScm.None;

    /// <summary>The swiotlb pool's first frame, when there is a pool.</summary>
    public ulong? SwiotlbPfn { get; init; }

    /// <summary>
    /// swiotlb_init → memblock_alloc_low: the pool is taken top-down from memory below ARCH_LOW_ADDRESS_LIMIT (what a
    /// 32-bit DMA mask reaches, and lowmem), page aligned. Its slots hold <see cref="KernelConfig.SwiotlbResidue"/>.
    /// </summary>
    private KernelState ReserveSwiotlb()
    {
        var bytes = (ulong)Config.SwiotlbSlotCount(Layout) << 11;
        var pages = (bytes + PlatformLayout.PageSize - 1) >> PlatformLayout.PageShift;
        var limit = Math.Min(Layout.LowmemLimit, Layout.DmaToPhys(Math.Min(Layout.DmaLimit, 0xffff_ffffUL)) + 1);
        foreach (var bank in Layout.Banks.Reverse())
        {
            var top = Math.Min(bank.End, limit) >> PlatformLayout.PageShift;
            var bottom = Math.Max(bank.Base >> PlatformLayout.PageShift, Allocator.NextPfn);
            if (Allocator.Cma is { } cma && cma.BasePfn < top && cma.EndPfn > bottom && (top < cma.EndPfn || top - cma.EndPfn < pages))
            {
                top = cma.BasePfn; // memblock top-down: the free range above the CMA area is too small, take the one below
            }

            if (top > bottom && top - bottom >= pages)
            {
                var block = new PageBlock(top - pages, 0, SwiotlbOwner, Data: Config.SwiotlbResidue) { Count = pages };
                return this with
                {
                    Allocator = Allocator with { Allocated = Allocator.Allocated.Add(block.Pfn, block), Reserved = Allocator.Reserved.Add(block) },
                    SwiotlbPfn = block.Pfn,
                };
            }
        }

        throw new NotModelledException($"a swiotlb pool of {Config.SwiotlbSlotCount(Layout)} slots does not fit below PA 0x{limit:x} in layout {Layout.Name}");
    }

    private KernelState PlaceTenant(TenantSpec t)
    {
        var highmem = t.Zone != TenantZone.Lowmem && Layout.HasHighmem;
        var alloc = Allocator;
        var placed = new List<PageBlock>();
        var remaining = t.Pages;
        var k = this;
        while (remaining > 0)
        {
            var order = Math.Min(MaxOrder, 63 - System.Numerics.BitOperations.LeadingZeroCount(remaining));
            alloc = alloc.Take(Layout, highmem, order, out var pfn)
                ?? throw new NotModelledException($"tenant {t.Name}: {t.Pages} pages do not fit in {(highmem ? "highmem" : "lowmem")}");
            var block = new PageBlock(pfn, order, t.Name, Tenant: true, Data: t.Data);
            alloc = alloc with { Allocated = alloc.Allocated.Add(pfn, block) };
            placed.Add(block);
            remaining -= 1UL << order;
        }

        k = k with { Allocator = alloc };
        foreach (var block in placed)
        {
            if (!Layout.IsLowmemPfn(block.Pfn))
            {
                k = k.MapUser(block.Pfn, block.Pages, MemoryType.NormalWriteBack, $"{t.Name}'s own mapping", block.AsOwner(), null, out _);
            }
        }

        return k;
    }

    /// <summary>The physical ranges holding each tenant's data, for the hardware's initial contents.</summary>
    public IEnumerable<(ulong Pa, ulong Size, string Data)> TenantRegions() => DataRegions(tenantsOnly: true);

    /// <summary>The physical ranges whose boot contents are known: the tenants' data and the swiotlb pool's residue.</summary>
    public IEnumerable<(ulong Pa, ulong Size, string Data)> DataRegions(bool tenantsOnly = false) =>
        Allocator.Allocated.Values.Where(b => b.Data is not null && (b.Tenant || !tenantsOnly))
            .Select(b => (PlatformLayout.PfnToPhys(b.Pfn), b.Pages * PlatformLayout.PageSize, b.Data!));

    /// <summary>Who owns <paramref name="pfn"/> now.</summary>
    public PageOwner OwnerOf(ulong pfn) => Allocator.OwnerOf(Layout, pfn);

    /// <summary>
    /// PageReserved(pfn_to_page(pfn)) for a valid pfn: the kernel image and boot-time memblock allocations (here the
    /// swiotlb pool) keep PG_reserved; pages the buddy allocator manages, CMA's included, do not.
    /// </summary>
    public bool PageReserved(ulong pfn) =>
        OwnerOf(pfn).Kind == OwnerKind.KernelImage
        || (SwiotlbPfn is { } pool && pfn >= pool && Allocator.Allocated.TryGetValue(pool, out var block) && pfn - pool < block.Pages);

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

        var highmem = (gfp & Gfp.__GFP_HIGHMEM) != 0 && Layout.HasHighmem;
        if (Allocator.Take(Layout, highmem, order, out pfn) is not { } alloc)
        {
            return null;
        }

        alloc = alloc with { Allocated = alloc.Allocated.Add(pfn, new PageBlock(pfn, order, owner)) };
        var next = this with { Allocator = alloc };
        if (!Config.WantInitOnFree() && Config.WantInitOnAlloc(gfp))
        {
            if (highmem)
            {
                throw new NotModelledException("clearing a highmem page in post_alloc_hook (clear_highpage through kmap_local_page) is not modelled");
            }

            var origin = Config.InitOnAlloc ? "post_alloc_hook: kernel_init_pages (init_on_alloc)" : "post_alloc_hook: kernel_init_pages (__GFP_ZERO)";
            next.CpuStore(Layout.LinearAddress(pfn), PlatformLayout.PageSize << order, WriterTable.Zero, origin, ops);
        }

        return next;
    }

    /// <summary>__free_pages(page, order): with init_on_free the frames are cleared through the linear map first (free_pages_prepare).</summary>
    public KernelState FreePages(ulong pfn, int order, List<HwOp> ops) => FreePages(pfn, order, null, "__free_pages", ops, null);

    /// <summary>
    /// __free_pages(page, order) on behalf of <paramref name="expectedOwner"/> (null: whoever allocated the block),
    /// called from <paramref name="function"/>. Freeing a frame that is free, that another owner holds, or that is
    /// not the start of an allocated block is a finding (fatal: the allocator's state is corrupt from here on) when
    /// <paramref name="findings"/> is given, and a kernel bug otherwise.
    /// </summary>
    public KernelState FreePages(ulong pfn, int order, string? expectedOwner, string function, List<HwOp> ops, List<Finding>? findings)
    {
        if (!Allocator.Allocated.TryGetValue(pfn, out var block) || (expectedOwner is not null && block.Owner != expectedOwner) || block.Tenant)
        {
            throw BadFree(pfn, function, findings);
        }

        if (block.Order != order)
        {
            throw new KernelBugException(function, $"frees pfn 0x{pfn:x} with order {order}, allocated with order {block.Order}");
        }

        if (Config.WantInitOnFree())
        {
            if (!Layout.IsLowmemPfn(pfn))
            {
                throw new NotModelledException("clearing a highmem page on free (init_on_free through kmap_local_page) is not modelled");
            }

            CpuStore(Layout.LinearAddress(pfn), PlatformLayout.PageSize << order, WriterTable.Zero, "free_pages_prepare: kernel_init_pages (init_on_free)", ops);
        }

        var alloc = Allocator with
        {
            Allocated = Allocator.Allocated.Remove(pfn),
            FreeBlocks = Allocator.FreeBlocks.Add(block),
        };
        return this with { Allocator = alloc };
    }

    /// <summary>
    /// A free of <paramref name="pfn"/> that does not release a block its caller owns (already free, another owner's, no
    /// DRAM): a fatal finding when <paramref name="findings"/> is given (the allocator's state is corrupt from here on),
    /// a kernel bug otherwise. Returned for the caller to throw.
    /// </summary>
    internal Exception BadFree(ulong pfn, string function, List<Finding>? findings)
    {
        var owner = OwnerOf(pfn);
        var (kind, what) = owner.Kind switch
        {
            OwnerKind.Free => (FindingKinds.DoubleFree, $"frees pfn 0x{pfn:x}, which is already free"),
            OwnerKind.NoRam => (FindingKinds.FreeForeignPage, $"frees pfn 0x{pfn:x}, where there is no DRAM: the struct page does not exist"),
            _ => (FindingKinds.FreeForeignPage, $"frees pfn 0x{pfn:x}, owned by {owner.Describe()}"),
        };
        return findings is null
            ? new KernelBugException(function, what)
            : new FatalFindingException(new Finding(kind, function, pfn, owner, Severity.Corruption,
                $"{function} {what}: the page allocator would hand it out again while its owner still uses it", Fatal: true));
    }

    /// <summary>
    /// dma_free_contiguous(dev, page, size) (kernel/dma/contiguous.c, v5.10..v6.4): frames of the default CMA area
    /// go back by cma_release, anything else by __free_pages(page, get_order(size)).
    /// </summary>
    public KernelState DmaFreeContiguous(ulong pfn, ulong size, string? expectedOwner, string function, List<HwOp> ops, List<Finding>? findings) =>
        Allocator.Cma is { } area && area.Contains(pfn)
            ? Cma.Release(this, pfn, PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift, expectedOwner, function, ops, findings)
            : FreePages(pfn, PlatformLayout.GetOrder(PlatformLayout.PageAlign(size)), expectedOwner, function, ops, findings);

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
        var k = this with
        {
            Mmu = Mmu.Map(alias),
            VmallocNext = va + size + PlatformLayout.PageSize,
            VmapAreas = VmapAreas.Add(va, alias),
        };
        if (type == MemoryType.NormalNonCacheable && !ScmAssignments.IsEmpty)
        {
            QcomScm.ReachOps(k, alias.Pa, alias.Size, origin, ops);
        }

        return k;
    }

    /// <summary>vunmap(addr): removes the mapping made by <see cref="Vmap"/>. No cache maintenance.</summary>
    public KernelState Vunmap(ulong va, string origin, List<HwOp> ops)
    {
        if (!VmapAreas.TryGetValue(va, out var alias))
        {
            throw new KernelBugException("vunmap", $"0x{va:x} is not the start of a vmap area");
        }

        ops.Add(new UnmapOp(origin, alias));
        var k = this with { Mmu = Mmu.Unmap(alias), VmapAreas = VmapAreas.Remove(va) };
        if (alias.Type == MemoryType.NormalNonCacheable && !ScmAssignments.IsEmpty)
        {
            QcomScm.ReachOps(k, alias.Pa, alias.Size, origin, ops);
        }

        return k;
    }

    /// <summary>
    /// vmalloc_to_page(addr): a walk of the kernel page tables for a vmalloc-space address; the frame it maps, or
    /// null (NULL) when nothing is mapped there.
    /// </summary>
    public ulong? VmallocToPfn(ulong va)
    {
        foreach (var alias in VmapAreas.Values)
        {
            if (alias.ContainsVa(va))
            {
                return (alias.Pa + (va - alias.Va)) >> PlatformLayout.PageShift;
            }
        }

        return null;
    }

    /// <summary>
    /// remap_pfn_range into a user process: maps <paramref name="pages"/> frames from <paramref name="pfn"/> at the
    /// next free user address with the given memory type. remap_pfn_range checks nothing about the frames: any pfn,
    /// RAM or not, owned by anyone, is mapped. <paramref name="ops"/> null: at boot, no hardware operation recorded.
    /// </summary>
    public KernelState MapUser(ulong pfn, ulong pages, MemoryType type, string name, PageOwner? intendedOwner, List<HwOp>? ops, out ulong va)
    {
        va = UserNext;
        if (pages > (Layout.UserEnd - va) / PlatformLayout.PageSize)
        {
            throw new NotModelledException($"user mappings of {pages} more pages do not fit in this model's user address range 0x{Layout.UserBase:x}..0x{Layout.UserEnd:x}");
        }

        var alias = new Alias(name, va, PlatformLayout.PfnToPhys(pfn), pages * PlatformLayout.PageSize, type);
        ops?.Add(new MapOp("remap_pfn_range", alias));
        var k = this with
        {
            Mmu = Mmu.Map(alias),
            UserNext = va + alias.Size + PlatformLayout.PageSize,
            UserMappings = UserMappings.Add(va, new UserMapping(alias, pfn, pages, intendedOwner)),
        };
        if (ops is not null && type == MemoryType.NormalNonCacheable && !ScmAssignments.IsEmpty)
        {
            QcomScm.ReachOps(k, alias.Pa, alias.Size, "remap_pfn_range", ops);
        }

        return k;
    }

    /// <summary>The user mapping containing <paramref name="va"/>, if any.</summary>
    public UserMapping? UserMappingAt(ulong va)
    {
        if (UserMappings.IsEmpty)
        {
            return null;
        }

        foreach (var m in UserMappings.Values)
        {
            if (m.Alias.ContainsVa(va))
            {
                return m;
            }
        }

        return null;
    }

    /// <summary>KM_MAX_IDX: the depth of the per-CPU kmap_local stack (16).</summary>
    public const int KmMaxIdx = 16;

    /// <summary>
    /// kmap_local_page(page) for a highmem page on arm32: a temporary cacheable mapping of that one frame in the
    /// pkmap area. Lowmem pages need none (page_address).
    /// </summary>
    public KernelState KmapHighmem(ulong pfn, List<HwOp> ops, out ulong va)
    {
        va = KmapNext;
        if ((va - Layout.PkmapBase) / PlatformLayout.PageSize >= KmMaxIdx)
        {
            throw new KernelBugException("kmap_local_page", $"more than KM_MAX_IDX ({KmMaxIdx}) local kmaps are live at once (the model has no kunmap_local): BUG");
        }

        var alias = new Alias($"kmap of pfn 0x{pfn:x}", va, PlatformLayout.PfnToPhys(pfn), PlatformLayout.PageSize, MemoryType.NormalWriteBack);
        ops.Add(new MapOp("kmap_local_page", alias));
        return this with { Mmu = Mmu.Map(alias), KmapNext = va + PlatformLayout.PageSize };
    }

    /// <summary>A CPU store of <paramref name="writer"/>'s bytes to [va, va+length) through whatever alias maps it.</summary>
    public void CpuStore(ulong va, ulong length, byte writer, string origin, List<HwOp> ops, MasterKind master = MasterKind.Cpu)
    {
        var (pa, alias) = Mmu.Translate(va, length);
        ops.Add(new MemoryOp(origin, pa, length, Coloured(LineOp.Write(master, alias.Type, writer), alias, pa), alias));
    }

    /// <summary>
    /// <paramref name="op"/>, a CPU access or by-VA maintenance of PA <paramref name="pa"/> through <paramref name="alias"/>, with the
    /// alias copy it uses on an aliasing data cache (<see cref="HardwareConfig.ColourOf"/>): the linear map's copy (0) for the linear
    /// map and for every access on a physically indexed cache. On an aliasing cache only the linear map and the vmalloc area's
    /// aliases are modelled: a cacheable user mapping or kmap there stops the run (their flush_cache_page / kunmap maintenance is not
    /// modelled).
    /// </summary>
    public LineOp Coloured(LineOp op, Alias alias, ulong pa)
    {
        if (!Hardware.Aliasing || !alias.Type.IsCacheable() || alias.Name == LinearMapName)
        {
            return op;
        }

        if (!VmapAreas.TryGetValue(alias.Va, out var area) || area != alias)
        {
            throw new NotModelledException($"a cacheable access through {alias.Name} on an aliasing ({Hardware.Indexing}) data cache: only the linear map's and the vmalloc area's aliases are modelled there (user mappings need flush_cache_page/flush_dcache_page's user-alias half, highmem needs kmap's)");
        }

        var colour = Hardware.ColourOf(alias.Va + (pa - alias.Pa), Layout.PhysToVirt(pa));
        return colour == 0 ? op : op with { Colour = colour };
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
        ops.Add(new MemoryOp(origin, pa, end - start, Coloured(LineOp.Maintenance(kind), alias, pa), alias));
    }
}

/// <summary>A tenant of the machine the scenario declares: someone else's memory, with data of its own.</summary>
public sealed record TenantSpec(string Name, ulong Pages, string Data, TenantZone Zone);

/// <summary>Where a tenant's pages come from.</summary>
public enum TenantZone
{
    /// <summary>Highmem where the layout has any (user pages are GFP_HIGHUSER), else lowmem.</summary>
    Default,

    /// <summary>Lowmem, in the linear map.</summary>
    Lowmem,
}

/// <summary>A user-space mapping made by remap_pfn_range, and the owner of its pages when it was made, if they were the right pages (for use-after-free checks).</summary>
public sealed record UserMapping(Alias Alias, ulong Pfn, ulong Pages, PageOwner? IntendedOwner);
