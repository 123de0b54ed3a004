using System.Diagnostics.CodeAnalysis;

namespace DmaCheck.Tests;

/// <summary>
/// A test that needs an outside tool (Chromium, GTKWave) and cannot find it: under CI (env CI set, as .ci/run's caller
/// sets CI=true) that is a failure, since .ci/run installs the tools; elsewhere the test is reported as skipped, never
/// as passed. Use it in a <see cref="SkippableFactAttribute"/> test (Xunit.SkippableFact).
/// </summary>
internal static class Requires
{
    /// <summary>Whether this run is CI's: CI set to anything but empty, 0 or false.</summary>
    public static bool UnderCi => Environment.GetEnvironmentVariable("CI") is { Length: > 0 } ci && ci != "0" && !ci.Equals("false", StringComparison.OrdinalIgnoreCase);

    /// <summary>Fails under CI, otherwise skips, unless <paramref name="path"/> (the tool that was looked for) was found.</summary>
    public static void Tool([NotNull] string? path, string what) => Tool(path, what, UnderCi);

    /// <summary>As <see cref="Tool(string?, string)"/>, with CI's presence given (for testing this rule itself).</summary>
    public static void Tool([NotNull] string? path, string what, bool underCi)
    {
        if (path is not null)
        {
            return;
        }

        Assert.False(underCi, $"{what} is missing under CI; .ci/run installs it");
        Skip.If(true, $"{what} is not installed here, so this test cannot run (.ci/run installs it)");
        throw new InvalidOperationException("unreachable: Skip.If throws");
    }
}
