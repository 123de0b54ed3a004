using System.Collections.Immutable;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Dma;

/// <summary>enum dma_data_direction.</summary>
public enum DmaDirection : byte
{
    DMA_BIDIRECTIONAL = 0,
    DMA_TO_DEVICE = 1,
    DMA_FROM_DEVICE = 2,
    DMA_NONE = 3,
}

/// <summary>DMA_ATTR_* (include/linux/dma-mapping.h). Only the ones the model acts on are accepted in scenarios.</summary>
[Flags]
public enum DmaAttrs : uint
{
    None = 0,
    DMA_ATTR_WRITE_COMBINE = 1 << 2,
    DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4,
    DMA_ATTR_SKIP_CPU_SYNC = 1 << 5,

    /// <summary>Physically contiguous pages for a coherent buffer: iommu_dma_alloc skips its page-by-page remap (dma-direct and arm32's non-IOMMU allocator ignore it).</summary>
    DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6,
    DMA_ATTR_NO_WARN = 1 << 8,

    /// <summary>ddbd89deb7d3 (v5.17-rc6) .. aa6f8dcbab47 (v5.17-rc8), and again from the revert bddac7c1e02b to 901c7280ca0d (v5.18 merge window): "the device overwrites the whole FROM_DEVICE buffer", so swiotlb need not bounce it at map. Removed since.</summary>
    DMA_ATTR_OVERWRITE = 1 << 10,
}

/// <summary>A device as the DMA API sees it. <see cref="Coherent"/> is dev_is_dma_coherent(): "dma-coherent" in DT.</summary>
/// <param name="DmaMaskBits">*dev->dma_mask as a number of address bits (dma_set_mask(dev, DMA_BIT_MASK(n))).</param>
/// <param name="MinAlignMask">dma_set_min_align_mask(): low address bits a bounce buffer must keep (NVMe: 4 KiB - 1).</param>
/// <param name="MaxSegSize">dma_get_max_seg_size(): dma_parms-&gt;max_segment_size, or SZ_64K when it is unset (include/linux/dma-mapping.h, v5.10..v6.5).</param>
/// <param name="SegBoundaryMask">dma_get_seg_boundary(): dma_parms-&gt;segment_boundary_mask, or ULONG_MAX when it is unset (since v5.10; DMA_BIT_MASK(32) before).</param>
/// <param name="Iommu">The IOMMU the device sits behind (DT <c>iommus</c>) and its default domain; null for none.</param>
public sealed record DmaDevice(string Name, bool Coherent, int DmaMaskBits = 32, ulong MinAlignMask = 0, ulong MaxSegSize = DmaDevice.DefaultMaxSegSize, ulong SegBoundaryMask = ulong.MaxValue,
    DeviceIommu? Iommu = null)
{
    /// <summary>SZ_64K: what dma_get_max_seg_size returns for a device without dma_parms-&gt;max_segment_size.</summary>
    public const ulong DefaultMaxSegSize = 65536;

    /// <summary>DMA_BIT_MASK(DmaMaskBits).</summary>
    public ulong DmaMask => DmaMaskBits >= 64 ? ulong.MaxValue : (1UL << DmaMaskBits) - 1;

    /// <summary>The reserved-memory node the device's DT <c>memory-region</c> phandle names (of_reserved_mem_device_init), if any.</summary>
    public string? MemoryRegion { get; init; }

    /// <summary>
    /// The VM (a Qualcomm VMID, Kernel.ScmVmids) whose master the device is, when it is not HLOS's: its accesses to memory
    /// qcom_scm_assign_mem gave to that VM are allowed (a remote processor such as the modem's MBA).
    /// </summary>
    public string? Vmid { get; init; }
}

/// <summary>A live streaming mapping (what dma-debug would record).</summary>
/// <param name="Phys">The buffer's physical address.</param>
/// <param name="Tlb">For a bounced mapping, the swiotlb bounce address the device uses; null when the device uses the buffer itself.</param>
/// <param name="Stale">For a bounced mapping, the byte ranges [lo, hi) of the bounce slots that still hold whatever the pool held before this mapping (neither copied from the buffer nor written by the device).</param>
public sealed record StreamingMapping(string Device, ulong Handle, ulong Phys, ulong Size, DmaDirection Direction, string Function, ulong? Tlb = null, ImmutableList<(ulong Lo, ulong Hi)>? Stale = null)
{
    /// <summary>The order <see cref="DmaState.Mappings"/> is kept in (<see cref="CanonicalList"/>): by handle, buffer, size and device.</summary>
    public static int Order(StreamingMapping a, StreamingMapping b)
    {
        var c = a.Handle.CompareTo(b.Handle);
        c = c != 0 ? c : a.Phys.CompareTo(b.Phys);
        c = c != 0 ? c : a.Size.CompareTo(b.Size);
        return c != 0 ? c : string.CompareOrdinal(a.Device, b.Device);
    }

    /// <summary>Removes [lo, hi) from <see cref="Stale"/>.</summary>
    public StreamingMapping Filled(ulong lo, ulong hi)
    {
        if (Stale is null || Stale.IsEmpty || hi <= lo)
        {
            return this;
        }

        var next = ImmutableList.CreateBuilder<(ulong, ulong)>();
        foreach (var (a, b) in Stale)
        {
            if (b <= lo || a >= hi)
            {
                next.Add((a, b));
                continue;
            }

            if (a < lo)
            {
                next.Add((a, lo));
            }

            if (b > hi)
            {
                next.Add((hi, b));
            }
        }

        return this with { Stale = next.ToImmutable() };
    }
}

/// <summary>Which allocator produced a coherent buffer (arm32 __dma_alloc's struct arm_dma_allocator, or dma-direct's paths).</summary>
public enum CoherentSource
{
    /// <summary>dma-direct: pages from the page allocator, linear map or remap.</summary>
    DirectPages,

    /// <summary>dma-direct's atomic pool (kernel/dma/pool.c).</summary>
    DirectPool,

    /// <summary>DMA_ATTR_NO_KERNEL_MAPPING: the cpu address is a struct page cookie.</summary>
    NoKernelMapping,

    /// <summary>arm32 remap_allocator.</summary>
    ArmRemap,

    /// <summary>arm32 pool_allocator.</summary>
    ArmPool,

    /// <summary>arm32 simple_allocator (coherent devices under arm_coherent_dma_ops).</summary>
    ArmSimple,

    /// <summary>The device's own coherent pool (kernel/dma/coherent.c, <see cref="DevCoherent"/>).</summary>
    DevCoherent,

    /// <summary>iommu_dma_alloc_remap: order-0 pages mapped at one IOVA range and vmapped (one physically contiguous run in this model).</summary>
    IommuRemap,

    /// <summary>iommu_dma_alloc from the atomic pool (dma_alloc_from_pool: a gfp that cannot block, non-coherent device), mapped at an IOVA range.</summary>
    IommuPool,

    /// <summary>iommu_dma_alloc_pages: CMA (dma_alloc_contiguous) or one alloc_pages block, remapped for a non-coherent device, mapped at an IOVA range.</summary>
    IommuPages,
}

/// <summary>A live coherent allocation.</summary>
public sealed record CoherentAllocation(string Device, ulong CpuAddr, ulong Handle, ulong Size, ulong Pfn, int Order, CoherentSource Source = CoherentSource.DirectPages);

/// <summary>
/// An atomic pool: pages prepared and mapped non-cacheable at boot, carved with a gen_pool of page granularity and
/// gen_pool_first_fit_order_align. Used both for dma-direct's pool (kernel/dma/pool.c) and arm32's
/// (arch/arm/mm/dma-mapping.c).
/// </summary>
/// <param name="Chunks">Live allocations: offset in the pool → bytes.</param>
public sealed record AtomicPool(ulong Va, ulong Pfn, ulong Size, ImmutableSortedDictionary<ulong, ulong> Chunks)
{
    public bool Contains(ulong va) => va >= Va && va - Va < Size;

    /// <summary>
    /// gen_pool_alloc with gen_pool_first_fit_order_align: the lowest free range of <paramref name="size"/> bytes
    /// (in whole pages) that starts at a multiple of the request's size rounded up to a power of two pages.
    /// </summary>
    public AtomicPool? Alloc(ulong size, out ulong offset)
    {
        var pages = (size + PlatformLayout.PageSize - 1) >> PlatformLayout.PageShift;
        var align = System.Numerics.BitOperations.RoundUpToPowerOf2(pages) << PlatformLayout.PageShift;
        size = pages << PlatformLayout.PageShift;
        offset = 0;
        foreach (var (start, bytes) in Chunks)
        {
            if (start >= offset && start - offset >= size)
            {
                break;
            }

            offset = Math.Max(offset, (start + bytes + align - 1) & ~(align - 1));
        }

        if (offset + size > Size)
        {
            return null;
        }

        return this with { Chunks = Chunks.Add(offset, size) };
    }

    /// <summary>gen_pool_free(pool, addr, size): BUG_ON when the range was not allocated (a double free or a wrong size).</summary>
    public AtomicPool Free(ulong offset, ulong size, string function)
    {
        var pages = (size + PlatformLayout.PageSize - 1) >> PlatformLayout.PageShift;
        if (!Chunks.TryGetValue(offset, out var bytes) || bytes != pages << PlatformLayout.PageShift)
        {
            throw new KernelBugException(function, bytes == 0 && !Chunks.ContainsKey(offset)
                ? $"gen_pool_free of pool offset 0x{offset:x}, which is not allocated (a double free): BUG_ON in gen_pool_free"
                : $"gen_pool_free of {pages} page(s) at pool offset 0x{offset:x}, allocated as {bytes >> PlatformLayout.PageShift}: BUG_ON in gen_pool_free");
        }

        return this with { Chunks = Chunks.Remove(offset) };
    }
}

/// <summary>The DMA layer's state over the kernel's: the memory-management state plus live mappings, allocations and pools. Immutable.</summary>
/// <param name="IommuDomains">The IOMMU DMA domains of the devices behind an IOMMU, by device name (<see cref="IommuDomain"/>); null before the first is used.</param>
public sealed record DmaState(KernelState Kernel, ImmutableList<StreamingMapping> Mappings, ImmutableList<CoherentAllocation> Coherent, AtomicPool? Pool = null, SwiotlbPool? Swiotlb = null,
    ImmutableSortedDictionary<string, IommuDomain>? IommuDomains = null)
{
    public static DmaState Boot(KernelState kernel) => new(kernel, [], [], null, SwiotlbPool.Boot(kernel));

    /// <summary>The per-device coherent pools (dev->dma_mem), by device name (<see cref="DevCoherent"/>).</summary>
    public ImmutableSortedDictionary<string, DevCoherentPool> DevPools { get; init; } = ImmutableSortedDictionary.Create<string, DevCoherentPool>(StringComparer.Ordinal);

    /// <summary>Who owns <paramref name="pfn"/>: inside the atomic pool, the coherent buffer carved from it (or nobody); elsewhere the page allocator's owner.</summary>
    public PageOwner OwnerOf(ulong pfn)
    {
        if (Pool is { } pool && pfn >= pool.Pfn && pfn - pool.Pfn < pool.Size >> PlatformLayout.PageShift)
        {
            var offset = (pfn - pool.Pfn) << PlatformLayout.PageShift;
            foreach (var (start, bytes) in pool.Chunks)
            {
                if (offset >= start && offset - start < bytes)
                {
                    var owner = Coherent.FirstOrDefault(c => c.Source is CoherentSource.DirectPool or CoherentSource.ArmPool or CoherentSource.IommuPool && c.Pfn == pool.Pfn + (start >> PlatformLayout.PageShift));
                    return new PageOwner(OwnerKind.Allocation, owner is null ? "the atomic DMA pool" : $"dma_alloc_coherent({owner.Device}) from the atomic pool at 0x{owner.CpuAddr:x}");
                }
            }

            return new PageOwner(OwnerKind.Free, "the atomic DMA pool");
        }

        return Kernel.OwnerOf(pfn);
    }
}

/// <summary>The switch values of one run, parsed once from the profile and the scenario's overrides into their enums (<see cref="SwitchValues"/>).</summary>
public sealed record DmaEnvironment(KernelProfile Profile)
{
    /// <summary><see cref="Switches.PrepCoherent"/>; null where the architecture has no such switch.</summary>
    public PrepCoherentMode? PrepCoherent { get; } = SwitchValues.PrepCoherent.OfOrNull(Profile);

    /// <summary><see cref="Switches.SyncForDeviceFromDevice"/>; null where the architecture has no such switch.</summary>
    public SyncForDeviceFromDeviceMode? SyncForDeviceFromDevice { get; } = SwitchValues.SyncForDeviceFromDevice.OfOrNull(Profile);

    public VaddrToPageMode CommonVaddrToPage { get; } = SwitchValues.CommonVaddrToPage.Of(Profile);

    public VaddrToPageMode XenFreeCoherentPage { get; } = SwitchValues.XenFreeCoherentPage.Of(Profile);

    public SwiotlbMapBounceMode SwiotlbMapBounce { get; } = SwitchValues.SwiotlbMapBounce.Of(Profile);

    public SwiotlbSyncForDeviceBounceMode SwiotlbSyncForDeviceBounce { get; } = SwitchValues.SwiotlbSyncForDeviceBounce.Of(Profile);

    public MapResourceRamCheckMode MapResourceRamCheck { get; } = SwitchValues.MapResourceRamCheck.Of(Profile);

    public SwiotlbSyncOffsetMode SwiotlbSyncOffset { get; } = SwitchValues.SwiotlbSyncOffset.Of(Profile);

    public SwiotlbSlotSearchMode SwiotlbSlotSearch { get; } = SwitchValues.SwiotlbSlotSearch.Of(Profile);

    public DmaMmapPgprotMode DmaMmapPgprot { get; } = SwitchValues.DmaMmapPgprot.Of(Profile);

    public XenArmAllocMode XenArmAlloc { get; } = SwitchValues.XenArmAlloc.Of(Profile);

    /// <summary><see cref="Switches.IommuBounceMapSync"/>; null where the architecture has no such switch.</summary>
    public IommuBounceMapSyncMode? IommuBounceMapSync { get; } = SwitchValues.IommuBounceMapSync.OfOrNull(Profile);

    /// <summary><see cref="Switches.IommuBouncePadding"/>; null where the architecture has no such switch.</summary>
    public IommuBouncePaddingMode? IommuBouncePadding { get; } = SwitchValues.IommuBouncePadding.OfOrNull(Profile);

    /// <summary><see cref="Switches.IommuBounceMapSize"/>; null where the architecture has no such switch.</summary>
    public IommuBounceMapSizeMode? IommuBounceMapSize { get; } = SwitchValues.IommuBounceMapSize.OfOrNull(Profile);

    /// <summary><see cref="Switches.IommuSyncSgBounce"/>; null where the architecture has no such switch.</summary>
    public IommuSyncSgBounceMode? IommuSyncSgBounce { get; } = SwitchValues.IommuSyncSgBounce.OfOrNull(Profile);

    /// <summary><see cref="Switches.Arm32DevToCpu"/>; null off 32-bit arm.</summary>
    public Arm32DevToCpuMode? Arm32DevToCpu { get; } = SwitchValues.Arm32DevToCpu.OfOrNull(Profile);

    /// <summary><see cref="Switches.MipsPostDmaFlush"/>; null off MIPS.</summary>
    public MipsPostDmaFlushMode? MipsPostDmaFlush { get; } = SwitchValues.MipsPostDmaFlush.OfOrNull(Profile);

    /// <summary><see cref="Switches.RiscvTheadClean"/>; null off RISC-V.</summary>
    public THeadClean? RiscvTheadClean { get; } = SwitchValues.RiscvTheadClean.OfOrNull(Profile);

    /// <summary><see cref="Switches.PpcFromDeviceUnaligned"/>; null off 32-bit powerpc.</summary>
    public PpcFromDeviceUnalignedMode? PpcFromDeviceUnaligned { get; } = SwitchValues.PpcFromDeviceUnaligned.OfOrNull(Profile);

    public bool PrepCoherentInvalidates => PrepCoherent == PrepCoherentMode.CleanInval;

    public bool FromDeviceMapInvalidates => SyncForDeviceFromDevice == SyncForDeviceFromDeviceMode.Inval;

    public bool CommonVaddrToPageIsVmallocAware => CommonVaddrToPage == VaddrToPageMode.VmallocAware;

    public bool XenFreeIsVmallocAware => XenFreeCoherentPage == VaddrToPageMode.VmallocAware;

    /// <summary>Whether dma_sync_*_for_device bounces whatever the direction (aa6f8dcbab47: v5.17-rc8 and v5.17, until its revert bddac7c1e02b).</summary>
    public bool SwiotlbSyncForDeviceAlwaysBounces => SwiotlbSyncForDeviceBounce == SwiotlbSyncForDeviceBounceMode.Always;

    /// <summary>
    /// get_dma_ops(dev) for every device of the profile: arm_dma_ops (arm_coherent_dma_ops) on 32-bit arm without
    /// LPAE, xen_swiotlb_dma_ops in a Xen dom0, else none (dma-direct).
    /// </summary>
    public DmaOpsKind Ops { get; } = Profile.ArmDmaOps ? DmaOpsKind.ArmDmaOps : Profile.XenDom0 ? DmaOpsKind.XenSwiotlb : DmaOpsKind.Direct;

    /// <summary>
    /// What <paramref name="dev"/>'s calls go to: iommu-dma for a device in an IOMMU DMA domain (use_dma_iommu(dev)
    /// from v6.10, iommu_dma_ops before), else get_dma_ops(dev), which is the profile's (<see cref="Ops"/>). A device
    /// in an identity domain (iommu.passthrough=1) uses the profile's, as without an IOMMU.
    /// </summary>
    public DmaOpsKind OpsFor(DmaDevice dev) => dev.Iommu is { Type: not IommuDomainType.Identity } ? DmaOpsKind.Iommu : Ops;

    public PlatformLayout Layout => Profile.Layout;
}

/// <summary>Which dma_map_ops the front end dispatches to (kernel/dma/mapping.c: dma_map_direct / dma_alloc_direct, else ops->...).</summary>
public enum DmaOpsKind
{
    /// <summary>No dma_map_ops: dma-direct (kernel/dma/direct.c).</summary>
    Direct,

    /// <summary>arm_dma_ops / arm_coherent_dma_ops (arch/arm/mm/dma-mapping.c).</summary>
    ArmDmaOps,

    /// <summary>xen_swiotlb_dma_ops (drivers/xen/swiotlb-xen.c).</summary>
    XenSwiotlb,

    /// <summary>iommu-dma (drivers/iommu/dma-iommu.c): a device in an IOMMU DMA domain.</summary>
    Iommu,
}
