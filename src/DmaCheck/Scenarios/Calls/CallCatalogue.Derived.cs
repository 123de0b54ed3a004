using DmaCheck.Hardware;
using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

public static partial class CallCatalogue
{
    // ---- values derived from others: sg_page, sg_phys, kmap_local_page, virt_to_phys, stack_buffer, static_const,
    // vmalloc_to_page, offset_in_page (each x = f(arg)) ----

    private static IEnumerable<CallEntry> DerivedCalls(IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            var (param, result, execute, footprint, generation) = Derived(name);
            yield return Entry(name, new CallSignature(result, param),
                c =>
                {
                    c.Arity(1);
                    return new DeriveStmt(c.Span, c.Text, c.Target(), c.Function, c.Expr(0));
                },
                d => [d.Source], execute, footprint, generation);
        }
    }

    private static (ParamKind, ResultKind, Func<StepContext, DeriveStmt, StepOutcome>, Footprint, CallGeneration) Derived(string name)
    {
        var pure = Fp(P.Variables, P.Variables);
        return name switch
        {
            "sg_page" => (ParamKind.SgTable, ResultKind.Page, SgPage, pure, CallGeneration.By("the importer of an exported sg table, before kmap_local_page")),
            "sg_phys" => (ParamKind.SgTable, ResultKind.Number, SgPhys, pure, CallGeneration.By("the importer of an exported sg table that hands its physical address to firmware")),
            "kmap_local_page" => (ParamKind.Page, ResultKind.KernelPointer, KmapLocalPage, Fp(P.PageAllocator | P.Variables, P.PageTables | P.Variables), CallGeneration.By("the importer of an exported sg table")),
            "virt_to_phys" => (ParamKind.KernelPointer, ResultKind.Number, VirtToPhys, pure, CallGeneration.Not("the generator hands firmware sg_phys addresses")),
            "stack_buffer" => (ParamKind.Size, ResultKind.KernelPointer, StackBuffer, Fp(P.Variables, P.Stacks | P.PageAllocator | P.PageTables | P.Variables), CallGeneration.Not("DMA from the stack is in bundled scenarios only")),
            "static_const" => (ParamKind.Size, ResultKind.KernelPointer, StaticConst, pure, CallGeneration.Not("objects in .rodata are in bundled scenarios only")),
            "vmalloc_to_page" => (ParamKind.Number, ResultKind.Page, VmallocToPage, Fp(P.PageTables | P.Variables, P.Variables), CallGeneration.Not("the generator does not use vmalloc addresses")),
            "offset_in_page" => (ParamKind.Number, ResultKind.Number, OffsetInPage, pure, CallGeneration.Not("the generator does not use vmalloc addresses")),
            _ => throw new ArgumentException(name),
        };
    }

    private static StepOutcome SgPage(StepContext c, DeriveStmt d)
    {
        var sgt = c.As<SgTableValue>(d.Source, "sg_page takes an sg table from dma_get_sgtable");
        return c.Assign(d.Target, new PageRef(sgt.Pfn, PlatformLayout.GetOrder(sgt.Length)));
    }

    private static StepOutcome StackBuffer(StepContext c, DeriveStmt d)
    {
        var size = c.Number(d.Source);
        if (size == 0)
        {
            throw c.Bad("stack_buffer(0): a buffer of at least one byte");
        }

        var k = Stacks.Buffer(c.S.Dma.Kernel, c.Program.Name, size, c.Ops, out var va);
        return c.Assign(d.Target, new KernelPointer(va, size), c.S.Dma with { Kernel = k });
    }

    /// <summary>The room each static_const object gets in the model's .rodata.</summary>
    private const ulong StaticConstSlot = 64 * 1024;

    private static StepOutcome StaticConst(StepContext c, DeriveStmt d)
    {
        // A `static const` object of the kernel image (its .rodata): it exists from boot, so its address is
        // fixed; each static_const statement of the scenario has its own 64 KiB slot, in file order.
        var size = c.Number(d.Source);
        if (size == 0 || size > StaticConstSlot)
        {
            throw c.Bad($"static_const({size}): an object of 1 to {StaticConstSlot} bytes");
        }

        var layout = c.Layout;
        if (layout.KernelImageSections is not { } sections)
        {
            throw new NotModelledException(layout.Arch is Arch.Arm64 or Arch.X86_64
                ? $"static_const on {layout.Arch}: the kernel image is mapped outside the linear map there (KIMAGE_VADDR, __START_KERNEL_map), so its objects, virt_to_page of them and their maintenance are not modelled (and check_for_illegal_area, which compares page_address() with the image's addresses, cannot fire)"
                : $"static_const on {layout.Arch}: the kernel image's sections on {layout.Name} are not modelled");
        }

        var slot = (ulong)StaticConstIndex(c.Scenario, d);
        var va = sections.Rodata.Start + (slot * StaticConstSlot);
        if (va + size > sections.Rodata.End)
        {
            throw c.Bad($"more static_const objects than the model's .rodata holds ({(sections.Rodata.End - sections.Rodata.Start) / StaticConstSlot})");
        }

        return c.Assign(d.Target, new KernelPointer(va, size));
    }

    /// <summary>Which static_const statement of the scenario <paramref name="d"/> is, counting programs and statements in file order.</summary>
    private static int StaticConstIndex(Scenario scenario, DeriveStmt d)
    {
        var index = 0;
        foreach (var stmt in scenario.Programs.SelectMany(p => p.Body))
        {
            if (ReferenceEquals(stmt, d))
            {
                return index;
            }

            index += stmt is DeriveStmt { Function: "static_const" } ? 1 : 0;
        }

        throw new InvalidOperationException("a static_const statement outside the scenario's programs");
    }

    private static StepOutcome VmallocToPage(StepContext c, DeriveStmt d)
    {
        var va = c.Number(d.Source);
        var pfn = c.Layout.IsVmallocAddr(va) ? c.S.Dma.Kernel.VmallocToPfn(va) : null;
        return pfn is { } p
            ? c.Assign(d.Target, new PageRef(p, 0))
            : throw new KernelBugException("vmalloc_to_page", $"0x{va:x} is not a mapped vmalloc address: vmalloc_to_page returns NULL, which the driver then uses");
    }

    private static StepOutcome OffsetInPage(StepContext c, DeriveStmt d) =>
        c.Assign(d.Target, new NumberValue(c.Number(d.Source) & (PlatformLayout.PageSize - 1)));

    private static StepOutcome VirtToPhys(StepContext c, DeriveStmt d)
    {
        // virt_to_phys: linear-map arithmetic, meaningful only for a linear-map address.
        var va = c.Number(d.Source);
        if (!c.Layout.IsLinearMapAddr(va))
        {
            throw new KernelBugException("virt_to_phys", $"0x{va:x} is not a linear-map address: virt_to_phys() gives a bogus physical address (CONFIG_DEBUG_VIRTUAL warns)");
        }

        return c.Assign(d.Target, new NumberValue(c.Layout.VirtToPhys(va)));
    }

    private static StepOutcome SgPhys(StepContext c, DeriveStmt d)
    {
        // sg_phys(sg) = page_to_phys(sg_page(sg)) + sg->offset: arithmetic on whatever page the table holds.
        var sgt = c.As<SgTableValue>(d.Source, "sg_phys takes an sg table from dma_get_sgtable");
        return c.Assign(d.Target, new NumberValue(unchecked(sgt.Pfn << PlatformLayout.PageShift)));
    }

    private static StepOutcome KmapLocalPage(StepContext c, DeriveStmt d)
    {
        // kmap_local_page(page): page_address() for lowmem (and for any page on arm64, where it is
        // arithmetic); a temporary pkmap mapping for a highmem page on arm32, which reads the page's
        // flags first (PageHighMem) and so needs the struct page to exist.
        var layout = c.Layout;
        var page = c.As<PageRef>(d.Source, "kmap_local_page takes a page (from alloc_pages or sg_page)");
        var k = c.S.Dma.Kernel;
        if (layout.Arch == Arch.Arm32 && !layout.StructPageExists(page.Pfn))
        {
            throw new FatalFindingException(new Finding(FindingKinds.BogusStructPage, "kmap_local_page", page.Pfn, k.OwnerOf(page.Pfn), Severity.Fault,
                $"kmap_local_page reads the flags of {layout.DescribePage(page.Pfn)}, beyond mem_map: the kernel oopses", Fatal: true));
        }

        ulong va;
        if (layout.PageAddress(page.Pfn) is { } lowmem)
        {
            va = lowmem;
        }
        else
        {
            k = k.KmapHighmem(page.Pfn, c.Ops, out va);
        }

        var bytes = layout.Arch == Arch.Arm32 && !layout.IsLowmemPfn(page.Pfn) ? PlatformLayout.PageSize : PlatformLayout.PageSize << page.Order;
        return c.Assign(d.Target, new KernelPointer(va, bytes), c.S.Dma with { Kernel = k });
    }
}
