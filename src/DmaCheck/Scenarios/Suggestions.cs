namespace DmaCheck.Scenarios;

/// <summary>"Did you mean" for names a user mistypes: kernel functions, settings, profiles, options and commands.</summary>
public static class Suggestions
{
    /// <summary>
    /// The known names closest to <paramref name="word"/> by edit distance (insertions, deletions, substitutions and
    /// swaps of neighbours, ignoring case), names that contain the word first, then nearest first and at most <paramref name="max"/>; only names within a third of
    /// the longer word's length (at least 1 and at most 4 edits) are offered. A known name that contains the word, or
    /// that the word contains, is offered too.
    /// </summary>
    public static IReadOnlyList<string> Nearest(string word, IEnumerable<string> known, int max = 3)
    {
        var w = word.ToLowerInvariant();
        return known.Distinct(StringComparer.Ordinal)
            .Select(k => (Name: k, Distance: Distance(w, k.ToLowerInvariant())))
            .Where(c => c.Name != word && (c.Distance <= Math.Clamp(Math.Max(w.Length, c.Name.Length) / 3, 1, 4)
                || (w.Length >= 4 && (c.Name.Contains(word, StringComparison.OrdinalIgnoreCase) || word.Contains(c.Name, StringComparison.OrdinalIgnoreCase)))))
            .OrderBy(c => w.Length >= 4 && c.Name.Contains(word, StringComparison.OrdinalIgnoreCase) ? 0 : 1)
            .ThenBy(c => c.Distance)
            .ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(max)
            .Select(c => c.Name)
            .ToList();
    }

    /// <summary>"did you mean 'x'?" (or "'x' or 'y'" when they are equally near), or null when nothing is close.</summary>
    public static string? DidYouMean(string word, IEnumerable<string> known, int max = 2)
    {
        var nearest = Nearest(word, known, max);
        var best = nearest.Count > 0 ? Rank(word, nearest[0]) : default;
        nearest = nearest.Where(n => Rank(word, n) == best).ToList();
        return nearest.Count == 0 ? null : $"did you mean {string.Join(" or ", nearest.Select(n => $"'{n}'"))}?";
    }

    private static (bool Contains, int Distance) Rank(string word, string name) =>
        (word.Length >= 4 && name.Contains(word, StringComparison.OrdinalIgnoreCase), Distance(word.ToLowerInvariant(), name.ToLowerInvariant()));

    /// <summary>The optimal-string-alignment distance: Levenshtein plus the swap of two neighbouring characters.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
