using System.Text.RegularExpressions;

namespace DmaCheck.Tests;

/// <summary>Design §2: a layer uses only the layers below it. Checked on the sources, folder by folder.</summary>
public partial class LayeringTests
{
    private static readonly string[] Order = ["Hardware", "Kernel", "Dma", "Debug", "Traces", "Scenarios", "Exploration", "Reports"];

    [GeneratedRegex(@"\bDmaCheck\.(Hardware|Kernel|Dma|Debug|Traces|Scenarios|Exploration|Reports|Cli)\b")]
    private static partial Regex LayerReference();

    [Fact]
    public void NoLayerReachesUpward()
    {
        var violations = new List<string>();
        var src = Path.Combine(TestPaths.Root, "src", "DmaCheck");
        for (var i = 0; i < Order.Length; i++)
        {
            var folder = Path.Combine(src, Order[i]);
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories))
            {
                foreach (Match m in LayerReference().Matches(File.ReadAllText(file)))
                {
                    var target = m.Groups[1].Value;
                    var rank = Array.IndexOf(Order, target);
                    if (target == "Cli" || rank > i)
                    {
                        violations.Add($"{Path.GetRelativePath(TestPaths.Root, file)} ({Order[i]}) uses {m.Value}");
                    }
                }
            }
        }

        Assert.Empty(violations);
    }

    [Fact]
    public void HardwareKnowsNothingOfLinux()
    {
        var words = new[] { "dma_", "kmalloc", "gfp", "Gfp", "vmalloc", "arch_", "Kernel" };
        var hits = Directory.EnumerateFiles(Path.Combine(TestPaths.Root, "src", "DmaCheck", "Hardware"), "*.cs")
            .SelectMany(f => File.ReadLines(f).Select((line, n) => (f, n, line)))
            .Where(x => !x.line.TrimStart().StartsWith("///", StringComparison.Ordinal) && !x.line.TrimStart().StartsWith("//", StringComparison.Ordinal))
            .Where(x => words.Any(w => x.line.Contains(w, StringComparison.Ordinal)))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.n + 1}: {x.line.Trim()}")
            .ToList();
        Assert.Empty(hits);
    }
}
