namespace DmaCheck.Hardware;

/// <summary>
/// The scenario reaches behaviour this version of dmacheck does not model. The run must stop and say so; it
/// never guesses a verdict. Any layer may throw it.
/// </summary>
public sealed class NotModelledException(string what) : Exception($"not modelled: {what}");
