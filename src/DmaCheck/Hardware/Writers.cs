namespace DmaCheck.Hardware;

/// <summary>
/// Symbolic byte values. Every byte in the model holds the id of the writer that produced it, so a report can
/// say whose data was seen (<c>payload</c>, <c>zero</c>, <c>old</c>, ...). Ids are small and dense; a table
/// maps them back to names. The table is built before exploration starts and is read-only afterwards.
/// </summary>
public sealed class WriterTable
{
    /// <summary>The contents RAM holds before anything in the scenario wrote it: a previous owner's data.</summary>
    public const byte Old = 0;

    /// <summary>Zeroes written by the kernel (init_on_alloc, init_on_free, memset in dma_alloc_*).</summary>
    public const byte Zero = 1;

    private readonly List<string> names = ["old", "zero"];
    private readonly Dictionary<string, byte> ids = new(StringComparer.Ordinal) { ["old"] = Old, ["zero"] = Zero };

    public int Count => names.Count;

    public byte Intern(string name)
    {
        if (ids.TryGetValue(name, out var id))
        {
            return id;
        }

        if (names.Count > byte.MaxValue)
        {
            throw new InvalidOperationException("more than 256 distinct writers");
        }

        id = (byte)names.Count;
        names.Add(name);
        ids[name] = id;
        return id;
    }

    public bool TryGet(string name, out byte id) => ids.TryGetValue(name, out id);

    public string Name(byte id) => id < names.Count ? names[id] : $"writer#{id}";
}
