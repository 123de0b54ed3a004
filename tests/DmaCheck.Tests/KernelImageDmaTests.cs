using DmaCheck.Debug;
using DmaCheck.Exploration;
using DmaCheck.Kernel;
using DmaCheck.Reports;

namespace DmaCheck.Tests;

/// <summary>E16: check_for_illegal_area on page_address() + offset, against the kernel image's .text and .rodata.</summary>
public class KernelImageDmaTests
{
    private static (string? Message, string[] Findings) Check(string profile, string driver)
    {
        var text = $"profile {profile}\ndevice d {{ coherent = false }}\ncpu driver {{\n{driver}\n}}\n";
        var outcome = Checker.CheckText("t.dmc", text, ExplorationLimits.Default);
        return (outcome.Message ?? outcome.Result?.Inconclusive,
            outcome.Result?.Findings.Select(f => $"{f.Finding.Kind} {f.Finding.Message}").Distinct().Order(StringComparer.Ordinal).ToArray() ?? []);
    }

    private const string MapTable = "  t = static_const(256)\n  h = dma_map_single(d, t, 256, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 256, DMA_TO_DEVICE)";

    [Fact]
    public void MappingRodataIsReportedWithTheImagesAddressAndLength()
    {
        var (message, findings) = Check("linux-5.13-arm-rpi4", MapTable);
        Assert.Null(message);
        Assert.Equal($"{DmaDebug.MapKernelImage} DMA-API: d: device driver maps memory from kernel text or rodata [addr=0xc0800000] [len=256] (the buffer overlaps the image's .rodata)", Assert.Single(findings));
    }

    [Fact]
    public void EachStaticConstHasItsOwnSlotAndTheLastRodataByteStillCounts()
    {
        var (_, findings) = Check("linux-5.13-arm-rpi4", "  a = static_const(64)\n  b = static_const(64)\n" +
            "  h = dma_map_single(d, b, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 64, DMA_TO_DEVICE)");
        Assert.Contains("[addr=0xc0810000] [len=64]", Assert.Single(findings));
        var layout = PlatformLayout.Arm32Rpi4;
        var rodata = layout.KernelImageSections!.Value.Rodata;
        Assert.Equal(".rodata", layout.KernelImageSectionAt(rodata.End - 1, 1));
        Assert.Null(layout.KernelImageSectionAt(rodata.End, 64));
        Assert.Equal(".text", layout.KernelImageSectionAt(layout.PageOffset + 0x7fc0, 128)); // overlaps _stext from below
        Assert.Null(layout.KernelImageSectionAt(layout.PageOffset, 0x8000));
    }

    [Fact]
    public void KmallocMemoryIsNotReported()
    {
        var (message, findings) = Check("linux-5.13-arm-rpi4", "  t = kmalloc(256, GFP_KERNEL)\n  h = dma_map_single(d, t, 256, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  dma_unmap_single(d, h, 256, DMA_TO_DEVICE)");
        Assert.Null(message);
        Assert.Empty(findings);
    }

    [Fact]
    public void StoringToRodataIsAKernelBug()
    {
        var outcome = Checker.CheckText("t.dmc", "profile linux-5.13-arm-rpi4\ncpu driver {\n  t = static_const(64)\n  write t[0..64] = patch\n}\n", ExplorationLimits.Default);
        Assert.Contains("stores to the kernel's .rodata at 0xc0800000", outcome.Message);
        Assert.Contains("CONFIG_STRICT_KERNEL_RWX", outcome.Message);
    }

    [Fact]
    public void ThereIsNoImageInTheLinearMapOnArm64()
    {
        Assert.Null(PlatformLayout.Arm64Va48.KernelImageSections);
        var (message, _) = Check("linux-6.4-arm64", MapTable);
        Assert.Contains("not modelled", message);
        Assert.Contains("KIMAGE_VADDR", message);
    }
}
