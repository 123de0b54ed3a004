using System.Collections.Immutable;
using DmaCheck.Debug;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

public static partial class CallCatalogue
{
    /// <summary>The parts an access reads: the mappings and owners it checks (a device access outside its mapping names the kmalloc object it lands in), and dma-debug's entries.</summary>
    private const P AccessReads = P.PageTables | P.PageAllocator | P.Slab | P.CoherentBuffers | P.AtomicPool | P.StreamingMappings | P.Swiotlb | P.DebugEntries | P.Variables | P.Observed;

    /// <summary>The language's own statements: reads and writes, polls, smc, signal and wait.</summary>
    public static ImmutableArray<StepSemantics> Statements { get; } =
    [
        new StepSemantics<AccessStmt>("access", Fp(AccessReads, P.Observed | P.StreamingMappings), a => [a.Address], (c, a) => Access(c, a)),
        new StepSemantics<PollStmt>("poll", Fp(AccessReads, P.None), p => [p.Address], (c, p) => Access(c, p.AsRead, p)),
        new StepSemantics<FetchStmt>("fetch", Fp(AccessReads, P.None), f => [f.Address], (c, f) => Access(c, f.AsRead, f)),
        new StepSemantics<SmcStmt>("smc", Fp(P.Variables, P.None), s => s.Args, Smc),
        new StepSemantics<EventStmt>("signal/wait", Fp(P.Signals, P.Signals), _ => [], (c, ev) => ev.IsWait ? c.S : c.S.With(signals: c.S.Signals.Add(ev.Event))),
        new StepSemantics<NotModelledStmt>("not modelled", Footprint.Everything, _ => [],
            (c, n) => throw new NotModelledException($"{c.Program.Name} calls {n.Function}, which needs {n.Mechanism}")),
        new StepSemantics<FlushQueueStmt>("iommu flush queue", Fp(P.Iommu, P.Iommu), _ => [], (c, f) => c.S.With(dma: DmaApi.IommuFlushQueue(c.Environment, c.S.Dma, f.Device))),
    ];

    private static readonly Dictionary<Type, StepSemantics> StatementsByType = Statements.ToDictionary(s => s.StatementType);

    private static StepOutcome Smc(StepContext c, SmcStmt smc)
    {
        var fw = c.Scenario.Programs[smc.Firmware];
        var locals = ImmutableDictionary<string, Value>.Empty;
        for (var i = 0; i < fw.Parameters.Count; i++)
        {
            locals = locals.Add(fw.Parameters[i], new NumberValue(c.Number(smc.Args[i]), c.IsVirtualAddress(smc.Args[i])));
        }

        return new StepOutcome(c.S, null, fw.Body.Count == 0 ? null : new Frame(smc.Firmware, 0, locals));
    }

    private static StepOutcome Access(StepContext c, AccessStmt a, PollStmt? poll = null)
    {
        var s = c.S;
        var program = c.Program;
        var findings = c.Findings;

        // An access through a variable that knows its size (a buffer, a pointer, a page, a handle) must stay inside it.
        var value = a.Address.Var is null ? null : c.Lookup(a.Address);
        if (value is CoherentBuffer { Cookie: true } && a.Address.Field is not "dma")
        {
            throw c.Bad($"'{a.Address.Text}' is a DMA_ATTR_NO_KERNEL_MAPPING cookie (a struct page pointer), not a kernel address: dereferencing it corrupts struct pages");
        }

        if (program.Kind == AgentKind.User && value is not UserPointer)
        {
            throw c.Bad($"user process '{program.Name}' reaches memory only through its own mappings: '{a.Address.Text}' is a {(value is null ? "number" : StepContext.Describe(value))}");
        }
        if (value is CoherentBuffer && a.Address.Field is null && a.Space != AddressSpace.Virtual)
        {
            throw c.Bad($"'{a.Address.Text}' is a coherent buffer: its DMA address is '{a.Address.Var}.dma'");
        }

        var address = c.Number(a.Address);

        // A device computes its addresses (an NVMe PRP entry from a handle's page and offset bits) and may leave the
        // mapping it was given: that is modelled below (device-access-unmapped). A CPU, user or firmware access past
        // the end of its buffer is a mistake in the scenario.
        (string Name, ulong Start, ulong Size)? given = null;
        if (a.Address.Var is { } name && value!.Size is { } size)
        {
            var baseAddress = c.Number(a.Address with { Constant = 0, Mask = null });
            var offset = unchecked(address - baseAddress);
            if (a.Space == AddressSpace.Dma && program.Kind == AgentKind.Device)
            {
                given = (name, baseAddress, size);
            }
            else if (address < baseAddress || offset > size || a.High > size - offset)
            {
                var at = offset == 0 ? string.Empty : address < baseAddress ? $" at 0x{baseAddress - address:x} before it" : $" at offset {offset}";
                throw c.Bad($"the access [{a.Low}..{a.High}){at} runs past the end of '{name}' ({size} bytes)");
            }
        }

        var length = a.High - a.Low;
        if (a.Space != AddressSpace.Virtual && address == DmaApi.DmaMappingError)
        {
            throw new KernelBugException(program.Name, $"'{a.Address.Text}' is DMA_MAPPING_ERROR: the mapping failed and the driver did not check dma_mapping_error()");
        }

        // Whether an address is virtual is known from where it came from, not from its value: on 32-bit arm with a bus
        // offset, DMA addresses and PAGE_OFFSET overlap.
        if (a.Space != AddressSpace.Virtual && a.Address.Var is not null && c.IsVirtualAddress(a.Address))
        {
            var space = a.Space == AddressSpace.Physical ? "physical" : "DMA";
            throw new KernelBugException(program.Name, $"'{a.Address.Text}' is 0x{address:x}, a kernel virtual address used as a {space} address: the driver passed the wrong address (use a DMA handle or buf.dma)");
        }

        if (a.Low > ulong.MaxValue - address || length > ulong.MaxValue - (address + a.Low))
        {
            throw c.Bad($"the access [{a.Low}..{a.High}) at 0x{address:x} wraps past the end of the address space");
        }

        var start = address + a.Low;
        var origin = $"{program.Name}: {a.Text}";
        if ((poll is FetchStmt || (a.IsWrite && c.Scenario.Pointers.ContainsKey(a.Writer))) && start % 8 != 0)
        {
            // Bytes hold writers, not numbers: an address is told apart only as 8 aligned bytes of one writer.
            throw new NotModelledException($"{program.Name} {(a.IsWrite ? "stores" : "fetches")} a DMA address at 0x{start:x}, not 8-byte aligned (a descriptor's 64-bit address field is aligned; this model keeps addresses only there)");
        }

        ulong pa;
        Alias? via = null;
        MemoryType type;
        switch (a.Space)
        {
            case AddressSpace.Virtual:
                if (a.IsWrite && s.Dma.Kernel.Layout.KernelImageSectionAt(start, length) is { } section)
                {
                    throw new KernelBugException(program.Name, $"{program.Name} stores to the kernel's {section} at 0x{start:x}: with CONFIG_STRICT_KERNEL_RWX (on by default for ARMv7) those pages are mapped read-only, and the store faults");
                }

                (pa, via) = s.Mmu.Translate(start, length);
                type = via.Type;
                break;
            case AddressSpace.Physical:
                pa = start;
                type = program.Access;
                break;
            default:
                // dma_to_phys, or the SMMU's translation for a device in an IOMMU DMA domain (which may fault).
                pa = DmaApi.DeviceAddressToPhys(c.Environment, s.Dma, program.DmaDevice, start, length, a.IsWrite, program.Name, findings, out var iommu);
                type = program.Access;
                if (iommu is not null)
                {
                    origin = $"{origin} ({iommu})";
                }

                break;
        }

        var kernel = s.Dma.Kernel;
        var layout = kernel.Layout;
        var verb = a.IsWrite ? "writes" : "reads";
        if (!layout.IsRam(pa, length))
        {
            var pfn = pa >> PlatformLayout.PageShift;
            throw new FatalFindingException(new Finding(FindingKinds.AccessOutsideRam, program.Name, pfn, kernel.OwnerOf(pfn), Severity.Fault,
                $"{program.Name} {verb} PA 0x{pa:x}..0x{pa + length:x}{(via is null ? string.Empty : $" through {via.Name}")}, outside the RAM Linux manages: nothing the model knows answers there, so the access faults (an address-size fault or external abort; the process is killed) or reaches whatever sits there (a firmware carve-out, MMIO). dmacheck stops {program.Name} here",
                Fatal: true));
        }

        if (a.Space == AddressSpace.Virtual && value is KernelPointer or PageRef && kernel.OwnerOf(pa >> PlatformLayout.PageShift) is { Kind: OwnerKind.Free } freed)
        {
            var pfn = pa >> PlatformLayout.PageShift;
            findings.Add(new Finding(FindingKinds.UseAfterFree, program.Name, pfn, freed, a.IsWrite ? Severity.Corruption : Severity.InformationLeak,
                $"{program.Name} {verb} pfn 0x{pfn:x} through '{a.Address.Text}' after it was freed: the page belongs to {freed.Describe()}"));
        }

        if (program.Kind == AgentKind.Device && a.Space == AddressSpace.Dma && QcomScm.AssignedAt(kernel, pa, length) is null)
        {
            DeviceBounds.Check(c, a, given, start, pa, length, findings);
        }

        if (c.Debugging)
        {
            // dmacheck's ownership rules (dma-api-howto), which the kernel cannot check: not kernel calls, so not hooks of the front end.
            if (program.Kind is AgentKind.Cpu or AgentKind.User)
            {
                DmaDebug.CpuAccess(s.Debug, s.Dma, program.Name, pa, length, a.IsWrite, findings);
                if (c.Scenario.KernelConfig.DebugAssertIdle)
                {
                    DmaDebug.AssertIdle(s.Debug, s.Dma, program.Name, pa, length, findings);
                }
            }
            else if (program.Kind == AgentKind.Device && QcomScm.AssignedAt(kernel, pa, length) is null)
            {
                // Memory qcom_scm_assign_mem gave to another VM is that VM's (the device's own, checked below), and the
                // DMA API has no say there.
                DmaDebug.DeviceAccess(s.Debug, s.Dma, program.Device!, program.Name, pa, length, a.IsWrite, findings);
            }
        }

        if (program.Kind == AgentKind.Device && QcomScm.AssignedAt(kernel, pa, length) is { } assignment)
        {
            if (program.Vmid != assignment.Vmid)
            {
                throw new NotModelledException(program.Vmid is null
                    ? $"{program.Name} ({program.Device}) {verb} PA 0x{pa:x}..0x{pa + length:x}, which qcom_scm_assign_mem gave to {assignment.Vmid}, and its device names no VM: say which VM its accesses come from ({{ vmid = {assignment.Vmid} }}); another VM's access is an XPU violation on the device's side"
                    : $"{program.Name} ({program.Device}, {program.Vmid}) {verb} PA 0x{pa:x}..0x{pa + length:x}, which qcom_scm_assign_mem gave to {assignment.Vmid}: an access by another VM's master (an XPU violation on the device's side)");
            }
        }

        if (via is not null && kernel.UserMappingAt(start) is { IntendedOwner: { } intended })
        {
            var pfn = pa >> PlatformLayout.PageShift;
            var now = s.Dma.OwnerOf(pfn);
            if (now != intended)
            {
                findings.Add(new Finding(FindingKinds.UseAfterFree, program.Name, pfn, now, a.IsWrite ? Severity.Corruption : Severity.InformationLeak,
                    $"{program.Name} {verb} pfn 0x{pfn:x} through {via.Name}, made for {intended.Describe()}, but the page now belongs to {now.Describe()}: the mapping outlived the buffer (use after free)"));
            }
        }

        if (!a.IsWrite && s.Observed.ContainsKey(a.Var))
        {
            throw c.Bad($"'{c.Scenario.ObservedVars[a.Var]}' is read a second time on this run ({program.Name} runs this read again): each read needs its own variable");
        }

        if (poll is not null)
        {
            if (via is not null && kernel.Coloured(LineOp.Poll(program.Master, type, poll.Writer, PollClasses.Any), via, pa).Colour != 0)
            {
                throw new NotModelledException($"a poll through {via.Name}, an alias of another colour than the linear map's on an aliasing data cache");
            }

            // What the agent does next depends on the bytes read: the explorer splits the run (PollOp.Branches).
            c.Ops.Add(new PollOp(origin, pa, length, program.Master, type, poll.Writer, poll.Max is not null, via));
            return s;
        }

        var op = a.IsWrite ? LineOp.Write(program.Master, type, a.Writer) : LineOp.Read(program.Master, type, a.Var);
        if (via is not null && program.Kind != AgentKind.Device)
        {
            op = kernel.Coloured(op, via, pa);
        }

        c.Ops.Add(new MemoryOp(origin, pa, length, op, via));
        if (a.IsWrite && program.Kind == AgentKind.Device)
        {
            s = s.With(dma: DmaApi.DeviceWrote(s.Dma, pa, length));
        }

        return a.IsWrite ? s : s.With(observed: s.Observed.SetItem(a.Var, new ObservedRange(pa, length)));
    }
}
