using DmaCheck.Kernel;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>The coherent x86_64 profile: address arithmetic, and devices that cannot be declared non-coherent.</summary>
public class X86Tests
{
    [Fact]
    public void TheDirectMapAndVmemmapFollowTheFourLevelLayout()
    {
        var l = PlatformLayout.X86_64Pc;
        Assert.Equal(0xffff_8881_0000_0000UL, l.PhysToVirt(0x1_0000_0000));
        Assert.Equal(0x10_0000UL, l.VirtToPfn(0xffff_8881_0000_0000));
        Assert.Equal(0xffff_ea00_0400_0000UL, l.StructPageAddress(0x10_0000)); // vmemmap + pfn * 64
        Assert.True(l.IsLinearMapAddr(0xffff_8880_0300_0000));
        Assert.False(l.IsLinearMapAddr(0xffff_8880_c000_0000)); // the PCI hole has no DRAM
        Assert.True(l.IsVmallocAddr(0xffff_c900_0000_1000));
        Assert.False(l.HasHighmem);
    }

    [Fact]
    public void ANonCoherentDeviceIsRefusedOnX86()
    {
        var e = Assert.Throws<ScenarioException>(() => Binder.Load("x.dmc", "profile linux-6.4-x86_64\ndevice d { coherent = false }\ncpu a { signal x }\n"));
        Assert.Contains("DMA on x86_64 is cache-coherent", e.Message);
    }
}
