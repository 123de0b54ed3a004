using System.Text;
using System.Text.Json;

namespace DmaCheck.Reports;

/// <summary>Indented UTF-8 JSON written by hand, with a final newline: the JSON, SARIF and sweep reports share it.</summary>
internal static class JsonText
{
    public static string Write(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            body(w);
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes a nullable number, or null.</summary>
    public static void WriteNumberOrNull(this Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } n)
        {
            w.WriteNumber(name, n);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    /// <summary>Writes a nullable unsigned number, or null.</summary>
    public static void WriteNumberOrNull(this Utf8JsonWriter w, string name, ulong? value)
    {
        if (value is { } n)
        {
            w.WriteNumber(name, n);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
