using System.Collections.Immutable;

namespace DmaCheck.Hardware;

/// <summary>
/// Bytes that an agent read from one line into an observation variable: <see cref="Values"/> are bytes
/// [<see cref="LineOffset"/>, LineOffset + Values.Length) of the line. The offset is the line's own, not the
/// variable's: every variable is read once per run, from one physical range, so the variable offset follows from
/// the line's address and that range, and lines that saw the same bytes at the same place hold equal states however
/// far into the variable they lie. That is what lets a uniform buffer share one line set (docs/internals-line-sets.md).
/// </summary>
public sealed record Observation(int Var, int LineOffset, LineBytes Values)
{
    /// <summary>The offset in the variable of <see cref="Values"/>[0], for a line at <paramref name="linePa"/> of a variable read from <paramref name="varPa"/>.</summary>
    public int VarOffset(ulong linePa, ulong varPa) => checked((int)(linePa + (ulong)LineOffset - varPa));
}

/// <summary>
/// Everything the model knows about one physical cache line: its cache state and cached bytes, the bytes in
/// RAM behind it, and the observations agents made of it. On a board with an outer cache
/// (<see cref="HardwareConfig.OuterCache"/>, <see cref="HasOuter"/>) also the outer (L2) level's state and bytes,
/// between the inner level and RAM. Immutable and compared by value; the explorers keep sets of these.
/// </summary>
public sealed class LineState : IEquatable<LineState>
{
    [NotState]
    private readonly int hash;

    public LineState(CacheState cache, LineBytes? cached, LineBytes ram, ImmutableArray<Observation> observations)
        : this(cache, cached, ram, observations, false, CacheState.Invalid, null)
    {
    }

    public LineState(CacheState cache, LineBytes? cached, LineBytes ram, ImmutableArray<Observation> observations, bool hasOuter, CacheState outer, LineBytes? outerCached)
        : this(cache, cached, ram, observations, hasOuter, outer, outerCached, -1, 0, false, false)
    {
    }

    /// <param name="assigned">
    /// The observation variable that records an access fault while the line's memory is assigned to another security
    /// domain (<see cref="Assigned"/>); -1 while the non-secure world that runs Linux owns it.
    /// </param>
    /// <param name="faultWriter">The writer whose bytes that variable holds on a line that faulted.</param>
    /// <param name="busError">The line took a fatal access fault (<see cref="BusError"/>).</param>
    /// <param name="ncMapped">While assigned, a Normal non-cacheable alias still maps the line (<see cref="NcMapped"/>).</param>
    public LineState(CacheState cache, LineBytes? cached, LineBytes ram, ImmutableArray<Observation> observations, bool hasOuter, CacheState outer, LineBytes? outerCached,
        int assigned, byte faultWriter, bool busError, bool ncMapped)
        : this(cache, cached, ram, observations, hasOuter, outer, outerCached, assigned, faultWriter, busError, ncMapped, [])
    {
    }

    /// <param name="aliases">
    /// On an aliasing data cache, the valid copies of the line that aliases with another virtual index than the linear map's
    /// hold (<see cref="Aliases"/>), by ascending colour.
    /// </param>
    public LineState(CacheState cache, LineBytes? cached, LineBytes ram, ImmutableArray<Observation> observations, bool hasOuter, CacheState outer, LineBytes? outerCached,
        int assigned, byte faultWriter, bool busError, bool ncMapped, ImmutableArray<AliasLine> aliases)
    {
        if ((cache == CacheState.Invalid) != (cached is null))
        {
            throw new ArgumentException("an Invalid line holds no data, a valid line does");
        }

        if ((outer == CacheState.Invalid) != (outerCached is null) || (!hasOuter && outer != CacheState.Invalid))
        {
            throw new ArgumentException("an Invalid (or absent) outer line holds no data, a valid one does");
        }

        Cache = cache;
        Cached = cached;
        Ram = ram;
        Observations = observations;
        HasOuter = hasOuter;
        Outer = outer;
        OuterCached = outerCached;
        Assigned = assigned;
        FaultWriter = faultWriter;
        BusError = busError;
        NcMapped = ncMapped;
        Aliases = aliases.IsDefault ? [] : aliases;
        var h = new HashCode();
        h.Add(cache);
        h.Add(cached);
        h.Add(ram);
        foreach (var o in observations)
        {
            h.Add(o.Var);
            h.Add(o.LineOffset);
            h.Add(o.Values);
        }

        if (hasOuter)
        {
            // Only with an outer level, so a state of a board without one hashes as it always did.
            h.Add(outer);
            h.Add(outerCached);
        }

        if (assigned >= 0 || busError || ncMapped)
        {
            // Only for assigned memory, so every other state hashes as it always did.
            h.Add(assigned);
            h.Add(faultWriter);
            h.Add(busError);
            h.Add(ncMapped);
        }

        foreach (var a in Aliases)
        {
            // Only on an aliasing cache with a copy at another colour, so every other state hashes as it always did.
            h.Add(a.Colour);
            h.Add(a.State);
            h.Add(a.Cached);
        }

        hash = h.ToHashCode();
    }

    public CacheState Cache { get; }

    /// <summary>The cached bytes; null when the line is Invalid.</summary>
    public LineBytes? Cached { get; }

    public LineBytes Ram { get; }

    /// <summary>Observations, ordered by variable then line offset.</summary>
    public ImmutableArray<Observation> Observations { get; }

    /// <summary>Whether the board has an outer (L2) cache level between the inner level and RAM.</summary>
    public bool HasOuter { get; }

    /// <summary>The outer level's state of the line; always Invalid without an outer level.</summary>
    public CacheState Outer { get; }

    /// <summary>The outer level's bytes; null when it is Invalid (or absent).</summary>
    public LineBytes? OuterCached { get; }

    /// <summary>
    /// While the line's memory is assigned to another security domain (an XPU/MPU or a hypervisor's stage-2 denies the
    /// non-secure world that runs Linux; <c>qcom_scm_assign_mem</c>), the observation variable a fatal access records
    /// its fault in; -1 while Linux's world owns it. Any bus access the CPU makes there is fatal, including a
    /// speculative linefill and the write-back of a dirty line (docs/semantics.md, "Memory the CPU must never touch").
    /// </summary>
    public int Assigned { get; }

    /// <summary>The writer a fault records, for <see cref="Assigned"/>'s variable.</summary>
    public byte FaultWriter { get; }

    /// <summary>
    /// The CPU side made a bus access to the line while it was assigned away: the access was refused with a fatal
    /// external abort (on Qualcomm SoCs the secure world resets the board). Nothing changes the line afterwards.
    /// </summary>
    public bool BusError { get; }

    /// <summary>
    /// While the line is assigned away, whether a Normal non-cacheable alias of it is still live: the architecture lets
    /// the CPU read Normal memory speculatively whatever its cacheability (only Device memory is never read
    /// speculatively), so such an alias can reach the line with no instruction asking for it. The kernel keeps this up
    /// to date on assigned lines (<see cref="LineOpKind.Reach"/>); it is false on every other line.
    /// </summary>
    public bool NcMapped { get; }

    /// <summary>
    /// On an aliasing data cache (<see cref="HardwareConfig.Aliasing"/>), the other L1 copies of this physical line: one per alias
    /// colour (<see cref="LineOp.Colour"/>) whose virtual index differs from the linear map's, each Clean or Dirty with bytes of its
    /// own; a colour not listed is Invalid. <see cref="Cache"/> and <see cref="Cached"/> are the linear map's copy. Always empty on
    /// a physically indexed cache. Ordered by colour.
    /// </summary>
    public ImmutableArray<AliasLine> Aliases { get; }

    /// <summary>The copy at <paramref name="colour"/> (0: the linear map's), or null when it is Invalid.</summary>
    public AliasLine? AliasAt(ulong colour)
    {
        foreach (var a in Aliases)
        {
            if (a.Colour == colour)
            {
                return a;
            }
        }

        return null;
    }

    /// <summary>The line with the copy at <paramref name="colour"/> (not 0) set to <paramref name="state"/> (Invalid: dropped).</summary>
    public LineState WithAlias(ulong colour, CacheState state, LineBytes? cached)
    {
        var list = Aliases.RemoveAll(a => a.Colour == colour);
        if (state != CacheState.Invalid)
        {
            var index = 0;
            while (index < list.Length && list[index].Colour < colour)
            {
                index++;
            }

            list = list.Insert(index, new AliasLine(colour, state, cached ?? throw new ArgumentException("a valid alias line holds data")));
        }

        return new(Cache, Cached, Ram, Observations, HasOuter, Outer, OuterCached, Assigned, FaultWriter, BusError, NcMapped, list);
    }

    /// <summary>What the inner level sees below it: the outer line when valid, else RAM.</summary>
    public LineBytes Below => OuterCached ?? Ram;

    public static LineState Fresh(LineBytes ram) => new(CacheState.Invalid, null, ram, []);

    /// <summary>An Invalid line, at both levels, of a board with (<paramref name="hasOuter"/>) or without an outer level.</summary>
    public static LineState Fresh(LineBytes ram, bool hasOuter) => new(CacheState.Invalid, null, ram, [], hasOuter, CacheState.Invalid, null);

    public LineState WithCache(CacheState cache, LineBytes? cached) => new(cache, cached, Ram, Observations, HasOuter, Outer, OuterCached, Assigned, FaultWriter, BusError, NcMapped, Aliases);

    public LineState WithRam(LineBytes ram) => new(Cache, Cached, ram, Observations, HasOuter, Outer, OuterCached, Assigned, FaultWriter, BusError, NcMapped, Aliases);

    /// <summary>The line with its memory assigned away, faults recorded in <paramref name="var"/> as <paramref name="writer"/>'s bytes; or given back (<paramref name="var"/> -1).</summary>
    public LineState WithAssignment(int var, byte writer) => new(Cache, Cached, Ram, Observations, HasOuter, Outer, OuterCached, var, var < 0 ? (byte)0 : writer, BusError, var >= 0 && NcMapped, Aliases);

    /// <summary>The line, assigned away, with a live Normal non-cacheable alias or none (<see cref="NcMapped"/>); unchanged when it is not assigned.</summary>
    public LineState WithNcMapped(bool mapped) => Assigned < 0 || mapped == NcMapped ? this : new(Cache, Cached, Ram, Observations, HasOuter, Outer, OuterCached, Assigned, FaultWriter, BusError, mapped, Aliases);

    /// <summary>The line after a fatal access while assigned away: the fault recorded in the assignment's variable.</summary>
    public LineState Faulted()
    {
        var recorded = WithObservation(new Observation(Assigned, 0, LineBytes.Uniform(Ram.Length, FaultWriter)));
        return new(recorded.Cache, recorded.Cached, recorded.Ram, recorded.Observations, HasOuter, Outer, OuterCached, Assigned, FaultWriter, true, NcMapped, Aliases);
    }

    /// <summary>The line with its outer level's state set; only on a board with one.</summary>
    public LineState WithOuter(CacheState outer, LineBytes? outerCached) =>
        HasOuter ? new(Cache, Cached, Ram, Observations, true, outer, outerCached, Assigned, FaultWriter, BusError, NcMapped, Aliases) : throw new InvalidOperationException("the line has no outer cache level");

    public LineState WithObservation(Observation observation)
    {
        var list = Observations.RemoveAll(o => o.Var == observation.Var && o.LineOffset == observation.LineOffset);
        var index = 0;
        while (index < list.Length && (list[index].Var < observation.Var ||
               (list[index].Var == observation.Var && list[index].LineOffset < observation.LineOffset)))
        {
            index++;
        }

        return new LineState(Cache, Cached, Ram, list.Insert(index, observation), HasOuter, Outer, OuterCached, Assigned, FaultWriter, BusError, NcMapped, Aliases);
    }

    public bool Equals(LineState? other)
    {
        if (other is null)
        {
            return false;
        }

        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (hash != other.hash || Cache != other.Cache || !Equals(Cached, other.Cached) || !Ram.Equals(other.Ram) ||
            HasOuter != other.HasOuter || Outer != other.Outer || !Equals(OuterCached, other.OuterCached) ||
            Assigned != other.Assigned || FaultWriter != other.FaultWriter || BusError != other.BusError || NcMapped != other.NcMapped ||
            Observations.Length != other.Observations.Length || !Aliases.SequenceEqual(other.Aliases))
        {
            return false;
        }

        for (var i = 0; i < Observations.Length; i++)
        {
            var a = Observations[i];
            var b = other.Observations[i];
            if (a.Var != b.Var || a.LineOffset != b.LineOffset || !a.Values.Equals(b.Values))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as LineState);

    public override int GetHashCode() => hash;

    /// <summary>For example <c>Clean(zero), RAM payload</c>, or with an outer level <c>Clean(zero), L2 Dirty(zero), RAM payload</c>.</summary>
    public string Describe(WriterTable writers)
    {
        var cache = Cache switch
        {
            CacheState.Invalid => "Invalid",
            _ => $"{Cache}({Cached!.Describe(writers)})",
        };
        var outer = !HasOuter ? string.Empty : Outer == CacheState.Invalid ? ", L2 Invalid" : $", L2 {Outer}({OuterCached!.Describe(writers)})";
        var secure = BusError ? ", bus error (the secure world refused the access)" : Assigned >= 0 ? ", assigned to another domain" : string.Empty;
        var aliases = string.Concat(Aliases.Select(a => $", alias line 0x{a.Colour:x} {a.State}({a.Cached.Describe(writers)})"));
        return $"{cache}{aliases}{outer}, RAM {Ram.Describe(writers)}{secure}";
    }
}

/// <summary>One valid L1 copy of a physical line at an alias colour other than the linear map's (<see cref="LineState.Aliases"/>).</summary>
public sealed record AliasLine(ulong Colour, CacheState State, LineBytes Cached);
