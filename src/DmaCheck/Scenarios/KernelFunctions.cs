namespace DmaCheck.Scenarios;

/// <summary>The kernel functions a scenario statement may call (the call catalogue's entries), for "did you mean" on a typo.</summary>
public static class KernelFunctions
{
    /// <summary>Every call of the catalogue (Scenarios/Calls/), in its order.</summary>
    public static IReadOnlyList<string> Known { get; } = [.. CallCatalogue.Calls.Select(c => c.Name)];

    /// <summary>The message for a call of a function the binder does not know: the nearest names, not all of them.</summary>
    public static string Unknown(string name)
    {
        var hint = Suggestions.DidYouMean(name, Known, 3) ?? "docs/scenario-language.md lists every function dmacheck models";
        return $"unknown or unmodelled kernel function '{name}' ({hint})";
    }
}
