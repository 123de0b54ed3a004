namespace DmaCheck.Tests;

/// <summary>Locates the repository from the test binaries.</summary>
internal static class TestPaths
{
    public static string Root { get; } = FindRoot();

    public static string Scenarios => Path.Combine(Root, "scenarios");

    public static string Golden => Path.Combine(Root, "tests", "DmaCheck.Tests", "Golden");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "dmacheck.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (dmacheck.slnx) above " + AppContext.BaseDirectory);
    }
}
