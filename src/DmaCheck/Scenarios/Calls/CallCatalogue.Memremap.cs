using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

/// <summary><c>pa = of_reserved_mem_lookup(NODE)</c>: the base of a declared reserved-memory region (rmem->base).</summary>
public sealed record ReservedLookupStmt(SourceSpan Span, string Text, string Target, string Node) : Statement(Span, Text);

/// <summary><c>p = memremap(phys, size, FLAGS)</c>.</summary>
public sealed record MemremapStmt(SourceSpan Span, string Text, string Target, ValueExpr Phys, ValueExpr Size, MemremapFlags Flags) : Statement(Span, Text);

/// <summary><c>memunmap(p)</c>.</summary>
public sealed record MemunmapStmt(SourceSpan Span, string Text, ValueExpr Pointer) : Statement(Span, Text);

public static partial class CallCatalogue
{
    // ---- drivers/of/of_reserved_mem.c and kernel/iomem.c: carve-outs and their mappings ----

    private static IEnumerable<CallEntry> MemremapCalls()
    {
        yield return Entry("of_reserved_mem_lookup", new CallSignature(ResultKind.Number, ParamKind.Number),
            c =>
            {
                c.Arity(1);
                return new ReservedLookupStmt(c.Span, c.Text, c.Target(), c.ReservedNode(0));
            },
            _ => [], ReservedLookup, Fp(P.Variables, P.Variables),
            CallGeneration.Not("the generator's scenarios declare no reserved-memory nodes"));
        yield return Entry("memremap", new CallSignature(ResultKind.KernelPointer, ParamKind.PhysAddress, ParamKind.Size, ParamKind.Number),
            c =>
            {
                c.Arity(3);
                return new MemremapStmt(c.Span, c.Text, c.Target(), c.Expr(0), c.Expr(1), c.Flags<MemremapFlags>(2));
            },
            m => [m.Phys, m.Size], MemremapCall, Fp(P.Variables | P.PageAllocator, P.PageTables | P.Variables),
            CallGeneration.Not("the generator's scenarios declare no reserved-memory nodes"));
        yield return Entry("memunmap", new CallSignature(ResultKind.None, ParamKind.KernelPointer),
            c =>
            {
                c.Arity(1);
                c.NoTarget();
                return new MemunmapStmt(c.Span, c.Text, c.Expr(0));
            },
            m => [m.Pointer], MemunmapCall, Fp(P.Variables, P.PageTables),
            CallGeneration.Not("the generator's scenarios declare no reserved-memory nodes"));
    }

    /// <summary>of_reserved_mem_lookup(np)->base (drivers/of/of_reserved_mem.c, v6.4), as drivers read their carve-out's address.</summary>
    private static StepOutcome ReservedLookup(StepContext c, ReservedLookupStmt r) =>
        c.Assign(r.Target, new NumberValue(c.S.Dma.Kernel.ReservedMemory[r.Node].Pa));

    /// <summary>memremap (kernel/iomem.c, v6.4; <see cref="Memremap.Map"/>). A NULL return stops the agent: the driver checks it.</summary>
    private static StepOutcome MemremapCall(StepContext c, MemremapStmt m)
    {
        if (c.IsVirtualAddress(m.Phys))
        {
            throw c.Bad($"memremap takes a physical address: '{m.Phys.Text}' is a kernel virtual address");
        }

        var pa = c.Number(m.Phys);
        var size = c.Number(m.Size);
        if (size == 0 || size > 1UL << 30 || pa > ulong.MaxValue - size)
        {
            throw c.Bad($"memremap of {size} bytes at PA 0x{pa:x}: this model takes 1 byte to 1 GiB");
        }

        var s = c.S;
        var kernel = Memremap.Map(s.Dma.Kernel, pa, size, m.Flags, $"{c.Program.Name}: {m.Text}", c.Ops, out var va, out var warning);
        if (warning is not null)
        {
            return new StepOutcome(s, $"{warning}; the driver gives up");
        }

        return c.Assign(m.Target, new KernelPointer(va, size), s.Dma with { Kernel = kernel });
    }

    /// <summary>memunmap (kernel/iomem.c, v6.4): iounmap of an ioremap address, nothing for a linear-map one.</summary>
    private static StepOutcome MemunmapCall(StepContext c, MemunmapStmt m)
    {
        var p = c.As<KernelPointer>(m.Pointer, "memunmap takes what memremap returned");
        var s = c.S;
        return s.With(dma: s.Dma with { Kernel = Memremap.Unmap(s.Dma.Kernel, p.Va, $"{c.Program.Name}: {m.Text}", c.Ops) });
    }
}
