namespace DmaCheck.Kernel;

/// <summary>
/// The kernel would hit a BUG, an oops or memory corruption here (for example freeing pages it does not own).
/// The run reports it as an error of the scenario, with the function at fault.
/// </summary>
public sealed class KernelBugException(string function, string message) : Exception($"{function}: {message}");
