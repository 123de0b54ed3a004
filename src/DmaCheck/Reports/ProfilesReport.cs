using System.Text;
using DmaCheck.Dma;

namespace DmaCheck.Reports;

/// <summary>The profiles and switches, generated from the code: <c>dmacheck profiles</c> and docs/profiles.md.</summary>
public static class ProfilesReport
{
    /// <summary>Plain text for the terminal.</summary>
    public static string Text()
    {
        var sb = new StringBuilder();
        foreach (var p in Profiles.All)
        {
            sb.AppendLine($"{p.Name}: {p.Description}");
            sb.AppendLine($"  layout {p.Layout.Name}: {p.Layout.Description}");
            foreach (var (_, what) in (p.Gaps ?? []).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                sb.AppendLine($"  not modelled: {what}");
            }
            foreach (var s in Switches.All.Where(p.Has))
            {
                var value = s.Find(p.Value(s))!;
                sb.AppendLine($"  {s.Key} = {value.Name}   ({value.Commit}, {value.Release})");
            }
        }

        sb.AppendLine();
        sb.AppendLine("switches:");
        foreach (var s in Switches.All)
        {
            sb.AppendLine($"  {s.Key}: {s.Description}");
            foreach (var v in s.Values)
            {
                sb.AppendLine($"    {v.Name} ({v.Commit}, {v.Release}): {v.Description}");
            }
        }

        return sb.ToString();
    }

    /// <summary>docs/profiles.md. A test fails when the file in the repository differs from this.</summary>
    public static string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Kernel profiles and switches");
        sb.AppendLine();
        sb.AppendLine("Generated from `src/DmaCheck/Dma/Switches.cs` and `KernelProfile.cs` by `ProfilesReport.Markdown()`;");
        sb.AppendLine("`ProfilesDocTests` fails when this file is out of date (regenerate with `tools/regen-docs.sh`).");
        sb.AppendLine("A scenario picks a profile with `profile NAME` and may override any switch with `set KEY = VALUE`.");
        sb.AppendLine("A profile named for a tag (linux-5.10-arm64) models the kernel at that tag, not its later stable releases.");
        sb.AppendLine("\"first release\" is the first tag with the commit (the equivalent of `git describe --contains`), taken from the");
        sb.AppendLine("pull request or the kernel.org push log that carried it; \"before vX\" marks the behaviour a commit replaced.");
        sb.AppendLine();
        sb.AppendLine("## Profiles");
        sb.AppendLine();
        sb.Append("| profile | layout |");
        foreach (var s in Switches.All)
        {
            sb.Append($" `{s.Key}` |");
        }

        sb.AppendLine();
        sb.Append("|---|---|");
        sb.AppendLine(string.Concat(Switches.All.Select(_ => "---|")));
        foreach (var p in Profiles.All)
        {
            sb.Append($"| `{p.Name}` | {p.Layout.Name} |");
            foreach (var s in Switches.All)
            {
                sb.Append(p.Has(s) ? $" `{p.Value(s)}` |" : " (not on this arch) |");
            }

            sb.AppendLine();
        }

        sb.AppendLine();
        foreach (var p in Profiles.All)
        {
            sb.AppendLine($"- `{p.Name}`: {p.Description}");
            foreach (var (_, what) in (p.Gaps ?? []).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                sb.AppendLine($"  - not modelled (the run stops as inconclusive when it needs it): {what}");
            }
        }

        sb.AppendLine();
        sb.AppendLine("## Layouts");
        sb.AppendLine();
        sb.AppendLine("| layout | arch | PAGE_OFFSET | PHYS_OFFSET | lowmem limit | VMALLOC_START | VMALLOC_END | DMA offset | description |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var l in Kernel.PlatformLayout.All)
        {
            sb.AppendLine($"| `{l.Name}` | {l.Arch} | 0x{l.PageOffset:x} | 0x{l.PhysOffset:x} | 0x{l.LowmemLimit:x} | 0x{l.VmallocStart:x} | 0x{l.VmallocEnd:x} | 0x{l.DmaOffset:x} | {l.Description} |");
        }

        sb.AppendLine();
        sb.AppendLine("## Switches");
        foreach (var s in Switches.All)
        {
            sb.AppendLine();
            sb.AppendLine($"### `{s.Key}`");
            sb.AppendLine();
            sb.AppendLine(s.Description + (s.Arch is { } arch ? $" ({arch} profiles only.)" : string.Empty));
            sb.AppendLine();
            sb.AppendLine("| value | commit | first release | behaviour |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var v in s.Values)
            {
                sb.AppendLine($"| `{v.Name}` | {v.Commit} | {v.Release} | {v.Description.Replace("|", "\\|", StringComparison.Ordinal)} |");
            }
        }

        return sb.ToString();
    }
}
