namespace DmaCheck.Scenarios;

/// <summary><c>dma_sync_single_range_for_cpu(dev, h, offset, size, dir)</c> (Kind ForCpu) or <c>dma_sync_single_range_for_device</c> (ForDevice).</summary>
public sealed record SyncRangeStmt(SourceSpan Span, string Text, string Function, SyncKind Kind, Dma.DmaDevice Device, ValueExpr Handle, ValueExpr Offset, ValueExpr Size, Dma.DmaDirection Direction)
    : Statement(Span, Text), IDeviceStatement;

public static partial class CallCatalogue
{
    // ---- dma_sync_single_range_for_cpu / _for_device: a part of a streaming mapping ----

    private static IEnumerable<CallEntry> RangeSyncCalls()
    {
        foreach (var (name, kind, footprint, generation) in new[]
        {
            ("dma_sync_single_range_for_cpu", SyncKind.ForCpu, SyncForCpuFootprint, CallGeneration.Not("the generator syncs whole mappings")),
            ("dma_sync_single_range_for_device", SyncKind.ForDevice, SyncForDeviceFootprint, CallGeneration.Not("the generator syncs whole mappings")),
        })
        {
            yield return Entry(name, new CallSignature(ResultKind.None, ParamKind.Device, ParamKind.Handle, ParamKind.Offset, ParamKind.Size, ParamKind.Direction),
                c =>
                {
                    c.Arity(5);
                    c.NoTarget();
                    return new SyncRangeStmt(c.Span, c.Text, c.Function, kind, c.Device(0), c.Expr(1), c.Expr(2), c.Expr(3), c.Direction(4));
                },
                y => [y.Handle, y.Offset, y.Size], SyncRange, footprint, generation);
        }
    }

    private static StepOutcome SyncRange(StepContext c, SyncRangeStmt y)
    {
        var handle = c.Number(y.Handle);
        var offset = c.Number(y.Offset);
        var size = c.Number(y.Size);
        var s = c.S;
        var (dma, debug) = y.Kind == SyncKind.ForCpu
            ? (s.Dma, c.Dma.SyncSingleRangeForCpu(s.Dma, s.Debug, y.Device, handle, offset, size, y.Direction, y.Function, c.Ops, c.Findings))
            : c.Dma.SyncSingleRangeForDevice(s.Dma, s.Debug, y.Device, handle, offset, size, y.Direction, y.Function, c.Ops, c.Findings);
        return s.With(dma: dma, debug: debug);
    }
}
