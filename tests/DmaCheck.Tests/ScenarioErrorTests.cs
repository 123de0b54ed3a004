using DmaCheck.Scenarios;

namespace DmaCheck.Tests;

/// <summary>Malformed scenarios: each error names the exact line and column of the offending text.</summary>
public class ScenarioErrorTests
{
    private const string Header = "profile linux-6.4-arm64\ndevice scm { coherent = false }\nfirmware tz { access = cacheable }\n";

    private static ScenarioException Fail(string text) =>
        Assert.Throws<ScenarioException>(() => Binder.Load("t.dmc", text));

    [Theory]
    [InlineData("profile linux-9.9-arm64\ncpu a { signal x }\n", 1, 9, "unknown profile 'linux-9.9-arm64'")]
    [InlineData("cpu a { signal x }\n", 1, 1, "names no profile")]
    [InlineData(Header + "set init_on_alloc = maybe\ncpu a { signal x }\n", 4, 21, "expected on or off")]
    [InlineData(Header + "set arm64.prep_coherent = flush\ncpu a { signal x }\n", 4, 27, "has no value 'flush'")]
    [InlineData(Header + "set colour = on\ncpu a { signal x }\n", 4, 5, "unknown setting 'colour'")]
    [InlineData(Header + "cpu a {\n  buf = dma_alloc_coherent(nic, 4096, GFP_KERNEL)\n}\n", 5, 28, "unknown device 'nic'")]
    [InlineData(Header + "cpu a {\n  buf = dma_alloc_coherent(scm, 4096, GFP_KERNAL)\n}\n", 5, 39, "unknown gfp flag 'GFP_KERNAL'")]
    [InlineData(Header + "cpu a {\n  buf = dma_alloc_coherent(scm, 4096)\n}\n", 5, 9, "takes 3 argument(s)")]
    [InlineData(Header + "cpu a {\n  buf = dma_alloc_coherent(scm, 4096, GFP_KERNEL\n}\n", 5, 49, "expected ',' between arguments")]
    [InlineData(Header + "cpu a {\n  write buf[0..64] = payload\n}\n", 5, 9, "unknown variable 'buf'")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  write b[64..0] = x\n}\n", 6, 15, "empty byte range")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read phys(b)[0..8] -> v\n}\n", 6, 8, "through kernel virtual addresses")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n  read b[0..8] -> v\n}\n", 7, 19, "read into twice")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == payload\n", 8, 16, "no statement writes 'payload'")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: w == zero\n", 8, 11, "unknown observed variable 'w'")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v != zero\n", 8, 13, "'!=' is not supported")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v[0..16] == zero\n", 8, 16, "holds 8 bytes")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == zero\n# expect e: often\n", 9, 13, "'often' is not a verdict")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == zero\n# expect f: always\n", 9, 10, "declares a verdict for an expectation that does not exist")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == zero\n# expect e: always, min-events 1\n", 9, 32, "never fails, so it has no min-events")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == zero\n# expect e: never, min-events 1, some-schedules\n", 9, 34, "goes with 'min-events 0'")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  read b[0..8] -> v\n}\nexpect e: v == zero\n# expect e: never, min-events 0, every-time\n", 9, 34, "expected 'every-schedule' or 'some-schedules'")]
    [InlineData(Header + "cpu a {\n  smc tz(1)\n}\n", 5, 7, "firmware 'tz' has no program")]
    [InlineData(Header + "firmware tz on smc(a, b) {\n  signal s\n}\ncpu a {\n  smc tz(1)\n}\n", 8, 3, "takes 2 argument(s)")]
    [InlineData(Header + "cpu a {\n  h = dma_map_single(scm, 0x10, 64, DMA_SIDEWAYS)\n}\n", 5, 37, "expected a direction")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(64, GFP_KERNEL)\n  b = kmalloc(64, GFP_KERNEL)\n}\n", 6, 3, "assigned twice")]
    [InlineData(Header + "cpu a {\n  frobnicate(1)\n}\n", 5, 3, "unknown or unmodelled kernel function 'frobnicate'")]
    [InlineData(Header + "cpu a {\n  write b[0..4] = x $\n}\n", 5, 21, "unexpected character '$'")]
    [InlineData(Header + "scenario \"unterminated\ncpu a { signal x }\n", 4, 10, "unterminated string")]
    [InlineData(Header + "cpu a {\n  signal x\n", 6, 1, "the file ends inside a program")]
    [InlineData(Header + "cpu a {\n  b = kmalloc(99999999999999999999, GFP_KERNEL)\n}\n", 5, 15, "is not a number")]
    [InlineData(Header + "device scm { coherent = true }\ncpu a { signal x }\n", 4, 8, "declared twice")]
    [InlineData("profile linux-6.4-arm64\ndevice d { dma_offset = 4 }\ncpu a { signal x }\n", 2, 12, "unknown device property 'dma_offset'")]
    [InlineData(Header, 1, 1, "no cpu or dma program")]
    [InlineData(Header + "dma eng by scm {\n  b = kmalloc(64, GFP_KERNEL)\n}\n", 5, 7, "kernel calls run on a cpu")]
    public void ErrorsPointAtTheOffendingText(string text, int line, int column, string message)
    {
        var e = Fail(text);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Span.Line, e.Span.Column));
    }

    [Fact]
    public void FormattedErrorShowsTheLineAndACaret()
    {
        var e = Fail(Header + "cpu a {\n  buf = dma_alloc_coherent(nic, 4096, GFP_KERNEL)\n}\n");
        var lines = e.Format().Split('\n');
        Assert.Equal("t.dmc:5:28: error: unknown device 'nic' (declared: scm)", lines[0]);
        Assert.Equal(" 5 |   buf = dma_alloc_coherent(nic, 4096, GFP_KERNEL)", lines[1]);
        Assert.Equal("   |                            ^~~", lines[2]);
    }

    [Fact]
    public void EmptyFileIsAnError()
    {
        var e = Fail(string.Empty);
        Assert.Contains("names no profile", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonAsciiBytesAreReportedByCodePoint()
    {
        var e = Fail("profile linux-6.4-arm64\ncpu a { signal x\u00e9 }\n");
        Assert.Contains("U+00E9", e.Message, StringComparison.Ordinal);
        Assert.Equal((2, 17), (e.Span.Line, e.Span.Column));
    }

    [Fact]
    public void The255thAgentIsAnErrorAtItsKeyword()
    {
        var text = Header + string.Concat(Enumerable.Range(0, 255).Select(i => $"cpu a{i} {{ signal x }}\n"));
        var e = Fail(text);
        Assert.Equal((4 + 254, 1), (e.Span.Line, e.Span.Column));
        Assert.Contains("too many agents: at most 254", e.Message, StringComparison.Ordinal);
        Binder.Load("t.dmc", Header + string.Concat(Enumerable.Range(0, 254).Select(i => $"cpu a{i} {{ signal x }}\n")));
    }
}
