namespace DmaCheck.Scenarios;

/// <summary>A scenario file's text, with line lookup for error messages.</summary>
public sealed class SourceText
{
    private readonly string[] lines;

    public SourceText(string path, string text)
    {
        Path = path;
        Text = text;
        lines = text.Split('\n');
    }

    public string Path { get; }

    public string Text { get; }

    /// <summary>The text of 1-based line <paramref name="line"/>, without its line ending.</summary>
    public string Line(int line) => line >= 1 && line <= lines.Length ? lines[line - 1].TrimEnd('\r') : string.Empty;
}

/// <summary>A place in a scenario file: 1-based line and column, and the length of the offending text.</summary>
public readonly record struct SourceSpan(int Line, int Column, int Length)
{
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>A malformed scenario: reported as <c>file:line:col: error: message</c>, the line, and a caret under the offending text. Exit code 2.</summary>
public sealed class ScenarioException(SourceText source, SourceSpan span, string message) : Exception(message)
{
    public SourceText Text { get; } = source;

    public SourceSpan Span { get; } = span;

    public string Format()
    {
        var number = Span.Line.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var gutter = new string(' ', number.Length);
        var col = Math.Max(1, Span.Column);
        var (line, prefix, width) = Excerpt(Text.Line(Span.Line), col - 1, Span.Length);
        return $"{Text.Path}:{Span.Line}:{col}: error: {Message}\n {number} | {line}\n {gutter} | {prefix}^{new string('~', width - 1)}";
    }

    /// <summary>The most of a line that an error shows, in columns: a binary file's "line" can be kilobytes of raw bytes.</summary>
    public const int MaxShown = 80;

    /// <summary>
    /// The line as an error shows it: control and other unprintable characters escaped (<c>\x00</c>, <c>\u{FFFD}</c>), cut
    /// to about <see cref="MaxShown"/> columns around the offending text (with "..." where it is cut), and the caret's
    /// indent and width measured in the escaped text.
    /// </summary>
    public static (string Line, string CaretPrefix, int CaretWidth) Excerpt(string line, int index, int length)
    {
        index = Math.Clamp(index, 0, line.Length);
        var pieces = line.Select(c => c == '\t' || (!char.IsControl(c) && !char.IsSurrogate(c) && c != '\uFFFD' && !IsFormat(c))
            ? c.ToString()
            : c < 0x100 ? $"\\x{(int)c:x2}" : $"\\u{{{(int)c:X4}}}").ToList();

        // A line that fits is shown whole; a longer one from a third of the width before the offending text.
        var start = index;
        var end = pieces.Count;
        if (pieces.Sum(p => p.Length) > MaxShown)
        {
            for (var used = 0; start > 0 && used + pieces[start - 1].Length <= MaxShown / 3; start--)
            {
                used += pieces[start - 1].Length;
            }

            end = start;
            for (var used = 0; end < pieces.Count && (end <= index || used + pieces[end].Length <= MaxShown); end++)
            {
                used += pieces[end].Length;
            }
        }
        else
        {
            start = 0;
        }

        var shown = new System.Text.StringBuilder(start > 0 ? "..." : string.Empty);
        var prefix = new System.Text.StringBuilder(start > 0 ? "   " : string.Empty);
        var width = 0;
        for (var i = start; i < end; i++)
        {
            shown.Append(pieces[i]);
            if (i < index)
            {
                prefix.Append(line[i] == '\t' ? "\t" : new string(' ', pieces[i].Length));
            }
            else if (i < index + Math.Max(1, length))
            {
                width += pieces[i].Length;
            }
        }

        if (end < line.Length)
        {
            shown.Append("...");
        }

        return (shown.ToString(), prefix.ToString(), Math.Max(1, width));
    }

    /// <summary>Invisible formatting characters (bidirectional overrides, zero-width joiners) that would hide or reorder text.</summary>
    private static bool IsFormat(char c) => char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format;
}
