using System.Collections.Immutable;

namespace DmaCheck.Hardware;

/// <summary>One virtual mapping of a physical range with a memory attribute: an alias of that memory.</summary>
public sealed record Alias(string Name, ulong Va, ulong Pa, ulong Size, MemoryType Type)
{
    public bool ContainsVa(ulong va) => va >= Va && va - Va < Size;

    public bool ContainsPa(ulong pa) => pa >= Pa && pa - Pa < Size;

    public string Describe() => $"{Name} ({Type.Describe()}, VA 0x{Va:x}..0x{Va + Size:x} -> PA 0x{Pa:x})";
}

/// <summary>A virtual address that no live alias translates: the access would fault.</summary>
public sealed class TranslationFaultException(ulong va, ulong length, string reason)
    : Exception($"no live mapping translates VA 0x{va:x}..0x{va + length:x}: {reason}")
{
    public ulong Va { get; } = va;
}

/// <summary>
/// The live translations of the CPU (its page tables), as a set of aliases. Immutable. Knows nothing of who made
/// the mappings; the kernel model adds and removes them.
/// </summary>
public sealed class Mmu : IEquatable<Mmu>
{
    private readonly ImmutableList<Alias> aliases;

    private Mmu(ImmutableList<Alias> aliases, bool speculates = true)
    {
        this.aliases = aliases;
        Speculates = speculates;
    }

    public static Mmu Empty { get; } = new([]);

    /// <summary>
    /// Whether the CPU behind these page tables fills lines on its own (<see cref="HardwareConfig.SpeculativeFill"/>):
    /// speculation and prefetch go through the translations, so a CPU that does neither never fills a line the program
    /// did not access, whatever is mapped cacheable.
    /// </summary>
    public bool Speculates { get; }

    /// <summary>The same translations on a CPU that does (or does not) fill lines on its own.</summary>
    public Mmu WithSpeculation(bool speculates) => speculates == Speculates ? this : new Mmu(aliases, speculates);

    public IReadOnlyList<Alias> Aliases => aliases;

    public Mmu Map(Alias alias)
    {
        if (aliases.Any(a => alias.Va < a.Va + a.Size && a.Va < alias.Va + alias.Size))
        {
            throw new InvalidOperationException($"VA range of {alias.Name} overlaps a live mapping");
        }

        return new Mmu(aliases.Add(alias), Speculates);
    }

    public Mmu Unmap(Alias alias) => new(aliases.Remove(alias), Speculates);

    /// <summary>Translates [va, va+length) through one alias; faults if no single live alias covers it.</summary>
    public (ulong Pa, Alias Alias) Translate(ulong va, ulong length)
    {
        foreach (var a in aliases)
        {
            if (a.ContainsVa(va))
            {
                if (length > a.Size - (va - a.Va))
                {
                    throw new TranslationFaultException(va, length, $"the range runs past the end of {a.Name}");
                }

                return (a.Pa + (va - a.Va), a);
            }
        }

        throw new TranslationFaultException(va, length, "unmapped address");
    }

    /// <summary>
    /// Whether the hardware may speculatively fill the line at <paramref name="linePa"/>: the CPU
    /// <see cref="Speculates"/> and some live cacheable alias maps it.
    /// </summary>
    public bool IsFillable(ulong linePa)
    {
        if (!Speculates)
        {
            return false;
        }

        foreach (var a in aliases)
        {
            if (a.Type.IsCacheable() && a.ContainsPa(linePa))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether every byte of [pa, pa+size) is mapped by some live cacheable alias.</summary>
    /// <remarks>
    /// This is about the translations only, whatever <see cref="Speculates"/> says: the explorers use it to refuse a
    /// mapping change that would change which lines a speculating CPU may fill, and on a CPU that never fills a line no
    /// change matters, so the question stays the conservative one.
    /// </remarks>
    public bool IsFillable(ulong pa, ulong size)
    {
        var cursor = pa;
        var end = pa + size;
        var progress = true;
        while (cursor < end && progress)
        {
            progress = false;
            foreach (var a in aliases)
            {
                if (a.Type.IsCacheable() && a.ContainsPa(cursor))
                {
                    cursor = Math.Min(end, a.Pa + a.Size);
                    progress = true;
                }
            }
        }

        return cursor >= end;
    }

    public bool Equals(Mmu? other) => other is not null && (ReferenceEquals(this, other) || (Speculates == other.Speculates && aliases.SequenceEqual(other.aliases)));

    public override bool Equals(object? obj) => Equals(obj as Mmu);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Speculates);
        foreach (var a in aliases)
        {
            h.Add(a);
        }

        return h.ToHashCode();
    }
}
