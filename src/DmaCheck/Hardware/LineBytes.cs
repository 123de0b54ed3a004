namespace DmaCheck.Hardware;

/// <summary>
/// The symbolic contents of one cache line (or of the RAM behind it): one writer id per byte. Immutable, with a
/// precomputed hash, and compared by value.
/// </summary>
public sealed class LineBytes : IEquatable<LineBytes>
{
    private readonly byte[] bytes;
    [NotState]
    private readonly int hash;

    private LineBytes(byte[] bytes)
    {
        this.bytes = bytes;
        var h = new HashCode();
        h.AddBytes(bytes);
        hash = h.ToHashCode();
    }

    public int Length => bytes.Length;

    public byte this[int index] => bytes[index];

    public ReadOnlySpan<byte> Span => bytes;

    public static LineBytes Uniform(int length, byte writer)
    {
        var b = new byte[length];
        Array.Fill(b, writer);
        return new LineBytes(b);
    }

    public static LineBytes From(ReadOnlySpan<byte> span) => new(span.ToArray());

    /// <summary>Returns a copy with bytes [start, end) replaced by <paramref name="writer"/>.</summary>
    public LineBytes With(int start, int end, byte writer)
    {
        if (IsUniform(start, end, writer))
        {
            return this;
        }

        var b = (byte[])bytes.Clone();
        b.AsSpan(start, end - start).Fill(writer);
        return new LineBytes(b);
    }

    /// <summary>Returns a copy with bytes [start, start + values.Length) replaced by <paramref name="values"/>.</summary>
    public LineBytes With(int start, ReadOnlySpan<byte> values)
    {
        if (bytes.AsSpan(start, values.Length).SequenceEqual(values))
        {
            return this;
        }

        var b = (byte[])bytes.Clone();
        values.CopyTo(b.AsSpan(start));
        return new LineBytes(b);
    }

    public bool IsUniform(int start, int end, byte writer) => !bytes.AsSpan(start, end - start).ContainsAnyExcept(writer);

    public bool Equals(LineBytes? other) =>
        other is not null && (ReferenceEquals(this, other) || (hash == other.hash && bytes.AsSpan().SequenceEqual(other.bytes)));

    public override bool Equals(object? obj) => Equals(obj as LineBytes);

    public override int GetHashCode() => hash;

    /// <summary>Describes the contents as runs of writers, for example <c>zero</c> or <c>payload[0..16) old[16..64)</c>.</summary>
    public string Describe(WriterTable writers) => DescribeRuns(bytes, writers);

    public static string DescribeRuns(ReadOnlySpan<byte> values, WriterTable writers)
    {
        if (values.Length == 0)
        {
            return "(empty)";
        }

        if (!values.ContainsAnyExcept(values[0]))
        {
            return writers.Name(values[0]);
        }

        var parts = new List<string>();
        var start = 0;
        for (var i = 1; i <= values.Length; i++)
        {
            if (i == values.Length || values[i] != values[start])
            {
                parts.Add($"{writers.Name(values[start])}[{start}..{i})");
                start = i;
            }
        }

        return string.Join(' ', parts);
    }
}
