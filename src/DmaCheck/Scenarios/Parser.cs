namespace DmaCheck.Scenarios;

/// <summary>
/// A recursive-descent parser for the scenario language (grammar in docs/scenario-language.md). Every error
/// names the offending token's position.
/// </summary>
public sealed partial class Parser
{
    /// <summary>A comment declares a verdict when it reads <c>expect NAME:</c>.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*expect\s+[A-Za-z_][A-Za-z0-9_.-]*\s*:")]
    private static partial System.Text.RegularExpressions.Regex DeclarationComment();

    /// <summary>A comment declares an expected finding when it reads <c>expect finding</c> or <c>expect no findings</c>.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*expect\s+(finding|no\s+findings)(\s|$)")]
    private static partial System.Text.RegularExpressions.Regex FindingComment();

    private readonly SourceText source;
    private readonly List<Token> tokens;
    private readonly List<Token> comments = [];
    private int pos;

    private Parser(SourceText source)
    {
        this.source = source;
        var all = Lexer.Tokenize(source);
        comments.AddRange(all.Where(t => t.Kind == TokenKind.Comment));
        tokens = all.Where(t => t.Kind != TokenKind.Comment).ToList();
    }

    public static ScenarioSyntax Parse(SourceText source) => new Parser(source).ParseFile();

    private Token Peek => tokens[pos];

    private Token PeekAt(int offset) => tokens[Math.Min(pos + offset, tokens.Count - 1)];

    private ScenarioException Error(Token at, string message) => new(source, at.Span, message);

    private ScenarioException Error(SourceSpan at, string message) => new(source, at, message);

    private Token Next() => tokens[pos++];

    private bool IsSymbol(string s) => Peek.Kind == TokenKind.Symbol && Peek.Text == s;

    private bool IsWord(string w) => Peek.Kind == TokenKind.Identifier && Peek.Text == w;

    private Token ExpectSymbol(string s, string context)
    {
        if (!IsSymbol(s))
        {
            throw Error(Peek, $"expected '{s}' {context}, found {Peek}");
        }

        return Next();
    }

    private Token ExpectIdentifier(string what)
    {
        if (Peek.Kind != TokenKind.Identifier)
        {
            throw Error(Peek, $"expected {what}, found {Peek}");
        }

        return Next();
    }

    private Token ExpectNumber(string what)
    {
        if (Peek.Kind != TokenKind.Number)
        {
            throw Error(Peek, $"expected {what}, found {Peek}");
        }

        return Next();
    }

    private void SkipNewlines()
    {
        while (Peek.Kind == TokenKind.Newline || IsSymbol(";"))
        {
            pos++;
        }
    }

    private void EndOfStatement()
    {
        if (Peek.Kind is TokenKind.Newline or TokenKind.End || IsSymbol(";") || IsSymbol("}"))
        {
            return;
        }

        throw Error(Peek, $"expected the end of the line, found {Peek}");
    }

    private ScenarioSyntax ParseFile()
    {
        Token? title = null, profile = null;
        var settings = new List<SetSyntax>();
        var decls = new List<DeclSyntax>();
        var agents = new List<AgentSyntax>();
        var expects = new List<ExpectSyntax>();
        SkipNewlines();
        while (Peek.Kind != TokenKind.End)
        {
            var keyword = Peek;
            if (keyword.Kind != TokenKind.Identifier)
            {
                throw Error(keyword, $"expected a declaration (scenario, profile, set, device, firmware, tenant, reserved, cpu, user, dma, expect), found {keyword}");
            }

            switch (keyword.Text)
            {
                case "scenario":
                    Next();
                    if (title is not null)
                    {
                        throw Error(keyword, "a second 'scenario' title: a file holds one scenario");
                    }

                    if (Peek.Kind != TokenKind.String)
                    {
                        throw Error(Peek, $"expected the scenario's title in double quotes, found {Peek}");
                    }

                    title = Next();
                    break;
                case "profile":
                    Next();
                    if (profile is not null)
                    {
                        throw Error(keyword, "a second 'profile': a scenario runs under one profile (use 'dmacheck sweep' for several)");
                    }

                    profile = ExpectIdentifier("a profile name such as linux-6.4-arm64");
                    break;
                case "set":
                    Next();
                    var key = ExpectIdentifier("a setting name");
                    ExpectSymbol("=", "after the setting name");
                    settings.Add(new SetSyntax(key, ParseValueToken("a value")));
                    break;
                case "device" or "firmware" or "tenant" or "reserved" or "buffer" when PeekAt(2).Kind == TokenKind.Symbol && PeekAt(2).Text == "{":
                    decls.Add(ParseDeclaration());
                    break;
                case "firmware":
                    agents.Add(ParseFirmwareAgent());
                    break;
                case "cpu":
                    {
                        Next();
                        var name = ExpectIdentifier("the CPU thread's name");
                        agents.Add(new AgentSyntax(AgentKind.Cpu, keyword, name, null, [], ParseBlock()));
                        break;
                    }

                case "user":
                    {
                        Next();
                        var name = ExpectIdentifier("the user process's name");
                        agents.Add(new AgentSyntax(AgentKind.User, keyword, name, null, [], ParseBlock()));
                        break;
                    }

                case "dma":
                    {
                        Next();
                        var name = ExpectIdentifier("the DMA engine's name");
                        if (!IsWord("by"))
                        {
                            throw Error(Peek, $"expected 'by DEVICE' after the DMA engine's name, found {Peek}");
                        }

                        Next();
                        var device = ExpectIdentifier("the device whose DMA master this is");
                        agents.Add(new AgentSyntax(AgentKind.Device, keyword, name, device, [], ParseBlock()));
                        break;
                    }

                case "expect":
                    expects.Add(ParseExpect());
                    break;
                case "device" or "tenant" or "reserved" or "buffer":
                    throw Error(PeekAt(2), $"expected '{{' after '{keyword.Text} {PeekAt(1).Text}', found {PeekAt(2)}");
                default:
                    throw Error(keyword, $"unknown declaration '{keyword.Text}' (expected scenario, profile, set, device, firmware, tenant, reserved, buffer, cpu, user, dma or expect)");
            }

            EndOfStatement();
            SkipNewlines();
        }

        return new ScenarioSyntax(source, title, profile, settings, decls, agents, expects, ParseDeclaredVerdicts(), ParseDeclaredFindings());
    }

    private Token ParseValueToken(string what)
    {
        if (Peek.Kind is TokenKind.Identifier or TokenKind.Number)
        {
            return Next();
        }

        throw Error(Peek, $"expected {what}, found {Peek}");
    }

    private DeclSyntax ParseDeclaration()
    {
        var keyword = Next();
        var name = ExpectIdentifier($"the {keyword.Text}'s name");
        ExpectSymbol("{", $"to open the {keyword.Text}'s properties");
        var props = new List<PropertySyntax>();
        SkipNewlines();
        while (!IsSymbol("}"))
        {
            var key = ExpectIdentifier("a property name or '}'");
            ExpectSymbol("=", "after the property name");
            props.Add(new PropertySyntax(key, ParseValueToken("a property value")));
            if (IsSymbol(","))
            {
                Next();
            }
            else if (!IsSymbol("}"))
            {
                EndOfStatement();
            }

            SkipNewlines();
        }

        Next();
        return new DeclSyntax(keyword, name, props);
    }

    private AgentSyntax ParseFirmwareAgent()
    {
        var keyword = Next();
        var name = ExpectIdentifier("the firmware's name");
        if (!IsWord("on"))
        {
            throw Error(Peek, $"expected '{{' (a declaration) or 'on smc' (its program) after 'firmware {name.Text}', found {Peek}");
        }

        Next();
        if (!IsWord("smc"))
        {
            throw Error(Peek, $"expected 'smc' after 'on': firmware runs when the kernel calls it, found {Peek}");
        }

        Next();
        var parameters = new List<Token>();
        if (IsSymbol("("))
        {
            Next();
            while (!IsSymbol(")"))
            {
                parameters.Add(ExpectIdentifier("a parameter name"));
                if (!IsSymbol(")"))
                {
                    ExpectSymbol(",", "between parameters");
                }
            }

            Next();
        }

        return new AgentSyntax(AgentKind.Firmware, keyword, name, null, parameters, ParseBlock());
    }

    private List<StmtSyntax> ParseBlock()
    {
        ExpectSymbol("{", "to open the program");
        var body = new List<StmtSyntax>();
        SkipNewlines();
        while (!IsSymbol("}"))
        {
            if (Peek.Kind == TokenKind.End)
            {
                throw Error(Peek, "the file ends inside a program: add the closing '}'");
            }

            body.Add(ParseStatement());
            EndOfStatement();
            SkipNewlines();
        }

        Next();
        return body;
    }

    private string TextFrom(Token first)
    {
        var last = tokens[pos - 1];
        var line = source.Line(first.Span.Line);
        if (last.Span.Line != first.Span.Line)
        {
            return line[(first.Span.Column - 1)..].Trim();
        }

        return line[(first.Span.Column - 1)..(last.Span.Column - 1 + last.Span.Length)];
    }

    private SourceSpan SpanFrom(Token first)
    {
        var last = tokens[pos - 1];
        var length = last.Span.Line == first.Span.Line ? last.Span.Column + last.Span.Length - first.Span.Column : first.Span.Length;
        return first.Span with { Length = length };
    }

    private StmtSyntax ParseStatement()
    {
        var first = Peek;
        if (first.Kind != TokenKind.Identifier)
        {
            throw Error(first, $"expected a statement (a kernel call, write, read, poll, fetch, smc, signal or wait), found {first}");
        }

        switch (first.Text)
        {
            case "write":
                {
                    Next();
                    var address = ParseAddress();
                    var range = ParseRange();
                    ExpectSymbol("=", "after the range: write ADDR[lo..hi] = WRITER");
                    if (IsWord("dma") && PeekAt(1).Kind == TokenKind.Symbol && PeekAt(1).Text == "(")
                    {
                        // write desc[0..8] = dma(h): the CPU stores a DMA address (a descriptor's buffer pointer).
                        var at = Peek;
                        var pointer = ParseAddress();
                        return new WriteSyntax(SpanFrom(first), TextFrom(first), address, range, at) { Pointer = pointer };
                    }

                    var writer = ExpectIdentifier("the writer's name (the symbolic value stored), or dma(ADDR) for a DMA address");
                    return new WriteSyntax(SpanFrom(first), TextFrom(first), address, range, writer);
                }

            case "fetch":
                {
                    Next();
                    var address = ParseAddress();
                    var range = ParseRange();
                    ExpectSymbol("->", "after the range: fetch ADDR[lo..hi] -> VAR");
                    var var = ExpectIdentifier("the variable that receives the DMA address");
                    return new FetchSyntax(SpanFrom(first), TextFrom(first), address, range, var);
                }

            case "read":
                {
                    Next();
                    var address = ParseAddress();
                    var range = ParseRange();
                    ExpectSymbol("->", "after the range: read ADDR[lo..hi] -> VAR");
                    var var = ExpectIdentifier("the variable that receives the bytes");
                    return new ReadSyntax(SpanFrom(first), TextFrom(first), address, range, var);
                }

            case "poll":
                {
                    Next();
                    var address = ParseAddress();
                    var range = ParseRange();
                    ExpectSymbol("==", "after the range: poll ADDR[lo..hi] == WRITER [, max N]");
                    var writer = ExpectIdentifier("the writer whose bytes the poll waits for");
                    Token? max = null;
                    if (IsSymbol(","))
                    {
                        Next();
                        if (!IsWord("max"))
                        {
                            throw Error(Peek, $"expected 'max' after ',': poll ADDR[lo..hi] == WRITER, max N; found {Peek}");
                        }

                        Next();
                        max = ExpectNumber("the most reads before the poll gives up, as in max 3");
                    }

                    return new PollSyntax(SpanFrom(first), TextFrom(first), address, range, writer, max);
                }

            case "smc":
                {
                    Next();
                    var fw = ExpectIdentifier("the firmware's name");
                    var args = IsSymbol("(") ? ParseArgs() : [];
                    return new SmcSyntax(SpanFrom(first), TextFrom(first), fw, args);
                }

            case "signal" or "wait":
                {
                    Next();
                    var ev = ExpectIdentifier("an event name");
                    return new EventSyntax(SpanFrom(first), TextFrom(first), first.Text == "wait", ev);
                }
        }

        Token? target = null;
        if (PeekAt(1).Kind == TokenKind.Symbol && PeekAt(1).Text == "=")
        {
            target = Next();
            Next();
        }

        var function = ExpectIdentifier("a kernel function name");
        if (!IsSymbol("("))
        {
            throw Error(Peek, target is null
                ? $"expected '(' after '{function.Text}': statements are kernel calls, write, read, smc, signal or wait"
                : $"expected '(' after '{function.Text}': the right-hand side of an assignment is a kernel call");
        }

        var arguments = ParseArgs();
        return new CallSyntax(SpanFrom(first), TextFrom(first), target, function, arguments);
    }

    private List<ExprSyntax> ParseArgs()
    {
        ExpectSymbol("(", "to open the arguments");
        var args = new List<ExprSyntax>();
        while (!IsSymbol(")"))
        {
            args.Add(ParseExpr());
            if (!IsSymbol(")"))
            {
                ExpectSymbol(",", "between arguments");
            }
        }

        Next();
        return args;
    }

    private ExprSyntax ParseExpr()
    {
        var first = Peek;
        if (IsSymbol("("))
        {
            // (VAR & MASK) or (VAR & ~MASK): the bits of an address a device computes with (an NVMe PRP entry's page).
            Next();
            var head = ExpectIdentifier("a variable to mask, as in (h & ~0xfff)");
            ExpectSymbol("&", "after the variable: (VAR & MASK) or (VAR & ~MASK)");
            var inverted = false;
            if (IsSymbol("~"))
            {
                Next();
                inverted = true;
            }

            var mask = ExpectNumber("the mask, as in (h & ~0xfff)");
            ExpectSymbol(")", "to close the masked value");
            Token? plus = null;
            if (IsSymbol("+"))
            {
                Next();
                plus = ExpectNumber("a byte offset after '+'");
            }

            return new ExprSyntax([head], plus, SpanFrom(first)) { Mask = mask, MaskInverted = inverted };
        }

        if (first.Kind is not (TokenKind.Identifier or TokenKind.Number))
        {
            throw Error(first, $"expected a value (a number, a variable, or flags), found {first}");
        }

        var terms = new List<Token> { Next() };
        while (IsSymbol("|"))
        {
            Next();
            terms.Add(ExpectIdentifier("a flag after '|'"));
        }

        Token? offset = null;
        if (IsSymbol("+"))
        {
            Next();
            offset = ExpectNumber("a byte offset after '+'");
        }

        return new ExprSyntax(terms, offset, SpanFrom(first));
    }

    private AddressSyntax ParseAddress()
    {
        var first = Peek;
        if ((IsWord("phys") || IsWord("dma")) && PeekAt(1).Kind == TokenKind.Symbol && PeekAt(1).Text == "(")
        {
            var space = Next().Text == "phys" ? AddressSpace.Physical : AddressSpace.Dma;
            Next();
            var expr = ParseExpr();
            ExpectSymbol(")", "to close the address");
            if (space == AddressSpace.Dma && IsSymbol("+"))
            {
                // dma(h) + N is dma(h + N): the device adds to the address it was given.
                var plus = Next();
                var offset = ExpectNumber("a byte offset after '+'");
                if (expr.Offset is not null)
                {
                    throw Error(plus, "one offset per address: write dma(h + N) or dma(h) + N, not both");
                }

                expr = expr with { Offset = offset };
            }

            return new AddressSyntax(space, expr, SpanFrom(first));
        }

        if (first.Kind != TokenKind.Identifier && !IsSymbol("("))
        {
            throw Error(first, $"expected a buffer variable, phys(ADDR) or dma(ADDR), found {first}");
        }

        var e = ParseExpr();
        return new AddressSyntax(AddressSpace.Virtual, e, e.Span);
    }

    private RangeSyntax ParseRange()
    {
        ExpectSymbol("[", "to open the byte range, as in [0..4096]");
        var low = ExpectNumber("the first byte offset");
        ExpectSymbol("..", "between the offsets of the byte range");
        var high = ExpectNumber("the end offset (exclusive)");
        ExpectSymbol("]", "to close the byte range");
        return new RangeSyntax(low, high);
    }

    private ExpectSyntax ParseExpect()
    {
        Next();
        var name = ExpectIdentifier("the expectation's name");
        ExpectSymbol(":", "after the expectation's name");
        var atoms = new List<AtomSyntax>();
        while (true)
        {
            var var = ExpectIdentifier("an observed variable");
            RangeSyntax? range = null;
            if (IsSymbol("["))
            {
                range = ParseRange();
            }

            if (IsSymbol("!=") || IsSymbol("||"))
            {
                throw Error(Peek, $"'{Peek.Text}' is not supported in expectations: write the property as conjunctions of '==' and read its verdict (Never or Sometimes tells you the rest)");
            }

            var op = ExpectSymbol("==", "after the variable: VAR == WRITER");
            var writer = ExpectIdentifier("a writer's name");
            atoms.Add(new AtomSyntax(var, range, op, writer));
            if (!IsSymbol("&&"))
            {
                break;
            }

            Next();
        }

        return new ExpectSyntax(name, atoms);
    }

    /// <summary>The <c># expect finding KIND [in FUNCTION] [owner NAME]</c> and <c># expect no findings</c> comments.</summary>
    private List<DeclaredFindingSyntax> ParseDeclaredFindings()
    {
        var result = new List<DeclaredFindingSyntax>();
        foreach (var comment in comments)
        {
            var body = comment.Text[1..];
            if (FindingComment().IsMatch(body))
            {
                result.Add(Relex(comment, body).ParseDeclaredFinding());
            }
        }

        return result;
    }

    private Parser Relex(Token comment, string body)
    {
        // Re-lex the comment's text in place, so positions stay those of the real file.
        var padded = new string('\n', comment.Span.Line - 1) + new string(' ', comment.Span.Column) + body;
        try
        {
            return new Parser(source, Lexer.Tokenize(new SourceText(source.Path, padded)).Where(t => t.Kind != TokenKind.Newline).ToList());
        }
        catch (ScenarioException e)
        {
            throw new ScenarioException(source, e.Span, e.Message);
        }
    }

    private DeclaredFindingSyntax ParseDeclaredFinding()
    {
        var expect = Next();
        if (IsWord("no"))
        {
            Next();
            Next(); // findings (the regex guarantees it)
            EndOfDeclaration();
            return new DeclaredFindingSyntax(expect.Span, null, null, null);
        }

        Next(); // finding
        var kind = ExpectIdentifier("a finding kind such as user-mapping-foreign-page");
        Token? function = null, owner = null;
        while (Peek.Kind != TokenKind.End)
        {
            var key = ExpectIdentifier("'in FUNCTION' or 'owner NAME'");
            switch (key.Text)
            {
                case "in" when function is null:
                    function = ExpectIdentifier("the kernel function at fault");
                    break;
                case "owner" when owner is null:
                    owner = Peek.Kind == TokenKind.String ? Next() : ExpectIdentifier("the owner's name");
                    break;
                default:
                    throw Error(key, $"expected 'in FUNCTION' or 'owner NAME' (each once), found '{key.Text}'");
            }
        }

        return new DeclaredFindingSyntax(expect.Span, kind, function, owner);
    }

    private void EndOfDeclaration()
    {
        if (Peek.Kind != TokenKind.End)
        {
            throw Error(Peek, $"expected the end of the declaration, found {Peek}");
        }
    }

    private List<DeclaredSyntax> ParseDeclaredVerdicts()
    {
        var result = new List<DeclaredSyntax>();
        foreach (var comment in comments)
        {
            var body = comment.Text[1..];
            if (!DeclarationComment().IsMatch(body))
            {
                continue; // prose, even prose that starts with "expect"
            }

            // Re-lex the comment's text in place, so positions stay those of the real file.
            var padded = new string('\n', comment.Span.Line - 1) + new string(' ', comment.Span.Column) + body;
            List<Token> toks;
            try
            {
                toks = Lexer.Tokenize(new SourceText(source.Path, padded)).Where(t => t.Kind != TokenKind.Newline).ToList();
            }
            catch (ScenarioException e)
            {
                throw new ScenarioException(source, e.Span, e.Message);
            }

            var inner = new Parser(source, toks);
            result.Add(inner.ParseDeclared());
        }

        return result;
    }

    private Parser(SourceText source, List<Token> tokens)
    {
        this.source = source;
        this.tokens = tokens;
    }

    private DeclaredSyntax ParseDeclared()
    {
        Next(); // expect
        var name = ExpectIdentifier("the expectation's name after '# expect'");
        ExpectSymbol(":", "after the expectation's name in '# expect NAME: VERDICT'");
        var verdict = ExpectIdentifier("a verdict: always, sometimes or never");
        Token? atLeast = null, min = null;
        if (IsSymbol(","))
        {
            Next();
            var key = ExpectIdentifier("'min-events'");
            if (key.Text != "min-events")
            {
                throw Error(key, $"expected 'min-events', found '{key.Text}'");
            }

            if (IsSymbol(">"))
            {
                atLeast = Next();
                ExpectSymbol("=", "in '>='");
            }

            min = ExpectNumber("the number of spontaneous events");
        }

        Token? schedules = null;
        if (min is not null && IsSymbol(","))
        {
            Next();
            schedules = ExpectIdentifier("'every-schedule' or 'some-schedules'");
            if (schedules.Text is not ("every-schedule" or "some-schedules"))
            {
                throw Error(schedules, $"expected 'every-schedule' or 'some-schedules', found '{schedules.Text}'");
            }
        }

        if (Peek.Kind != TokenKind.End)
        {
            throw Error(Peek, $"expected the end of the declaration, found {Peek}");
        }

        return new DeclaredSyntax(name, verdict, atLeast, min, schedules);
    }
}
