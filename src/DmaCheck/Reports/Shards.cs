using System.Text.Json;

namespace DmaCheck.Reports;

/// <summary>
/// One deterministic slice of a run (<c>--shard K/N</c>): of the run's items in their usual order (scenario files, or a
/// sweep's points), shard K of N takes those whose 0-based position i has i mod N = K - 1. Any engine that runs N
/// copies with K = 1..N (a Kubernetes Indexed Job, a CI matrix) covers every item exactly once.
/// </summary>
public sealed record Shard(int Index, int Count)
{
    /// <summary>Parses <c>K/N</c> with 1 &lt;= K &lt;= N; null when malformed.</summary>
    public static Shard? Parse(string text)
    {
        var parts = text.Split('/');
        return parts.Length == 2
            && int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k)
            && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n is >= 1 and <= 100_000 && k >= 1 && k <= n
            ? new Shard(k, n)
            : null;
    }

    /// <summary>This shard's items, in order.</summary>
    public IReadOnlyList<T> Take<T>(IReadOnlyList<T> items) => items.Where((_, i) => i % Count == Index - 1).ToList();

    /// <summary>How many of <paramref name="total"/> items this shard takes.</summary>
    public int Size(int total) => total / Count + (total % Count >= Index ? 1 : 0);

    /// <summary>Written after <c>"version"</c> in a shard's JSON: which slice it is, and of how many items.</summary>
    public void Write(Utf8JsonWriter w, int total)
    {
        w.WriteStartObject("shard");
        w.WriteNumber("index", Index);
        w.WriteNumber("count", Count);
        w.WriteNumber("total", total);
        w.WriteEndObject();
    }
}

/// <summary>A shard set that cannot be merged: missing, repeated or foreign shards, or not a shard's JSON at all.</summary>
public sealed class MergeException(string message) : Exception(message);

/// <summary>
/// <c>dmacheck merge</c>: the JSON reports of the N shards of one <c>check</c> or <c>sweep</c> run, combined into exactly
/// what the unsharded run prints with <c>--format json</c>, and its exit code.
/// </summary>
public static class ShardMerge
{
    /// <summary>The merged report and the unsharded run's exit code.</summary>
    public static (string Json, int ExitCode) Merge(IReadOnlyList<(string Name, string Text)> shards)
    {
        if (shards.Count == 0)
        {
            throw new MergeException("merge needs the JSON reports of every shard");
        }

        var docs = new List<(string Name, JsonDocument Doc, int Index, int Count, int Total)>();
        try
        {
            foreach (var (name, text) in shards)
            {
                JsonDocument doc;
                try
                {
                    doc = JsonDocument.Parse(text);
                }
                catch (JsonException e)
                {
                    throw new MergeException($"{name}: not JSON ({e.Message})");
                }

                var root = doc.RootElement;
                docs.Add((name, doc, 0, 0, 0));
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number)
                {
                    throw new MergeException($"{name}: not a dmacheck JSON report");
                }

                if (version.GetInt32() != JsonReport.Version)
                {
                    throw new MergeException($"{name}: JSON report version {version.GetInt32()}, and this dmacheck merges version {JsonReport.Version}");
                }

                if (!root.TryGetProperty("shard", out var shard))
                {
                    throw new MergeException($"{name}: not a shard's report (run 'dmacheck check|sweep ... --format json --shard K/N')");
                }

                docs[^1] = (name, doc, shard.GetProperty("index").GetInt32(), shard.GetProperty("count").GetInt32(), shard.GetProperty("total").GetInt32());
            }

            var (firstName, first, _, count, total) = docs[0];
            var kind = first.RootElement.TryGetProperty("points", out _) ? "points" : "scenarios";
            foreach (var d in docs)
            {
                if (d.Count != count || d.Total != total || !d.Doc.RootElement.TryGetProperty(kind, out _)
                    || (kind == "points" && d.Doc.RootElement.GetProperty("file").GetString() != first.RootElement.GetProperty("file").GetString()))
                {
                    throw new MergeException($"{d.Name} and {firstName} are shards of different runs");
                }
            }

            var byIndex = docs.GroupBy(d => d.Index).ToDictionary(g => g.Key, g => g.ToList());
            if (byIndex.FirstOrDefault(g => g.Value.Count > 1) is { Value: { } twice })
            {
                throw new MergeException($"shard {twice[0].Index}/{count} is given twice ({twice[0].Name}, {twice[1].Name})");
            }

            var missing = Enumerable.Range(1, count).Where(k => !byIndex.ContainsKey(k)).ToList();
            if (missing.Count > 0)
            {
                throw new MergeException($"shard(s) {string.Join(", ", missing.Select(k => $"{k}/{count}"))} missing: a merge needs all {count}");
            }

            var items = new JsonElement[total];
            foreach (var d in docs)
            {
                var slice = d.Doc.RootElement.GetProperty(kind).EnumerateArray().ToList();
                if (slice.Count != new Shard(d.Index, count).Size(total))
                {
                    throw new MergeException($"{d.Name}: shard {d.Index}/{count} of {total} should hold {new Shard(d.Index, count).Size(total)} item(s), not {slice.Count}");
                }

                for (var j = 0; j < slice.Count; j++)
                {
                    items[d.Index - 1 + (j * count)] = slice[j];
                }
            }

            var json = JsonText.Write(w =>
            {
                w.WriteStartObject();
                w.WriteNumber("version", JsonReport.Version);
                if (kind == "points")
                {
                    w.WriteString("file", first.RootElement.GetProperty("file").GetString());
                }

                w.WriteStartArray(kind);
                foreach (var item in items)
                {
                    item.WriteTo(w);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
            var codes = items.Select(i => kind == "points" ? SweepExitCode(i) : CheckExitCode(i)).ToList();
            return (json, codes.Contains(2) ? 2 : codes.Contains(1) ? 1 : codes.Contains(3) ? 3 : 0);
        }
        finally
        {
            foreach (var d in docs)
            {
                d.Doc.Dispose();
            }
        }
    }

    /// <summary>A scenario's exit code from its JSON, as <see cref="ScenarioOutcome.ExitCode"/> computes it from the outcome.</summary>
    private static int CheckExitCode(JsonElement scenario)
    {
        if (scenario.TryGetProperty("error", out var error))
        {
            return error.GetString() == "bad-input" ? 2 : 1;
        }

        var inconclusive = scenario.TryGetProperty("inconclusive", out _);
        var differs = scenario.GetProperty("expectations").EnumerateArray().Any(e => e.GetProperty("met").ValueKind == JsonValueKind.False);
        var findingsOff = !inconclusive && scenario.GetProperty("findings").EnumerateArray().Any(f => f.GetProperty("met").ValueKind == JsonValueKind.False);
        return differs || findingsOff ? 1 : inconclusive ? 3 : 0;
    }

    /// <summary>A sweep point's exit code from its JSON, as <c>dmacheck sweep</c> computes it.</summary>
    private static int SweepExitCode(JsonElement point) =>
        point.TryGetProperty("errorKind", out var kind) ? (kind.GetString() == "bad-input" ? 2 : 1)
        : point.TryGetProperty("inconclusive", out _) ? 3 : 0;
}
