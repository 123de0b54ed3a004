namespace DmaCheck.Kernel;

/// <summary>
/// Boot-time memory initialisation switches of the page allocator (mm/page_alloc.c, v5.3+):
/// init_on_alloc= and init_on_free= (defaults from CONFIG_INIT_ON_ALLOC_DEFAULT_ON / CONFIG_INIT_ON_FREE_DEFAULT_ON).
/// </summary>
public sealed record KernelConfig(bool InitOnAlloc = false, bool InitOnFree = false)
{
    /// <summary>want_init_on_alloc(gfp): the init_on_alloc key, or __GFP_ZERO in the request.</summary>
    public bool WantInitOnAlloc(Gfp gfp) => InitOnAlloc || (gfp & Gfp.__GFP_ZERO) != 0;

    /// <summary>want_init_on_free().</summary>
    public bool WantInitOnFree() => InitOnFree;
}

/// <summary>
/// The kernel would hit a BUG, an oops or memory corruption here (for example freeing pages it does not own).
/// The run reports it as an error of the scenario, with the function at fault.
/// </summary>
public sealed class KernelBugException(string function, string message) : Exception($"{function}: {message}")
{
    public string Function { get; } = function;
}

/// <summary>
/// The scenario reaches behaviour this version of dmacheck does not model. The run must stop and say so; it
/// never guesses a verdict.
/// </summary>
public sealed class NotModelledException(string what) : Exception($"not modelled: {what}")
{
    public string What { get; } = what;
}
