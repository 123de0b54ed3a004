using DmaCheck.Kernel;

namespace DmaCheck.Dma;

// The dma_common_mmap / dma_common_get_sgtable helpers (kernel/dma/ops_helpers.c).
public static partial class DmaApi
{
    /// <summary>dma_common_vaddr_to_page (v5.14+) or virt_to_page (before), per the switch: the pfn, and how it was computed.</summary>
    private static (ulong Pfn, string How) CommonVaddrToPage(DmaEnvironment env, KernelState k, ulong cpuAddr, string function)
    {
        if (env.CommonVaddrToPageIsVmallocAware && k.Layout.IsVmallocAddr(cpuAddr))
        {
            return (k.VmallocToPfn(cpuAddr) ?? throw new KernelBugException(function, $"vmalloc_to_page(0x{cpuAddr:x}) is NULL: nothing is mapped there"),
                $"vmalloc_to_page(0x{cpuAddr:x})");
        }

        return (k.Layout.VirtToPfn(cpuAddr), $"virt_to_page(0x{cpuAddr:x})");
    }

    /// <summary>Findings for exporting frames [pfn, pfn+count) as the buffer's, when they are not the buffer's.</summary>
    private static void CheckExportedPages(KernelState k, ulong pfn, ulong count, CoherentAllocation? buffer, string function, string how, string what,
        string foreignKind, string outsideKind, string leakConsequence, string faultConsequence, List<Finding> findings)
    {
        var layout = k.Layout;
        var bufferPages = buffer is null ? 0 : PlatformLayout.PageAlign(buffer.Size) >> PlatformLayout.PageShift;
        for (var i = 0UL; i < count; i++)
        {
            var p = unchecked(pfn + i);
            if (!layout.PfnValid(p))
            {
                findings.Add(new Finding(outsideKind, function, p, k.OwnerOf(p), Severity.Fault,
                    $"{how} gives pfn 0x{pfn:x} (PA 0x{unchecked(pfn << PlatformLayout.PageShift):x}), outside the RAM Linux manages: {what} points at no memory of its own, and {faultConsequence}"));
                return;
            }

            var owner = k.OwnerOf(p);
            if (buffer is null || p < buffer.Pfn || p - buffer.Pfn >= bufferPages)
            {
                var beyond = buffer is not null && pfn == buffer.Pfn ? $" ({count} pages from the buffer's first page, which has {bufferPages})" : string.Empty;
                findings.Add(new Finding(foreignKind, function, p, owner, Severity.InformationLeak,
                    $"{how} gives pfn 0x{pfn:x}; {what} covers pfn 0x{p:x}{beyond}, owned by {owner.Describe()}: {leakConsequence}"));
                return;
            }
        }
    }
}
