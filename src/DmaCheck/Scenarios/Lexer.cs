using System.Globalization;

namespace DmaCheck.Scenarios;

public enum TokenKind
{
    Identifier,
    Number,
    String,
    Symbol,
    Newline,
    Comment,
    End,
}

public sealed record Token(TokenKind Kind, string Text, SourceSpan Span)
{
    public ulong Number { get; init; }

    public override string ToString() => Kind switch
    {
        TokenKind.Newline => "end of line",
        TokenKind.End => "end of file",
        TokenKind.String => $"\"{Text}\"",
        _ => $"'{Text}'",
    };
}

/// <summary>
/// Splits a scenario into tokens. Identifiers may contain letters, digits, '_', and '-' or '.' between them
/// (profile names such as <c>linux-6.4-arm64</c>, switch keys such as <c>arm64.prep_coherent</c>, fields such as
/// <c>buf.dma</c>). Comments run from '#' to the end of the line and are kept, since a comment may declare an
/// expected verdict.
/// </summary>
public static class Lexer
{
    private static readonly string[] Symbols = ["->", "..", "==", "!=", "&&", "||", "{", "}", "(", ")", "[", "]", "=", ",", ":", "|", "+", "<", ">", ";", "&", "~"];

    public static List<Token> Tokenize(SourceText source)
    {
        var text = source.Text;
        var tokens = new List<Token>();
        int i = 0, line = 1, lineStart = 0;
        while (i < text.Length)
        {
            var c = text[i];
            var col = i - lineStart + 1;
            if (c == '\n')
            {
                tokens.Add(new Token(TokenKind.Newline, "\n", new SourceSpan(line, col, 1)));
                i++;
                line++;
                lineStart = i;
                continue;
            }

            if (c is ' ' or '\t' or '\r')
            {
                i++;
                continue;
            }

            if (c == '#')
            {
                var end = text.IndexOf('\n', i);
                end = end < 0 ? text.Length : end;
                tokens.Add(new Token(TokenKind.Comment, text[i..end].TrimEnd('\r'), new SourceSpan(line, col, end - i)));
                i = end;
                continue;
            }

            if (c == '"')
            {
                var j = i + 1;
                while (j < text.Length && text[j] != '"' && text[j] != '\n')
                {
                    j++;
                }

                if (j >= text.Length || text[j] != '"')
                {
                    throw new ScenarioException(source, new SourceSpan(line, col, j - i), "unterminated string: add the closing '\"' on the same line");
                }

                tokens.Add(new Token(TokenKind.String, text[(i + 1)..j], new SourceSpan(line, col, j - i + 1)));
                i = j + 1;
                continue;
            }

            if (char.IsAsciiDigit(c))
            {
                var j = i;
                while (j < text.Length && (char.IsAsciiLetterOrDigit(text[j]) || text[j] == '_'))
                {
                    j++;
                }

                var word = text[i..j];
                var span = new SourceSpan(line, col, j - i);
                tokens.Add(new Token(TokenKind.Number, word, span) { Number = ParseNumber(source, word, span) });
                i = j;
                continue;
            }

            if (char.IsAsciiLetter(c) || c == '_')
            {
                var j = i + 1;
                while (j < text.Length)
                {
                    if (char.IsAsciiLetterOrDigit(text[j]) || text[j] == '_')
                    {
                        j++;
                    }
                    else if ((text[j] == '-' || text[j] == '.') && j + 1 < text.Length &&
                             (char.IsAsciiLetterOrDigit(text[j + 1]) || text[j + 1] == '_'))
                    {
                        j++;
                    }
                    else
                    {
                        break;
                    }
                }

                tokens.Add(new Token(TokenKind.Identifier, text[i..j], new SourceSpan(line, col, j - i)));
                i = j;
                continue;
            }

            if (c == '\uFFFD' || (char.IsControl(c) && c is not ('\t' or '\r' or '\n')))
            {
                throw new ScenarioException(source, new SourceSpan(line, col, 1),
                    $"{(c == '\uFFFD' ? "bytes that are not UTF-8 text" : $"control character U+{(int)c:X4}")}: a scenario is a text file (is this a binary file?)");
            }

            if (c == '-' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1]))
            {
                var j = i + 1;
                while (j < text.Length && char.IsAsciiLetterOrDigit(text[j]))
                {
                    j++;
                }

                throw new ScenarioException(source, new SourceSpan(line, col, j - i),
                    $"negative number '{text[i..j]}': sizes, offsets, addresses and counts are unsigned (0 or more)");
            }

            var symbol = Symbols.FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (symbol is null)
            {
                var shown = char.IsControl(c) || c > '~' ? $"U+{(int)c:X4}" : $"'{c}'";
                throw new ScenarioException(source, new SourceSpan(line, col, 1), $"unexpected character {shown}");
            }

            tokens.Add(new Token(TokenKind.Symbol, symbol, new SourceSpan(line, col, symbol.Length)));
            i += symbol.Length;
        }

        tokens.Add(new Token(TokenKind.End, string.Empty, new SourceSpan(line, i - lineStart + 1, 1)));
        return tokens;
    }

    private static ulong ParseNumber(SourceText source, string word, SourceSpan span) =>
        TryParseNumber(word, out var value)
            ? value
            : throw new ScenarioException(source, span, $"'{word}' is not a number (decimal, 0x hex, or with a K, M or G suffix, below 2^64)");

    /// <summary>A number as the language writes it: decimal, 0x hex, <c>_</c> separators, and a K, M or G suffix; false when it is none or is 2^64 or more.</summary>
    public static bool TryParseNumber(string word, out ulong value)
    {
        var digits = word.Replace("_", string.Empty, StringComparison.Ordinal);
        if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return ulong.TryParse(digits.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && digits.Length > 2;
        }

        var shift = digits.Length == 0 ? 0 : digits[^1] switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        if (shift > 0)
        {
            digits = digits[..^1];
        }

        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value) || (shift > 0 && value >> (64 - shift) != 0))
        {
            value = 0;
            return false;
        }

        value <<= shift;
        return true;
    }
}
