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
        var line = Text.Line(Span.Line);
        var number = Span.Line.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var gutter = new string(' ', number.Length);
        var col = Math.Max(1, Span.Column);
        var prefix = new string(line.Take(col - 1).Select(c => c == '\t' ? '\t' : ' ').ToArray());
        var width = Math.Max(1, Math.Min(Span.Length, Math.Max(1, line.Length - col + 1)));
        return $"{Text.Path}:{Span.Line}:{col}: error: {Message}\n {number} | {line}\n {gutter} | {prefix}^{new string('~', width - 1)}";
    }
}
