using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>
/// A per-device coherent memory pool (kernel/dma/coherent.c, v6.4: struct dma_coherent_mem): memory set aside for one
/// device, mapped write-combined (MEMREMAP_WC) at <see cref="VirtBase"/>, and carved in power-of-two runs of pages by a
/// bitmap.
/// </summary>
/// <param name="DeviceBase">The DMA address of the pool's first byte, for a pool declared with dma_declare_coherent_memory.</param>
/// <param name="UseDevDmaPfnOffset">A reserved-memory pool: its DMA addresses are phys_to_dma of its pages (dma_get_device_base).</param>
/// <param name="Allocated">Live allocations: first page → order.</param>
/// <param name="Region">The reserved-memory node it was made from, if any.</param>
public sealed record DevCoherentPool(ulong VirtBase, ulong DeviceBase, ulong PhysBase, int Pages, bool UseDevDmaPfnOffset, ImmutableSortedDictionary<int, int> Allocated, string? Region = null)
{
    public bool Contains(ulong va) => va >= VirtBase && va - VirtBase < (ulong)Pages << PlatformLayout.PageShift;

    private bool Free(int first, int count) => Allocated.All(a => a.Key + (1 << a.Value) <= first || first + count <= a.Key);

    /// <summary>bitmap_find_free_region(bitmap, size, order): the first free run of 2^order pages aligned to its size; -1 when none.</summary>
    public int FindFreeRegion(int order)
    {
        var count = 1 << order;
        for (var pos = 0; pos + count <= Pages; pos += count)
        {
            if (Free(pos, count))
            {
                return pos;
            }
        }

        return -1;
    }
}

/// <summary>
/// kernel/dma/coherent.c (v6.4): per-device coherent pools. dma_alloc_attrs tries the device's pool first
/// (dma_alloc_from_dev_coherent) and, when the device has one, never falls back to the page allocator; dma_free_attrs
/// gives pool memory back first (dma_release_from_dev_coherent). Neither calls the dma-debug hooks on that path.
/// </summary>
public static class DevCoherent
{
    /// <summary>
    /// dma_init_coherent_memory(phys_addr, device_addr, size, use_dma_pfn_offset): memremap(phys_addr, size,
    /// MEMREMAP_WC) and an empty bitmap; null with <paramref name="error"/> when memremap fails ("Reserved memory: failed
    /// to init DMA memory pool", -EINVAL).
    /// </summary>
    public static DevCoherentPool? InitCoherentMemory(ref KernelState k, ulong phys, ulong deviceAddr, ulong size, bool useDmaPfnOffset, string? region, string origin,
        List<HwOp> ops, out string? error)
    {
        error = null;
        if (size == 0 || size % PlatformLayout.PageSize != 0 || phys % PlatformLayout.PageSize != 0)
        {
            error = $"a coherent pool of 0x{size:x} bytes at PA 0x{phys:x}: this model takes whole, page-aligned pages";
            return null;
        }

        k = Memremap.Map(k, phys, size, MemremapFlags.MEMREMAP_WC, origin, ops, out var va, out var warning);
        if (warning is not null)
        {
            error = $"{warning}; \"Reserved memory: failed to init DMA memory pool at 0x{phys:x}\" (-EINVAL)";
            return null;
        }

        return new DevCoherentPool(va, deviceAddr, phys, (int)(size >> PlatformLayout.PageShift), useDmaPfnOffset, ImmutableSortedDictionary<int, int>.Empty, region);
    }

    /// <summary>
    /// dma_declare_coherent_memory(dev, phys_addr, device_addr, size): a pool for <paramref name="dev"/>; -EBUSY when it
    /// has one already (dma_assign_coherent_memory), and then the new pool is released again. Null with
    /// <paramref name="error"/> on failure.
    /// </summary>
    public static DmaState? Declare(DmaState s, DmaDevice dev, ulong phys, ulong deviceAddr, ulong size, string origin, List<HwOp> ops, out string? error)
    {
        var k = s.Kernel;
        if (InitCoherentMemory(ref k, phys, deviceAddr, size, false, null, origin, ops, out error) is not { } pool)
        {
            return null;
        }

        if (s.DevPools.ContainsKey(dev.Name))
        {
            k = Memremap.Unmap(k, pool.VirtBase, origin, ops); // _dma_release_coherent_memory
            error = $"dma_declare_coherent_memory({dev.Name}) returns -EBUSY: the device already has a coherent pool (dev->dma_mem)";
            return null;
        }

        return s with { Kernel = k, DevPools = s.DevPools.Add(dev.Name, pool) };
    }

    /// <summary>
    /// of_reserved_mem_device_init(dev) on a "shared-dma-pool" node: rmem_dma_device_init makes the pool once per region
    /// (dma_init_coherent_memory(rmem->base, rmem->base, rmem->size, true)) and assigns it to the device. On 32-bit arm,
    /// rmem_dma_setup refused regions without no-map at boot ("Reserved memory: regions without no-map are not yet
    /// supported"), so the device gets no pool (-EINVAL here). A second device on the same region shares the pool in the
    /// kernel; that is not modelled.
    /// </summary>
    public static DmaState? InitFromReserved(DmaState s, DmaDevice dev, ReservedRegion region, bool arm32, string origin, List<HwOp> ops, out string? error)
    {
        error = null;
        if (arm32 && !region.NoMap)
        {
            error = $"of_reserved_mem_device_init({dev.Name}) returns -ENODEV: rmem_dma_setup refused {region.Name} at boot (\"Reserved memory: regions without no-map are not yet supported\", 32-bit arm)";
            return null;
        }

        if (s.DevPools.Values.Any(p => p.Region == region.Name))
        {
            throw new NotModelledException($"a second device on the shared-dma-pool {region.Name} (the pool, rmem->priv, is shared between them)");
        }

        if (s.DevPools.ContainsKey(dev.Name))
        {
            error = $"of_reserved_mem_device_init({dev.Name}): the device already has a coherent pool (dev->dma_mem)";
            return null;
        }

        var k = s.Kernel;
        if (InitCoherentMemory(ref k, region.Pa, region.Pa, region.Size, true, region.Name, origin, ops, out error) is not { } pool)
        {
            return null;
        }

        return s with { Kernel = k, DevPools = s.DevPools.Add(dev.Name, pool) };
    }

    /// <summary>
    /// dma_release_coherent_memory(dev) (e61c451476e6, v6.0) and of_reserved_mem_device_release's part of it: the pool is
    /// unmapped and the device has none; nothing when it had none.
    /// </summary>
    public static DmaState Release(DmaState s, DmaDevice dev, string origin, List<HwOp> ops)
    {
        if (!s.DevPools.TryGetValue(dev.Name, out var pool))
        {
            return s;
        }

        return s with
        {
            Kernel = Memremap.Unmap(s.Kernel, pool.VirtBase, origin, ops),
            DevPools = s.DevPools.Remove(dev.Name),
            Coherent = s.Coherent.RemoveAll(c => c.Source == CoherentSource.DevCoherent && pool.Contains(c.CpuAddr)),
        };
    }

    /// <summary>
    /// dma_alloc_from_dev_coherent(dev, size, &amp;handle, &amp;ret): null when the device has no pool (the caller goes on to
    /// the DMA ops); otherwise the state after __dma_alloc_from_coherent, which finds a free run of get_order(size) pages
    /// (cpu 0, NULL, when none), and clears the allocation through the pool's write-combined mapping (memset).
    /// </summary>
    public static DmaState? TryAlloc(DmaState s, DmaDevice dev, ulong size, List<HwOp> ops, out ulong cpu, out ulong handle)
    {
        cpu = 0;
        handle = DmaApi.DmaMappingError;
        if (!s.DevPools.TryGetValue(dev.Name, out var pool))
        {
            return null;
        }

        var order = PlatformLayout.GetOrder(PlatformLayout.PageAlign(size));
        if (size > (ulong)pool.Pages << PlatformLayout.PageShift || pool.FindFreeRegion(order) is var pageno && pageno < 0)
        {
            return s;
        }

        var offset = (ulong)pageno << PlatformLayout.PageShift;
        var layout = s.Kernel.Layout;
        handle = (pool.UseDevDmaPfnOffset ? layout.PhysToDma(pool.PhysBase) : pool.DeviceBase) + offset;
        cpu = pool.VirtBase + offset;
        s.Kernel.CpuStore(cpu, size, WriterTable.Zero, "__dma_alloc_from_coherent: memset(ret, 0, size) through the pool's MEMREMAP_WC mapping", ops);
        var pfn = (pool.PhysBase + offset) >> PlatformLayout.PageShift;
        return s with
        {
            DevPools = s.DevPools.SetItem(dev.Name, pool with { Allocated = pool.Allocated.Add(pageno, order) }),
            Coherent = s.Coherent.Add(new CoherentAllocation(dev.Name, cpu, handle, size, pfn, order, CoherentSource.DevCoherent)),
        };
    }

    /// <summary>
    /// dma_release_from_dev_coherent(dev, order, vaddr): null when <paramref name="cpu"/> is not in the device's pool (the
    /// caller goes on to the DMA ops); otherwise bitmap_release_region of the run it starts.
    /// </summary>
    public static DmaState? TryRelease(DmaState s, DmaDevice dev, ulong size, ulong cpu)
    {
        if (!s.DevPools.TryGetValue(dev.Name, out var pool) || !pool.Contains(cpu))
        {
            return null;
        }

        var page = (int)((cpu - pool.VirtBase) >> PlatformLayout.PageShift);
        return s with
        {
            DevPools = s.DevPools.SetItem(dev.Name, pool with { Allocated = pool.Allocated.Remove(page) }),
            Coherent = s.Coherent.RemoveAll(c => c.Source == CoherentSource.DevCoherent && c.Device == dev.Name && c.CpuAddr == cpu),
        };
    }

    /// <summary>Whether <paramref name="cpu"/> lies in <paramref name="dev"/>'s pool.</summary>
    public static bool InPool(DmaState s, DmaDevice dev, ulong cpu) => s.DevPools.TryGetValue(dev.Name, out var pool) && pool.Contains(cpu);
}
