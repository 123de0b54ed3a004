namespace DmaCheck.Hardware;

/// <summary>What a line may hold when the scenario starts.</summary>
public enum InitialCache : byte
{
    /// <summary>Every line Invalid (the default).</summary>
    Cold,

    /// <summary>Each line Invalid, Clean(old) or Dirty(old), chosen freely and at no cost.</summary>
    Arbitrary,
}

/// <summary>Platform properties of the cache hierarchy.</summary>
/// <param name="LineSize">Bytes per cache line (CTR_EL0.DminLine); a power of two.</param>
/// <param name="IvacActsAsCivac">DC IVAC is performed as DC CIVAC (EL1 with stage-2 translation enabled, Arm ARM).</param>
/// <param name="Initial">The cache state of every line before the scenario starts.</param>
/// <param name="InitialData">The last data written to every line before the scenario starts.</param>
/// <param name="InitialRamBehind">What RAM holds while that last data may still sit Dirty in the cache (with <see cref="InitialCache.Arbitrary"/>).</param>
/// <param name="Regions">Physical ranges whose last data is another writer's (another tenant's memory), overriding <see cref="InitialData"/>.</param>
/// <param name="OuterCache">
/// An outer (L2) cache level sits between the inner cache and RAM, maintained by physical address through its own
/// controller rather than by the inner level's operations: an Arm PL310 / L2C-310 (docs/semantics.md, "Outer cache").
/// Lines are <see cref="LineSize"/> bytes at both levels.
/// </param>
public sealed record HardwareConfig(int LineSize = 64, bool IvacActsAsCivac = false, InitialCache Initial = InitialCache.Cold,
    byte InitialData = WriterTable.Old, byte InitialRamBehind = WriterTable.Old, IReadOnlyList<InitialRegion>? Regions = null, bool OuterCache = false)
{
    public static HardwareConfig Default { get; } = new();

    /// <summary>The last data written to the line at <paramref name="linePa"/> before the scenario starts.</summary>
    public byte InitialDataAt(ulong linePa)
    {
        if (Regions is { } regions)
        {
            foreach (var r in regions)
            {
                if (linePa >= r.Pa && linePa - r.Pa < r.Size)
                {
                    return r.Data;
                }
            }
        }

        return InitialData;
    }
}

/// <summary>A physical range [Pa, Pa+Size) whose contents before the scenario were written by <see cref="Data"/>; line aligned.</summary>
public sealed record InitialRegion(ulong Pa, ulong Size, byte Data);
