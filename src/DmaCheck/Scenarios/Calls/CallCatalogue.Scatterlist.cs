using DmaCheck.Dma;
using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

public static partial class CallCatalogue
{
    // ---- sg tables (lib/scatterlist.c) and the dma_*_sg calls over them ----

    private static Footprint MapSgFootprint => Fp(P.PageAllocator | P.Slab | P.Stacks | P.PageTables | P.CoherentBuffers | P.AtomicPool | P.Variables,
        P.SgTables | P.StreamingMappings | P.Swiotlb | P.DebugEntries | P.Variables);

    private static Footprint UnmapSgFootprint => Fp(P.SgTables | P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.StreamingMappings | P.Swiotlb | P.DebugEntries);

    private static Footprint SyncSgForCpuFootprint => Fp(P.SgTables | P.StreamingMappings | P.Swiotlb | P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.DebugEntries);

    private static Footprint SyncSgForDeviceFootprint => Fp(P.SgTables | P.Swiotlb | P.PageAllocator | P.CoherentBuffers | P.AtomicPool | P.Variables, P.StreamingMappings | P.DebugEntries);

    private static IEnumerable<CallEntry> ScatterlistCalls()
    {
        yield return Entry("sg_alloc_table", new CallSignature([[ParamKind.Count], [ParamKind.Count, ParamKind.Gfp]], ResultKind.SgList),
            c =>
            {
                if (c.ArgCount != 1)
                {
                    c.Arity(2);
                }

                return new SgAllocStmt(c.Span, c.Text, c.Target(), c.Expr(0), c.ArgCount == 2 ? c.Gfp(1) : Gfp.GFP_KERNEL);
            },
            g => [g.Nents], SgAlloc, Fp(P.Variables, P.SgTables | P.Slab | P.PageAllocator | P.Variables), CallGeneration.By("a one-entry scatterlist for a third of the streaming maps"));
        yield return Entry("sg_set_buf", new CallSignature(ResultKind.None, ParamKind.SgList, ParamKind.Count, ParamKind.KernelPointer, ParamKind.Size),
            c =>
            {
                c.Arity(4);
                c.NoTarget();
                return new SgSetStmt(c.Span, c.Text, c.Function, c.Expr(0), c.Expr(1), c.Expr(2), c.Expr(3), null);
            },
            SgSetInputs, SgSet, Fp(P.PageTables | P.Variables, P.SgTables), CallGeneration.By("the scatterlist's one entry"));
        yield return Entry("sg_set_page", new CallSignature(ResultKind.None, ParamKind.SgList, ParamKind.Count, ParamKind.Page, ParamKind.Size, ParamKind.Offset),
            c =>
            {
                c.Arity(5);
                c.NoTarget();
                return new SgSetStmt(c.Span, c.Text, c.Function, c.Expr(0), c.Expr(1), c.Expr(2), c.Expr(3), c.Expr(4));
            },
            SgSetInputs, SgSet, Fp(P.PageTables | P.Variables, P.SgTables), CallGeneration.Not("the generator fills entries with sg_set_buf"));
        yield return Entry("sg_free_table", new CallSignature(ResultKind.None, ParamKind.SgList),
            c =>
            {
                c.Arity(1);
                c.NoTarget();
                return new SgFreeStmt(c.Span, c.Text, c.Expr(0));
            },
            g => [g.Table], SgFree, Fp(P.Variables, P.SgTables | P.Slab | P.PageAllocator), CallGeneration.Not("the generator leaves its scatterlists allocated"));
        foreach (var name in new[] { "sg_dma_address", "sg_dma_len" })
        {
            yield return Entry(name, new CallSignature(name == "sg_dma_address" ? ResultKind.Handle : ResultKind.Number, ParamKind.SgList, ParamKind.Count),
                c =>
                {
                    c.Arity(2);
                    return new SgFieldStmt(c.Span, c.Text, c.Target(), c.Function, c.Expr(0), c.Expr(1));
                },
                g => [g.Table, g.Index], SgField, Fp(P.SgTables | P.Variables, P.Variables),
                name == "sg_dma_address" ? CallGeneration.By("the handle of a mapped scatterlist entry") : CallGeneration.Not("the generator uses the length it mapped"));
        }

        yield return Entry("dma_map_sg", new CallSignature(ResultKind.OptionalNumber, ParamKind.Device, ParamKind.SgList, ParamKind.Count, ParamKind.Direction),
            c =>
            {
                c.Arity(4);
                return new SgDmaStmt(c.Span, c.Text, c.Function, SgDmaKind.Map, c.OptionalTarget(), c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3));
            },
            SgDmaInputs, SgDma, MapSgFootprint, CallGeneration.By("a one-entry scatterlist mapped by its owner"));
        yield return Entry("dma_map_sg_attrs", new CallSignature(ResultKind.OptionalNumber, ParamKind.Device, ParamKind.SgList, ParamKind.Count, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(5);
                return new SgDmaStmt(c.Span, c.Text, c.Function, SgDmaKind.Map, c.OptionalTarget(), c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3), c.MapAttrs(4));
            },
            SgDmaInputs, SgDma, MapSgFootprint, CallGeneration.Not("the generator maps without attributes"));
        yield return Entry("dma_map_sgtable", new CallSignature(ResultKind.OptionalNumber, ParamKind.Device, ParamKind.SgList, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                return new SgDmaStmt(c.Span, c.Text, c.Function, SgDmaKind.Map, c.OptionalTarget(), c.Device(0), c.Expr(1), null, c.Direction(2), c.MapAttrs(3));
            },
            SgDmaInputs, SgDma, MapSgFootprint, CallGeneration.Not("the generator uses dma_map_sg"));
        yield return SgListEntry("dma_unmap_sg", SgDmaKind.Unmap, UnmapSgFootprint, CallGeneration.By("the owner's unmap of its scatterlist"));
        yield return Entry("dma_unmap_sg_attrs", new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.SgList, ParamKind.Count, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(5);
                c.NoTarget();
                return new SgDmaStmt(c.Span, c.Text, c.Function, SgDmaKind.Unmap, null, c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3), c.MapAttrs(4));
            },
            SgDmaInputs, SgDma, UnmapSgFootprint, CallGeneration.Not("the generator unmaps without attributes"));
        yield return Entry("dma_unmap_sgtable", new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.SgList, ParamKind.Direction, ParamKind.Attrs),
            c =>
            {
                c.Arity(4);
                c.NoTarget();
                return new SgDmaStmt(c.Span, c.Text, c.Function, SgDmaKind.Unmap, null, c.Device(0), c.Expr(1), null, c.Direction(2), c.MapAttrs(3));
            },
            SgDmaInputs, SgDma, UnmapSgFootprint, CallGeneration.Not("the generator uses dma_unmap_sg"));
        yield return SgListEntry("dma_sync_sg_for_cpu", SgDmaKind.ForCpu, SyncSgForCpuFootprint, CallGeneration.By("the owner's sync of its scatterlist before it reads"));
        yield return SgListEntry("dma_sync_sg_for_device", SgDmaKind.ForDevice, SyncSgForDeviceFootprint, CallGeneration.By("the owner's sync of its scatterlist back to the device"));
        foreach (var (name, kind, footprint) in new[] { ("dma_sync_sgtable_for_cpu", SgDmaKind.ForCpu, SyncSgForCpuFootprint), ("dma_sync_sgtable_for_device", SgDmaKind.ForDevice, SyncSgForDeviceFootprint) })
        {
            yield return Entry(name, new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.SgList, ParamKind.Direction),
                c =>
                {
                    c.Arity(3);
                    c.NoTarget();
                    return new SgDmaStmt(c.Span, c.Text, c.Function, kind, null, c.Device(0), c.Expr(1), null, c.Direction(2));
                },
                SgDmaInputs, SgDma, footprint, CallGeneration.Not("the generator uses dma_sync_sg_*"));
        }
    }

    /// <summary>dma_unmap_sg, dma_sync_sg_for_cpu, dma_sync_sg_for_device: (dev, sgt, nents, dir).</summary>
    private static CallEntry SgListEntry(string name, SgDmaKind kind, Footprint footprint, CallGeneration generation) =>
        Entry(name, new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.SgList, ParamKind.Count, ParamKind.Direction),
            c =>
            {
                c.Arity(4);
                c.NoTarget();
                return new SgDmaStmt(c.Span, c.Text, c.Function, kind, null, c.Device(0), c.Expr(1), c.Expr(2), c.Direction(3));
            },
            SgDmaInputs, SgDma, footprint, generation);

    private static IEnumerable<ValueExpr> SgSetInputs(SgSetStmt g) => g.Offset is null ? [g.Table, g.Index, g.Address, g.Length] : [g.Table, g.Index, g.Address, g.Length, g.Offset];

    private static IEnumerable<ValueExpr> SgDmaInputs(SgDmaStmt g) => g.Nents is null ? [g.Table] : [g.Table, g.Nents];

    private static StepOutcome SgAlloc(StepContext c, SgAllocStmt a)
    {
        var n = c.Index(a.Nents, null, "sg_alloc_table of");
        if (n == 0)
        {
            throw c.Bad("sg_alloc_table(0) returns -EINVAL: a table has at least one entry");
        }

        var dma = c.S.Dma;
        if (Scatterlist.SgAllocTable(dma.Kernel, n, a.Gfp, c.Ops, out var table) is not { } k)
        {
            return new StepOutcome(c.S, "sg_alloc_table returned -ENOMEM (kmalloc of the scatterlist failed): the driver gives up");
        }

        return c.Assign(a.Target, new SgListValue(table!.Id), dma with { Kernel = k });
    }

    private static StepOutcome SgSet(StepContext c, SgSetStmt g)
    {
        var table = c.Table(g.Table, g.Function);
        if (table.Freed)
        {
            throw new KernelBugException(g.Function, "the sg table was freed by sg_free_table (use after free)");
        }

        var i = c.Index(g.Index, table, "entry");
        var length = c.Number(g.Length);
        if (length == 0 || length > uint.MaxValue)
        {
            throw c.Bad($"sg->length is an unsigned int of at least 1 byte, not {length}");
        }

        var dma = c.S.Dma;
        KernelState k;
        if (g.Offset is null)
        {
            k = Scatterlist.SgSetBuf(dma.Kernel, table, i, c.Number(g.Address), length, c.Ops);
        }
        else
        {
            var page = c.As<PageRef>(g.Address, "sg_set_page takes a page from alloc_pages");
            k = Scatterlist.SgSetPage(dma.Kernel, table, i, page.Pfn, length, c.Number(g.Offset), "sg_set_page", c.Ops);
        }

        return c.S.With(dma: dma with { Kernel = k });
    }

    private static StepOutcome SgFree(StepContext c, SgFreeStmt f)
    {
        var table = c.Table(f.Table, "sg_free_table");
        if (table.Freed)
        {
            throw new KernelBugException("sg_free_table", "the sg table is freed twice: kfree of its scatterlist again (double free)");
        }

        var dma = c.S.Dma;
        return c.S.With(dma: dma with { Kernel = Scatterlist.SgFreeTable(dma.Kernel, table, c.Ops, c.Findings) });
    }

    private static StepOutcome SgField(StepContext c, SgFieldStmt g)
    {
        var table = c.Table(g.Table, g.Function);
        if (table.Freed)
        {
            throw new KernelBugException(g.Function, "the sg table was freed by sg_free_table: reading its entry reads freed memory (use after free)");
        }

        var e = table.Entries[c.Index(g.Index, table, "entry")];
        Value v = g.Function == "sg_dma_address" ? new DmaHandle(e.DmaAddress, e.DmaLength) : new NumberValue(e.DmaLength);
        return c.Assign(g.Target, v);
    }

    private static StepOutcome SgDma(StepContext c, SgDmaStmt m)
    {
        var s = c.S;
        var table = c.Table(m.Table, m.Function);
        var nents = m.Nents is null ? table.OrigNents : c.Index(m.Nents, null, "nents");
        if (nents == 0)
        {
            throw c.Bad($"{m.Function} of 0 entries: there is nothing to map (the kernel WARNs and fails)");
        }

        // for_each_sg over a freed table or past its end marker: before dma-debug walks it too.
        DmaApi.CheckSgList(table, nents, m.Function);
        DmaState dma;
        Debug.DebugState debug;
        switch (m.Kind)
        {
            case SgDmaKind.Map:
                {
                    (dma, debug) = c.Dma.MapSg(s.Dma, s.Debug, m.Device, table, nents, m.Direction, m.Attrs, m.Nents is null, m.Function, c.Line, c.CurrentStack, c.Ops, c.Findings, out var mapped);
                    if (mapped == 0)
                    {
                        var error = m.Nents is null ? "an error (-EIO since v5.16, -EINVAL before)" : "0";
                        return new StepOutcome(s.With(dma: dma), $"{m.Function} returned {error}: the driver gives up");
                    }

                    var vars = m.Target is null ? s.Vars : s.Vars.Add(m.Target, new NumberValue(m.Nents is null ? 0UL : (ulong)mapped));
                    return s.With(dma: dma, vars: vars, debug: debug);
                }

            case SgDmaKind.Unmap:
                (dma, debug) = c.Dma.UnmapSg(s.Dma, s.Debug, m.Device, table, nents, m.Direction, m.Attrs, m.Function, c.Ops, c.Findings);
                break;
            case SgDmaKind.ForCpu:
                (dma, debug) = (s.Dma, c.Dma.SyncSgForCpu(s.Dma, s.Debug, m.Device, table, nents, m.Direction, m.Function, c.Ops, c.Findings));
                break;
            default:
                (dma, debug) = c.Dma.SyncSgForDevice(s.Dma, s.Debug, m.Device, table, nents, m.Direction, m.Function, c.Ops, c.Findings);
                break;
        }

        return s.With(dma: dma, debug: debug);
    }
}
