using System.Collections.Immutable;
using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Debug;

/// <summary>struct dma_debug_entry's type (kernel/dma/debug.c since v5.7: map_single and map_page both record "single"; dma_map_sg records one "sg" entry per mapped element).</summary>
public enum DebugType
{
    Single,
    Coherent,
    Sg,

    /// <summary>dma_map_resource (dma_debug_resource; "phy" with DMA_ATTR_MMIO since the dma_map_phys rework).</summary>
    Resource,
}

/// <summary>What CONFIG_DMA_API_DEBUG tracks per live mapping or allocation, plus who owns a streaming buffer now.</summary>
/// <param name="MapErrorChecked">For streaming mappings: whether dma_mapping_error() was called on the handle (MAP_ERR_NOT_CHECKED / CHECKED); null for coherent buffers (not applicable).</param>
/// <param name="DeviceOwns">For streaming mappings: the device owns the buffer (after map or sync_for_device), not the CPU (after sync_for_cpu).</param>
/// <param name="Line">The scenario line of the call that made the entry ("Mapped at:").</param>
/// <param name="DevicePaddr">Where the device's accesses land: the bounce slots of a bounced mapping; null when that is <see cref="Paddr"/>.</param>
/// <param name="DeviceCoherent">Whether the device snoops the CPU's caches (dma-coherent).</param>
/// <param name="SgCallEnts">For sg entries, sg_call_ents: the nents passed to dma_map_sg; 0 otherwise.</param>
/// <param name="SgMappedEnts">For sg entries, sg_mapped_ents: the count dma_map_sg returned; 0 otherwise.</param>
public sealed record DebugEntry(string Device, ulong Handle, ulong Size, DebugType Type, DmaDirection Direction, ulong Paddr, ulong CpuAddr, bool? MapErrorChecked, bool DeviceOwns, int Line, ulong? DevicePaddr = null, bool DeviceCoherent = false, int SgCallEnts = 0, int SgMappedEnts = 0)
{
    public string TypeName => Name(Type);

    /// <summary>The order <see cref="DebugState.Entries"/> is kept in (<see cref="CanonicalList"/>): by handle, buffer, size, device and type.</summary>
    public static int Order(DebugEntry a, DebugEntry b)
    {
        var c = a.Handle.CompareTo(b.Handle);
        c = c != 0 ? c : a.Paddr.CompareTo(b.Paddr);
        c = c != 0 ? c : a.Size.CompareTo(b.Size);
        c = c != 0 ? c : string.CompareOrdinal(a.Device, b.Device);
        return c != 0 ? c : a.Type.CompareTo(b.Type);
    }

    /// <summary>type2name[] in kernel/dma/debug.c, with its spelling of the sg type.</summary>
    public static string Name(DebugType type) => type switch
    {
        DebugType.Coherent => "coherent",
        DebugType.Sg => "scather-gather",
        DebugType.Resource => "resource",
        _ => "single",
    };

    /// <summary>A streaming mapping (dma_map_single/page or an sg element), which the buffer-ownership rules apply to.</summary>
    public bool IsStreaming => Type is DebugType.Single or DebugType.Sg;

    public bool Contains(ulong pa, ulong length) => pa < Paddr + Size && Paddr < pa + length;

    /// <summary>The physical address the device reaches through the handle.</summary>
    public ulong DeviceBase => DevicePaddr ?? Paddr;
}

/// <summary>The DMA-API debug state: the live entries, in canonical order (<see cref="DebugEntry.Order"/>), whatever order they were made in. Immutable.</summary>
public sealed record DebugState(ImmutableList<DebugEntry> Entries)
{
    public static DebugState Empty { get; } = new(ImmutableList<DebugEntry>.Empty);

    public string Key => string.Join(";", Entries.Select(e => $"{e.Device},{e.Handle},{e.Size},{e.Type},{e.Direction},{e.Paddr},{e.CpuAddr},{e.MapErrorChecked},{e.DeviceOwns},{e.DevicePaddr},{e.SgCallEnts},{e.SgMappedEnts}"));
}

/// <summary>
/// The checks of CONFIG_DMA_API_DEBUG (kernel/dma/debug.c, v5.10..v6.x; message texts as the kernel prints them, after
/// "DMA-API: &lt;device&gt;: "), and the ownership rules of Documentation/core-api/dma-api-howto.rst that the kernel
/// cannot check: the CPU must not touch a streaming buffer the device owns, and a device must not touch memory outside
/// a live mapping or one the CPU owns. Every violation is a <see cref="Finding"/>. The kernel prints only the first
/// error unless dma-api/all_errors is set; dmacheck reports them all.
/// </summary>
public static class DmaDebug
{
    public const string InvalidFree = FindingKinds.DmaApiFreeInvalid;
    public const string FreeNotAllocated = FindingKinds.DmaApiFreeNotAllocated;
    public const string FreeSize = FindingKinds.DmaApiFreeSize;
    public const string FreeWrongFunction = FindingKinds.DmaApiFreeWrongFunction;
    public const string FreeCpuAddress = FindingKinds.DmaApiFreeCpuAddress;
    public const string FreeDirection = FindingKinds.DmaApiFreeDirection;
    public const string MapErrorUnchecked = FindingKinds.DmaApiMapErrorUnchecked;
    public const string SyncNotAllocated = FindingKinds.DmaApiSyncNotAllocated;
    public const string SyncOutside = FindingKinds.DmaApiSyncOutside;
    public const string SyncDirection = FindingKinds.DmaApiSyncDirection;
    public const string SyncReadOnlyForCpu = FindingKinds.DmaApiSyncReadOnlyForCpu;
    public const string SyncWriteOnlyToDevice = FindingKinds.DmaApiSyncWriteOnlyToDevice;
    public const string CachelineOverlap = FindingKinds.DmaApiCachelineOverlap;
    public const string CpuTouchesDeviceOwned = FindingKinds.CpuTouchesDeviceOwned;
    public const string DeviceOutsideMapping = FindingKinds.DeviceOutsideMapping;
    public const string DeviceTouchesCpuOwned = FindingKinds.DeviceTouchesCpuOwned;
    public const string CpuWriteSharesLine = FindingKinds.CpuWriteSharesLine;
    public const string Leak = FindingKinds.DmaApiLeak;
    public const string CpuTouchingActiveLine = FindingKinds.DmaApiCpuTouchingActiveLine;
    public const string FreeSgCount = FindingKinds.DmaApiFreeSgCount;
    public const string SyncSgCount = FindingKinds.DmaApiSyncSgCount;
    public const string SgSegmentTooLong = FindingKinds.DmaApiSgSegmentTooLong;
    public const string SgSegmentAcrossBoundary = FindingKinds.DmaApiSgSegmentAcrossBoundary;
    public const string MapResourceRam = FindingKinds.DmaApiMapResourceRam;
    public const string MapStack = FindingKinds.DmaApiMapStack;
    public const string MapKernelImage = FindingKinds.DmaApiMapKernelImage;

    /// <summary>The kinds the debug layer reports, with the kernel's error class (reference §8.2) or "ownership": <see cref="FindingKindRegistry"/>'s debug kinds.</summary>
    public static IReadOnlyList<(string Kind, string Class)> Kinds { get; } = FindingKindRegistry.All.Where(k => k.IsDebug).Select(k => (k.Id, k.Class)).ToList();

    /// <summary>
    /// L1_CACHE_SHIFT of the profile's kernel (<see cref="CacheGeometry.L1CacheShift"/>): the granule of the
    /// active-cacheline tracking (to_cacheline_number), a compile-time constant that need not be the hardware's line
    /// (6 on 32-bit arm v7 even where a Cortex-A9 has 32-byte lines; 6 on arm64 although ARCH_DMA_MINALIGN is 128).
    /// </summary>
    private static int L1CacheShift(DmaState dma) => dma.Kernel.Config.CacheConstants.L1CacheShift;

    private static Finding Error(string kind, string device, string function, ulong? pfn, PageOwner owner, string text) =>
        new(kind, function, pfn, owner, Severity.ContractViolation, $"DMA-API: {device}: {text}");

    private static PageOwner OwnerOf(DmaState dma, ulong pa) => dma.OwnerOf(pa >> PlatformLayout.PageShift);

    /// <summary>
    /// debug_dma_map_page / debug_dma_map_phys: after a successful map, a "single" entry with MAP_ERR_NOT_CHECKED;
    /// mappings that are not DMA_TO_DEVICE enter the active-cacheline tree by their first line, and a second mapping
    /// starting in the same line is "cacheline tracking EEXIST, overlapping mappings aren't supported".
    /// </summary>
    public static DebugState Map(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong phys, ulong size, DmaDirection dir, string function, int line, List<Finding> findings, ulong? devicePhys = null, DmaAttrs attrs = DmaAttrs.None)
    {
        if (DmaApi.DmaMappingErrorCheck(handle))
        {
            return s;
        }

        return AddEntry(s, dma, dev, new DebugEntry(dev.Name, handle, size, DebugType.Single, dir, phys, 0, false, true, line, devicePhys, dev.Coherent), function, findings, attrs);
    }

    /// <summary>
    /// add_dma_entry (kernel/dma/debug.c): the entry, and active_cacheline_insert for one that is not DMA_TO_DEVICE
    /// (coherent allocations too: debug_dma_alloc_coherent adds a DMA_BIDIRECTIONAL entry). An -EEXIST is reported as
    /// <see cref="Switches.DebugCachelineOverlap"/> says: never before 2b4bbc6231d7 (v5.14); always in v5.14; not for
    /// DMA_ATTR_SKIP_CPU_SYNC since c2bbf9d1e9ac (v5.15); nor, since 03521c892bb8 (late 2025), with
    /// CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC and a swiotlb pool; nor, since 3d48c9fd78dd (2026), when
    /// dma_get_cache_alignment() is below L1_CACHE_BYTES.
    /// </summary>
    private static DebugState AddEntry(DebugState s, DmaState dma, DmaDevice dev, DebugEntry entry, string function, List<Finding>? findings, DmaAttrs attrs)
    {
        var phys = entry.Paddr;
        var dir = entry.Direction;
        var config = dma.Kernel.Config;
        var report = config.DebugCachelineOverlap switch
        {
            CachelineOverlapReport.Silent => false,
            CachelineOverlapReport.Report => true,
            CachelineOverlapReport.SkipCpuSync => (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0,
            CachelineOverlapReport.KmallocBounce => (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0 && !(config.KmallocBounce && dma.Swiotlb is not null),
            CachelineOverlapReport.CacheAlignment => (attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0 && !(config.KmallocBounce && dma.Swiotlb is not null)
                && config.CacheConstants.DmaGetCacheAlignment(dma.Kernel.Hardware) >= config.CacheConstants.L1CacheBytes,
            _ => throw new ArgumentOutOfRangeException(nameof(dma), config.DebugCachelineOverlap, "unknown dma_debug.cacheline_overlap value"),
        };
        if (findings is not null && report && dir != DmaDirection.DMA_TO_DEVICE)
        {
            var shift = L1CacheShift(dma);
            var cln = phys >> shift;
            if (s.Entries.Any(e => e.Direction != DmaDirection.DMA_TO_DEVICE && e.Paddr >> shift == cln))
            {
                findings.Add(Error(CachelineOverlap, dev.Name, function, phys >> PlatformLayout.PageShift, OwnerOf(dma, phys),
                    $"cacheline tracking EEXIST, overlapping mappings aren't supported [cln=0x{cln:x}]"));
            }
        }

        return s with { Entries = CanonicalList.Insert(s.Entries, entry, DebugEntry.Order) };
    }

    /// <summary>
    /// debug_dma_map_sg(dev, sg, nents, mapped_ents, dir) (kernel/dma/debug.c, v5.10..v6.5), after a successful
    /// dma_map_sg: for each of the mapped_ents elements an "sg" entry (paddr sg_phys, dev_addr sg_dma_address, size
    /// sg_dma_len, sg_call_ents nents, sg_mapped_ents mapped_ents; the map-error check does not apply), with
    /// check_sg_segment when CONFIG_DMA_API_DEBUG_SG is set (<paramref name="segmentChecks"/>): an element longer than
    /// dma_get_max_seg_size (E19) or whose DMA range crosses a dma_get_seg_boundary line (E20); then add_dma_entry with
    /// its active-cacheline check (E21), so two elements that start in one cache line overlap.
    /// </summary>
    public static DebugState MapSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nents, int mapped, DmaDirection dir, DmaAttrs attrs, bool segmentChecks, string function, int line, List<Finding> findings, TaskStack? current = null)
    {
        for (var i = 0; i < mapped; i++)
        {
            var e = table.Entries[i];
            var paddr = e.Phys;
            var pfn = paddr >> PlatformLayout.PageShift;
            CheckForStack(dma, dev, current, e.Pfn ?? 0, e.Offset, function, findings);
            if (e.Pfn is { } entryPfn)
            {
                CheckForIllegalArea(dma, dev, entryPfn, e.Offset, e.Length, function, findings);
            }

            if (segmentChecks)
            {
                if (e.Length > dev.MaxSegSize)
                {
                    findings.Add(Error(SgSegmentTooLong, dev.Name, function, pfn, OwnerOf(dma, paddr),
                        $"mapping sg segment longer than device claims to support [len={e.Length}] [max={dev.MaxSegSize}]"));
                }

                var start = e.DmaAddress;
                var end = unchecked(start + e.DmaLength - 1);
                if (((start ^ end) & ~dev.SegBoundaryMask) != 0)
                {
                    findings.Add(Error(SgSegmentAcrossBoundary, dev.Name, function, pfn, OwnerOf(dma, paddr),
                        $"mapping sg segment across boundary [start=0x{start:x16}] [end=0x{end:x16}] [boundary=0x{dev.SegBoundaryMask:x16}]"));
                }
            }

            var mapping = dma.Mappings.LastOrDefault(m => m.Device == dev.Name && m.Handle == e.DmaAddress);
            var entry = new DebugEntry(dev.Name, e.DmaAddress, e.DmaLength, DebugType.Sg, dir, paddr, 0, null, true, line, mapping?.Tlb, dev.Coherent, nents, mapped);
            s = AddEntry(s, dma, dev, entry, function, findings, attrs);
        }

        return s;
    }

    /// <summary>
    /// debug_dma_unmap_sg(dev, sglist, nelems, dir) (before the backend): get_nr_mapped_entries from the first element's
    /// entry, then check_unmap for each element up to that count, with a reference of type sg and sg_call_ents nelems
    /// (E6 when it differs from the map's nents; E4 when the element was mapped by dma_map_single/page).
    /// </summary>
    public static DebugState UnmapSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nelems, DmaDirection dir, string function, List<Finding> findings)
    {
        var mapped = 0;
        for (var i = 0; i < nelems; i++)
        {
            if (mapped != 0 && i >= mapped)
            {
                break;
            }

            var e = table.Entries[i];
            if (i == 0)
            {
                mapped = NrMappedEntries(s, dev, e, nelems, dir);
            }

            s = Unmap(s, dma, dev, e.DmaAddress, e.DmaLength, DebugType.Sg, dir, null, function, findings, nelems);
        }

        return s;
    }

    /// <summary>
    /// debug_dma_sync_sg_for_cpu / for_device (after the backend): get_nr_mapped_entries from the first element (0, and
    /// so no check at all, when no entry has its address), then check_sync per element up to that count with sg_call_ents
    /// nelems (E14 when it differs from the map's nents, unless the mapping is DMA_BIDIRECTIONAL).
    /// </summary>
    public static DebugState SyncSg(DebugState s, DmaState dma, DmaDevice dev, SgTable table, int nelems, DmaDirection dir, bool toCpu, string function, List<Finding> findings)
    {
        var mapped = 0;
        for (var i = 0; i < nelems; i++)
        {
            var e = table.Entries[i];
            if (i == 0)
            {
                mapped = NrMappedEntries(s, dev, e, nelems, dir);
            }

            if (i >= mapped)
            {
                break;
            }

            s = Sync(s, dma, dev, e.DmaAddress, e.DmaLength, dir, toCpu, function, findings, nelems);
        }

        return s;
    }

    /// <summary>get_nr_mapped_entries: sg_mapped_ents of bucket_find_exact's entry for the element (best fit; none among several imperfect ones), or 0.</summary>
    private static int NrMappedEntries(DebugState s, DmaDevice dev, SgEntry e, int nelems, DmaDirection dir)
    {
        var candidates = s.Entries.Where(x => x.Device == dev.Name && x.Handle == e.DmaAddress).ToList();
        var entry = candidates.FirstOrDefault(x => x.Size == e.DmaLength && x.Type == DebugType.Sg && x.Direction == dir && x.SgCallEnts == nelems) ?? (candidates.Count == 1 ? candidates[0] : null);
        return entry?.SgMappedEnts ?? 0;
    }

    /// <summary>
    /// debug_dma_map_resource (v5.10..v6.17) / debug_dma_map_phys with DMA_ATTR_MMIO (since): a "resource" entry with
    /// MAP_ERR_NOT_CHECKED after a successful map. With <paramref name="reportRam"/> (af0c3f058662, see
    /// <see cref="Switches.MapResourceRamCheck"/>), a physical address whose page is valid and not PageReserved is
    /// "dma_map_resource called for RAM address" (E18).
    /// </summary>
    public static DebugState MapResource(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong phys, ulong size, DmaDirection dir, bool reportRam, int line, List<Finding> findings)
    {
        if (DmaApi.DmaMappingErrorCheck(handle))
        {
            return s;
        }

        var pfn = phys >> PlatformLayout.PageShift;
        var entry = new DebugEntry(dev.Name, handle, size, DebugType.Resource, dir, phys, 0, false, true, line, null, dev.Coherent);
        if (reportRam && dma.Kernel.Layout.PfnValid(pfn) && !dma.Kernel.PageReserved(pfn))
        {
            findings.Add(Error(MapResourceRam, dev.Name, "dma_map_resource", pfn, OwnerOf(dma, phys), $"dma_map_resource called for RAM address 0x{phys:x}"));
        }

        return AddEntry(s, dma, dev, entry, "dma_map_resource", findings, DmaAttrs.None);
    }

    /// <summary>
    /// check_for_stack(dev, page, offset) (kernel/dma/debug.c, v5.10..v6.5), run by debug_dma_map_page and per element
    /// by debug_dma_map_sg against the stack of the calling thread (current): a vmalloc'd stack
    /// (task_stack_vm_area) is compared page by page, "maps memory from stack [probable addr=stack + i * PAGE_SIZE +
    /// offset]"; a direct-mapped one by address (object_is_on_stack of page_address + offset, lowmem pages only),
    /// "maps memory from stack [addr=...]". Another thread's stack is not noticed, as in the kernel.
    /// </summary>
    public static void CheckForStack(DmaState dma, DmaDevice dev, TaskStack? current, ulong pfn, ulong offset, string function, List<Finding> findings)
    {
        if (current is null)
        {
            return;
        }

        var pa = PlatformLayout.PfnToPhys(pfn) + offset;
        if (current.Vmapped)
        {
            if (current.ContainsPfn(pfn))
            {
                var addr = current.Va + ((pfn - current.Pfn) << PlatformLayout.PageShift) + offset;
                findings.Add(Error(MapStack, dev.Name, function, pfn, OwnerOf(dma, pa), $"device driver maps memory from stack [probable addr=0x{addr:x}]"));
            }

            return;
        }

        if (dma.Kernel.Layout.PageAddress(pfn) is { } va && va + offset >= current.Va && va + offset < current.Va + current.Size)
        {
            findings.Add(Error(MapStack, dev.Name, function, pfn, OwnerOf(dma, pa), $"device driver maps memory from stack [addr=0x{va + offset:x}]"));
        }
    }

    /// <summary>
    /// check_for_illegal_area(dev, addr, len) (kernel/dma/debug.c, v5.10..v6.x), run by debug_dma_map_page for a lowmem
    /// page on page_address(page) + offset and the mapping's size, and per element by debug_dma_map_sg on sg_virt and
    /// sg->length: memory that overlaps the kernel's _stext.._etext or __start_rodata..__end_rodata. It can only fire
    /// where page_address() of an image page is the image's own address (32-bit arm: <see cref="PlatformLayout.KernelImageSections"/>).
    /// </summary>
    public static void CheckForIllegalArea(DmaState dma, DmaDevice dev, ulong pfn, ulong offset, ulong length, string function, List<Finding> findings)
    {
        var layout = dma.Kernel.Layout;
        if (layout.PageAddress(pfn) is not { } va || layout.KernelImageSectionAt(va + offset, length) is not { } section)
        {
            return;
        }

        var pa = PlatformLayout.PfnToPhys(pfn) + offset;
        findings.Add(Error(MapKernelImage, dev.Name, function, pfn, OwnerOf(dma, pa),
            $"device driver maps memory from kernel text or rodata [addr=0x{va + offset:x}] [len={length}] (the buffer overlaps the image's {section})"));
    }

    /// <summary>debug_dma_mapping_error: the first unchecked entry of (dev, addr) becomes MAP_ERR_CHECKED.</summary>
    public static DebugState MappingError(DebugState s, DmaDevice dev, ulong handle)
    {
        var e = s.Entries.FirstOrDefault(x => x.Device == dev.Name && x.Handle == handle && x.MapErrorChecked == false);
        return e is null ? s : s with { Entries = CanonicalList.Replace(s.Entries, e, e with { MapErrorChecked = true }, DebugEntry.Order) };
    }

    /// <summary>
    /// debug_dma_alloc_coherent: a "coherent" entry, unless the address is neither vmalloc nor a valid linear address (a
    /// NO_KERNEL_MAPPING cookie, or NULL), added by add_dma_entry, so it enters the active-cacheline tree as a
    /// DMA_BIDIRECTIONAL mapping (E21 with a mapping that starts in its first line).
    /// </summary>
    public static DebugState AllocCoherent(DebugState s, DmaState dma, DmaDevice dev, ulong cpu, ulong handle, ulong size, int line, List<Finding>? findings = null, DmaAttrs attrs = DmaAttrs.None)
    {
        if (cpu == 0 || !(dma.Kernel.Layout.IsVmallocAddr(cpu) || dma.Kernel.Layout.IsLinearMapAddr(cpu)))
        {
            return s;
        }

        // entry->paddr is page_to_phys(vmalloc_to_page(virt) or virt_to_page(virt)); the handle gives the same page
        // except behind an IOMMU, where it is an IOVA.
        var paddr = dma.Coherent.FirstOrDefault(c => c.Source is CoherentSource.IommuRemap or CoherentSource.IommuPool or CoherentSource.IommuPages && c.CpuAddr == cpu) is { } remapped
            ? PlatformLayout.PfnToPhys(remapped.Pfn)
            : dma.Kernel.Layout.DmaToPhys(handle);
        return AddEntry(s, dma, dev, new DebugEntry(dev.Name, handle, size, DebugType.Coherent, DmaDirection.DMA_BIDIRECTIONAL, paddr, cpu, null, false, line), "dma_alloc_coherent", findings, attrs);
    }

    /// <summary>
    /// check_unmap (called by debug_dma_unmap_page after the backend and by debug_dma_free_coherent before it): the
    /// exact entry for (dev, addr), best fit by size, type and direction; then the size, type, CPU address,
    /// direction and map-error checks, in the kernel's order; the entry goes away.
    /// </summary>
    public static DebugState Unmap(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DebugType type, DmaDirection dir, ulong? cpu, string function, List<Finding> findings, int sgCallEnts = 0)
    {
        if (type == DebugType.Coherent && cpu is { } c && !(dma.Kernel.Layout.IsVmallocAddr(c) || dma.Kernel.Layout.IsLinearMapAddr(c)))
        {
            return s; // debug_dma_free_coherent ignores what is neither vmalloc nor linear (NO_KERNEL_MAPPING cookies)
        }

        var candidates = s.Entries.Where(e => e.Device == dev.Name && e.Handle == handle).ToList();
        var entry = candidates.FirstOrDefault(e => e.Size == size && e.Type == type && e.Direction == dir && e.SgCallEnts == sgCallEnts) ?? (candidates.Count == 1 ? candidates[0] : null);
        var pa = dma.Kernel.Layout.DmaToPhys(handle);
        if (entry is null)
        {
            findings.Add(DmaApi.DmaMappingErrorCheck(handle)
                ? Error(InvalidFree, dev.Name, function, null, new PageOwner(OwnerKind.NoRam, "DMA_MAPPING_ERROR"), "device driver tries to free an invalid DMA memory address")
                : Error(FreeNotAllocated, dev.Name, function, pa >> PlatformLayout.PageShift, OwnerOf(dma, pa),
                    $"device driver tries to free DMA memory it has not allocated [device address=0x{handle:x16}] [size={size} bytes]"));
            return s;
        }

        var pfn = entry.Paddr >> PlatformLayout.PageShift;
        var owner = OwnerOf(dma, entry.Paddr);
        if (size != entry.Size)
        {
            findings.Add(Error(FreeSize, dev.Name, function, pfn, owner,
                $"device driver frees DMA memory with different size [device address=0x{handle:x16}] [map size={entry.Size} bytes] [unmap size={size} bytes]"));
        }

        var refType = DebugEntry.Name(type);
        if (type != entry.Type)
        {
            findings.Add(Error(FreeWrongFunction, dev.Name, function, pfn, owner,
                $"device driver frees DMA memory with wrong function [device address=0x{handle:x16}] [size={size} bytes] [mapped as {entry.TypeName}] [unmapped as {refType}]"));
        }
        else if (type == DebugType.Coherent && cpu is { } freeCpu && CpuPhys(dma, freeCpu) != CpuPhys(dma, entry.CpuAddr))
        {
            findings.Add(Error(FreeCpuAddress, dev.Name, function, pfn, owner,
                $"device driver frees DMA memory with different CPU address [device address=0x{handle:x16}] [size={size} bytes] [cpu alloc address=0x{CpuPhys(dma, entry.CpuAddr):x16}] [cpu free address=0x{CpuPhys(dma, freeCpu):x16}]"));
        }

        if (sgCallEnts != 0 && type == DebugType.Sg && sgCallEnts != entry.SgCallEnts)
        {
            findings.Add(Error(FreeSgCount, dev.Name, function, pfn, owner,
                $"device driver frees DMA sg list with different entry count [map count={entry.SgCallEnts}] [unmap count={sgCallEnts}]"));
        }

        if (dir != entry.Direction)
        {
            findings.Add(Error(FreeDirection, dev.Name, function, pfn, owner,
                $"device driver frees DMA memory with different direction [device address=0x{handle:x16}] [size={size} bytes] [mapped with {entry.Direction}] [unmapped with {dir}]"));
        }

        if (entry.MapErrorChecked == false)
        {
            findings.Add(Error(MapErrorUnchecked, dev.Name, function, pfn, owner,
                $"device driver failed to check map error[device address=0x{handle:x16}] [size={size} bytes] [mapped as {entry.TypeName}]"));
        }

        return s with { Entries = s.Entries.Remove(entry) };
    }

    /// <summary>The physical address debug.c records for a coherent CPU address (vmalloc_to_page for a vmalloc address, virt_to_phys otherwise).</summary>
    private static ulong CpuPhys(DmaState dma, ulong cpu) =>
        dma.Kernel.Layout.IsVmallocAddr(cpu) && dma.Kernel.VmallocToPfn(cpu) is { } pfn
            ? PlatformLayout.PfnToPhys(pfn) + (cpu & (PlatformLayout.PageSize - 1))
            : dma.Kernel.Layout.VirtToPhys(cpu);

    /// <summary>
    /// check_sync (debug_dma_sync_single_for_cpu/for_device, after the backend; kernel/dma/debug.c v5.10..v6.x):
    /// bucket_find_contain finds an entry that contains the whole synced range (containing_match), best fit by size,
    /// type, direction and sg_call_ents, searching the hash bucket of the address and then the buckets below it; so a
    /// sync that runs past the end of its mapping finds none and is E9, and the "outside allocated range" check (E10)
    /// that follows can never fire. Then, for a mapping that is not DMA_BIDIRECTIONAL, the direction checks, which
    /// print the mapping's size. Then the ownership moves: to the CPU after sync_for_cpu, to the device after
    /// sync_for_device.
    /// </summary>
    public static DebugState Sync(DebugState s, DmaState dma, DmaDevice dev, ulong handle, ulong size, DmaDirection dir, bool toCpu, string function, List<Finding> findings, int sgCallEnts = 0)
    {
        var refType = sgCallEnts != 0 ? DebugType.Sg : DebugType.Single;
        var entry = FindContaining(s, dev, handle, size, refType, dir, sgCallEnts);
        var pa = dma.Kernel.Layout.DmaToPhys(handle);
        if (entry is null)
        {
            findings.Add(Error(SyncNotAllocated, dev.Name, function, pa >> PlatformLayout.PageShift, OwnerOf(dma, pa),
                $"device driver tries to sync DMA memory it has not allocated [device address=0x{handle:x16}] [size={size} bytes]"));
            return s;
        }

        var pfn = entry.Paddr >> PlatformLayout.PageShift;
        var owner = OwnerOf(dma, entry.Paddr);
        if (size > entry.Size)
        {
            // Unreachable, as in the kernel: the entry contains the synced range.
            findings.Add(Error(SyncOutside, dev.Name, function, pfn, owner,
                $"device driver syncs DMA memory outside allocated range [device address=0x{entry.Handle:x16}] [allocation size={entry.Size} bytes] [sync offset+size={size}]"));
        }

        if (entry.Direction != DmaDirection.DMA_BIDIRECTIONAL)
        {
            if (dir != entry.Direction)
            {
                findings.Add(Error(SyncDirection, dev.Name, function, pfn, owner,
                    $"device driver syncs DMA memory with different direction [device address=0x{handle:x16}] [size={entry.Size} bytes] [mapped with {entry.Direction}] [synced with {dir}]"));
            }

            if (toCpu && entry.Direction != DmaDirection.DMA_FROM_DEVICE && dir != DmaDirection.DMA_TO_DEVICE)
            {
                findings.Add(Error(SyncReadOnlyForCpu, dev.Name, function, pfn, owner,
                    $"device driver syncs device read-only DMA memory for cpu [device address=0x{handle:x16}] [size={entry.Size} bytes] [mapped with {entry.Direction}] [synced with {dir}]"));
            }

            if (!toCpu && entry.Direction != DmaDirection.DMA_TO_DEVICE && dir != DmaDirection.DMA_FROM_DEVICE)
            {
                findings.Add(Error(SyncWriteOnlyToDevice, dev.Name, function, pfn, owner,
                    $"device driver syncs device write-only DMA memory to device [device address=0x{handle:x16}] [size={entry.Size} bytes] [mapped with {entry.Direction}] [synced with {dir}]"));
            }

            if (sgCallEnts != 0 && sgCallEnts != entry.SgCallEnts)
            {
                findings.Add(Error(SyncSgCount, dev.Name, function, pfn, owner,
                    $"device driver syncs DMA sg list with different entry count [map count={entry.SgCallEnts}] [sync count={sgCallEnts}]"));
            }
        }

        return s with { Entries = CanonicalList.Replace(s.Entries, entry, entry with { DeviceOwns = !toCpu }, DebugEntry.Order) };
    }

    /// <summary>HASH_FN_SHIFT: dma-debug hashes an entry by its DMA address's 8 KiB block.</summary>
    private const int HashFnShift = 13;

    /// <summary>HASH_SIZE: how many buckets bucket_find_contain may walk down.</summary>
    private const ulong HashSize = 16384;

    /// <summary>
    /// bucket_find_contain: from the bucket of <paramref name="handle"/> downwards, the first bucket whose
    /// __hash_bucket_find with containing_match gives an entry: a perfect fit (size, type, direction, sg_call_ents), else
    /// the best of the matches when there is exactly one match in that bucket; null when no bucket gives one.
    /// </summary>
    private static DebugEntry? FindContaining(DebugState s, DmaDevice dev, ulong handle, ulong size, DebugType type, DmaDirection dir, int sgCallEnts)
    {
        var buckets = s.Entries
            .Where(e => e.Device == dev.Name && e.Handle <= handle && e.Handle + e.Size >= handle + size)
            .GroupBy(e => e.Handle >> HashFnShift)
            .Where(g => (handle >> HashFnShift) - g.Key < HashSize)
            .OrderByDescending(g => g.Key);
        foreach (var bucket in buckets)
        {
            var matches = bucket.ToList();
            if (matches.FirstOrDefault(e => e.Size == size && e.Type == type && e.Direction == dir && e.SgCallEnts == sgCallEnts) is { } perfect)
            {
                return perfect;
            }

            if (matches.Count == 1)
            {
                return matches[0];
            }
        }

        return null;
    }

    /// <summary>
    /// The CPU's side of buffer ownership (dma-api-howto: after dma_map_* the buffer belongs to the device until
    /// dma_sync_*_for_cpu or dma_unmap_*): a store to a live streaming mapping the device owns, or a load from one the
    /// device may write (not DMA_TO_DEVICE).
    /// </summary>
    public static void CpuAccess(DebugState s, DmaState dma, string agent, ulong pa, ulong length, bool isWrite, List<Finding> findings)
    {
        if (isWrite)
        {
            SharedLineWrite(s, dma, agent, pa, length, findings);
        }

        foreach (var e in s.Entries)
        {
            if (!e.IsStreaming || !e.DeviceOwns || !e.Contains(pa, length) || (!isWrite && e.Direction == DmaDirection.DMA_TO_DEVICE))
            {
                continue;
            }

            var at = Math.Max(pa, e.Paddr);
            var why = isWrite
                ? e.Direction == DmaDirection.DMA_TO_DEVICE
                    ? "the device may already have read the buffer, and the store can sit in the cache, unseen by it"
                    : "the device writes this buffer, and a dirty line written back later overwrites what it wrote"
                : e.DeviceCoherent
                    ? "the device may still be writing this buffer, so the load can see a partial transfer (on a non-coherent device it can also fill a stale line)"
                    : "the device writes this buffer, and the load can fill a line that the invalidate at unmap or sync_for_cpu then has to discard";
            findings.Add(new Finding(CpuTouchesDeviceOwned, agent, at >> PlatformLayout.PageShift, OwnerOf(dma, at), Severity.ContractViolation,
                $"{agent} {(isWrite ? "writes" : "reads")} PA 0x{pa:x}..0x{pa + length:x} while {e.Device} owns its {e.Direction} mapping 0x{e.Handle:x} (between dma_map or dma_sync_*_for_device and dma_unmap or dma_sync_*_for_cpu): {why}"));
            return;
        }
    }

    /// <summary>
    /// A CPU store next to a buffer the device owns, in one of its cache lines: a DMA_FROM_DEVICE or
    /// DMA_BIDIRECTIONAL mapping whose first or last line also holds other bytes (an embedded buffer, or kmalloc objects
    /// that share lines). The dirty line can be written back over what the device wrote, or be discarded by the
    /// invalidate at unmap. Only the bytes outside the mapping count; a store inside it is cpu-access-device-owned. A
    /// coherent device, or a mapping that bounces through swiotlb, has no such hazard. The line is the granule the kernel
    /// aligns DMA buffers to, dma_get_cache_alignment() (ARCH_DMA_MINALIGN, 128, on arm64 before v6.5; the writeback
    /// granule since), or the hardware's writeback granule where that is larger: <see cref="CacheGeometry.SharingGranule"/>.
    /// </summary>
    private static void SharedLineWrite(DebugState s, DmaState dma, string agent, ulong pa, ulong length, List<Finding> findings)
    {
        var line = (ulong)dma.Kernel.Config.CacheConstants.SharingGranule(dma.Kernel.Hardware);
        foreach (var e in s.Entries)
        {
            // A coherent device's writes and a bounced mapping's copies never race the CPU's cache lines.
            if (!e.IsStreaming || !e.DeviceOwns || e.Direction == DmaDirection.DMA_TO_DEVICE || e.Size == 0 || e.DeviceCoherent || e.DevicePaddr is not null)
            {
                continue;
            }

            var first = e.Paddr & ~(line - 1);
            var end = (e.Paddr + e.Size + line - 1) & ~(line - 1);
            var outsideBefore = pa < e.Paddr && pa + length > first;
            var outsideAfter = pa + length > e.Paddr + e.Size && pa < end;
            if ((outsideBefore || outsideAfter) && !(pa >= e.Paddr && pa + length <= e.Paddr + e.Size))
            {
                var at = outsideBefore ? Math.Max(pa, first) : Math.Max(pa, e.Paddr + e.Size);
                findings.Add(new Finding(CpuWriteSharesLine, agent, at >> PlatformLayout.PageShift, OwnerOf(dma, at), Severity.ContractViolation,
                    $"{agent} writes PA 0x{pa:x}..0x{pa + length:x}, in a cache line it shares with {e.Device}'s {e.Direction} mapping 0x{e.Handle:x} (PA 0x{e.Paddr:x}..0x{e.Paddr + e.Size:x}) while the device owns it: the dirty line can be written back over the device's data, or the invalidate at unmap or sync_for_cpu can discard the store (DMA buffers must not share cache lines: ARCH_DMA_MINALIGN)"));
                return;
            }
        }
    }

    /// <summary>
    /// dma_debug_device_change at driver unbind (E22): per device with live entries, "device driver has pending DMA
    /// allocations while released from device [count=N]" and the details of one of them (here the last made; the
    /// kernel names the last in its hash-bucket walk).
    /// </summary>
    public static void Unbind(DebugState s, DmaState dma, List<Finding> findings)
    {
        foreach (var group in s.Entries.GroupBy(e => e.Device))
        {
            var e = group.Last(); // device_dma_allocations keeps the last match it walks past
            findings.Add(Error(Leak, group.Key, "driver unbind", e.Paddr >> PlatformLayout.PageShift, OwnerOf(dma, e.Paddr),
                $"device driver has pending DMA allocations while released from device [count={group.Count()}] One of leaked entries details: [device address=0x{e.Handle:x16}] [size={e.Size} bytes] [mapped with {e.Direction}] [mapped as {e.TypeName}] (made at line {e.Line})"));
        }
    }

    /// <summary>
    /// debug_dma_assert_idle (v3.19..v5.8, removed by 5848dc5b1b76; optional here, E23): "cpu touching an active dma
    /// mapped cacheline [cln=...]" for a live mapping that is not DMA_TO_DEVICE and starts in the touched line. The
    /// kernel ran it only from cow_user_page(), on the first line of a user page being copied on write; dmacheck
    /// applies the same test to every CPU access when asked, as a broader reinstatement.
    /// </summary>
    public static void AssertIdle(DebugState s, DmaState dma, string agent, ulong pa, ulong length, List<Finding> findings)
    {
        var shift = L1CacheShift(dma);
        foreach (var e in s.Entries)
        {
            var cln = e.Paddr >> shift;
            if (e.IsStreaming && e.Direction != DmaDirection.DMA_TO_DEVICE && pa >> shift <= cln && (pa + length - 1) >> shift >= cln)
            {
                findings.Add(Error(CpuTouchingActiveLine, e.Device, agent, pa >> PlatformLayout.PageShift, OwnerOf(dma, pa), $"cpu touching an active dma mapped cacheline [cln=0x{cln:x}]"));
                return;
            }
        }
    }

    /// <summary>A device's access: inside a live mapping or coherent buffer of that device, and not one the CPU owns.</summary>
    public static void DeviceAccess(DebugState s, DmaState dma, string device, string agent, ulong pa, ulong length, bool isWrite, List<Finding> findings)
    {
        // An access that no live mapping or coherent buffer covers is the model's own finding (device-access-unmapped,
        // Scenarios/Calls/DeviceBounds.cs), made whether or not dma-debug is on: the kernel cannot see it.
        var mine = s.Entries.Where(e => e.Device == device && e.DeviceBase <= pa && pa + length <= e.DeviceBase + e.Size).ToList();
        if (mine.Count == 0)
        {
            return;
        }

        if (mine.All(e => e.IsStreaming && !e.DeviceOwns))
        {
            var e = mine[0];
            findings.Add(new Finding(DeviceTouchesCpuOwned, agent, pa >> PlatformLayout.PageShift, OwnerOf(dma, pa), Severity.ContractViolation,
                $"{agent} ({device}) {(isWrite ? "writes" : "reads")} PA 0x{pa:x}..0x{pa + length:x} after dma_sync_*_for_cpu gave mapping 0x{e.Handle:x} to the CPU, before dma_sync_*_for_device gave it back"));
        }
    }
}
