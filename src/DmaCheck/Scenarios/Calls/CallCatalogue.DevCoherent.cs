using DmaCheck.Dma;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

/// <summary>
/// <c>dma_declare_coherent_memory(dev, phys, device_addr, size)</c> (Kind Declare), <c>of_reserved_mem_device_init(dev)</c>
/// (FromReserved) or <c>dma_release_coherent_memory(dev)</c> (Release).
/// </summary>
public sealed record DevPoolStmt(SourceSpan Span, string Text, string? Target, DevPoolKind Kind, DmaDevice Device, ValueExpr? Phys = null, ValueExpr? DeviceAddr = null, ValueExpr? Size = null)
    : Statement(Span, Text), IDeviceStatement;

public enum DevPoolKind
{
    Declare,
    FromReserved,
    Release,
}

public static partial class CallCatalogue
{
    // ---- kernel/dma/coherent.c: per-device coherent pools ----

    /// <summary>A pool's WC mapping, its record on the device, and the coherent buffers carved from it.</summary>
    private static Footprint DevPoolFootprint => Fp(P.Variables | P.PageAllocator, P.PageTables | P.CoherentBuffers | P.Variables);

    private static IEnumerable<CallEntry> DevCoherentCalls()
    {
        const string why = "the generator's scenarios give no device a coherent pool of its own";
        yield return Entry("dma_declare_coherent_memory", new CallSignature(ResultKind.OptionalNumber, ParamKind.Device, ParamKind.PhysAddress, ParamKind.Handle, ParamKind.Size),
            c =>
            {
                c.Arity(4);
                return new DevPoolStmt(c.Span, c.Text, c.OptionalTarget(), DevPoolKind.Declare, c.Device(0), c.Expr(1), c.Expr(2), c.Expr(3));
            },
            d => [d.Phys!, d.DeviceAddr!, d.Size!], DevPool, DevPoolFootprint, CallGeneration.Not(why));
        yield return Entry("of_reserved_mem_device_init", new CallSignature(ResultKind.OptionalNumber, ParamKind.Device),
            c =>
            {
                c.Arity(1);
                var dev = c.Device(0);
                if (dev.MemoryRegion is null)
                {
                    throw c.Error(c.FunctionToken, $"device '{dev.Name}' has no memory-region: declare it with {{ ..., memory-region = NAME }} naming a reserved-memory node");
                }

                return new DevPoolStmt(c.Span, c.Text, c.OptionalTarget(), DevPoolKind.FromReserved, dev);
            },
            _ => [], DevPool, DevPoolFootprint, CallGeneration.Not(why));
        yield return Entry("dma_release_coherent_memory", new CallSignature(ResultKind.None, ParamKind.Device),
            c =>
            {
                c.Arity(1);
                c.NoTarget();
                return new DevPoolStmt(c.Span, c.Text, null, DevPoolKind.Release, c.Device(0));
            },
            _ => [], DevPool, DevPoolFootprint, CallGeneration.Not(why));
    }

    /// <summary>The three calls of kernel/dma/coherent.c (v6.4) a driver makes (<see cref="DevCoherent"/>). A failure stops the agent: the driver checks the return value.</summary>
    private static StepOutcome DevPool(StepContext c, DevPoolStmt d)
    {
        var s = c.S;
        var origin = $"{c.Program.Name}: {d.Text}";
        DmaState? next;
        string? error = null;
        switch (d.Kind)
        {
            case DevPoolKind.Declare:
                if (c.IsVirtualAddress(d.Phys!))
                {
                    throw c.Bad($"dma_declare_coherent_memory takes a physical address: '{d.Phys!.Text}' is a kernel virtual address");
                }

                next = DevCoherent.Declare(s.Dma, d.Device, c.Number(d.Phys!), c.Number(d.DeviceAddr!), c.Number(d.Size!), origin, c.Ops, out error);
                break;
            case DevPoolKind.FromReserved:
                next = DevCoherent.InitFromReserved(s.Dma, d.Device, s.Dma.Kernel.ReservedMemory[d.Device.MemoryRegion!], s.Dma.Kernel.Layout.Arch == Kernel.Arch.Arm32, origin, c.Ops, out error);
                break;
            default:
                next = DevCoherent.Release(s.Dma, d.Device, origin, c.Ops);
                break;
        }

        if (next is null)
        {
            return new StepOutcome(s, $"{error}; the driver gives up");
        }

        var after = s.With(dma: next);
        return d.Target is null ? after : after.With(vars: after.Vars.SetItem(d.Target, new NumberValue(0)));
    }
}
