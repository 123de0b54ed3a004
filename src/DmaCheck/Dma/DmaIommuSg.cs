using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// iommu-dma's scatter-gather calls (drivers/iommu/dma-iommu.c, v6.12): the whole list gets one IOVA allocation, each
// segment laid out granule-aligned in it, and __finalise_sg merges the segments that meet in IOVA space into fewer
// DMA segments than the list has entries.
public static partial class DmaApi
{
    /// <summary>
    /// iommu_dma_map_sg (v6.12): a list dev_use_sg_swiotlb picks (an untrusted device's, or one with an element
    /// dma_kmalloc_needs_bounce picks) goes to <see cref="IommuDmaMapSgSwiotlb"/>. Otherwise iommu_dma_sync_sg_for_device unless DMA_ATTR_SKIP_CPU_SYNC (arch_sync_dma_for_device on each element's
    /// sg_phys for a non-coherent device); then each element is laid out granule-aligned (its offset in the granule
    /// stashed, its length iova_align(length + offset)), with padding added to the previous element when the next would
    /// cross a seg_boundary_mask line; one IOVA range of the total (iommu_dma_alloc_iova) is mapped by iommu_map_sg,
    /// which joins elements that are physically contiguous; and <see cref="IommuFinaliseSg"/> writes the DMA segments.
    /// No IOVA space: -ENOMEM, nothing mapped.
    /// </summary>
    private static DmaState IommuDmaMapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped)
    {
        var via = IommuVia(function, "iommu_dma_map_sg");
        var domain = DomainOf(env, s, dev, function);
        mapped = 0;
        var entries = s.Kernel.SgTables[table.Id].Entries;
        for (var i = 0; i < nents; i++)
        {
            if (entries[i].Pfn is null)
            {
                throw new KernelBugException(function, $"entry {i} of the table has no page (no sg_set_buf or sg_set_page): sg_page() is NULL and iommu_dma_map_sg dereferences it");
            }
        }

        // dev_use_sg_swiotlb
        if (dev.Iommu is { Untrusted: true } || Enumerable.Range(0, nents).Any(i => DmaKmallocNeedsBounce(s.Kernel, dev, entries[i].Length, dir)))
        {
            return IommuDmaMapSgSwiotlb(env, s, dev, table, nents, dir, attrs, function, ops, findings, out mapped);
        }

        if ((attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            IommuDmaSyncSgForDevice(env, s, dev, table, nents, dir, $"{via} → iommu_dma_sync_sg_for_device", ops);
        }

        // The layout: each element's offset in its granule (stashed in sg_dma_address) and its aligned IOVA length.
        var mask = dev.SegBoundaryMask;
        var offsets = new ulong[nents];
        var lengths = new ulong[nents];
        var iovaLen = 0UL;
        for (var i = 0; i < nents; i++)
        {
            offsets[i] = domain.Offset(entries[i].Offset);
            lengths[i] = domain.Align(entries[i].Length + offsets[i]);
            var padLen = unchecked(mask - iovaLen + 1) & mask;
            if (padLen != 0 && padLen < lengths[i] - 1)
            {
                lengths[i - 1] += padLen;
                iovaLen += padLen;
            }

            iovaLen += lengths[i];
        }

        if (iovaLen == 0)
        {
            throw new NotModelledException($"{via}: a list whose elements are all empty (iova_len 0, __finalise_sg with no IOVA) is not modelled");
        }

        var limit = Math.Min(Math.Min(dev.DmaMask, env.Layout.DmaLimit), IommuDomain.ApertureEnd);
        domain = domain with { Iova = domain.Iova.AllocFast(iovaLen >> domain.Iova.Shift, limit >> domain.Iova.Shift, true, out var iovaPfn) };
        if (iovaPfn is not { } allocated)
        {
            // -ENOMEM: __invalidate_sg puts the elements back; the caller sees a failure.
            return WithDomain(s, domain);
        }

        var iova = allocated << domain.Iova.Shift;

        // iommu_map_sg: runs of physically contiguous elements, each mapped from its granule-aligned physical start.
        var prot = DmaInfoToProt(dir, dev.Coherent);
        var done = 0UL;
        ulong runStart = 0, runLen = 0;
        for (var i = 0; i <= nents; i++)
        {
            var phys = i < nents ? entries[i].Phys - offsets[i] : 0;
            if (runLen != 0 && (i == nents || phys != runStart + runLen))
            {
                domain = domain.Map(iova + done, runStart, runLen, prot);
                done += runLen;
                runLen = 0;
            }

            if (i == nents)
            {
                break;
            }

            if (runLen == 0)
            {
                runStart = phys;
            }

            runLen += lengths[i];
        }

        s = WithDomain(s, domain);
        var k = IommuFinaliseSg(s.Kernel, s.Kernel.SgTables[table.Id], dev, nents, iova, offsets, lengths, function, ops, out mapped);

        // The model's record: one per element, at its place in the IOVA range, for the device-side checks.
        var at = iova;
        for (var i = 0; i < nents; i++)
        {
            s = RecordMapping(s, new StreamingMapping(dev.Name, at + offsets[i], entries[i].Phys, entries[i].Length, dir, function));
            at += lengths[i];
        }

        return s with { Kernel = k };
    }

    /// <summary>
    /// iommu_dma_map_sg_swiotlb (v6.12): sg_dma_mark_swiotlb on the first entry, then each element goes through
    /// iommu_dma_map_page on its own (its own IOVA range; a sub-granule element bounces), and gets its handle and
    /// length as its DMA segment: no merging, the result is nents. A failed element unmaps the ones before it with
    /// DMA_ATTR_SKIP_CPU_SYNC added, and the map fails (-EIO).
    /// </summary>
    private static DmaState IommuDmaMapSgSwiotlb(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings, out int mapped)
    {
        s = s with { Kernel = Scatterlist.MarkSwiotlb(s.Kernel, s.Kernel.SgTables[table.Id], 0, $"{function} → iommu_dma_map_sg_swiotlb", ops) };
        return MapSgEntries(env, s, dev, s.Kernel.SgTables[table.Id], nents, dir, attrs, function, ops, findings,
            IommuDmaMapPage, "iommu_dma_map_page", IommuDmaUnmapPage, DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC, out mapped);
    }

    /// <summary>
    /// __finalise_sg(dev, sg, nents, dma_addr) (v6.12): every element first gets DMA_MAPPING_ERROR and length 0; then
    /// an element is appended to the current DMA segment when there is one, it starts on an IOVA granule
    /// (its offset is 0), its IOVA is not on a seg_boundary_mask line, and the segment would not grow past
    /// dma_get_max_seg_size; otherwise it starts the next segment, in the next element, at its IOVA plus its offset. A
    /// segment that ends short of its granules closes. The result is the number of DMA segments.
    /// </summary>
    private static KernelState IommuFinaliseSg(KernelState k, SgTable table, DmaDevice dev, int nents, ulong dmaAddr, ulong[] offsets, ulong[] ioLengths, string function, List<HwOp> ops, out int count)
    {
        var addresses = Enumerable.Repeat(DmaMappingError, nents).ToArray();
        var lengths = new ulong[nents];
        var cur = 0;
        var curLen = 0UL;
        count = 0;
        for (var i = 0; i < nents; i++)
        {
            var length = table.Entries[i].Length;
            if (curLen != 0 && offsets[i] == 0 && (dmaAddr & dev.SegBoundaryMask) != 0 && dev.MaxSegSize - curLen >= length)
            {
                curLen += length;
            }
            else
            {
                if (i > 0)
                {
                    cur++;
                }

                curLen = length;
                count++;
                addresses[cur] = dmaAddr + offsets[i];
            }

            lengths[cur] = curLen;
            dmaAddr += ioLengths[i];
            if (length + offsets[i] < ioLengths[i])
            {
                curLen = 0;
            }
        }

        for (var i = 0; i < nents; i++)
        {
            k = Scatterlist.SetDma(k, k.SgTables[table.Id], i, addresses[i], lengths[i], $"{function} → iommu_dma_map_sg: __finalise_sg", ops);
        }

        return k;
    }

    /// <summary>
    /// iommu_dma_unmap_sg (v6.12): a list marked SG_DMA_SWIOTLB goes element by element through iommu_dma_unmap_page
    /// (iommu_dma_unmap_sg_swiotlb: sg_dma_address and sg_dma_len of each of the nents entries). Otherwise, iommu_dma_sync_sg_for_cpu on the nents elements
    /// given unless DMA_ATTR_SKIP_CPU_SYNC; the IOVA range runs from the first element's DMA address (when its length
    /// is not 0) to the end of the last DMA segment among those nents elements before one of length 0, and
    /// __iommu_dma_unmap takes that span. The CPU-side syncs use the nents passed in: a driver that passes the count
    /// dma_map_sg returned (the merged segments) leaves the other elements unsynced.
    /// </summary>
    private static DmaState IommuDmaUnmapSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, DmaAttrs attrs, string function, List<HwOp> ops, List<Finding> findings)
    {
        var via = IommuVia(function, "iommu_dma_unmap_sg");
        var domain = DomainOf(env, s, dev, function);
        if (table.Entries[0].DmaSwiotlb)
        {
            return UnmapSgEntries(env, s, dev, table, nents, dir, attrs, function, ops, findings, IommuDmaUnmapPage);
        }

        if ((attrs & DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC) == 0)
        {
            IommuDmaSyncSgForCpu(env, s, dev, table, nents, dir, $"{via} → iommu_dma_sync_sg_for_cpu", ops);
        }

        if (nents == 0 || table.Entries[0].DmaLength == 0)
        {
            return s;
        }

        var start = table.Entries[0].DmaAddress;
        var end = 0UL;
        for (var i = 0; i < nents && table.Entries[i].DmaLength != 0; i++)
        {
            end = table.Entries[i].DmaAddress + table.Entries[i].DmaLength;
        }

        s = IommuDmaUnmap(s, domain, dev, start, end - start, via, findings);
        var lo = start - domain.Offset(start);
        var hi = domain.Align(end);
        return s with { Mappings = s.Mappings.RemoveAll(m => m.Device == dev.Name && m.Handle >= lo && m.Handle < hi) };
    }

    /// <summary>iommu_dma_sync_sg_for_cpu (v6.12) for a list that did not bounce: arch_sync_dma_for_cpu on each element's sg_phys and length, for a non-coherent device.</summary>
    private static void IommuDmaSyncSgForCpu(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string via, List<HwOp> ops)
    {
        if (dev.Coherent)
        {
            return;
        }

        for (var i = 0; i < nents; i++)
        {
            ArchSyncDmaForCpu(env, s.Kernel, table.Entries[i].Phys, table.Entries[i].Length, dir, via, ops);
        }
    }

    /// <summary>iommu_dma_sync_sg_for_device (v6.12) for a list that did not bounce: arch_sync_dma_for_device on each element's sg_phys and length, for a non-coherent device.</summary>
    private static void IommuDmaSyncSgForDevice(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, string via, List<HwOp> ops)
    {
        if (dev.Coherent)
        {
            return;
        }

        for (var i = 0; i < nents; i++)
        {
            ArchSyncDmaForDevice(env, s.Kernel, table.Entries[i].Phys, table.Entries[i].Length, dir, via, ops);
        }
    }

    /// <summary>
    /// The sg syncs of a device in an IOMMU DMA domain (iommu_dma_sync_sg_for_cpu / _for_device, v6.12): for a list
    /// iommu-dma bounced (SG_DMA_SWIOTLB), what <see cref="Switches.IommuSyncSgBounce"/> says: since 08ae5d4a1ae9
    /// iommu_dma_sync_single_for_* on each element's sg_dma_address and sg-&gt;length (the bounce slot's maintenance
    /// and copy), before it (v5.11..v5.15) the arch maintenance on each element's sg_phys for a non-coherent device and
    /// a swiotlb copy only when sg_phys is a swiotlb address (never, for a bounced element: nothing is copied). Any
    /// other list: the arch maintenance on each sg_phys.
    /// </summary>
    private static DmaState IommuSyncSg(DmaEnvironment env, DmaState s, DmaDevice dev, SgTable table, int nents, DmaDirection dir, bool forCpu, string function, List<HwOp> ops, List<Finding> findings)
    {
        DomainOf(env, s, dev, function);
        var via = IommuVia(function, forCpu ? "iommu_dma_sync_sg_for_cpu" : "iommu_dma_sync_sg_for_device");
        if (nents > 0 && table.Entries[0].DmaSwiotlb)
        {
            var how = $"[{Switches.IommuSyncSgBounce.Key}={env.Profile.Value(Switches.IommuSyncSgBounce)}]";
            if (env.IommuSyncSgBounce == IommuSyncSgBounceMode.SgPhys)
            {
                for (var i = 0; i < nents; i++)
                {
                    var phys = table.Entries[i].Phys;
                    if (s.Swiotlb is { } pool && pool.Contains(phys))
                    {
                        throw new NotModelledException($"{via} {how}: element {i}'s sg_phys 0x{phys:x} is itself a swiotlb address; the old sync's copy from it is not modelled");
                    }
                }

                if (!dev.Coherent)
                {
                    for (var i = 0; i < nents; i++)
                    {
                        if (forCpu)
                        {
                            ArchSyncDmaForCpu(env, s.Kernel, table.Entries[i].Phys, table.Entries[i].Length, dir, $"{via} {how}", ops);
                        }
                        else
                        {
                            ArchSyncDmaForDevice(env, s.Kernel, table.Entries[i].Phys, table.Entries[i].Length, dir, $"{via} {how}", ops);
                        }
                    }
                }

                return s;
            }

            for (var i = 0; i < nents; i++)
            {
                var e = table.Entries[i];
                if (forCpu)
                {
                    IommuDmaSyncSingleForCpu(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
                }
                else
                {
                    s = IommuDmaSyncSingleForDevice(env, s, dev, e.DmaAddress, e.Length, dir, function, ops, findings);
                }
            }

            return s;
        }

        if (forCpu)
        {
            IommuDmaSyncSgForCpu(env, s, dev, table, nents, dir, via, ops);
        }
        else
        {
            IommuDmaSyncSgForDevice(env, s, dev, table, nents, dir, via, ops);
        }

        return s;
    }
}
