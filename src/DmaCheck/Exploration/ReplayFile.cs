using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DmaCheck.Hardware;
using DmaCheck.Scenarios;

namespace DmaCheck.Exploration;

/// <summary>A replay file that cannot be used: malformed, or for another scenario, tool or profile.</summary>
public sealed class ReplayException(string message) : Exception(message);

/// <summary>
/// A witness as a versioned text file (design §5): a header naming the tool version, the scenario's path and
/// SHA-256, the profile, the expectation and the witness line, then one choice per line: <c>step AGENT</c> runs
/// that agent's next statement; inside a step, <c>access</c> marks the next operation that touches the witness
/// line and <c>event fill|evict|write-back|outer-fill|outer-evict</c> a spontaneous move on it, in order. Replay is one more way to
/// drive the same model: it re-executes the choices and rebuilds the witness.
/// </summary>
public sealed record ReplayFile(
    string ToolVersion,
    string ScenarioPath,
    string ScenarioSha256,
    string Profile,
    string Expectation,
    ulong? LinePa,
    int Initial,
    IReadOnlyList<ReplayStep> Steps)
{
    public const string Magic = "dmacheck-replay";
    public const int FormatVersion = 1;

    public static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>The choices of a witness.</summary>
    public static ReplayFile From(Witness w, Scenario scenario, string toolVersion)
    {
        if (HasPolls(w))
        {
            throw new ReplayException("this run polls memory (a poll statement), and replay files of format 1 do not record which of a poll's reads missed: the witness cannot be saved (dmacheck explain shows it in full)");
        }

        if (HasCopies(w))
        {
            throw new ReplayException("this run copies memory (a swiotlb bounce), and replay files of format 1 do not record the bytes a copy read: the witness cannot be saved (dmacheck explain shows it in full)");
        }

        var steps = new List<ReplayStep>();
        List<ReplayChoice>? current = null;
        string? agent = null;
        var leading = new List<ReplayChoice>();
        foreach (var item in w.Items)
        {
            switch (item)
            {
                case StepItem s:
                    if (agent is not null)
                    {
                        steps.Add(new ReplayStep(agent, current!));
                    }

                    agent = scenario.Programs[scenario.Agents[s.Step.Agent]].Name; // the thread, even inside firmware it called
                    current = [];
                    break;
                case OpItem { Before: { } before, After: { } after, Op: MemoryOp mem }:
                    var access = mem.AccessAt(w.LinePa!.Value, scenario.Hardware.LineSize)!.Value;
                    var outcomes = LineSemantics.Apply(before, access, scenario.Hardware);
                    current!.Add(new ReplayChoice(null, Enumerable.Range(0, outcomes.Count).First(i => outcomes[i].Equals(after))));
                    break;
                case MoveItem m:
                    (current ?? leading).Add(new ReplayChoice(m.Move));
                    break;
            }
        }

        if (agent is not null)
        {
            steps.Add(new ReplayStep(agent, current!));
        }

        if (leading.Count > 0)
        {
            throw new InvalidOperationException("a spontaneous event before the first step cannot be replayed");
        }

        var first = w.Items.Select(i => i switch
        {
            OpItem { Before: { } b } => b,
            MoveItem m => m.Before,
            _ => null,
        }).FirstOrDefault(b => b is not null);
        var initialStates = LineSemantics.InitialStates(scenario.Hardware, w.LinePa ?? 0);
        var initial = first is null ? 0 : Enumerable.Range(0, initialStates.Count).First(i => initialStates[i].Equals(first));
        return new ReplayFile(toolVersion, scenario.File, Sha256(scenario.Source.Text), scenario.Profile.Name, w.Expectation.Name, w.LinePa, initial, steps);
    }

    /// <summary>Whether the witness's run polled (a step whose control flow depended on what it read).</summary>
    public static bool HasPolls(Witness w) => w.Items.OfType<StepItem>().Any(s => s.Step.Statement is PollStmt);

    /// <summary>Whether the witness's run made a copy (resolved into a load of known bytes and a store of them).</summary>
    public static bool HasCopies(Witness w) => w.Items.OfType<StepItem>().SelectMany(s => s.Step.Ops)
        .Any(op => op is CopyOp || (op is MemoryOp m && (m.Op.Kind == LineOpKind.CopyRead || m.Op.Data is not null)));

    public string Write()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Magic} {FormatVersion}\n");
        sb.Append(CultureInfo.InvariantCulture, $"tool {ToolVersion}\n");
        sb.Append(CultureInfo.InvariantCulture, $"scenario {ScenarioPath}\n");
        sb.Append(CultureInfo.InvariantCulture, $"sha256 {ScenarioSha256}\n");
        sb.Append(CultureInfo.InvariantCulture, $"profile {Profile}\n");
        sb.Append(CultureInfo.InvariantCulture, $"expect {Expectation}\n");
        sb.Append(LinePa is { } pa ? $"line 0x{pa:x}\n" : "line none\n");
        sb.Append(CultureInfo.InvariantCulture, $"initial {Initial}\n");
        foreach (var step in Steps)
        {
            sb.Append(CultureInfo.InvariantCulture, $"step {step.Agent}\n");
            foreach (var c in step.Choices)
            {
                sb.Append(c.Move is { } m ? $"  event {Name(m)}\n" : c.Outcome == 0 ? "  access\n" : $"  access {c.Outcome}\n");
            }
        }

        return sb.ToString();
    }

    private static string Name(SpontaneousMove m) => m switch
    {
        SpontaneousMove.Fill => "fill",
        SpontaneousMove.Evict => "evict",
        SpontaneousMove.OuterFill => "outer-fill",
        SpontaneousMove.OuterEvict => "outer-evict",
        _ => "write-back",
    };

    public static ReplayFile Parse(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var n = 0;
        string Header(string key)
        {
            if (n >= lines.Count || !lines[n].StartsWith(key + " ", StringComparison.Ordinal))
            {
                throw new ReplayException($"line {n + 1}: expected '{key} ...'");
            }

            return lines[n++][(key.Length + 1)..];
        }

        var magic = Header(Magic);
        if (magic != FormatVersion.ToString(CultureInfo.InvariantCulture))
        {
            throw new ReplayException($"replay format version {magic} is not supported (this dmacheck reads version {FormatVersion})");
        }

        var tool = Header("tool");
        var path = Header("scenario");
        var sha = Header("sha256");
        var profile = Header("profile");
        var expect = Header("expect");
        var lineText = Header("line");
        ulong? linePa = lineText == "none" ? null
            : lineText.StartsWith("0x", StringComparison.Ordinal) && ulong.TryParse(lineText.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var pa) ? pa
            : throw new ReplayException($"line {n}: 'line' takes 0xADDRESS or none");
        var initialText = Header("initial");
        var initial = int.TryParse(initialText, NumberStyles.None, CultureInfo.InvariantCulture, out var i0) && i0 < 3
            ? i0
            : throw new ReplayException($"line {n}: 'initial' takes 0, 1 or 2");
        var steps = new List<ReplayStep>();
        for (; n < lines.Count; n++)
        {
            var l = lines[n].Trim();
            if (l.Length == 0 || l.StartsWith('#'))
            {
                continue;
            }

            if (l.StartsWith("step ", StringComparison.Ordinal))
            {
                steps.Add(new ReplayStep(l[5..], new List<ReplayChoice>()));
                continue;
            }

            if (steps.Count == 0)
            {
                throw new ReplayException($"line {n + 1}: '{l}' before the first step");
            }

            var choices = (List<ReplayChoice>)steps[^1].Choices;
            choices.Add(l switch
            {
                "access" => new ReplayChoice(null),
                "access 1" => new ReplayChoice(null, 1),
                "event fill" => new ReplayChoice(SpontaneousMove.Fill),
                "event evict" => new ReplayChoice(SpontaneousMove.Evict),
                "event write-back" => new ReplayChoice(SpontaneousMove.WriteBack),
                "event outer-fill" => new ReplayChoice(SpontaneousMove.OuterFill),
                "event outer-evict" => new ReplayChoice(SpontaneousMove.OuterEvict),
                _ => throw new ReplayException($"line {n + 1}: unknown choice '{l}' (step AGENT, access, event fill|evict|write-back|outer-fill|outer-evict)"),
            });
        }

        return new ReplayFile(tool, path, sha, profile, expect, linePa, initial, steps);
    }

    /// <summary>
    /// Re-executes the choices on <paramref name="model"/> and rebuilds the witness, checking every choice is
    /// legal; <paramref name="reproduces"/> says whether the expectation fails at the end, as it did when saved.
    /// </summary>
    public Witness Replay(IScenarioModel model, out bool reproduces)
    {
        var scenario = model.Scenario;
        if (Sha256(scenario.Source.Text) != ScenarioSha256)
        {
            throw new ReplayException($"the scenario {ScenarioPath} has changed since this witness was saved (SHA-256 differs); save the witness again");
        }

        if (scenario.Profile.Name != Profile)
        {
            throw new ReplayException($"the witness was saved under profile {Profile}, the scenario now runs under {scenario.Profile.Name}");
        }

        var expectation = scenario.Expectations.FirstOrDefault(e => e.Name == Expectation)
            ?? throw new ReplayException($"the scenario has no expectation '{Expectation}'");
        var config = model.Hardware;
        var ctrl = model.Initial;
        var mmu = ctrl.Mmu;
        LineState? line = null;
        var items = new List<TraceItem>();
        var events = 0;
        foreach (var (step, index) in Steps.Select((s, i) => (s, i)))
        {
            var agent = Enumerable.Range(0, scenario.Agents.Count).FirstOrDefault(i => scenario.Programs[scenario.Agents[i]].Name == step.Agent, -1);
            if (agent < 0 || !model.Enabled(ctrl).Contains(agent))
            {
                throw new ReplayException($"step {index + 1}: agent '{step.Agent}' cannot run now");
            }

            var result = model.Step(ctrl, agent);
            if (result.Next.NotModelled is { } stop)
            {
                // A replayed run that reaches what is not modelled cannot say whether it fails: stop there, as checking does.
                throw new RunException(RunErrorKind.NotModelled, scenario, result.Statement, stop.Message);
            }

            items.Add(new StepItem(result));
            var choices = new Queue<ReplayChoice>(step.Choices);
            foreach (var op in result.Ops)
            {
                mmu = op switch
                {
                    MapOp m => mmu.Map(m.Alias),
                    UnmapOp u => mmu.Unmap(u.Alias),
                    _ => mmu,
                };
                var access = op is MemoryOp mem && LinePa is { } pa ? mem.AccessAt(pa, config.LineSize) : null;
                if (access is null)
                {
                    if (LinePa is not null)
                    {
                        items.Add(new OpItem(op, null, null)); // a run without a failing line is told by its steps alone, as the witness is
                    }

                    continue;
                }

                line ??= InitialState(config, LinePa!.Value);
                while (choices.TryPeek(out var c) && c.Move is { } move)
                {
                    choices.Dequeue();
                    line = Move(line, move, mmu.IsFillable(LinePa!.Value), index, items);
                    events++;
                }

                if (!choices.TryDequeue(out var acc) || acc.Move is not null)
                {
                    throw new ReplayException($"step {index + 1} ({step.Agent}): the witness has fewer accesses to the line than the scenario makes");
                }

                var outcomes = LineSemantics.Apply(line, access.Value, config);
                if (acc.Outcome >= outcomes.Count)
                {
                    throw new ReplayException($"step {index + 1} ({step.Agent}): that access has only one outcome");
                }

                var after = outcomes[acc.Outcome];
                items.Add(new OpItem(op, line, after));
                line = after;
            }

            while (choices.TryDequeue(out var c))
            {
                if (c.Move is not { } move || line is null)
                {
                    throw new ReplayException($"step {index + 1} ({step.Agent}): the witness has more accesses to the line than the scenario makes");
                }

                line = Move(line, move, mmu.IsFillable(LinePa!.Value), index, items);
                events++;
            }

            ctrl = result.Next;
        }

        var checks = ExpectationChecks.For(expectation, ctrl, config.LineSize);
        reproduces = checks is null || (line is not null && checks.FirstOrDefault(c => c.Covers(LinePa!.Value)) is { } check && !check.Holds(line));
        var missing = checks is null ? $"'{ExpectationChecks.MissingVariable(expectation, ctrl, scenario)}' was never read on this run" : null;
        return new Witness(expectation, events, LinePa, items, line, missing) { End = ctrl };
    }

    private LineState InitialState(HardwareConfig config, ulong linePa)
    {
        var states = LineSemantics.InitialStates(config, linePa);
        return Initial < states.Count ? states[Initial] : throw new ReplayException($"initial state {Initial} does not exist with this cache setting");
    }

    /// <summary>Applies one spontaneous move, which must be enabled, and records it.</summary>
    private static LineState Move(LineState line, SpontaneousMove move, bool fillable, int step, List<TraceItem> items)
    {
        var moves = new List<(SpontaneousMove Move, LineState Next)>();
        LineSemantics.Moves(line, fillable, moves);
        var next = moves.Where(m => m.Move == move).Select(m => m.Next).FirstOrDefault()
            ?? throw new ReplayException($"step {step + 1}: a spontaneous {move} is not possible from {line.Cache}");
        items.Add(new MoveItem(move, line, next));
        return next;
    }
}

/// <summary>The choices made within one agent step: accesses to the witness line and spontaneous events on it, in order.</summary>
public sealed record ReplayStep(string Agent, IReadOnlyList<ReplayChoice> Choices);

/// <summary>An access to the witness line (Move null) or a spontaneous move.</summary>
/// <param name="Outcome">Which outcome of an access with two (a snoop of a stale Clean line): 0 the cached copy, 1 RAM.</param>
public sealed record ReplayChoice(SpontaneousMove? Move, int Outcome = 0);
