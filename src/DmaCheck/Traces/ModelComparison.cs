using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Traces;

/// <summary>One streaming map where the model and the real kernel disagree.</summary>
/// <param name="ModelBounces">What the model predicts: the map bounces through swiotlb.</param>
/// <param name="KernelBounced">What the kernel did: a swiotlb_bounced event for the buffer before the map, or a dma_addr other than phys_addr.</param>
public sealed record ModelDisagreement(long Line, string Timestamp, string Device, string Event, DmaDirection? Direction, ulong Size, ulong Phys, ulong DmaAddr, bool ModelBounces, bool KernelBounced, bool ModelMapError, bool KernelMapError);

/// <summary>One bounce whose slot in the model's pool is not where the real kernel's was, relative to the first bounce of the trace.</summary>
/// <param name="KernelOffset">The real bounce address (dma_addr) less the real pool's start as the first bounce anchors it; null when the model's pool had no room (swiotlb_find_slots failed).</param>
/// <param name="ModelOffset">The model's bounce address less its pool's start.</param>
public sealed record SlotDisagreement(long Line, string Timestamp, string Device, ulong Size, ulong Phys, ulong DmaAddr, ulong KernelOffset, ulong? ModelOffset);

/// <summary>The result of setting the model's decisions against a real trace.</summary>
/// <param name="SlotsCompared">Bounces both sides made whose slot was compared (all but the first, which anchors the real pool's start).</param>
public sealed record ModelComparisonResult(string Profile, bool DeviceCoherent, int Maps, int ModelBounces, int KernelBounces, int ModelMapErrors, int KernelMapErrors, int NotCompared, IReadOnlyList<ModelDisagreement> Disagreements,
    int SlotsCompared = 0, IReadOnlyList<SlotDisagreement>? SlotDisagreements = null);

/// <summary>
/// Issue 18, item 7: the model against the real kernel. For every dma_map_page/dma_map_phys of a trace, the Dma
/// layer's decision (<see cref="DmaApi.DmaKmallocNeedsBounce"/>, dma_direct_map_page's v6.5 kmalloc bounce, and
/// whether a bounce without a swiotlb pool would make dma_mapping_error fire) is set against what the kernel did:
/// bounced (a swiotlb_bounced event for the buffer, or dma_addr differing from phys_addr) or not, failed
/// (dma_addr == DMA_MAPPING_ERROR) or not. The device's coherence is not in the trace: the caller gives it (the DT
/// the trace was recorded with). The DMA mask is taken as reaching every address (the traces' swiotlb_bounced events
/// print dma_mask=ffffffffffffffff), so dma_capable() never bounces here. Maps with DMA_ATTR_SKIP_CPU_SYNC are not
/// compared: a change after v6.5 (dma_kmalloc_safe) exempts them, and the model follows v6.5.
/// The slots are compared too: every bounce both sides make is placed in the model's own pool
/// (<see cref="SwiotlbPool.Allocate"/>, swiotlb_area_find_slots), and released at its unmap, and its address in the
/// pool is set against the real dma_addr. The real pool's start is not in the trace, so the first bounce anchors it
/// (it is taken to sit where the model put it); every later one must then be at the same offset.
/// </summary>
public static class ModelComparison
{
    /// <summary>Boots the profile's kernel as a scenario would: its kmalloc bouncing switch, and __kmalloc_minalign() as the Scenarios layer's Binder sets it (8 once arm64 v6.5's swiotlb pool exists).</summary>
    internal static KernelState Kernel(KernelProfile profile, HardwareConfig hardware)
    {
        var bounce = profile.Has(Switches.KmallocBounce) && profile.Value(Switches.KmallocBounce) == "on";
        var config = new KernelConfig(KmallocBounce: bounce, Cache: DmaAlignment.For(profile));
        return KernelState.Boot(profile.Layout, config with { KmallocMinalign = DmaAlignment.KmallocMinalign(profile, config, hardware) }, hardware);
    }

    public static ModelComparisonResult Compare(Stream input, string file, KernelProfile profile, bool deviceCoherent)
    {
        var hardware = new HardwareConfig(LineSize: 64); // cortex-a57 under QEMU: CTR_EL0.CWG gives 64-byte lines
        var kernel = Kernel(profile, hardware);
        var pool = kernel.Config.SwiotlbMode(profile.Layout) != SwiotlbBoot.Off;
        var pending = new Dictionary<(string, ulong), int>();
        var swiotlb = DmaState.Boot(kernel).Swiotlb;
        ulong? kernelPoolStart = null;
        var liveBounces = new Dictionary<(string, ulong), Queue<SwiotlbAllocation>>();
        var slotDisagreements = new List<SlotDisagreement>();
        var slotsCompared = 0;
        var disagreements = new List<ModelDisagreement>();
        int maps = 0, modelBounces = 0, kernelBounces = 0, modelErrors = 0, kernelErrors = 0, notCompared = 0;
        TraceReader.Read(input, file, e =>
        {
            if (e.Kind == TraceEventKind.SwiotlbBounced)
            {
                pending[(e.Device, e.DmaAddr)] = pending.GetValueOrDefault((e.Device, e.DmaAddr)) + 1;
                return;
            }

            if (e.Kind == TraceEventKind.Unmap && liveBounces.TryGetValue((e.Device, e.DmaAddr), out var queue) && swiotlb is not null)
            {
                // swiotlb_tbl_unmap_single → swiotlb_release_slots
                swiotlb = swiotlb.Release(queue.Dequeue());
                if (queue.Count == 0)
                {
                    liveBounces.Remove((e.Device, e.DmaAddr));
                }

                return;
            }

            if (e.Kind != TraceEventKind.Map || e.Phys is not { } phys)
            {
                return;
            }

            maps++;
            var bouncedEvent = pending.TryGetValue((e.Device, phys), out var n) && n > 0;
            if (bouncedEvent)
            {
                pending[(e.Device, phys)] = n - 1;
            }

            var kernelError = e.DmaAddr == DmaApi.DmaMappingError;
            var kernelBounced = !kernelError && (bouncedEvent || e.DmaAddr != phys);
            if (e.Attrs.Contains("SKIP_CPU_SYNC", StringComparison.Ordinal) || e.Direction is not { } dir)
            {
                notCompared++;
                return;
            }

            var device = new DmaDevice(e.Device, deviceCoherent, DmaMaskBits: 64);
            var modelBounce = DmaApi.DmaKmallocNeedsBounce(kernel, device, e.Size, dir);
            var modelError = modelBounce && !pool;
            modelBounces += modelBounce && !modelError ? 1 : 0;
            kernelBounces += kernelBounced ? 1 : 0;
            modelErrors += modelError ? 1 : 0;
            kernelErrors += kernelError ? 1 : 0;
            if (modelBounce && !modelError && kernelBounced && swiotlb is not null)
            {
                Slot(e, device, phys);
            }

            if ((modelBounce && !modelError) != kernelBounced || modelError != kernelError)
            {
                disagreements.Add(new ModelDisagreement(e.Line, e.Timestamp, e.Device, e.Name, e.Direction, e.Size, phys, e.DmaAddr, modelBounce && !modelError, kernelBounced, modelError, kernelError));
            }
        });
        return new ModelComparisonResult(profile.Name, deviceCoherent, maps, modelBounces, kernelBounces, modelErrors, kernelErrors, notCompared, disagreements, slotsCompared, slotDisagreements);

        // swiotlb_tbl_map_single → swiotlb_find_slots in the model's pool, against the kernel's bounce address.
        void Slot(TraceEvent e, DmaDevice device, ulong phys)
        {
            var next = swiotlb!.Allocate(device, phys, e.Size, $"{e.Name}({e.Device}) at line {e.Line}", out var allocation);
            if (next is null)
            {
                slotsCompared++;
                slotDisagreements.Add(new SlotDisagreement(e.Line, e.Timestamp, e.Device, e.Size, phys, e.DmaAddr, e.DmaAddr - (kernelPoolStart ?? e.DmaAddr), null));
                return;
            }

            swiotlb = next;
            var modelOffset = swiotlb.SlotAddress(allocation.Index) + allocation.Offset - swiotlb.Start;
            if (kernelPoolStart is not { } start)
            {
                kernelPoolStart = e.DmaAddr - modelOffset;
            }
            else
            {
                slotsCompared++;
                if (e.DmaAddr - start != modelOffset)
                {
                    slotDisagreements.Add(new SlotDisagreement(e.Line, e.Timestamp, e.Device, e.Size, phys, e.DmaAddr, e.DmaAddr - start, modelOffset));
                }
            }

            if (!liveBounces.TryGetValue((e.Device, e.DmaAddr), out var q))
            {
                q = new Queue<SwiotlbAllocation>();
                liveBounces[(e.Device, e.DmaAddr)] = q;
            }

            q.Enqueue(allocation);
        }
    }
}
