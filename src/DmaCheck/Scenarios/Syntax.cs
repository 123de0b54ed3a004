namespace DmaCheck.Scenarios;

/// <summary>The syntax tree of a scenario file, as parsed, before names are resolved.</summary>
public sealed record ScenarioSyntax(
    SourceText Source,
    Token? Title,
    Token? Profile,
    IReadOnlyList<SetSyntax> Settings,
    IReadOnlyList<DeclSyntax> Declarations,
    IReadOnlyList<AgentSyntax> Agents,
    IReadOnlyList<ExpectSyntax> Expectations,
    IReadOnlyList<DeclaredSyntax> Declared,
    IReadOnlyList<DeclaredFindingSyntax> DeclaredFindings);

public sealed record SetSyntax(Token Key, Token Value);

public sealed record PropertySyntax(Token Key, Token Value);

/// <summary><c>device NAME { ... }</c>, <c>firmware NAME { ... }</c> or <c>tenant NAME { ... }</c>.</summary>
public sealed record DeclSyntax(Token Keyword, Token Name, IReadOnlyList<PropertySyntax> Properties);

public enum AgentKind
{
    Cpu,
    Firmware,
    Device,

    /// <summary>A user process: reaches memory only through the user mappings it was given (dma_mmap_*).</summary>
    User,
}

/// <summary><c>cpu NAME { ... }</c>, <c>firmware NAME on smc(p, ...) { ... }</c> or <c>dma NAME by DEVICE { ... }</c>.</summary>
public sealed record AgentSyntax(AgentKind Kind, Token Keyword, Token Name, Token? Device, IReadOnlyList<Token> Parameters, IReadOnlyList<StmtSyntax> Body);

/// <summary>One expectation: a conjunction of atoms <c>VAR[lo..hi] == WRITER</c>.</summary>
public sealed record ExpectSyntax(Token Name, IReadOnlyList<AtomSyntax> Atoms);

public sealed record AtomSyntax(Token Var, RangeSyntax? Range, Token Operator, Token Writer);

public sealed record RangeSyntax(Token Low, Token High);

/// <summary>A declared expected verdict: <c># expect NAME: VERDICT[, min-events [>=]N[, every-schedule|some-schedules]]</c>.</summary>
public sealed record DeclaredSyntax(Token Name, Token Verdict, Token? AtLeast, Token? MinEvents, Token? Schedules = null);

/// <summary>A declared finding: <c># expect finding KIND [in FUNCTION] [owner NAME]</c>, or (Kind null) <c># expect no findings</c>.</summary>
public sealed record DeclaredFindingSyntax(SourceSpan Span, Token? Kind, Token? Function, Token? Owner);

/// <summary>
/// A value: a number, a variable, a field (<c>buf.dma</c>), or a masked one (<c>(h &amp; ~0xfff)</c>), optionally plus a
/// number; or flags joined by '|'.
/// </summary>
public sealed record ExprSyntax(IReadOnlyList<Token> Terms, Token? Offset, SourceSpan Span)
{
    public Token Head => Terms[0];

    /// <summary>The number after <c>&amp;</c> in <c>(VAR &amp; [~]MASK)</c>, if any.</summary>
    public Token? Mask { get; init; }

    /// <summary>Whether the mask is written <c>~MASK</c> (its complement is what is kept).</summary>
    public bool MaskInverted { get; init; }
}

public abstract record StmtSyntax(SourceSpan Span, string Text);

/// <summary><c>[TARGET =] FUNCTION(ARGS)</c>: a kernel call.</summary>
public sealed record CallSyntax(SourceSpan Span, string Text, Token? Target, Token Function, IReadOnlyList<ExprSyntax> Args) : StmtSyntax(Span, Text);

public enum AddressSpace
{
    /// <summary>A kernel virtual address: the alias a variable holds.</summary>
    Virtual,

    /// <summary><c>phys(x)</c>: a physical address.</summary>
    Physical,

    /// <summary><c>dma(x)</c>: a DMA (bus) address.</summary>
    Dma,
}

public sealed record AddressSyntax(AddressSpace Space, ExprSyntax Expr, SourceSpan Span);

/// <summary><c>write ADDR[lo..hi] = WRITER</c>.</summary>
public sealed record WriteSyntax(SourceSpan Span, string Text, AddressSyntax Address, RangeSyntax Range, Token Writer) : StmtSyntax(Span, Text)
{
    /// <summary>For <c>write ADDR[lo..hi] = dma(EXPR)</c>: the DMA address stored (a descriptor's buffer pointer), 8 bytes little-endian.</summary>
    public AddressSyntax? Pointer { get; init; }
}

/// <summary><c>fetch ADDR[lo..hi] -> VAR</c>: a device reads an 8-byte DMA address from memory (a descriptor field) into a variable of its own.</summary>
public sealed record FetchSyntax(SourceSpan Span, string Text, AddressSyntax Address, RangeSyntax Range, Token Var) : StmtSyntax(Span, Text);

/// <summary><c>read ADDR[lo..hi] -> VAR</c>.</summary>
public sealed record ReadSyntax(SourceSpan Span, string Text, AddressSyntax Address, RangeSyntax Range, Token Var) : StmtSyntax(Span, Text);

/// <summary><c>poll ADDR[lo..hi] == WRITER [, max N]</c>.</summary>
public sealed record PollSyntax(SourceSpan Span, string Text, AddressSyntax Address, RangeSyntax Range, Token Writer, Token? Max) : StmtSyntax(Span, Text);

/// <summary><c>smc FIRMWARE(ARGS)</c>: a synchronous call into firmware.</summary>
public sealed record SmcSyntax(SourceSpan Span, string Text, Token Firmware, IReadOnlyList<ExprSyntax> Args) : StmtSyntax(Span, Text);

/// <summary><c>signal EVENT</c> or <c>wait EVENT</c>.</summary>
public sealed record EventSyntax(SourceSpan Span, string Text, bool IsWait, Token Event) : StmtSyntax(Span, Text);
