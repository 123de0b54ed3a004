using System.Collections.Immutable;
using DmaCheck.Dma;
using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

/// <summary>
/// Every kernel call the scenario language knows, one <see cref="CallEntry"/> each, and the semantics of the
/// language's own statements. The binder looks calls up here by name; <see cref="ScenarioModel"/> runs a statement
/// through <see cref="SemanticsOf"/>; the reduction reads its footprint from the same place.
/// </summary>
public static partial class CallCatalogue
{
    /// <summary>The kernel calls, in the order the binder lists them in its "unknown function" message.</summary>
    public static ImmutableArray<CallEntry> Calls { get; } =
    [
        .. CoherentCalls(),
        .. DerivedCalls(["sg_page", "sg_phys", "kmap_local_page"]),
        .. MemoryCalls(),
        .. StreamingCalls(),
        .. ScatterlistCalls(),
        .. ResourceCalls(),
        .. DerivedCalls(["virt_to_phys", "stack_buffer", "static_const", "vmalloc_to_page", "offset_in_page"]),
        .. RangeSyncCalls(),
        .. SecureMemoryCalls(),
        .. MemremapCalls(),
        .. DevCoherentCalls(),
        .. VmallocCalls(),
    ];

    private static readonly Dictionary<string, CallEntry> ByName = Calls.ToDictionary(c => c.Name, StringComparer.Ordinal);

    /// <summary>The entry for kernel function <paramref name="name"/>, or null.</summary>
    public static CallEntry? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>The semantics of a bound statement: its call's entry, or the language statement's.</summary>
    public static StepSemantics SemanticsOf(Statement stmt) =>
        stmt.Call ?? StatementsByType.GetValueOrDefault(stmt.GetType()) ?? throw new InvalidOperationException($"no semantics for {stmt.GetType().Name}");

    /// <summary>The footprint of a bound statement's step.</summary>
    public static Footprint FootprintOf(Statement stmt) => SemanticsOf(stmt).Footprint;

    private static CallEntry<T> Entry<T>(string name, CallSignature signature, Func<Binder.CallBinding, T> bind, Func<T, IEnumerable<ValueExpr>> inputs,
        Func<StepContext, T, StepOutcome> execute, Footprint footprint, CallGeneration generation)
        where T : Statement => new(name, signature, bind, inputs, execute, footprint, generation);

    private static Footprint Fp(P reads, P writes) => new(reads | writes, writes);

    // ---- coherent buffers: kernel/dma/mapping.c dma_alloc_attrs, dma_free_attrs, dma_mmap_attrs, dma_get_sgtable_attrs ----

    /// <summary>The pages, the NC remap or atomic pool, the coherent-buffer record and dma-debug's entry.</summary>
    private static Footprint AllocFootprint => Fp(P.Variables, P.PageAllocator | P.PageTables | P.AtomicPool | P.CoherentBuffers | P.DebugEntries | P.Variables);

    private static Footprint FreeFootprint => Fp(P.Variables, P.PageAllocator | P.PageTables | P.AtomicPool | P.CoherentBuffers | P.DebugEntries);

    private static IEnumerable<CallEntry> CoherentCalls()
    {
        yield return Entry("dma_alloc_coherent", new CallSignature(ResultKind.CoherentBuffer, ParamKind.Device, ParamKind.Size, ParamKind.Gfp),
            c =>
            {
                c.Arity(3);
                return new AllocCoherentStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Gfp(2));
            },
            a => [a.Size], AllocCoherent, AllocFootprint, CallGeneration.By("a coherent buffer (descriptor ring) with dma_alloc_coherent"));
        yield return Entry("dma_alloc_attrs", new CallSignature(ResultKind.CoherentBuffer, ParamKind.Device, ParamKind.Size, ParamKind.Gfp, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                return new AllocCoherentStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Gfp(2), c.Attrs(3));
            },
            a => [a.Size], AllocCoherent, AllocFootprint, CallGeneration.By("a coherent buffer with attributes (NO_KERNEL_MAPPING only where the profile models it)"));
        yield return Entry("dma_free_coherent", new CallSignature([[ParamKind.Device, ParamKind.Size, ParamKind.CoherentBuffer], [ParamKind.Device, ParamKind.Size, ParamKind.CpuAddress, ParamKind.Handle]], ResultKind.None),
            c =>
            {
                c.NoTarget();
                if (c.ArgCount == 3)
                {
                    var buf = c.Expr(2);
                    return new FreeCoherentStmt(c.Span, c.Text, c.Device(0), c.Expr(1), buf with { Field = "cpu" }, buf with { Field = "dma" });
                }

                c.Arity(4);
                return new FreeCoherentStmt(c.Span, c.Text, c.Device(0), c.Expr(1), c.Expr(2), c.Expr(3));
            },
            f => [f.Size, f.CpuAddr, f.Handle], FreeCoherent, FreeFootprint, CallGeneration.By("the free of a dma_alloc_coherent buffer"));
        yield return Entry("dma_free_attrs", new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Size, ParamKind.CoherentBuffer, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                c.NoTarget();
                var buf = c.Expr(2);
                return new FreeCoherentStmt(c.Span, c.Text, c.Device(0), c.Expr(1), buf with { Field = "cpu" }, buf with { Field = "dma" }, c.Attrs(3));
            },
            f => [f.Size, f.CpuAddr, f.Handle], FreeCoherent, FreeFootprint, CallGeneration.By("the free of a dma_alloc_attrs buffer, with its attributes"));

        var mmapFootprint = Fp(P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.PageTables | P.Variables);
        yield return Entry("dma_mmap_coherent", new CallSignature(ResultKind.UserPointer, ParamKind.Device, ParamKind.CoherentBuffer, ParamKind.Size),
            c =>
            {
                c.Arity(3);
                return new MmapStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Expr(2), DmaAttrs.None);
            },
            m => [m.Buffer, m.Size], Mmap, mmapFootprint, CallGeneration.By("a coherent buffer mmap'ed to a user process"));
        yield return Entry("dma_mmap_attrs", new CallSignature(ResultKind.UserPointer, ParamKind.Device, ParamKind.CoherentBuffer, ParamKind.Size, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                return new MmapStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Expr(2), c.Attrs(3));
            },
            m => [m.Buffer, m.Size], Mmap, mmapFootprint, CallGeneration.By("a dma_alloc_attrs buffer mmap'ed with its attributes"));

        var sgtableFootprint = Fp(P.PageAllocator | P.PageTables | P.CoherentBuffers | P.AtomicPool | P.Variables, P.Variables);
        yield return Entry("dma_get_sgtable", new CallSignature(ResultKind.SgTable, ParamKind.Device, ParamKind.CoherentBuffer, ParamKind.Size),
            c =>
            {
                c.Arity(3);
                return new GetSgtableStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Expr(2), DmaAttrs.None);
            },
            g => [g.Buffer, g.Size], GetSgtable, sgtableFootprint, CallGeneration.By("a coherent buffer exported as an sg table"));
        yield return Entry("dma_get_sgtable_attrs", new CallSignature(ResultKind.SgTable, ParamKind.Device, ParamKind.CoherentBuffer, ParamKind.Size, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                return new GetSgtableStmt(c.Span, c.Text, c.Target(), c.Device(0), c.Expr(1), c.Expr(2), c.Attrs(3));
            },
            g => [g.Buffer, g.Size], GetSgtable, sgtableFootprint, CallGeneration.By("a dma_alloc_attrs buffer exported with its attributes"));
    }

    private static StepOutcome AllocCoherent(StepContext c, AllocCoherentStmt a)
    {
        var size = c.Number(a.Size);
        if (size == 0 || size > 1UL << 30)
        {
            throw c.Bad($"dma_alloc_coherent of {size} bytes: this model takes 1 byte to 1 GiB");
        }

        var (dma, debug) = c.Dma.AllocAttrs(c.S.Dma, c.S.Debug, a.Device, size, a.Gfp, a.Attrs, c.Line, c.Ops, c.Findings, out var cpu, out var handle);
        var cookie = cpu != 0 && (a.Attrs & DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING) != 0;
        return c.Assign(a.Target, new CoherentBuffer(cpu, handle, size, cookie), dma, debug);
    }

    private static StepOutcome FreeCoherent(StepContext c, FreeCoherentStmt f)
    {
        var size = c.Number(f.Size);
        var cpu = c.Number(f.CpuAddr);
        var handle = c.Number(f.Handle);
        var (dma, debug) = c.Dma.FreeAttrs(c.S.Dma, c.S.Debug, f.Device, size, cpu, handle, f.Attrs, c.Ops, c.Findings);
        return c.S.With(dma: dma, debug: debug);
    }

    private static StepOutcome Mmap(StepContext c, MmapStmt m)
    {
        var (buf, size) = c.ExportedBuffer(m.Buffer, m.Size, "dma_mmap_*");
        var dma = c.Dma.MmapAttrs(c.S.Dma, m.Device, buf.Cpu, buf.Dma, size, m.Attrs, m.Buffer.Text, c.Ops, c.Findings, out var va);
        return c.Assign(m.Target, new UserPointer(va, PlatformLayout.PageAlign(size)), dma);
    }

    private static StepOutcome GetSgtable(StepContext c, GetSgtableStmt g)
    {
        var (buf, size) = c.ExportedBuffer(g.Buffer, g.Size, "dma_get_sgtable");
        var (pfn, length) = c.Dma.GetSgtableAttrs(c.S.Dma, g.Device, buf.Cpu, buf.Dma, size, g.Buffer.Text, c.Findings);
        return c.Assign(g.Target, new SgTableValue(pfn, length));
    }

    // ---- kmalloc and the page allocator ----

    private static IEnumerable<CallEntry> MemoryCalls()
    {
        yield return Entry("kmalloc", new CallSignature(ResultKind.KernelPointer, ParamKind.Size, ParamKind.Gfp),
            c =>
            {
                c.Arity(2);
                return new KmallocStmt(c.Span, c.Text, c.Target(), c.Expr(0), c.Gfp(1));
            },
            k => [k.Size], Kmalloc_, Fp(P.Variables, P.Slab | P.PageAllocator | P.Variables), CallGeneration.By("a streaming buffer (and an sg table's scatterlist)"));
        yield return Entry("kfree", new CallSignature(ResultKind.None, ParamKind.KernelPointer),
            c =>
            {
                c.Arity(1);
                c.NoTarget();
                return new KfreeStmt(c.Span, c.Text, c.Expr(0));
            },
            k => [k.Pointer], Kfree, Fp(P.Variables, P.Slab | P.PageAllocator), CallGeneration.By("the free of a kmalloc buffer"));
        yield return Entry("alloc_pages", new CallSignature(ResultKind.Page, ParamKind.Gfp, ParamKind.Order),
            c =>
            {
                c.Arity(2);
                return new AllocPagesStmt(c.Span, c.Text, c.Target(), c.Gfp(0), c.Order(1));
            },
            _ => [], AllocPages, Fp(P.None, P.PageAllocator | P.Variables), CallGeneration.Not("the generator's buffers come from kmalloc and dma_alloc_*"));
        yield return Entry("__free_pages", new CallSignature(ResultKind.None, ParamKind.Page, ParamKind.Order),
            c =>
            {
                c.Arity(2);
                c.NoTarget();
                return new FreePagesStmt(c.Span, c.Text, c.Expr(0), c.Order(1));
            },
            f => [f.Page], FreePages, Fp(P.Variables, P.PageAllocator), CallGeneration.Not("the generator does not use alloc_pages"));
    }

    private static StepOutcome Kmalloc_(StepContext c, KmallocStmt k)
    {
        var size = c.Number(k.Size);
        if (size == 0)
        {
            throw c.Bad("kmalloc(0) returns ZERO_SIZE_PTR, which cannot be accessed; ask for at least one byte");
        }

        // Above KMALLOC_MAX_SIZE (4 MiB here) or with memory exhausted, kmalloc returns NULL (va 0).
        var kernel = Kmalloc.Alloc(c.S.Dma.Kernel, size, k.Gfp, c.Ops, out var va);
        return c.Assign(k.Target, new KernelPointer(va, size), c.S.Dma with { Kernel = kernel });
    }

    private static StepOutcome Kfree(StepContext c, KfreeStmt k)
    {
        var p = c.As<KernelPointer>(k.Pointer, "kfree takes a kmalloc pointer");
        if (p.Va == 0)
        {
            return c.S; // kfree(NULL) does nothing
        }

        var dma = c.S.Dma;
        return c.S.With(dma: dma with { Kernel = Kmalloc.Free(dma.Kernel, p.Va, p.Bytes, c.Ops, c.Findings) });
    }

    private static StepOutcome AllocPages(StepContext c, AllocPagesStmt a)
    {
        var dma = c.S.Dma;
        if (dma.Kernel.TryAllocPages(a.Gfp, a.Order, "alloc_pages", c.Ops, out var pfn) is not { } kernel)
        {
            return c.Assign(a.Target, new NumberValue(0)); // NULL
        }

        return c.Assign(a.Target, new PageRef(pfn, a.Order), dma with { Kernel = kernel });
    }

    private static StepOutcome FreePages(StepContext c, FreePagesStmt f)
    {
        var page = c.As<PageRef>(f.Page, "__free_pages takes a page from alloc_pages");
        var dma = c.S.Dma;
        return c.S.With(dma: dma with { Kernel = dma.Kernel.FreePages(page.Pfn, f.Order, null, "__free_pages", c.Ops, c.Findings) });
    }

    // ---- streaming: dma_map_single/page, dma_unmap_*, dma_sync_single_*, dma_mapping_error ----

    private static Footprint MapFootprint => Fp(P.PageAllocator | P.Slab | P.Stacks | P.PageTables | P.CoherentBuffers | P.AtomicPool | P.Variables,
        P.StreamingMappings | P.Swiotlb | P.DebugEntries | P.Variables | P.Iommu);

    private static Footprint UnmapFootprint => Fp(P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.StreamingMappings | P.Swiotlb | P.DebugEntries | P.Iommu);

    private static Footprint SyncForCpuFootprint => Fp(P.StreamingMappings | P.Swiotlb | P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables | P.Iommu, P.DebugEntries);

    private static Footprint SyncForDeviceFootprint => Fp(P.Swiotlb | P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables | P.Iommu, P.StreamingMappings | P.DebugEntries);

    private static IEnumerable<CallEntry> StreamingCalls()
    {
        const string map = "a kmalloc buffer mapped by its owner thread";
        yield return Entry("dma_map_single", new CallSignature(ResultKind.Handle, ParamKind.Device, ParamKind.KernelPointer, ParamKind.Size, ParamKind.Direction),
            c =>
            {
                c.Arity(4);
                return new MapStmt(c.Span, c.Text, c.Target(), c.Function, c.Device(0), c.Expr(1), null, c.Expr(2), c.Direction(3));
            },
            MapInputs, Map, MapFootprint, CallGeneration.By(map));
        yield return Entry("dma_map_page", new CallSignature(ResultKind.Handle, ParamKind.Device, ParamKind.Page, ParamKind.Offset, ParamKind.Size, ParamKind.Direction),
            c =>
            {
                c.Arity(5);
                return new MapStmt(c.Span, c.Text, c.Target(), c.Function, c.Device(0), c.Expr(1), c.Expr(2), c.Expr(3), c.Direction(4));
            },
            MapInputs, Map, MapFootprint, CallGeneration.Not("the generator does not use alloc_pages"));
        yield return Entry("dma_map_single_attrs", new CallSignature(ResultKind.Handle, ParamKind.Device, ParamKind.KernelPointer, ParamKind.Size, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(5);
                return new MapStmt(c.Span, c.Text, c.Target(), c.Function, c.Device(0), c.Expr(1), null, c.Expr(2), c.Direction(3), c.MapAttrs(4));
            },
            MapInputs, Map, MapFootprint, CallGeneration.Not("the generator maps without attributes"));
        yield return Entry("dma_map_page_attrs", new CallSignature(ResultKind.Handle, ParamKind.Device, ParamKind.Page, ParamKind.Offset, ParamKind.Size, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(6);
                return new MapStmt(c.Span, c.Text, c.Target(), c.Function, c.Device(0), c.Expr(1), c.Expr(2), c.Expr(3), c.Direction(4), c.MapAttrs(5));
            },
            MapInputs, Map, MapFootprint, CallGeneration.Not("the generator does not use alloc_pages"));
        yield return SyncEntry("dma_unmap_single", SyncKind.Unmap, UnmapFootprint, CallGeneration.By("the owner's unmap of a dma_map_single handle"));
        yield return SyncEntry("dma_unmap_page", SyncKind.Unmap, UnmapFootprint, CallGeneration.Not("the generator does not use dma_map_page"));
        foreach (var name in new[] { "dma_unmap_single_attrs", "dma_unmap_page_attrs" })
        {
            yield return Entry(name, new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Handle, ParamKind.Size, ParamKind.Direction, ParamKind.Attrs),
                c =>
                {
                    c.Arity(5);
                    c.NoTarget();
                    return new SyncStmt(c.Span, c.Text, c.Function, SyncKind.Unmap, c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3), c.MapAttrs(4));
                },
                SyncInputs, Sync, UnmapFootprint, CallGeneration.Not("the generator unmaps without attributes"));
        }

        yield return SyncEntry("dma_sync_single_for_cpu", SyncKind.ForCpu, SyncForCpuFootprint, CallGeneration.By("a thread's sync of a handle before it reads the buffer"));
        yield return SyncEntry("dma_sync_single_for_device", SyncKind.ForDevice, SyncForDeviceFootprint, CallGeneration.By("a thread's sync of a handle back to the device"));
        yield return Entry("dma_mapping_error", new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Handle),
            c =>
            {
                c.Arity(2);
                c.NoTarget();
                return new MappingErrorStmt(c.Span, c.Text, c.Device(0), c.Expr(1));
            },
            e => [e.Handle], MappingError, Fp(P.Variables, P.DebugEntries), CallGeneration.By("the check after a dma_map_single"));
    }

    private static CallEntry SyncEntry(string name, SyncKind kind, Footprint footprint, CallGeneration generation) =>
        Entry(name, new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Handle, ParamKind.Size, ParamKind.Direction),
            c =>
            {
                c.Arity(4);
                c.NoTarget();
                return new SyncStmt(c.Span, c.Text, c.Function, kind, c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3));
            },
            SyncInputs, Sync, footprint, generation);

    private static IEnumerable<ValueExpr> MapInputs(MapStmt m) => m.Offset is null ? [m.Address, m.Size] : [m.Address, m.Offset, m.Size];

    private static IEnumerable<ValueExpr> SyncInputs(SyncStmt y) => [y.Handle, y.Size];

    private static StepOutcome Map(StepContext c, MapStmt m)
    {
        var size = c.Number(m.Size);
        var s = c.S;
        DmaState dma;
        Debug.DebugState debug;
        ulong handle;
        if (m.Offset is null)
        {
            var ptr = c.Number(m.Address);
            (dma, debug) = c.Dma.MapSingle(s.Dma, s.Debug, m.Device, ptr, size, m.Direction, m.Attrs, m.Function, c.Line, c.CurrentStack, c.Ops, c.Findings, out handle);
        }
        else
        {
            var page = c.As<PageRef>(m.Address, "dma_map_page takes a page from alloc_pages");
            var pageOffset = c.Number(m.Offset);
            (dma, debug) = c.Dma.MapPage(s.Dma, s.Debug, m.Device, page.Pfn, pageOffset, size, m.Direction, m.Attrs, m.Function, c.Line, c.CurrentStack, c.Ops, c.Findings, out handle);
        }

        return c.Assign(m.Target, new DmaHandle(handle, size), dma, debug);
    }

    private static StepOutcome Sync(StepContext c, SyncStmt y)
    {
        var handle = c.Number(y.Handle);
        var size = c.Number(y.Size);
        return SyncSingle(c, y.Kind, y.Device, handle, size, y.Direction, y.Attrs, y.Function);
    }

    /// <summary>dma_unmap_page_attrs, dma_sync_single_for_cpu or dma_sync_single_for_device of [handle, handle+size).</summary>
    private static ControlState SyncSingle(StepContext c, SyncKind kind, DmaDevice device, ulong handle, ulong size, DmaDirection dir, DmaAttrs attrs, string function)
    {
        var s = c.S;
        var (dma, debug) = kind switch
        {
            SyncKind.Unmap => c.Dma.UnmapPage(s.Dma, s.Debug, device, handle, size, dir, attrs, function, c.Ops, c.Findings),
            SyncKind.ForCpu => (s.Dma, c.Dma.SyncSingleForCpu(s.Dma, s.Debug, device, handle, size, dir, function, c.Ops, c.Findings)),
            _ => c.Dma.SyncSingleForDevice(s.Dma, s.Debug, device, handle, size, dir, function, c.Ops, c.Findings),
        };
        return s.With(dma: dma, debug: debug);
    }

    private static StepOutcome MappingError(StepContext c, MappingErrorStmt e)
    {
        var handle = c.Number(e.Handle);
        var failed = c.Dma.MappingError(c.S.Debug, e.Device, handle, out var debug);
        var checkedState = c.S.With(debug: debug);
        return failed
            ? new StepOutcome(checkedState, "dma_mapping_error() returned true: the driver gives up")
            : checkedState;
    }

    // ---- dma_map_resource, dma_unmap_resource ----

    private static IEnumerable<CallEntry> ResourceCalls()
    {
        yield return Entry("dma_map_resource", new CallSignature(ResultKind.Handle, ParamKind.Device, ParamKind.PhysAddress, ParamKind.Size, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(5);
                return new ResourceStmt(c.Span, c.Text, false, c.Target(), c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3), c.Attrs(4));
            },
            r => [r.Address, r.Size], Resource, Fp(P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Swiotlb | P.Variables, P.DebugEntries | P.Variables),
            CallGeneration.Not("MMIO resources are not generated"));
        yield return Entry("dma_unmap_resource", new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Handle, ParamKind.Size, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(5);
                c.NoTarget();
                return new ResourceStmt(c.Span, c.Text, true, null, c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3), c.Attrs(4));
            },
            r => [r.Address, r.Size], Resource, Fp(P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.DebugEntries),
            CallGeneration.Not("MMIO resources are not generated"));
    }

    private static StepOutcome Resource(StepContext c, ResourceStmt r)
    {
        var s = c.S;
        var size = c.Number(r.Size);
        if (size == 0)
        {
            throw c.Bad($"{(r.IsUnmap ? "dma_unmap_resource" : "dma_map_resource")} of 0 bytes");
        }

        if (r.IsUnmap)
        {
            var handle = c.Number(r.Address);
            return s.With(debug: c.Dma.UnmapResource(s.Dma, s.Debug, r.Device, handle, size, r.Direction, c.Findings));
        }

        if (c.IsVirtualAddress(r.Address))
        {
            throw new KernelBugException("dma_map_resource", $"'{r.Address.Text}' is a kernel virtual address; dma_map_resource takes a physical address (phys_addr_t)");
        }

        var phys = c.Number(r.Address);
        var (dma, debug) = c.Dma.MapResource(s.Dma, s.Debug, r.Device, phys, size, r.Direction, c.Line, c.Findings, out var h);
        return c.Assign(r.Target!, new DmaHandle(h, size), dma, debug);
    }
}
