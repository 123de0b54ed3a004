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
public sealed record HardwareConfig(int LineSize = 64, bool IvacActsAsCivac = false, InitialCache Initial = InitialCache.Cold,
    byte InitialData = WriterTable.Old, byte InitialRamBehind = WriterTable.Old)
{
    public static HardwareConfig Default { get; } = new();
}
