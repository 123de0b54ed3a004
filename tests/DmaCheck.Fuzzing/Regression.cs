using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace DmaCheck.Fuzzing;

/// <summary>A broken invariant: its name, what makes two failures the same one (for shrinking), and the details.</summary>
/// <param name="Invariant">crash, hang, unlocated, disagreement, replay or limit.</param>
/// <param name="Signature">The invariant, and for a crash the exception's type and the method that threw.</param>
public sealed record Finding(string Invariant, string Signature, string Detail)
{
    public bool SameFailure(Finding other) => Invariant == other.Invariant && Signature == other.Signature;
}

/// <summary>Which invariants an input is checked against.</summary>
public enum InputKind
{
    /// <summary>A generated scenario: every invariant of a valid input (<see cref="Fuzzer.CheckValid"/>).</summary>
    Valid,

    /// <summary>A mutant: the invariants of any input (<see cref="Fuzzer.CheckAny"/>).</summary>
    Any,
}

/// <summary>
/// A shrunk failing input kept in <c>tests/regressions/</c>: <c>INVARIANT-HASH.dmc</c>, where HASH is the first 12
/// hex digits of the input's SHA-256. Its first line is a header, <c>#! fuzz-regression KIND INVARIANT: DETAIL</c>;
/// everything after that line is the input exactly as it failed.
/// </summary>
public static partial class Regression
{
    private const string Magic = "#! fuzz-regression ";

    [GeneratedRegex(@"^#! fuzz-regression (valid|any) ([a-z]+): [^\n]*\n")]
    private static partial Regex Header();

    /// <summary>Writes <paramref name="text"/> under <paramref name="directory"/> and returns the path.</summary>
    public static string Save(string directory, InputKind kind, Finding finding, string text)
    {
        Directory.CreateDirectory(directory);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
        var detail = new string(finding.Detail.Split('\n')[0].Select(c => char.IsControl(c) ? ' ' : c).ToArray());
        var path = Path.Combine(directory, $"{finding.Invariant}-{hash}.dmc");
        File.WriteAllText(path, $"{Magic}{kind.ToString().ToLowerInvariant()} {finding.Invariant}: {detail}\n{text}", new UTF8Encoding(false));
        return path;
    }

    /// <summary>Reads a file written by <see cref="Save"/>: the kind of input, the invariant it broke, and the input.</summary>
    public static (InputKind Kind, string Invariant, string Text) Load(string path)
    {
        var content = File.ReadAllText(path, new UTF8Encoding(false));
        var m = Header().Match(content);
        if (!m.Success)
        {
            throw new FormatException($"{path}: the first line is not a '{Magic}KIND INVARIANT: DETAIL' header");
        }

        var kind = m.Groups[1].Value == "valid" ? InputKind.Valid : InputKind.Any;
        return (kind, m.Groups[2].Value, content[m.Length..]);
    }

    /// <summary>The invariants <paramref name="text"/> breaks when checked as an input of <paramref name="kind"/>.</summary>
    public static IReadOnlyList<Finding> Check(InputKind kind, string text) =>
        kind == InputKind.Valid ? Fuzzer.CheckValid(text, out _) : Fuzzer.CheckAny("regression.dmc", text);
}
