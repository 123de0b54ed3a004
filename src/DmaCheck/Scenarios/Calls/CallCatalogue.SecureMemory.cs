using DmaCheck.Hardware;
using DmaCheck.Kernel;
using P = DmaCheck.Scenarios.StateParts;

namespace DmaCheck.Scenarios;

/// <summary>
/// <c>[r =] qcom_scm_assign_mem(phys, size, VMID)</c>: the range is given to <see cref="Vmid"/>, or back to HLOS. For an
/// assignment away from HLOS the binder adds the check <see cref="FaultVar"/> stands for: no CPU bus access reaches the
/// range while it is assigned.
/// </summary>
public sealed record ScmAssignStmt(SourceSpan Span, string Text, string? Target, ValueExpr Phys, ValueExpr Size, string Vmid, int FaultVar, byte FaultWriter)
    : Statement(Span, Text);

public static partial class CallCatalogue
{
    /// <summary>The name of the check a <c>qcom_scm_assign_mem</c> away from HLOS implies: <c>no-xpu-fault.L&lt;line&gt;</c>.</summary>
    public const string XpuCheckName = "no-xpu-fault";

    /// <summary>The writer whose bytes record a CPU bus access to memory assigned away.</summary>
    public const string XpuFaultWriter = "xpu-fault";

    // ---- drivers/firmware/qcom/qcom_scm.c: memory given to another security domain ----

    private static IEnumerable<CallEntry> SecureMemoryCalls()
    {
        yield return Entry("qcom_scm_assign_mem", new CallSignature(ResultKind.OptionalNumber, ParamKind.PhysAddress, ParamKind.Size, ParamKind.Number),
            c =>
            {
                c.Arity(3);
                var target = c.OptionalTarget();
                var vmid = c.Word(2, $"the VM to assign to ({string.Join(", ", ScmVmids.All.Keys)})");
                if (!ScmVmids.All.ContainsKey(vmid.Text))
                {
                    throw c.Error(vmid, $"unknown VMID '{vmid.Text}' (known: {string.Join(", ", ScmVmids.All.Keys)})");
                }

                var (faultVar, faultWriter) = vmid.Text == ScmVmids.Hlos
                    ? (-1, (byte)0)
                    : c.ImplicitCheck(XpuCheckName, $"no CPU bus access (load, store, speculative fill, write-back) reaches the memory line {c.Span.Line} gives to {vmid.Text} while it is assigned", XpuFaultWriter);
                return new ScmAssignStmt(c.Span, c.Text, target, c.Expr(0), c.Expr(1), vmid.Text, faultVar, faultWriter);
            },
            a => [a.Phys, a.Size], ScmAssign, Fp(P.Variables | P.PageAllocator, P.PageAllocator | P.Observed | P.Variables),
            CallGeneration.Not("the generator's scenarios do not give memory to another security domain"));
    }

    /// <summary>
    /// qcom_scm_assign_mem (v6.4): the secure world reprograms the memory protection for the range; every line of it
    /// becomes assigned (or is given back), with no cache maintenance: what the CPU caches still hold of it, and what
    /// its linear map may still fetch, stay as they are (<see cref="QcomScm.AssignMem"/>).
    /// </summary>
    private static StepOutcome ScmAssign(StepContext c, ScmAssignStmt a)
    {
        if (c.IsVirtualAddress(a.Phys))
        {
            throw c.Bad($"qcom_scm_assign_mem takes a physical address: '{a.Phys.Text}' is a kernel virtual address (use virt_to_phys, a DMA address on a board without an IOMMU, or of_reserved_mem_lookup)");
        }

        var pa = c.Number(a.Phys);
        var size = c.Number(a.Size);
        if (size == 0 || size > 1UL << 30 || (pa | size) % PlatformLayout.PageSize != 0)
        {
            throw c.Bad($"qcom_scm_assign_mem of 0x{size:x} bytes at PA 0x{pa:x}: the secure world assigns whole 4 KiB pages (up to 1 GiB here), so both must be page aligned (drivers pass ALIGN(size, SZ_4K))");
        }

        var s = c.S;
        if (s.Dma.Kernel.Layout.Arch is not (Arch.Arm64 or Arch.Arm32))
        {
            throw c.Bad($"qcom_scm_assign_mem exists on Qualcomm arm and arm64 SoCs only (CONFIG_QCOM_SCM), not under a {s.Dma.Kernel.Layout.Arch} profile");
        }

        if (!s.Dma.Kernel.Layout.IsRam(pa, size))
        {
            throw new NotModelledException($"qcom_scm_assign_mem of PA 0x{pa:x}..0x{pa + size:x}, which is not DRAM the model knows (MMIO or a firmware carve-out outside its layout)");
        }

        var kernel = QcomScm.AssignMem(s.Dma.Kernel, pa, size, a.Vmid, a.FaultVar, a.FaultWriter, $"{c.Program.Name}: {a.Text}", c.Ops, out var error);
        if (kernel is null)
        {
            return new StepOutcome(s, error);
        }

        var next = s.With(dma: s.Dma with { Kernel = kernel });
        if (a.FaultVar >= 0)
        {
            next = next.With(observed: next.Observed.SetItem(a.FaultVar, new ObservedRange(pa, size)));
        }

        return a.Target is null ? next : next.With(vars: next.Vars.SetItem(a.Target, new NumberValue(0)));
    }
}
