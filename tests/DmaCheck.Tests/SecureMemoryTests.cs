using DmaCheck.Dma;
using DmaCheck.Exploration;
using DmaCheck.Hardware;
using DmaCheck.Kernel;
using DmaCheck.Reports;
using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>
/// Issue 15 item 3: memory assigned to another security domain (qcom_scm_assign_mem), no-map carve-outs, memremap and
/// memunmap, per-device coherent pools; and item 8: functions the model lacks stop a run as not modelled.
/// </summary>
public class SecureMemoryTests
{
    private const byte Fault = 7;
    private const int Var = 3;
    private static readonly HardwareConfig Hw = HardwareConfig.Default;
    private static readonly LineBytes Old = LineBytes.Uniform(64, WriterTable.Old);
    private static readonly LineBytes Data = LineBytes.Uniform(64, 5);

    private static LineState Assigned(CacheState cache = CacheState.Invalid) =>
        LineState.Fresh(Old).WithCache(cache, cache == CacheState.Invalid ? null : Data).WithAssignment(Var, Fault);

    private static LineState Apply(LineState s, LineOp op, HardwareConfig? hw = null) => LineSemantics.Apply(s, new LineAccess(op, 0, 64, 0), hw ?? Hw).Single;

    private static List<(SpontaneousMove Move, LineState Next)> Moves(LineState s, bool fillable)
    {
        var moves = new List<(SpontaneousMove, LineState)>();
        LineSemantics.Moves(s, fillable, moves);
        return moves;
    }

    private static void AssertFaulted(LineState s)
    {
        Assert.True(s.BusError);
        var o = Assert.Single(s.Observations, o => o.Var == Var);
        Assert.True(o.Values.IsUniform(0, 64, Fault));
    }

    [Fact]
    public void AnAssignedInvalidLineFaultsByAFillOnlyWhereACacheableAliasMapsIt()
    {
        AssertFaulted(Assert.Single(Moves(Assigned(), fillable: true), m => m.Move == SpontaneousMove.Fill).Next);
        Assert.Empty(Moves(Assigned(), fillable: false));
    }

    [Fact]
    public void ADirtyAssignedLineFaultsWhenWrittenBackAndACleanOneIsDroppedSilently()
    {
        var dirty = Moves(Assigned(CacheState.Dirty), fillable: true);
        Assert.Equal([SpontaneousMove.Evict, SpontaneousMove.WriteBack], dirty.Select(m => m.Move));
        Assert.All(dirty, m => AssertFaulted(m.Next));

        var clean = Assert.Single(Moves(Assigned(CacheState.Clean), fillable: true));
        Assert.Equal(SpontaneousMove.Evict, clean.Move);
        Assert.False(clean.Next.BusError);
        Assert.Equal(CacheState.Invalid, clean.Next.Cache);
    }

    [Theory]
    [InlineData(MasterKind.Cpu, MemoryType.NormalWriteBack, true)]
    [InlineData(MasterKind.Cpu, MemoryType.NormalNonCacheable, true)]
    [InlineData(MasterKind.Cpu, MemoryType.Device, true)]
    [InlineData(MasterKind.Firmware, MemoryType.NormalWriteBack, false)]
    [InlineData(MasterKind.NonCoherentDevice, MemoryType.NormalNonCacheable, false)]
    [InlineData(MasterKind.CoherentDevice, MemoryType.NormalWriteBack, false)]
    public void OnlyTheCpuSideFaultsOnALoadOrStore(MasterKind master, MemoryType type, bool faults)
    {
        Assert.Equal(faults, Apply(Assigned(), LineOp.Read(master, type, 0)).BusError);
        Assert.Equal(faults, Apply(Assigned(), LineOp.Write(master, type, 9)).BusError);
    }

    [Fact]
    public void MaintenanceFaultsOnlyWhenItWritesADirtyLineBack()
    {
        AssertFaulted(Apply(Assigned(CacheState.Dirty), LineOp.Maintenance(LineOpKind.Clean)));
        AssertFaulted(Apply(Assigned(CacheState.Dirty), LineOp.Maintenance(LineOpKind.CleanInvalidate)));
        Assert.False(Apply(Assigned(CacheState.Clean), LineOp.Maintenance(LineOpKind.CleanInvalidate)).BusError);

        var discarded = Apply(Assigned(CacheState.Dirty), LineOp.Maintenance(LineOpKind.Invalidate));
        Assert.False(discarded.BusError);
        Assert.Equal(CacheState.Invalid, discarded.Cache);
        AssertFaulted(Apply(Assigned(CacheState.Dirty), LineOp.Maintenance(LineOpKind.Invalidate), Hw with { IvacActsAsCivac = true }));
    }

    [Fact]
    public void ALiveNonCacheableAliasLetsASpeculativeReadFaultInAnyCacheState()
    {
        foreach (var cache in new[] { CacheState.Invalid, CacheState.Clean, CacheState.Dirty })
        {
            var mapped = Apply(Assigned(cache), LineOp.Reach(true));
            Assert.True(mapped.NcMapped);
            AssertFaulted(Assert.Single(Moves(mapped, fillable: false), m => m.Move == SpontaneousMove.SpeculativeRead).Next);
            Assert.False(Apply(mapped, LineOp.Reach(false)).NcMapped);
        }

        // On memory Linux still owns, Reach is nothing: a speculative non-cacheable read changes no state.
        var free = LineState.Fresh(Old);
        Assert.Same(free, Apply(free, LineOp.Reach(true)));
        Assert.DoesNotContain(Moves(free, fillable: true), m => m.Move == SpontaneousMove.SpeculativeRead);
    }

    [Fact]
    public void AFaultIsFinalAndGivingTheMemoryBackKeepsItsRecord()
    {
        var faulted = Apply(Assigned(), LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0));
        Assert.Same(faulted, Apply(faulted, LineOp.Write(MasterKind.NonCoherentDevice, MemoryType.NormalNonCacheable, 9)));
        Assert.Same(faulted, Apply(faulted, LineOp.Assign(-1, 0)));
        Assert.Empty(Moves(faulted, fillable: true));

        var back = Apply(Apply(Assigned(), LineOp.Reach(true)), LineOp.Assign(-1, 0));
        Assert.Equal(-1, back.Assigned);
        Assert.False(back.NcMapped);
        Assert.False(Apply(back, LineOp.Read(MasterKind.Cpu, MemoryType.NormalWriteBack, 0)).BusError);
    }

    [Fact]
    public void AssignedStatesDifferFromUnassignedOnes()
    {
        var plain = LineState.Fresh(Old);
        Assert.NotEqual(plain, plain.WithAssignment(Var, Fault));
        Assert.NotEqual(Assigned(), Apply(Assigned(), LineOp.Reach(true)));
        Assert.Equal(plain, plain.WithAssignment(Var, Fault).WithAssignment(-1, 0));
        Assert.Equal(plain.GetHashCode(), plain.WithAssignment(Var, Fault).WithAssignment(-1, 0).GetHashCode());
    }

    // ---- the kernel: reserved memory, memremap, qcom_scm_assign_mem, per-device pools ----

    private static KernelState Boot(params ReservedMemorySpec[] reserved) =>
        KernelState.Boot(PlatformLayout.Arm64Va48, new KernelConfig { ReservedMemory = [.. reserved] }, Hw);

    [Fact]
    public void ANoMapRegionIsCutOutOfTheLinearMapAndAMappedOneIsNot()
    {
        var k = Boot(new ReservedMemorySpec("carve", 16 << 10, true), new ReservedMemorySpec("mapped", 8 << 10, false));
        var carve = k.ReservedMemory["carve"];
        var mapped = k.ReservedMemory["mapped"];
        Assert.False(k.Mmu.IsFillable(carve.Pa));
        Assert.False(k.Mmu.IsFillable(carve.Pa + carve.Size - 64));
        Assert.True(k.Mmu.IsFillable(carve.Pa - 64));
        Assert.True(k.Mmu.IsFillable(carve.Pa + carve.Size));
        Assert.True(k.Mmu.IsFillable(mapped.Pa));
        Assert.Throws<TranslationFaultException>(() => k.Mmu.Translate(k.Layout.PhysToVirt(carve.Pa), 64));
        Assert.Equal(mapped.Pa, k.Mmu.Translate(k.Layout.PhysToVirt(mapped.Pa), 64).Pa);
        Assert.Equal(carve.Owner, k.OwnerOf(carve.Pa >> PlatformLayout.PageShift).Name);
    }

    [Fact]
    public void MemremapFollowsIomemC()
    {
        var k = Boot(new ReservedMemorySpec("carve", 16 << 10, true));
        var carve = k.ReservedMemory["carve"];
        var ram = carve.Pa + carve.Size;

        // System RAM with MEMREMAP_WB: the linear-map address, no new mapping.
        var ops = new List<HwOp>();
        Assert.Same(k, Memremap.Map(k, ram, 4096, MemremapFlags.MEMREMAP_WB, "t", ops, out var va, out var warning));
        Assert.Equal(k.Layout.PhysToVirt(ram), va);
        Assert.Null(warning);
        Assert.Empty(ops);

        // System RAM with anything else, or a range that is partly System RAM: WARN and NULL.
        Memremap.Map(k, ram, 4096, MemremapFlags.MEMREMAP_WC, "t", ops, out va, out warning);
        Assert.Equal(0UL, va);
        Assert.Contains("memremap attempted on ram", warning, StringComparison.Ordinal);
        Memremap.Map(k, carve.Pa, carve.Size + 4096, MemremapFlags.MEMREMAP_WB, "t", ops, out va, out warning);
        Assert.Contains("mixed range", warning, StringComparison.Ordinal);

        // A no-map region: a new vmalloc-area mapping, Normal-NC for WC, Normal-WB for WB; memunmap removes it.
        var wc = Memremap.Map(k, carve.Pa + 0x1000, 0x1000, MemremapFlags.MEMREMAP_WC | MemremapFlags.MEMREMAP_WB, "t", ops, out va, out warning);
        Assert.Null(warning);
        Assert.True(k.Layout.IsVmallocAddr(va));
        var (pa, alias) = wc.Mmu.Translate(va, 64);
        Assert.Equal(carve.Pa + 0x1000, pa);
        Assert.Equal(MemoryType.NormalWriteBack, alias.Type); // WB is tried first
        Memremap.Map(k, carve.Pa, 0x1000, MemremapFlags.MEMREMAP_WC, "t", ops, out var ncVa, out _);
        ops.Clear();
        var unmapped = Memremap.Unmap(wc, va, "t", ops);
        Assert.IsType<UnmapOp>(Assert.Single(ops));
        Assert.Throws<TranslationFaultException>(() => unmapped.Mmu.Translate(va, 64));
        Assert.Same(k, Memremap.Unmap(k, k.Layout.PhysToVirt(ram), "t", ops)); // a linear address: nothing
        Assert.NotEqual(0UL, ncVa);
    }

    [Fact]
    public void AssignmentIsGivenBackWholeOrRefused()
    {
        var k = Boot();
        var ops = new List<HwOp>();
        var assigned = QcomScm.AssignMem(k, 0x8100_0000, 0x4000, "QCOM_SCM_VMID_MSS_MSA", 0, 2, "t", ops, out var error)!;
        Assert.Null(error);
        Assert.Equal(LineOpKind.Assign, ((MemoryOp)Assert.Single(ops)).Op.Kind);
        Assert.Null(QcomScm.AssignMem(assigned, 0x8100_2000, 0x4000, "QCOM_SCM_VMID_WLAN", 1, 2, "t", ops, out error));
        Assert.Contains("already belongs to QCOM_SCM_VMID_MSS_MSA", error, StringComparison.Ordinal);
        Assert.Null(QcomScm.AssignMem(assigned, 0x8100_0000, 0x1000, ScmVmids.Hlos, -1, 0, "t", ops, out error));
        Assert.Contains("-EINVAL", error, StringComparison.Ordinal);
        var back = QcomScm.AssignMem(assigned, 0x8100_0000, 0x4000, ScmVmids.Hlos, -1, 0, "t", ops, out error)!;
        Assert.Empty(back.ScmAssignments);
    }

    [Fact]
    public void AnAssignedRangeLearnsOfItsNonCacheableAliasesAsTheyComeAndGo()
    {
        var k = Boot(new ReservedMemorySpec("carve", 16 << 10, true));
        var carve = k.ReservedMemory["carve"];
        var ops = new List<HwOp>();
        k = Memremap.Map(k, carve.Pa, 0x2000, MemremapFlags.MEMREMAP_WC, "t", ops, out var va, out _);
        ops.Clear();
        k = QcomScm.AssignMem(k, carve.Pa, carve.Size, "QCOM_SCM_VMID_MSS_MSA", 0, 2, "t", ops, out _)!;
        var reach = ops.OfType<MemoryOp>().Where(o => o.Op.Kind == LineOpKind.Reach).ToList();
        Assert.Equal((carve.Pa, 0x2000UL, (byte)1), (Assert.Single(reach).Pa, reach[0].Length, reach[0].Op.Writer));
        ops.Clear();
        Memremap.Unmap(k, va, "t", ops);
        var gone = ops.OfType<MemoryOp>().Single(o => o.Op.Kind == LineOpKind.Reach);
        Assert.Equal((carve.Pa, 0x2000UL, (byte)0), (gone.Pa, gone.Length, gone.Op.Writer));
    }

    [Fact]
    public void ADevicePoolServesAlignedRunsClearedThroughItsWriteCombinedMapping()
    {
        var k = Boot(new ReservedMemorySpec("pool", 64 << 10, true));
        var region = k.ReservedMemory["pool"];
        var dev = new DmaDevice("vpu", false) { MemoryRegion = "pool" };
        var ops = new List<HwOp>();
        var s = DevCoherent.InitFromReserved(DmaState.Boot(k), dev, region, false, "t", ops, out var error)!;
        Assert.Null(error);
        Assert.Null(DevCoherent.TryAlloc(s, new DmaDevice("other", false), 4096, ops, out _, out _)); // no pool: the ops' path

        ops.Clear();
        s = DevCoherent.TryAlloc(s, dev, 4096, ops, out var a, out var ha)!;
        var store = (MemoryOp)Assert.Single(ops);
        Assert.Equal((region.Pa, MemoryType.NormalNonCacheable, WriterTable.Zero), (store.Pa, store.Via!.Type, store.Op.Writer));
        Assert.Equal(region.Pa, ha);
        s = DevCoherent.TryAlloc(s, dev, 8192, ops, out var b, out var hb)!;
        Assert.Equal(region.Pa + 0x2000, hb); // order 1: the first free run of two pages aligned to two
        s = DevCoherent.TryAlloc(s, dev, 4096, ops, out _, out var hc)!;
        Assert.Equal(region.Pa + 0x1000, hc);
        Assert.Equal(0UL, DevCoherent.TryAlloc(s, dev, 128 << 10, ops, out var none, out _) is not null ? none : 1);

        s = DevCoherent.TryRelease(s, dev, 8192, b)!;
        Assert.Null(DevCoherent.TryRelease(s, dev, 4096, 0xffff_0000_0000_0000));
        Assert.Single(s.Coherent, c => c.CpuAddr == a);
        Assert.Null(DevCoherent.Declare(s, dev, region.Pa, region.Pa, region.Size, "t", ops, out error));
        Assert.Contains("-EBUSY", error, StringComparison.Ordinal);
        var released = DevCoherent.Release(s, dev, "t", ops);
        Assert.Empty(released.DevPools);
        Assert.DoesNotContain(released.Coherent, c => c.Source == CoherentSource.DevCoherent);
    }

    [Fact]
    public void APoolWithoutNoMapIsRefusedOnArm32AtBootAndByMemremapOnArm64()
    {
        var k = Boot(new ReservedMemorySpec("pool", 64 << 10, false));
        var dev = new DmaDevice("vpu", false);
        Assert.Null(DevCoherent.InitFromReserved(DmaState.Boot(k), dev, k.ReservedMemory["pool"], true, "t", [], out var error));
        Assert.Contains("regions without no-map are not yet supported", error, StringComparison.Ordinal);
        Assert.Null(DevCoherent.InitFromReserved(DmaState.Boot(k), dev, k.ReservedMemory["pool"], false, "t", [], out error));
        Assert.Contains("memremap attempted on ram", error, StringComparison.Ordinal);
    }

    // ---- scenarios ----

    private static ScenarioOutcome Check(string text)
    {
        var outcome = Checker.CheckText("t.dmc", text, ExplorationLimits.Default);
        Assert.True(outcome.Error == OutcomeError.None, outcome.Message);
        return outcome;
    }

    private static ExpectationVerdict Verdict(ScenarioOutcome r, string name) => r.Result!.Verdicts.Single(v => v.Expectation.Name == name);

    private const string Metadata = """
        profile linux-6.3-arm64
        device mss { coherent = false, vmid = QCOM_SCM_VMID_MSS_MSA }
        reserved meta { size = 16K, no-map = true }
        cpu driver {
          pa = of_reserved_mem_lookup(meta)
          p = memremap(pa, 16K, MEMREMAP_WC)
          write p[0..16384] = metadata
        """;

    private const string Modem = """
        dma mba by mss {
          wait go
          read dma(pa)[0..16384] -> seen
        }
        expect sees: seen == metadata
        """;

    [Fact]
    public void UnmappingTheCarveOutBeforeItIsAssignedLeavesNothingToFetchIt()
    {
        var r = Check(Metadata + "\n  memunmap(p)\n  qcom_scm_assign_mem(pa, 16K, QCOM_SCM_VMID_MSS_MSA)\n  signal go\n}\n" + Modem);
        Assert.False(r.Inconclusive);
        Assert.Equal(Scenarios.Verdict.Always, Verdict(r, "no-xpu-fault.L9").Verdict);
        Assert.Equal(Scenarios.Verdict.Always, Verdict(r, "sees").Verdict);
    }

    [Fact]
    public void AWriteCombinedMappingLeftInPlaceCanReadTheAssignedMemorySpeculatively()
    {
        var r = Check(Metadata + "\n  qcom_scm_assign_mem(pa, 16K, QCOM_SCM_VMID_MSS_MSA)\n  signal go\n  memunmap(p)\n}\n" + Modem);
        var v = Verdict(r, "no-xpu-fault.L8");
        Assert.Equal((Scenarios.Verdict.Sometimes, 1), (v.Verdict, v.MinEventsToFail));
    }

    [Theory]
    [InlineData("kmalloc(4096, GFP_KERNEL)", "", Scenarios.Verdict.Sometimes, 1)] // dirty lines written back, or a fill
    [InlineData("kmalloc(4096, GFP_KERNEL)", "  write buf[0..64] = late\n", Scenarios.Verdict.Never, 0)] // a store to assigned memory
    public void KmallocMemoryAssignedAwayFaultsThroughTheLinearMap(string alloc, string after, Scenarios.Verdict verdict, int events)
    {
        var r = Check($"profile linux-6.4-arm64\ncpu driver {{\n  buf = {alloc}\n  write buf[0..4096] = payload\n  pa = virt_to_phys(buf)\n" +
            $"  qcom_scm_assign_mem(pa, 4096, QCOM_SCM_VMID_WLAN)\n{after}}}\n");
        var v = Verdict(r, "no-xpu-fault.L6");
        Assert.Equal((verdict, events), (v.Verdict, v.MinEventsToFail));
    }

    [Fact]
    public void ARunThatNeverAssignsPassesTheCheck()
    {
        var r = Check("profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu driver {\n  buf = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n" +
            "  h = dma_map_single(d, buf, 64, DMA_TO_DEVICE)\n  dma_mapping_error(d, h)\n  qcom_scm_assign_mem(buf.dma, 4096, QCOM_SCM_VMID_NAV)\n}\n");
        // dma_map_single of a vmalloc address (the NC remap) fails and the driver stops before the assignment.
        Assert.Equal(Scenarios.Verdict.Always, Verdict(r, "no-xpu-fault.L7").Verdict);
    }

    [Fact]
    public void GivingBackWhatWasNeverAssignedStopsTheDriver()
    {
        var r = Check("profile linux-6.4-arm64\ncpu driver {\n  buf = kmalloc(4096, GFP_KERNEL)\n  pa = virt_to_phys(buf)\n" +
            "  qcom_scm_assign_mem(pa, 4096, QCOM_SCM_VMID_HLOS)\n  write buf[0..8] = x\n  read buf[0..8] -> seen\n}\nexpect ok: seen == x\n");
        Assert.Equal(Scenarios.Verdict.Never, Verdict(r, "ok").Verdict);
    }

    [Theory]
    [InlineData("  v = vzalloc(4096)\n", "not modelled: driver calls vzalloc, which needs vmalloc variants that clear")]
    [InlineData("  flush_cache_vmap(p, 4096)\n", "not modelled: driver calls flush_cache_vmap, which needs architecture cache maintenance a driver calls directly")]
    [InlineData("  h = dma_alloc_pages(d, 4096, DMA_TO_DEVICE, GFP_KERNEL)\n", "needs the non-coherent allocation API")]
    [InlineData("  r = ioremap(0x9000000, 4096)\n", "needs MMIO")]
    public void AFunctionTheModelLacksMakesTheRunInconclusiveAndSaysWhatItNeeds(string call, string message)
    {
        var r = Check("profile linux-6.4-arm64\ndevice d { coherent = false }\ncpu driver {\n  p = kmalloc(64, GFP_KERNEL)\n" + call +
            "  write p[0..8] = x\n  read p[0..8] -> seen\n}\nexpect ok: seen == x\n");
        Assert.Equal(3, r.ExitCode);
        Assert.Contains(message, r.Message ?? r.Result?.Inconclusive, StringComparison.Ordinal);
    }

    [Fact]
    public void ADeviceThatNamesNoVmTouchingAssignedMemoryIsNotJudged()
    {
        var r = Check(Metadata.Replace(", vmid = QCOM_SCM_VMID_MSS_MSA", string.Empty, StringComparison.Ordinal) +
            "\n  memunmap(p)\n  qcom_scm_assign_mem(pa, 16K, QCOM_SCM_VMID_MSS_MSA)\n  signal go\n}\n" + Modem);
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("its device names no VM", r.Message ?? r.Result?.Inconclusive, StringComparison.Ordinal);
    }

    [Fact]
    public void ACoherentBufferFromTheDevicesPoolComesFromTheCarveOut()
    {
        var r = Check("profile linux-6.4-arm64\nreserved pool { size = 64K, no-map = true }\ndevice d { coherent = false, memory-region = pool }\n" +
            "cpu driver {\n  of_reserved_mem_device_init(d)\n  b = dma_alloc_coherent(d, 4096, GFP_KERNEL)\n  pa = of_reserved_mem_lookup(pool)\n" +
            "  write b[0..64] = desc\n  signal go\n}\ndma e by d {\n  wait go\n  read dma(pa)[0..64] -> seen\n}\nexpect ok: seen == desc\n");
        Assert.False(r.Inconclusive);
        Assert.Equal(Scenarios.Verdict.Always, Verdict(r, "ok").Verdict);
        Assert.Empty(r.Result!.Findings);
    }

    // ---- bad input ----

    private static ScenarioException Fail(string text) => Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", text));

    [Theory]
    [InlineData("cpu a {\n  qcom_scm_assign_mem(0x81000000, 4096, QCOM_SCM_VMID_MODEM)\n}\n", 2, 41, "unknown VMID 'QCOM_SCM_VMID_MODEM'")]
    [InlineData("cpu a {\n  qcom_scm_assign_mem(0x81000000, 4096, 15)\n}\n", 2, 41, "expected the VM to assign to")]
    [InlineData("reserved r { no-map = true }\ncpu a {\n  signal x\n}\n", 1, 10, "must give its size")]
    [InlineData("reserved r { size = 100 }\ncpu a {\n  signal x\n}\n", 1, 21, "whole number of 4 KiB pages")]
    [InlineData("reserved r { size = 4K, reg = 0x80000000 }\ncpu a {\n  signal x\n}\n", 1, 25, "unknown reserved-memory property 'reg'")]
    [InlineData("device d { coherent = false, memory-region = nowhere }\ncpu a {\n  signal x\n}\n", 1, 46, "memory-region names a reserved-memory node")]
    [InlineData("device d { coherent = false, vmid = QCOM_SCM_VMID_HLOS }\ncpu a {\n  signal x\n}\n", 1, 37, "other than HLOS")]
    [InlineData("cpu a {\n  pa = of_reserved_mem_lookup(nowhere)\n}\n", 2, 31, "no reserved-memory node 'nowhere' is declared")]
    [InlineData("reserved r { size = 4K, no-map = true }\ncpu a {\n  pa = of_reserved_mem_lookup(r)\n  p = memremap(pa, 4096, MEMREMAP_UC)\n}\n", 4, 26, "unknown flag 'MEMREMAP_UC'")]
    [InlineData("device d { coherent = false }\ncpu a {\n  of_reserved_mem_device_init(d)\n}\n", 3, 3, "device 'd' has no memory-region")]
    [InlineData("cpu a {\n  qcom_scm_assign_mem(0x81000000, 4096, QCOM_SCM_VMID_NAV)\n  p = kmalloc(64, GFP_KERNEL)\n  read p[0..8] -> seen\n}\nexpect no-xpu-fault.L3: seen == old\n", 6, 8, "the name of the check the statement on line 3 implies")]
    public void BadInputNamesTheLineColumnAndText(string body, int line, int column, string message)
    {
        var e = Fail("profile linux-6.4-arm64\n" + body);
        Assert.Equal((line + 1, column), (e.Span.Line, e.Span.Column));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        var shown = e.Format().Split('\n');
        Assert.StartsWith($"t.dmc:{line + 1}:{column}: error: ", shown[0], StringComparison.Ordinal);
        Assert.Equal(column - 1, shown[2].IndexOf('^', StringComparison.Ordinal) - shown[2].IndexOf('|', StringComparison.Ordinal) - 2);
    }

    [Fact]
    public void ADeclaredVerdictForTheWrongLineListsTheImpliedChecks()
    {
        var e = Fail("profile linux-6.4-arm64\ncpu a {\n  qcom_scm_assign_mem(0x81000000, 4096, QCOM_SCM_VMID_NAV)\n}\n# expect no-xpu-fault.L2: always\n");
        Assert.Contains("expectations: no-xpu-fault.L3", e.Message, StringComparison.Ordinal);
    }
}
