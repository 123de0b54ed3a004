using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

/// <summary><c>p = vmalloc(size)</c>.</summary>
public sealed record VmallocStmt(SourceSpan Span, string Text, string Target, ValueExpr Size) : Statement(Span, Text);

/// <summary><c>p = vmap(page, count)</c> or <c>p = vm_map_ram(page, count)</c>: <c>count</c> pages from <c>page</c>.</summary>
public sealed record VmapStmt(SourceSpan Span, string Text, string Function, string Target, ValueExpr Page, ValueExpr Count) : Statement(Span, Text);

/// <summary><c>vfree(p)</c>, <c>vunmap(p)</c> or <c>vm_unmap_ram(p, count)</c>.</summary>
public sealed record VunmapStmt(SourceSpan Span, string Text, string Function, ValueExpr Pointer, ValueExpr? Count) : Statement(Span, Text);

/// <summary><c>flush_kernel_vmap_range(p, size)</c> or <c>invalidate_kernel_vmap_range(p, size)</c>.</summary>
public sealed record VmapRangeStmt(SourceSpan Span, string Text, string Function, ValueExpr Pointer, ValueExpr Size) : Statement(Span, Text);

/// <summary><c>flush_dcache_page(page)</c>.</summary>
public sealed record FlushDcachePageStmt(SourceSpan Span, string Text, ValueExpr Page) : Statement(Span, Text);

public static partial class CallCatalogue
{
    // ---- mm/vmalloc.c and the cache maintenance of aliasing data caches (Kernel/Vmalloc.cs) ----

    private static IEnumerable<CallEntry> VmallocCalls()
    {
        yield return Entry("vmalloc", new CallSignature(ResultKind.KernelPointer, ParamKind.Size),
            c =>
            {
                c.Arity(1);
                return new VmallocStmt(c.Span, c.Text, c.Target(), c.Expr(0));
            },
            v => [v.Size], VmallocCall, Fp(P.Variables, P.PageAllocator | P.PageTables | P.Variables),
            CallGeneration.Not("the generator does not use vmalloc addresses"));
        foreach (var name in new[] { "vmap", "vm_map_ram" })
        {
            yield return Entry(name, new CallSignature(ResultKind.KernelPointer, ParamKind.Page, ParamKind.Count),
                c =>
                {
                    c.Arity(2);
                    return new VmapStmt(c.Span, c.Text, c.Function, c.Target(), c.Expr(0), c.Expr(1));
                },
                v => [v.Page, v.Count], VmapCall, Fp(P.Variables | P.PageAllocator, P.PageTables | P.Variables),
                CallGeneration.Not("the generator does not use vmalloc addresses"));
        }

        foreach (var name in new[] { "vfree", "vunmap" })
        {
            yield return Entry(name, new CallSignature(ResultKind.None, ParamKind.KernelPointer),
                c =>
                {
                    c.Arity(1);
                    c.NoTarget();
                    return new VunmapStmt(c.Span, c.Text, c.Function, c.Expr(0), null);
                },
                v => [v.Pointer], VunmapCall, Fp(P.Variables, P.PageTables | P.PageAllocator),
                CallGeneration.Not("the generator does not use vmalloc addresses"));
        }

        yield return Entry("vm_unmap_ram", new CallSignature(ResultKind.None, ParamKind.KernelPointer, ParamKind.Count),
            c =>
            {
                c.Arity(2);
                c.NoTarget();
                return new VunmapStmt(c.Span, c.Text, c.Function, c.Expr(0), c.Expr(1));
            },
            v => [v.Pointer, v.Count!], VunmapCall, Fp(P.Variables, P.PageTables),
            CallGeneration.Not("the generator does not use vmalloc addresses"));

        foreach (var name in new[] { "flush_kernel_vmap_range", "invalidate_kernel_vmap_range" })
        {
            yield return Entry(name, new CallSignature(ResultKind.None, ParamKind.KernelPointer, ParamKind.Size),
                c =>
                {
                    c.Arity(2);
                    c.NoTarget();
                    return new VmapRangeStmt(c.Span, c.Text, c.Function, c.Expr(0), c.Expr(1));
                },
                v => [v.Pointer, v.Size], VmapRange, Fp(P.PageTables | P.Variables, P.None),
                CallGeneration.Not("the generator does not use vmalloc addresses"));
        }

        yield return Entry("flush_dcache_page", new CallSignature(ResultKind.None, ParamKind.Page),
            c =>
            {
                c.Arity(1);
                c.NoTarget();
                return new FlushDcachePageStmt(c.Span, c.Text, c.Expr(0));
            },
            f => [f.Page], FlushDcachePageCall, Fp(P.PageTables | P.Variables, P.None),
            CallGeneration.Not("the generator's buffers are not written through other aliases"));
    }

    /// <summary>vmalloc (mm/vmalloc.c, v5.x; <see cref="Vmalloc.Alloc"/>). A NULL return is assigned; the driver checks it.</summary>
    private static StepOutcome VmallocCall(StepContext c, VmallocStmt v)
    {
        var size = c.Number(v.Size);
        if (size == 0 || size > 1UL << 30)
        {
            throw c.Bad($"vmalloc of {size} bytes: this model takes 1 byte to 1 GiB (vmalloc(0) returns NULL)");
        }

        var s = c.S;
        if (Vmalloc.Alloc(s.Dma.Kernel, size, $"{c.Program.Name}: {v.Text}", c.Ops, out var va) is not { } kernel)
        {
            return c.Assign(v.Target, new NumberValue(0));
        }

        return c.Assign(v.Target, new KernelPointer(va, size), s.Dma with { Kernel = kernel });
    }

    /// <summary>vmap / vm_map_ram (mm/vmalloc.c, v5.x; <see cref="Vmalloc.Map"/>) of pages of one alloc_pages block.</summary>
    private static StepOutcome VmapCall(StepContext c, VmapStmt v)
    {
        var page = c.As<PageRef>(v.Page, $"{v.Function} takes a page from alloc_pages (or vmalloc_to_page)");
        var count = c.Number(v.Count);
        if (count == 0 || count > 1UL << page.Order)
        {
            throw c.Bad($"{v.Function} of {count} pages from '{v.Page.Text}', an order-{page.Order} block of {1UL << page.Order} page(s): this model maps 1 to {1UL << page.Order} pages of the block ({v.Function} of 0 pages returns NULL)");
        }

        var s = c.S;
        var kernel = Vmalloc.Map(s.Dma.Kernel, page.Pfn, count, v.Function, $"{c.Program.Name}: {v.Text}", c.Ops, out var va);
        return c.Assign(v.Target, new KernelPointer(va, count << PlatformLayout.PageShift), s.Dma with { Kernel = kernel });
    }

    /// <summary>vfree, vunmap, vm_unmap_ram (mm/vmalloc.c, v5.x; <see cref="Vmalloc.Unmap"/>): vfree(NULL) does nothing.</summary>
    private static StepOutcome VunmapCall(StepContext c, VunmapStmt v)
    {
        var p = c.As<KernelPointer>(v.Pointer, $"{v.Function} takes what vmalloc, vmap or vm_map_ram returned");
        if (p.Va == 0 && v.Function == "vfree")
        {
            return c.S;
        }

        var size = p.Bytes;
        if (v.Count is { } count && c.Number(count) << PlatformLayout.PageShift != PlatformLayout.PageAlign(size))
        {
            throw c.Bad($"vm_unmap_ram of {c.Number(count)} pages, but '{v.Pointer.Text}' was mapped with {PlatformLayout.PageAlign(size) >> PlatformLayout.PageShift}: the count must be vm_map_ram's (vb_free BUGs otherwise)");
        }

        var s = c.S;
        var kernel = Vmalloc.Unmap(s.Dma.Kernel, p.Va, size, v.Function == "vfree", v.Function, $"{c.Program.Name}: {v.Text}", c.Ops, c.Findings);
        return s.With(dma: s.Dma with { Kernel = kernel });
    }

    /// <summary>flush_kernel_vmap_range / invalidate_kernel_vmap_range (<see cref="Vmalloc.KernelVmapRange"/>).</summary>
    private static StepOutcome VmapRange(StepContext c, VmapRangeStmt v)
    {
        var va = c.Number(v.Pointer);
        var size = c.Number(v.Size);
        if (size > int.MaxValue)
        {
            throw c.Bad($"{v.Function} takes an int size: {size} does not fit");
        }

        Vmalloc.KernelVmapRange(c.S.Dma.Kernel, va, size, v.Function, $"{c.Program.Name}: {v.Text}", c.Ops);
        return c.S;
    }

    /// <summary>flush_dcache_page (<see cref="Vmalloc.FlushDcachePage"/>).</summary>
    private static StepOutcome FlushDcachePageCall(StepContext c, FlushDcachePageStmt f)
    {
        var page = c.As<PageRef>(f.Page, "flush_dcache_page takes a page");
        Vmalloc.FlushDcachePage(c.S.Dma.Kernel, page.Pfn, $"{c.Program.Name}: {f.Text}", c.Ops);
        return c.S;
    }
}
