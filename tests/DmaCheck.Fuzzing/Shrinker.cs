using System.Diagnostics;
using System.Text.RegularExpressions;

namespace DmaCheck.Fuzzing;

/// <summary>
/// Shrinks a failing input to a small one that still fails: delta debugging (Zeller and Hildebrandt's ddmin) over
/// lines, then over tokens, repeated until neither pass removes anything. Without a budget cut the result is
/// 1-minimal over tokens: removing any one token makes it pass.
/// </summary>
public static partial class Shrinker
{
    /// <summary>Tokens: identifiers and numbers, the language's two-character operators, and any other single character, whitespace included.</summary>
    [GeneratedRegex(@"\w+|\.\.|->|==|&&|[\s\S]")]
    private static partial Regex Token();

    /// <summary>
    /// The smallest text found that still satisfies <paramref name="fails"/>, which must hold for <paramref name="text"/>.
    /// Stops early, returning the best so far, after <paramref name="maxTests"/> calls of <paramref name="fails"/> or
    /// after <paramref name="timeBudget"/>.
    /// </summary>
    public static string Shrink(string text, Func<string, bool> fails, int maxTests = 10_000, TimeSpan? timeBudget = null)
    {
        var budget = new Budget(maxTests, timeBudget ?? TimeSpan.FromMinutes(5));
        var cache = new Dictionary<string, bool>(StringComparer.Ordinal) { [text] = true };
        bool Test(string candidate)
        {
            if (!cache.TryGetValue(candidate, out var result))
            {
                budget.Spend();
                cache[candidate] = result = fails(candidate);
            }

            return result;
        }

        while (!budget.Exhausted)
        {
            var before = text;
            text = string.Concat(DeltaDebug(Lines(text), u => Test(string.Concat(u)), budget));
            text = string.Concat(DeltaDebug(Token().Matches(text).Select(m => m.Value).ToList(), u => Test(string.Concat(u)), budget));
            if (text == before)
            {
                break;
            }
        }

        return text;
    }

    /// <summary>The lines of <paramref name="text"/>, each with its line break.</summary>
    private static List<string> Lines(string text)
    {
        var lines = new List<string>();
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                lines.Add(text[start..(i + 1)]);
                start = i + 1;
            }
        }

        if (start < text.Length)
        {
            lines.Add(text[start..]);
        }

        return lines;
    }

    /// <summary>ddmin: a 1-minimal sublist of <paramref name="units"/> (in order) that still fails, unless the budget runs out first.</summary>
    private static IReadOnlyList<T> DeltaDebug<T>(IReadOnlyList<T> units, Func<IReadOnlyList<T>, bool> fails, Budget budget)
    {
        var current = units.ToList();
        if (current.Count > 0 && !budget.Exhausted && fails([]))
        {
            return [];
        }

        var n = 2;
        while (current.Count >= 2 && !budget.Exhausted)
        {
            var chunks = Split(current, n);
            var reduced = false;
            for (var i = 0; i < chunks.Count && !reduced && !budget.Exhausted; i++)
            {
                if (fails(chunks[i]))
                {
                    current = chunks[i];
                    n = 2;
                    reduced = true;
                }
            }

            for (var i = 0; i < chunks.Count && !reduced && n > 2 && !budget.Exhausted; i++)
            {
                var complement = chunks.Where((_, j) => j != i).SelectMany(c => c).ToList();
                if (fails(complement))
                {
                    current = complement;
                    n = Math.Max(n - 1, 2);
                    reduced = true;
                }
            }

            if (!reduced)
            {
                if (n >= current.Count)
                {
                    break;
                }

                n = Math.Min(n * 2, current.Count);
            }
        }

        return current;
    }

    private static List<List<T>> Split<T>(List<T> units, int n)
    {
        var chunks = new List<List<T>>(n);
        var start = 0;
        for (var i = 0; i < n; i++)
        {
            var end = start + ((units.Count - start) / (n - i));
            chunks.Add(units[start..end]);
            start = end;
        }

        return chunks;
    }

    /// <summary>How many more candidate inputs a shrink may try, and until when.</summary>
    private sealed class Budget(int maxTests, TimeSpan time)
    {
        private readonly Stopwatch watch = Stopwatch.StartNew();

        private int left = maxTests;

        public bool Exhausted => left <= 0 || watch.Elapsed > time;

        public void Spend() => left--;
    }
}
