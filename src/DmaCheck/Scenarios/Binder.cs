using DmaCheck.Dma;
using DmaCheck.Hardware;
using DmaCheck.Kernel;

namespace DmaCheck.Scenarios;

/// <summary>Resolves names in a parsed scenario and checks it, producing a <see cref="Scenario"/>.</summary>
public sealed class Binder
{
    private readonly ScenarioSyntax syntax;
    private readonly SourceText source;
    private readonly WriterTable writers = new();
    private readonly Dictionary<string, DmaDevice> devices = new(StringComparer.Ordinal);

    /// <summary>
    /// Per device, whether its bus accesses really snoop the CPU caches: the <c>snoops</c> property, or what DT says
    /// (<c>coherent</c>) when it is not given. The DMA layer never sees it; only the hardware does.
    /// </summary>
    private readonly Dictionary<string, bool> snooping = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (MemoryType Access, Token Name)> firmware = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> firmwarePrograms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Token> assigned = new(StringComparer.Ordinal);
    private readonly List<string> observed = [];
    private readonly Dictionary<string, Token> observedAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> observedLength = new(StringComparer.Ordinal);
    private readonly HashSet<string> notes = [];
    private readonly Dictionary<byte, ValueExpr> pointers = [];
    private readonly List<TenantSpec> tenants = [];

    /// <summary>The checks the binder adds for statements that imply one (<see cref="CallBinding.ImplicitCheck"/>): memory assigned away must stay untouched.</summary>
    private readonly List<Expectation> implicitExpectations = [];
    private readonly Dictionary<string, Token> tenantAt = new(StringComparer.Ordinal);
    private readonly List<ReservedMemorySpec> reserved = [];
    private readonly Dictionary<string, Token> reservedAt = new(StringComparer.Ordinal);
    private readonly List<PlacedBufferSpec> placed = [];
    private readonly List<Token> placedAt = [];

    private readonly SettingOverrides overrides;

    /// <summary>The profile with the scenario's switch overrides, once known.</summary>
    private KernelProfile? boundProfile;

    /// <summary>Where each device names its IOMMU.</summary>
    private readonly Dictionary<string, Token> iommuAt = new(StringComparer.Ordinal);

    /// <summary>The kernel settings (the IOMMU's among them), once known.</summary>
    private KernelConfig boundConfig = new();

    private Binder(ScenarioSyntax syntax, SettingOverrides overrides)
    {
        this.syntax = syntax;
        this.overrides = overrides;
        source = syntax.Source;
    }

    /// <summary>Parses and binds a scenario file's text. Throws <see cref="ScenarioException"/> on any error.</summary>
    /// <summary>The most cpu, dma and user programs a scenario may have.</summary>
    public const int MaxAgents = 254;

    public static Scenario Load(string path, string text) => Load(path, text, SettingOverrides.None);

    /// <summary>
    /// Parses and binds, then applies <paramref name="overrides"/> over the file's profile and settings. A bad
    /// override throws <see cref="ArgumentException"/> (validate them first with <see cref="RunSettings.With"/>).
    /// </summary>
    public static Scenario Load(string path, string text, SettingOverrides overrides)
    {
        var source = new SourceText(path, text);
        return new Binder(Parser.Parse(source), overrides).Bind();
    }

    private ScenarioException Error(Token at, string message) => new(source, at.Span, message);

    private ScenarioException Error(SourceSpan at, string message) => new(source, at, message);

    private static string Known(IEnumerable<string> names) => string.Join(", ", names);

    private Scenario Bind()
    {
        if (syntax.Profile is null)
        {
            throw Error(new SourceSpan(1, 1, 1), $"the scenario names no profile: add a line such as 'profile linux-6.4-arm64' (known: {Known(Profiles.All.Select(p => p.Name))})");
        }

        var profileName = overrides.Profile ?? syntax.Profile.Text;
        var profile = Profiles.Find(profileName)
            ?? throw (overrides.Profile is null
                ? Error(syntax.Profile, $"unknown profile '{syntax.Profile.Text}' ({(Suggestions.DidYouMean(syntax.Profile.Text, Profiles.All.Select(p => p.Name)) is { } hint ? hint + " " : string.Empty)}known: {Known(Profiles.All.Select(p => p.Name))})")
                : new ArgumentException($"unknown profile '{profileName}' (known: {Known(Profiles.All.Select(p => p.Name))})"));
        var settings = new RunSettings(profile, new KernelConfig(), (HardwareConfig.Default with { OuterCache = profile.Layout.OuterCache, SpeculativeFill = profile.Layout.SpeculativeFill, Indexing = profile.Layout.DcacheIndexing }).WithLines(profile.Layout.L1LineSize, profile.Layout.OuterLineSize));
        var seenKeys = new Dictionary<string, Token>(StringComparer.Ordinal);
        foreach (var set in syntax.Settings)
        {
            if (seenKeys.TryGetValue(set.Key.Text, out var earlier))
            {
                throw Error(set.Key, $"'{set.Key.Text}' is set twice (first on line {earlier.Span.Line})");
            }

            seenKeys[set.Key.Text] = set.Key;
            settings = settings.With(set.Key.Text, set.Value.Text, out var error, out var badKey)
                ?? throw Error(badKey ? set.Key : set.Value, error!);
        }

        foreach (var (key, value) in overrides.Settings)
        {
            settings = settings.With(key, value, out var error, out _) ?? throw new ArgumentException(error);
        }

        (profile, var config, var hardware) = (settings.Profile, settings.Kernel, settings.Kernel.FreshPages(settings.Hardware));
        config = KmallocSettings(profile, hardware, config);
        boundProfile = profile;
        boundConfig = config;

        foreach (var decl in syntax.Declarations)
        {
            BindDeclaration(decl);
        }

        config = config with { ReservedMemory = [.. reserved] };

        hardware = PlaceTenants(profile, config, hardware);

        // Firmware programs get indices first so smc statements can refer to them in any order.
        var programs = new List<AgentProgram>();
        var order = syntax.Agents.Where(a => a.Kind == AgentKind.Firmware).Concat(syntax.Agents.Where(a => a.Kind != AgentKind.Firmware)).ToList();
        var agentNames = new Dictionary<string, Token>(StringComparer.Ordinal);
        foreach (var agent in order)
        {
            if (agentNames.TryGetValue(agent.Name.Text, out var other))
            {
                throw Error(agent.Name, $"a second program named '{agent.Name.Text}' (the first is on line {other.Span.Line})");
            }

            agentNames[agent.Name.Text] = agent.Name;
            if (agent.Kind == AgentKind.Firmware)
            {
                if (!firmware.ContainsKey(agent.Name.Text))
                {
                    throw Error(agent.Name, $"firmware '{agent.Name.Text}' is not declared: add 'firmware {agent.Name.Text} {{ access = cacheable }}' (or non-cacheable)");
                }

                firmwarePrograms[agent.Name.Text] = firmwarePrograms.Count;
            }
        }

        foreach (var agent in order)
        {
            programs.Add(BindAgent(agent));
        }

        programs.AddRange(FlushQueuePrograms(programs, agentNames));

        var agents = Enumerable.Range(0, programs.Count).Where(i => programs[i].Kind != AgentKind.Firmware).ToList();
        if (agents.Count == 0)
        {
            throw Error(new SourceSpan(1, 1, 1), "the scenario has no cpu or dma program: nothing would run");
        }

        if (agents.Count > MaxAgents)
        {
            var extra = syntax.Agents.Where(a => a.Kind != AgentKind.Firmware).ElementAt(MaxAgents);
            throw Error(extra.Keyword, $"too many agents: at most {MaxAgents} cpu, dma and user programs (the explorer numbers them in a byte)");
        }

        var expectations = syntax.Expectations.Select(BindExpectation).ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in implicitExpectations)
        {
            names.Add(e.Name);
        }

        foreach (var e in syntax.Expectations)
        {
            if (!names.Add(e.Name.Text))
            {
                throw Error(e.Name, implicitExpectations.Any(i => i.Name == e.Name.Text)
                    ? $"'{e.Name.Text}' is the name of the check the statement on line {implicitExpectations.First(i => i.Name == e.Name.Text).Span.Line} implies; choose another"
                    : $"a second expectation named '{e.Name.Text}'");
            }
        }

        expectations.AddRange(implicitExpectations);

        var declared = new Dictionary<string, DeclaredVerdict>(StringComparer.Ordinal);
        foreach (var d in syntax.Declared)
        {
            if (!names.Contains(d.Name.Text))
            {
                throw Error(d.Name, $"'# expect {d.Name.Text}' declares a verdict for an expectation that does not exist (expectations: {Known(names)})");
            }

            if (declared.ContainsKey(d.Name.Text))
            {
                throw Error(d.Name, $"a second declared verdict for '{d.Name.Text}'");
            }

            var verdict = d.Verdict.Text switch
            {
                "always" => Verdict.Always,
                "sometimes" => Verdict.Sometimes,
                "never" => Verdict.Never,
                _ => throw Error(d.Verdict, $"'{d.Verdict.Text}' is not a verdict: always, sometimes or never"),
            };
            if (verdict == Verdict.Always && d.MinEvents is not null)
            {
                throw Error(d.MinEvents, "an expectation that always holds never fails, so it has no min-events");
            }

            if (d.Schedules is { } schedules && (d.AtLeast is not null || d.MinEvents!.Number != 0))
            {
                throw Error(schedules, $"'{schedules.Text}' says whether 0 events fail it on every schedule or on some, so it goes with 'min-events 0'");
            }

            declared[d.Name.Text] = new DeclaredVerdict(verdict, d.MinEvents is null ? null : (int)Math.Min(d.MinEvents.Number, int.MaxValue), d.AtLeast is not null)
            {
                EverySchedule = d.Schedules?.Text switch { "every-schedule" => true, "some-schedules" => false, _ => null },
            };
        }

        return new Scenario(source, syntax.Title?.Text ?? Path.GetFileNameWithoutExtension(source.Path), profile, config, hardware,
            programs, agents, writers, observed, expectations, declared, notes.Order(StringComparer.Ordinal).ToList(), tenants, BindDeclaredFindings())
        {
            Placed = placed,
            Pointers = pointers,
        };
    }

    /// <summary>
    /// The profile's kernel cache constants (<see cref="DmaAlignment.For"/>), CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC, the
    /// dma-debug overlap switch, and __kmalloc_minalign() (<see cref="DmaAlignment.KmallocMinalign"/>).
    /// </summary>
    private static KernelConfig KmallocSettings(KernelProfile profile, HardwareConfig hardware, KernelConfig config)
    {
        var bounce = SwitchValues.KmallocBounce.OfOrNull(profile) == KmallocBounceMode.On;
        config = config with { KmallocBounce = bounce, DebugCachelineOverlap = SwitchValues.DebugCachelineOverlap.Of(profile), Cache = DmaAlignment.For(profile) };
        return config with { KmallocMinalign = DmaAlignment.KmallocMinalign(profile, config, hardware) };
    }

    /// <summary>Places the tenants as the boot kernel would, so the hardware knows which lines hold whose data.</summary>
    private HardwareConfig PlaceTenants(KernelProfile profile, KernelConfig config, HardwareConfig hardware)
    {
        if (tenants.Count == 0 && placed.Count == 0 && config.SwiotlbMode(profile.Layout) == SwiotlbBoot.Off)
        {
            return hardware;
        }

        KernelState boot;
        try
        {
            boot = KernelState.Boot(profile.Layout, config, hardware, tenants, placed);
        }
        catch (PlacementException e)
        {
            throw Error(placedAt[e.Index], $"buffer '{placed[e.Index].Name}': {e.Message}");
        }
        catch (NotModelledException e)
        {
            var name = e.Message.Split(':')[0].Replace("tenant ", string.Empty, StringComparison.Ordinal);
            throw Error(tenantAt.TryGetValue(name, out var at) ? at : tenantAt.Values.First(), $"{e.Message} (layout {profile.Layout.Name})");
        }

        return hardware with { Regions = boot.DataRegions().Select(r => new InitialRegion(r.Pa, r.Size, writers.Intern(r.Data))).ToList() };
    }

    private List<DeclaredFinding> BindDeclaredFindings()
    {
        var result = new List<DeclaredFinding>();
        foreach (var d in syntax.DeclaredFindings)
        {
            var known = FindingKindRegistry.All.Select(k => k.Id).ToList();
            if (d.Kind is { } kind && !known.Contains(kind.Text))
            {
                throw Error(kind, $"unknown finding kind '{kind.Text}' (known: {Known(known)})");
            }

            result.Add(new DeclaredFinding(d.Span, d.Kind?.Text, d.Function?.Text, d.Owner?.Text));
        }

        if (result.Count > 1 && result.FirstOrDefault(d => d.Kind is null) is { } none)
        {
            throw Error(none.Span, "'# expect no findings' contradicts the other '# expect finding' lines");
        }

        return result;
    }

    private bool OnOff(Token value) => RunSettings.OnOff(value.Text) ?? throw Error(value, $"expected on or off, not '{value.Text}'");

    private void BindDeclaration(DeclSyntax decl)
    {
        var name = decl.Name.Text;
        if (devices.ContainsKey(name) || firmware.ContainsKey(name) || tenantAt.ContainsKey(name) || reservedAt.ContainsKey(name) || placed.Any(b => b.Name == name))
        {
            throw Error(decl.Name, $"'{name}' is declared twice");
        }

        if (decl.Keyword.Text == "buffer")
        {
            BindPlacedBuffer(decl);
        }
        else if (decl.Keyword.Text == "tenant")
        {
            BindTenant(decl);
        }
        else if (decl.Keyword.Text == "reserved")
        {
            BindReserved(decl);
        }
        else if (decl.Keyword.Text == "device")
        {
            bool? coherent = null;
            bool? snoops = null;
            var maskBits = 32;
            var minAlign = 0UL;
            var maxSeg = DmaDevice.DefaultMaxSegSize;
            var boundary = ulong.MaxValue;
            string? region = null;
            string? vmid = null;
            string? smmu = null;
            Token? untrusted = null;
            foreach (var p in decl.Properties)
            {
                switch (p.Key.Text)
                {
                    case "coherent":
                        coherent = OnOff(p.Value);
                        break;
                    case "snoops":
                        snoops = OnOff(p.Value);
                        break;
                    case "dma_mask":
                        maskBits = p.Value.Kind == TokenKind.Number && p.Value.Number is >= 12 and <= 64
                            ? (int)p.Value.Number
                            : throw Error(p.Value, "dma_mask is a number of address bits, 12 to 64 (dma_set_mask(dev, DMA_BIT_MASK(32)) is 32)");
                        break;
                    case "min_align_mask":
                        minAlign = p.Value.Kind == TokenKind.Number && p.Value.Number < (1UL << 20) && ((p.Value.Number + 1) & p.Value.Number) == 0
                            ? p.Value.Number
                            : throw Error(p.Value, "min_align_mask is a mask of low address bits below 1 MiB, such as 0xfff (dma_set_min_align_mask)");
                        break;
                    case "max_seg_size":
                        maxSeg = p.Value.Kind == TokenKind.Number && p.Value.Number is > 0 and <= uint.MaxValue
                            ? p.Value.Number
                            : throw Error(p.Value, "max_seg_size is dma_set_max_seg_size's size in bytes, 1 to 0xffffffff (an unsigned int; the default is 65536)");
                        break;
                    case "seg_boundary_mask":
                        boundary = p.Value.Kind == TokenKind.Number && ((p.Value.Number + 1) & p.Value.Number) == 0 && p.Value.Number >= PlatformLayout.PageSize - 1
                            ? p.Value.Number
                            : throw Error(p.Value, "seg_boundary_mask is dma_set_seg_boundary's mask of low address bits, such as 0xffff (at least a page, 0xfff; the default is ULONG_MAX)");
                        break;
                    case "memory-region":
                        region = p.Value.Kind == TokenKind.Identifier && reservedAt.ContainsKey(p.Value.Text)
                            ? p.Value.Text
                            : throw Error(p.Value, $"memory-region names a reserved-memory node declared before the device (reserved NAME {{ size = 1M, no-map = true }}){(reservedAt.Count == 0 ? string.Empty : $"; declared: {Known(reservedAt.Keys)}")}");
                        break;
                    case "vmid":
                        vmid = p.Value.Kind == TokenKind.Identifier && ScmVmids.All.ContainsKey(p.Value.Text) && p.Value.Text != ScmVmids.Hlos
                            ? p.Value.Text
                            : throw Error(p.Value, $"vmid names the VM a remote processor's master belongs to, other than HLOS (known: {Known(ScmVmids.All.Keys.Where(k => k != ScmVmids.Hlos))})");
                        break;
                    case "iommus":
                        smmu = p.Value.Kind == TokenKind.Identifier
                            ? p.Value.Text
                            : throw Error(p.Value, "iommus names the IOMMU the device sits behind, as DT's iommus = <&smmu ...> does: an identifier such as smmu0");
                        iommuAt[name] = p.Value;
                        break;
                    case "untrusted":
                        untrusted = OnOff(p.Value) ? p.Value : null;
                        break;
                    default:
                        throw Error(p.Key, $"unknown device property '{p.Key.Text}' (known: coherent, snoops, dma_mask, min_align_mask, max_seg_size, seg_boundary_mask, memory-region, vmid, iommus, untrusted)");
                }
            }

            if (untrusted is not null && smmu is null)
            {
                throw Error(untrusted, "untrusted (pci_dev->untrusted) only changes what iommu-dma does: the device needs an IOMMU too (iommus = ...)");
            }

            // iommu_get_def_domain_type: an untrusted device always gets a strict DMA domain, whatever the command line says.
            var iommu = smmu is null ? null
                : new DeviceIommu(smmu, untrusted is not null ? IommuDomainType.Dma : boundConfig.IommuPassthrough ? IommuDomainType.Identity : boundConfig.IommuStrict ? IommuDomainType.Dma : IommuDomainType.DmaFq,
                    boundConfig.IommuGranule, untrusted is not null);
            devices[name] = new DmaDevice(name, coherent ?? throw Error(decl.Name, $"device '{name}' must say whether it is coherent: {{ coherent = false }} (what DT says: \"dma-coherent\" or not)"), maskBits, minAlign, maxSeg, boundary, iommu)
            {
                MemoryRegion = region,
                Vmid = vmid,
            };
            snooping[name] = snoops ?? coherent.Value;
            if (coherent == false && boundProfile?.Arch == Arch.X86_64)
            {
                throw Error(decl.Properties.First(p => p.Key.Text == "coherent").Value,
                    $"DMA on x86_64 is cache-coherent: dev_is_dma_coherent() is always true there (no ARCH_HAS_SYNC_DMA_FOR_DEVICE); declare {{ coherent = true }}");
            }
        }
        else
        {
            MemoryType? access = null;
            foreach (var p in decl.Properties)
            {
                if (p.Key.Text != "access")
                {
                    throw Error(p.Key, $"unknown firmware property '{p.Key.Text}' (known: access)");
                }

                access = p.Value.Text switch
                {
                    "cacheable" => MemoryType.NormalWriteBack,
                    "non-cacheable" => MemoryType.NormalNonCacheable,
                    "device" => MemoryType.Device,
                    _ => throw Error(p.Value, $"firmware access is cacheable, non-cacheable or device, not '{p.Value.Text}'"),
                };
            }

            firmware[name] = (access ?? throw Error(decl.Name, $"firmware '{name}' must say how it maps memory: {{ access = cacheable }} or non-cacheable"), decl.Name);
        }
    }

    /// <summary><c>reserved NAME { size = N [, no-map = BOOL] }</c>: a DT reserved-memory node placed by size.</summary>
    private void BindReserved(DeclSyntax decl)
    {
        ulong? size = null;
        var noMap = false;
        foreach (var p in decl.Properties)
        {
            switch (p.Key.Text)
            {
                case "size":
                    size = p.Value.Kind == TokenKind.Number && p.Value.Number > 0 && p.Value.Number <= ReservedMemory.MaxSize && p.Value.Number % PlatformLayout.PageSize == 0
                        ? p.Value.Number
                        : throw Error(p.Value, $"a reserved-memory region here is a whole number of 4 KiB pages, up to {ReservedMemory.MaxSize >> 20} MiB (one block of MAX_ORDER)");
                    break;
                case "no-map":
                    noMap = OnOff(p.Value);
                    break;
                default:
                    throw Error(p.Key, $"unknown reserved-memory property '{p.Key.Text}' (known: size, no-map; 'reg', 'alignment' and 'reusable' are not modelled)");
            }
        }

        reserved.Add(new ReservedMemorySpec(decl.Name.Text,
            size ?? throw Error(decl.Name, $"reserved-memory node '{decl.Name.Text}' must give its size: {{ size = 16K, no-map = true }}"), noMap));
        reservedAt[decl.Name.Text] = decl.Name;
    }

    /// <summary><c>buffer NAME { phys = PA, size = N }</c>: a kernel buffer at a given physical address (<see cref="PlacedBuffers"/>).</summary>
    private void BindPlacedBuffer(DeclSyntax decl)
    {
        Token? phys = null;
        Token? size = null;
        foreach (var p in decl.Properties)
        {
            switch (p.Key.Text)
            {
                case "phys":
                    phys = p.Value.Kind == TokenKind.Number ? p.Value : throw Error(p.Value, "phys is the buffer's physical address, a number such as 0x82f17400");
                    break;
                case "size":
                    size = p.Value.Kind == TokenKind.Number && p.Value.Number > 0 && p.Value.Number <= PlacedBuffers.MaxSize
                        ? p.Value
                        : throw Error(p.Value, $"a placed buffer holds 1 byte to {PlacedBuffers.MaxSize >> 20} MiB");
                    break;
                default:
                    throw Error(p.Key, $"unknown buffer property '{p.Key.Text}' (known: phys, size)");
            }
        }

        var name = decl.Name.Text;
        if (syntax.Agents.SelectMany(a => a.Body).OfType<CallSyntax>().FirstOrDefault(c => c.Target?.Text == name) is { } assigned)
        {
            throw Error(assigned.Target!, $"'{name}' is a placed buffer (declared on line {decl.Name.Span.Line}): a call cannot assign it");
        }

        placed.Add(new PlacedBufferSpec(name,
            (phys ?? throw Error(decl.Name, $"buffer '{name}' must give its physical address: {{ phys = 0x82f17400, size = 512 }}")).Number,
            (size ?? throw Error(decl.Name, $"buffer '{name}' must give its size: {{ phys = 0x82f17400, size = 512 }}")).Number));
        placedAt.Add(phys);
    }

    /// <summary><c>tenant NAME { pages = N, data = WRITER [, zone = default|lowmem] }</c>.</summary>
    private void BindTenant(DeclSyntax decl)
    {
        ulong? pages = null;
        string? data = null;
        var zone = TenantZone.Default;
        foreach (var p in decl.Properties)
        {
            switch (p.Key.Text)
            {
                case "pages":
                    if (p.Value.Kind != TokenKind.Number || p.Value.Number == 0 || p.Value.Number > 1UL << 18)
                    {
                        throw Error(p.Value, "a tenant holds 1 to 262144 pages (1 GiB)");
                    }

                    pages = p.Value.Number;
                    break;
                case "data":
                    if (p.Value.Kind != TokenKind.Identifier || p.Value.Text is "old" or "zero")
                    {
                        throw Error(p.Value, "a tenant's data is a writer name of its own (such as secret); 'old' and 'zero' are taken");
                    }

                    if (!writers.TryGet(p.Value.Text, out _) && writers.Count > byte.MaxValue)
                    {
                        throw Error(p.Value, $"too many distinct writer names: at most {byte.MaxValue + 1} (with old and zero)");
                    }

                    writers.Intern(p.Value.Text);
                    data = p.Value.Text;
                    break;
                case "zone":
                    zone = p.Value.Text switch
                    {
                        "default" => TenantZone.Default,
                        "lowmem" => TenantZone.Lowmem,
                        _ => throw Error(p.Value, $"a tenant's zone is 'default' (highmem where there is any, as for user pages) or 'lowmem', not '{p.Value.Text}'"),
                    };
                    break;
                default:
                    throw Error(p.Key, $"unknown tenant property '{p.Key.Text}' (known: pages, data, zone)");
            }
        }

        tenants.Add(new TenantSpec(decl.Name.Text,
            pages ?? throw Error(decl.Name, $"tenant '{decl.Name.Text}' must say how many pages it holds: {{ pages = 16, data = secret }}"),
            data ?? throw Error(decl.Name, $"tenant '{decl.Name.Text}' must name its data: {{ pages = 16, data = secret }}"),
            zone));
        tenantAt[decl.Name.Text] = decl.Name;
    }

    private AgentProgram BindAgent(AgentSyntax agent)
    {
        var locals = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in agent.Parameters)
        {
            if (!locals.Add(p.Text))
            {
                throw Error(p, $"parameter '{p.Text}' is declared twice");
            }
        }

        var body = new List<Statement>();
        foreach (var s in agent.Body)
        {
            if (s is FetchSyntax fetch)
            {
                body.AddRange(BindFetch(agent, fetch, locals, body.Count));
                continue;
            }

            body.Add(BindStatement(agent, s, locals));
        }

        switch (agent.Kind)
        {
            case AgentKind.Firmware:
                return new AgentProgram(agent.Name.Text, agent.Kind, MasterKind.Firmware, firmware[agent.Name.Text].Access, agent.Parameters.Select(p => p.Text).ToList(), body);
            case AgentKind.User:
                return new AgentProgram(agent.Name.Text, agent.Kind, MasterKind.Cpu, MemoryType.NormalWriteBack, [], body);
            case AgentKind.Device:
                var dev = Device(agent.Device!);
                // The hardware follows what the bus does (snoops), the kernel what DT says (coherent); they may disagree.
                var snoops = snooping[dev.Name];
                return new AgentProgram(agent.Name.Text, agent.Kind, snoops ? MasterKind.CoherentDevice : MasterKind.NonCoherentDevice,
                    snoops ? MemoryType.NormalWriteBack : MemoryType.NormalNonCacheable, [], body, dev.Name, dev)
                { Vmid = dev.Vmid };
            default:
                return new AgentProgram(agent.Name.Text, agent.Kind, MasterKind.Cpu, MemoryType.NormalWriteBack, [], body);
        }
    }

    /// <summary>
    /// For each device in a lazy IOMMU domain (iommu.strict = off) that the scenario unmaps for, a program that runs its
    /// flush queue (<see cref="FlushQueueStmt"/>) once per unmap: the explorer places each run anywhere, so every delay
    /// of the flush-queue timer against the driver and the device is explored (docs/iommu.md).
    /// </summary>
    private IEnumerable<AgentProgram> FlushQueuePrograms(List<AgentProgram> programs, Dictionary<string, Token> agentNames)
    {
        foreach (var (name, dev) in devices)
        {
            if (dev.Iommu is not { Type: IommuDomainType.DmaFq })
            {
                continue;
            }

            var unmaps = programs.SelectMany(p => p.Body).Count(st => st is SyncStmt { Kind: SyncKind.Unmap } y && y.Device.Name == name);
            if (unmaps == 0)
            {
                continue;
            }

            var program = $"{name}-flush-queue";
            if (agentNames.TryGetValue(program, out var clash))
            {
                throw Error(clash, $"'{program}' is the name of {name}'s IOMMU flush queue (iommu.strict = off); call this program something else");
            }

            var span = iommuAt[name].Span;
            var body = Enumerable.Range(1, unmaps).Select(i => (Statement)new FlushQueueStmt(span, $"iommu flush queue of {name} runs ({i}/{unmaps})", dev)).ToList();
            yield return new AgentProgram(program, AgentKind.Cpu, MasterKind.Cpu, MemoryType.NormalWriteBack, [], body);
        }
    }

    private DmaDevice Device(ExprSyntax e)
    {
        if (e.Terms.Count > 1 || e.Offset is not null || e.Mask is not null || e.Head.Kind != TokenKind.Identifier)
        {
            throw Error(e.Span, $"expected a device name, not '{source.Line(e.Span.Line).Substring(e.Span.Column - 1, Math.Min(e.Span.Length, source.Line(e.Span.Line).Length - e.Span.Column + 1))}'");
        }

        return Device(e.Head);
    }

    private DmaDevice Device(Token name) => devices.TryGetValue(name.Text, out var d)
        ? d
        : throw Error(name, devices.Count == 0
            ? $"unknown device '{name.Text}': declare it, as in 'device {name.Text} {{ coherent = false }}'"
            : $"unknown device '{name.Text}' (declared: {Known(devices.Keys)})");

    private void Assign(Token target)
    {
        if (assigned.TryGetValue(target.Text, out var earlier))
        {
            throw Error(target, $"'{target.Text}' is assigned twice (first on line {earlier.Span.Line}): give each result its own name");
        }

        if (observedAt.ContainsKey(target.Text))
        {
            throw Error(target, $"'{target.Text}' already names an observed variable");
        }

        assigned[target.Text] = target;
    }

    /// <summary>The writer name a stored DMA address gets: its text, <c>dma(h + 0x200)</c>.</summary>
    private string PointerName(AddressSyntax pointer) =>
        source.Line(pointer.Span.Line).Substring(pointer.Span.Column - 1, Math.Min(pointer.Span.Length, source.Line(pointer.Span.Line).Length - pointer.Span.Column + 1));

    /// <summary>
    /// <c>fetch dma(ADDR)[lo..hi] -> VAR</c>: one <see cref="FetchStmt"/> per value the bytes can hold that is an address
    /// (each pointer any program stores, in file order, then <c>zero</c>); <paramref name="at"/> is where the first goes
    /// in the body. VAR becomes a variable of this program's frame from here on.
    /// </summary>
    private List<Statement> BindFetch(AgentSyntax agent, FetchSyntax f, HashSet<string> locals, int at)
    {
        if (agent.Kind != AgentKind.Device)
        {
            throw Error(f.Span, "only a DMA engine fetches a descriptor's address; a CPU thread reads it with read");
        }

        CheckSpace(agent, f.Address);
        var (lo, hi) = Range(f.Range);
        if (hi - lo != 8)
        {
            throw Error(f.Range.High, "a fetch reads one 64-bit DMA address: 8 bytes, as in [0..8]");
        }

        var name = f.Var.Text;
        if (assigned.ContainsKey(name) || locals.Contains(name) || observedAt.ContainsKey(name)
            || syntax.Agents.SelectMany(a => a.Body).OfType<CallSyntax>().Any(c => c.Target?.Text == name) || placed.Any(b => b.Name == name)
            || syntax.Agents.SelectMany(a => a.Body).OfType<FetchSyntax>().Count(x => x.Var.Text == name) > 1)
        {
            throw Error(f.Var, $"'{name}' already names a value; give the fetched address its own variable");
        }

        var address = Expr(f.Address.Expr, locals);
        var candidates = new List<byte>();
        foreach (var w in syntax.Agents.SelectMany(a => a.Body).OfType<WriteSyntax>())
        {
            if (w.Pointer is { } p)
            {
                var id = InternWriter(PointerName(p), w.Writer);
                if (!candidates.Contains(id))
                {
                    candidates.Add(id);
                }
            }
        }

        candidates.Add(WriterTable.Zero);
        locals.Add(name);
        var end = at + candidates.Count;
        return candidates.Select((w, i) => (Statement)new FetchStmt(f.Span, $"{f.Text} (holds {writers.Name(w)}?)", f.Address.Space, address, lo, hi, w, name, at, end,
            i == candidates.Count - 1)).ToList();
    }

    private byte InternWriter(string writer, Token at)
    {
        if (!writers.TryGet(writer, out var id))
        {
            if (writers.Count > byte.MaxValue)
            {
                throw Error(at, $"too many distinct writer names: at most {byte.MaxValue + 1} (with old and zero)");
            }

            id = writers.Intern(writer);
        }

        return id;
    }

    private Statement BindStatement(AgentSyntax agent, StmtSyntax stmt, HashSet<string> locals)
    {
        switch (stmt)
        {
            case WriteSyntax { Pointer: { } pointer } w:
                {
                    CheckSpace(agent, w.Address);
                    var (lo, hi) = Range(w.Range);
                    if (hi - lo != 8)
                    {
                        throw Error(w.Range.High, "a DMA address is stored as 8 bytes (a 64-bit descriptor field), as in [0..8]");
                    }

                    if (pointer.Space != AddressSpace.Dma)
                    {
                        throw Error(pointer.Span, "a stored address is a DMA address: dma(h), dma(b.dma), dma(h + N)");
                    }

                    var value = Expr(pointer.Expr, []);
                    var id = InternWriter(PointerName(pointer), w.Writer);
                    pointers[id] = value;
                    return new AccessStmt(w.Span, w.Text, true, w.Address.Space, Expr(w.Address.Expr, locals), lo, hi, id, -1);
                }

            case WriteSyntax w:
                {
                    CheckSpace(agent, w.Address);
                    var (lo, hi) = Range(w.Range);
                    var writer = w.Writer.Text;
                    if (writer is "old")
                    {
                        throw Error(w.Writer, "'old' names the contents RAM held before the scenario; choose another writer name");
                    }

                    if (!writers.TryGet(writer, out var id))
                    {
                        if (writers.Count > byte.MaxValue)
                        {
                            throw Error(w.Writer, $"too many distinct writer names: at most {byte.MaxValue + 1} (with old and zero)");
                        }

                        id = writers.Intern(writer);
                    }

                    return new AccessStmt(w.Span, w.Text, true, w.Address.Space, Expr(w.Address.Expr, locals), lo, hi, id, -1);
                }

            case ReadSyntax r:
                {
                    CheckSpace(agent, r.Address);
                    var (lo, hi) = Range(r.Range);
                    if (observedAt.TryGetValue(r.Var.Text, out var earlier))
                    {
                        throw Error(r.Var, $"'{r.Var.Text}' is read into twice (first on line {earlier.Span.Line}): give each read its own variable");
                    }

                    if (assigned.ContainsKey(r.Var.Text) || locals.Contains(r.Var.Text))
                    {
                        throw Error(r.Var, $"'{r.Var.Text}' already names a value; give the read its own variable");
                    }

                    observedAt[r.Var.Text] = r.Var;
                    observedLength[r.Var.Text] = hi - lo;
                    observed.Add(r.Var.Text);
                    return new AccessStmt(r.Span, r.Text, false, r.Address.Space, Expr(r.Address.Expr, locals), lo, hi, 0, observed.Count - 1);
                }

            case PollSyntax poll:
                {
                    CheckSpace(agent, poll.Address);
                    var (lo, hi) = Range(poll.Range);
                    if (hi - lo > MaxPollBytes)
                    {
                        throw Error(poll.Range.High, $"a poll reads a flag or a descriptor: at most {MaxPollBytes} bytes");
                    }

                    var writer = poll.Writer.Text;
                    if (!writers.TryGet(writer, out var id))
                    {
                        if (!syntax.Agents.SelectMany(a => a.Body).OfType<WriteSyntax>().Any(w => w.Writer.Text == writer))
                        {
                            throw Error(poll.Writer, $"no statement writes '{writer}' (writers: {Known(Enumerable.Range(0, writers.Count).Select(i => writers.Name((byte)i)).Concat(syntax.Agents.SelectMany(a => a.Body).OfType<WriteSyntax>().Select(w => w.Writer.Text)).Distinct())})");
                        }

                        id = writers.Intern(writer);
                    }

                    int? max = null;
                    if (poll.Max is { } m)
                    {
                        if (m.Number is 0 or > MaxPollRetries)
                        {
                            throw Error(m, $"max {m.Number}: a poll gives up after 1 to {MaxPollRetries} reads that miss");
                        }

                        max = (int)m.Number;
                    }

                    return new PollStmt(poll.Span, poll.Text, poll.Address.Space, Expr(poll.Address.Expr, locals), lo, hi, id, max);
                }

            case SmcSyntax smc:
                {
                    if (agent.Kind != AgentKind.Cpu)
                    {
                        throw Error(stmt.Span, "only a cpu program can issue an smc");
                    }

                    if (!firmwarePrograms.TryGetValue(smc.Firmware.Text, out var index))
                    {
                        throw Error(smc.Firmware, firmware.ContainsKey(smc.Firmware.Text)
                            ? $"firmware '{smc.Firmware.Text}' has no program: add 'firmware {smc.Firmware.Text} on smc(...) {{ ... }}'"
                            : $"unknown firmware '{smc.Firmware.Text}'");
                    }

                    var fw = syntax.Agents.First(a => a.Kind == AgentKind.Firmware && a.Name.Text == smc.Firmware.Text);
                    if (fw.Parameters.Count != smc.Args.Count)
                    {
                        throw Error(smc.Span, $"firmware '{fw.Name.Text}' takes {fw.Parameters.Count} argument(s) (line {fw.Name.Span.Line}), but the smc passes {smc.Args.Count}");
                    }

                    return new SmcStmt(smc.Span, smc.Text, index, smc.Args.Select(a => Expr(a, locals)).ToList());
                }

            case EventSyntax ev:
                return new EventStmt(ev.Span, ev.Text, ev.IsWait, ev.Event.Text);
            case CallSyntax call:
                if (agent.Kind != AgentKind.Cpu)
                {
                    throw Error(call.Function, $"kernel calls run on a cpu; '{call.Function.Text}' appears in {agent.Keyword.Text} program '{agent.Name.Text}'");
                }

                return BindCall(call, locals);
            default:
                throw new InvalidOperationException(stmt.GetType().Name);
        }
    }

    /// <summary>The most bytes one poll reads.</summary>
    public const int MaxPollBytes = 4096;

    /// <summary>The largest <c>max N</c> of a poll: each retry is a distinct state.</summary>
    public const int MaxPollRetries = 1000;

    private void CheckSpace(AgentSyntax agent, AddressSyntax address)
    {
        var ok = (agent.Kind, address.Space) switch
        {
            (AgentKind.Cpu or AgentKind.User, AddressSpace.Virtual) => true,
            (AgentKind.Firmware, AddressSpace.Physical) => true,
            (AgentKind.Device, AddressSpace.Dma) => true,
            _ => false,
        };
        if (!ok)
        {
            var want = agent.Kind switch
            {
                AgentKind.Cpu => "a CPU thread accesses memory through kernel virtual addresses (a buffer variable)",
                AgentKind.User => "a user process accesses memory through its own mappings (a variable from dma_mmap_coherent)",
                AgentKind.Firmware => "firmware reaches memory by physical address: phys(ADDR)",
                _ => "a DMA engine reaches memory by DMA address: dma(ADDR)",
            };
            throw Error(address.Span, want);
        }
    }

    private (ulong Lo, ulong Hi) Range(RangeSyntax r)
    {
        if (r.High.Number <= r.Low.Number)
        {
            throw Error(r.High, $"empty byte range [{r.Low.Number}..{r.High.Number}): the end is exclusive and must be above the start");
        }

        if (r.High.Number - r.Low.Number > 1UL << 30)
        {
            throw Error(r.High, "a single access is limited to 1 GiB");
        }

        return (r.Low.Number, r.High.Number);
    }

    private ValueExpr Expr(ExprSyntax e, HashSet<string> locals)
    {
        if (e.Terms.Count > 1)
        {
            throw Error(e.Terms[1], "flags ('|') are only allowed as a gfp argument");
        }

        var head = e.Head;
        var offset = e.Offset?.Number ?? 0;
        var text = source.Line(e.Span.Line).Substring(e.Span.Column - 1, Math.Min(e.Span.Length, source.Line(e.Span.Line).Length - e.Span.Column + 1));
        if (head.Kind == TokenKind.Number)
        {
            return new ValueExpr(null, null, unchecked(head.Number + offset), e.Span, text);
        }

        var dot = head.Text.IndexOf('.', StringComparison.Ordinal);
        var name = dot < 0 ? head.Text : head.Text[..dot];
        var field = dot < 0 ? null : head.Text[(dot + 1)..];
        if (field is not null and not ("dma" or "cpu"))
        {
            throw Error(head, $"unknown field '.{field}' (a coherent buffer has .cpu and .dma)");
        }

        if (!locals.Contains(name) && !placed.Any(b => b.Name == name) && !syntax.Agents.SelectMany(a => a.Body).OfType<CallSyntax>().Any(c => c.Target?.Text == name))
        {
            throw Error(head, observedAt.ContainsKey(name) || syntax.Agents.SelectMany(a => a.Body).OfType<ReadSyntax>().Any(r => r.Var.Text == name)
                ? $"'{name}' holds observed bytes, not an address"
                : $"unknown variable '{name}': it is never assigned");
        }

        ulong? mask = e.Mask is { } m ? (e.MaskInverted ? ~m.Number : m.Number) : null;
        return new ValueExpr(name, field, offset, e.Span, text) { Mask = mask };
    }

    private Statement BindCall(CallSyntax call, HashSet<string> locals)
    {
        if (CallCatalogue.Find(call.Function.Text) is null && KernelFunctions.NotModelled.TryGetValue(call.Function.Text, out var mechanism))
        {
            // A real kernel function whose mechanism the model lacks: a run that reaches it is inconclusive.
            if (call.Target is not null)
            {
                Assign(call.Target);
            }

            return new NotModelledStmt(call.Span, call.Text, call.Function.Text, mechanism);
        }

        var entry = CallCatalogue.Find(call.Function.Text)
            ?? throw Error(call.Function, KernelFunctions.Unknown(call.Function.Text));
        return entry.Bind(new CallBinding(this, call, locals)) with { Call = entry };
    }

    /// <summary>
    /// One call being bound, for its <see cref="CallEntry"/>: the arguments and the checks every call shares (arity,
    /// the assignment of its result, devices, gfp flags, attributes, directions, orders), each with the binder's
    /// message and span.
    /// </summary>
    public sealed class CallBinding
    {
        private readonly Binder binder;
        private readonly CallSyntax call;
        private readonly HashSet<string> locals;

        internal CallBinding(Binder binder, CallSyntax call, HashSet<string> locals)
        {
            this.binder = binder;
            this.call = call;
            this.locals = locals;
        }

        /// <summary>The kernel function's name as written.</summary>
        public string Function => call.Function.Text;

        public SourceSpan Span => call.Span;

        public string Text => call.Text;

        public int ArgCount => call.Args.Count;

        public void Arity(int n)
        {
            if (call.Args.Count != n)
            {
                throw binder.Error(call.Function, $"{Function} takes {n} argument(s) here, not {call.Args.Count}");
            }
        }

        /// <summary>The variable the result is assigned to; an error when there is none.</summary>
        public string Target()
        {
            if (call.Target is null)
            {
                throw binder.Error(call.Function, $"{Function} returns a value: assign it, as in 'x = {Function}(...)'");
            }

            binder.Assign(call.Target);
            return call.Target.Text;
        }

        /// <summary>Checks that the result is not assigned: the call returns nothing.</summary>
        public void NoTarget()
        {
            if (call.Target is not null)
            {
                throw binder.Error(call.Target, $"{Function} returns nothing to assign");
            }
        }

        /// <summary>The variable the result is assigned to, if any.</summary>
        public string? OptionalTarget()
        {
            if (call.Target is null)
            {
                return null;
            }

            binder.Assign(call.Target);
            return call.Target.Text;
        }

        public ValueExpr Expr(int i) => binder.Expr(call.Args[i], locals);

        public DmaDevice Device(int i) => binder.Device(call.Args[i]);

        public Gfp Gfp(int i) => binder.Gfp(call.Args[i]);

        public DmaAttrs Attrs(int i) => binder.Attrs(call.Args[i]);

        public DmaDirection Direction(int i) => binder.Direction(call.Args[i]);

        public int Order(int i) => binder.Order(call.Args[i]);

        /// <summary>The function's name token, for errors about the call as a whole.</summary>
        public Token FunctionToken => call.Function;

        /// <summary>Argument <paramref name="i"/>, the name of a declared reserved-memory node.</summary>
        public string ReservedNode(int i)
        {
            var word = Word(i, "the name of a reserved-memory node");
            return binder.reservedAt.ContainsKey(word.Text)
                ? word.Text
                : throw binder.Error(word, $"no reserved-memory node '{word.Text}' is declared (declare it: reserved {word.Text} {{ size = 16K, no-map = true }}){(binder.reservedAt.Count == 0 ? string.Empty : $"; declared: {Known(binder.reservedAt.Keys)}")}");
        }

        /// <summary>Argument <paramref name="i"/> as flags of <typeparamref name="TFlags"/> joined with '|', by their names.</summary>
        public TFlags Flags<TFlags>(int i)
            where TFlags : struct, Enum
        {
            var e = call.Args[i];
            if (e.Offset is not null || e.Mask is not null)
            {
                throw binder.Error(e.Offset ?? e.Mask!, "flags are joined with '|', not '+' or '&'");
            }

            var value = 0L;
            foreach (var t in e.Terms)
            {
                if (t.Kind != TokenKind.Identifier || !Enum.TryParse<TFlags>(t.Text, out var flag) || Convert.ToInt64(flag, System.Globalization.CultureInfo.InvariantCulture) == 0)
                {
                    throw binder.Error(t, $"unknown flag '{t.Text}' (known: {Known(Enum.GetNames<TFlags>().Where(n => Convert.ToInt64(Enum.Parse<TFlags>(n), System.Globalization.CultureInfo.InvariantCulture) != 0))})");
                }

                value |= Convert.ToInt64(flag, System.Globalization.CultureInfo.InvariantCulture);
            }

            return (TFlags)Enum.ToObject(typeof(TFlags), value);
        }

        /// <summary>An error at <paramref name="at"/>.</summary>
        public ScenarioException Error(Token at, string message) => binder.Error(at, message);

        /// <summary>Argument <paramref name="i"/> as one bare word (a constant such as QCOM_SCM_VMID_MSS_MSA), or an error naming <paramref name="what"/>.</summary>
        public Token Word(int i, string what)
        {
            var e = call.Args[i];
            return e.Terms.Count == 1 && e.Offset is null && e.Mask is null && e.Head.Kind == TokenKind.Identifier
                ? e.Head
                : throw binder.Error(e.Span, $"expected {what}, not '{e.Head.Text}'");
        }

        /// <summary>
        /// Registers the check this statement implies, as an expectation named <c>NAME.L&lt;line&gt;</c> over an observed
        /// variable of the same name that no byte may fill with <paramref name="faultWriter"/>'s bytes: the variable the
        /// hardware records a fault in. Returns the variable and the writer's id.
        /// </summary>
        public (int Var, byte Writer) ImplicitCheck(string name, string text, string faultWriter)
        {
            var full = $"{name}.L{call.Span.Line}";
            if (binder.observedAt.ContainsKey(full) || binder.implicitExpectations.Any(e => e.Name == full))
            {
                throw binder.Error(call.Function, $"a second statement on line {call.Span.Line} that implies the check '{full}': put one per line");
            }

            binder.observedAt[full] = call.Function;
            binder.observed.Add(full);
            var index = binder.observed.Count - 1;
            binder.observedLength[full] = ulong.MaxValue;
            var writer = binder.writers.Intern(faultWriter);
            binder.implicitExpectations.Add(new Expectation(full, call.Span, text, [new Atom(index, 0, null, WriterTable.Old)]) { Implied = true });
            return (index, writer);
        }

        /// <summary>The attributes of a streaming map or unmap: DMA_ATTR_OVERWRITE existed only while swiotlb.map_bounce was unless_overwrite (ddbd89deb7d3..aa6f8dcbab47, and bddac7c1e02b..901c7280ca0d).</summary>
        public DmaAttrs MapAttrs(int i)
        {
            var e = call.Args[i];
            var attrs = binder.Attrs(e);
            var profile = binder.boundProfile!;
            if ((attrs & DmaAttrs.DMA_ATTR_OVERWRITE) != 0 && SwitchValues.SwiotlbMapBounce.Of(profile) != SwiotlbMapBounceMode.UnlessOverwrite)
            {
                throw binder.Error(e.Terms[0], $"DMA_ATTR_OVERWRITE exists only in kernels with {Switches.SwiotlbMapBounce.Key}=unless_overwrite (ddbd89deb7d3, v5.17-rc6; removed by aa6f8dcbab47 in v5.17-rc8); this profile has {Switches.SwiotlbMapBounce.Key}={profile.Value(Switches.SwiotlbMapBounce)}");
            }

            return attrs;
        }
    }

    private Gfp Gfp(ExprSyntax e)
    {
        if (e.Offset is not null || e.Mask is not null)
        {
            throw Error(e.Offset ?? e.Mask!, "gfp flags are joined with '|', not '+' or '&'");
        }

        var gfp = Kernel.Gfp.None;
        foreach (var t in e.Terms)
        {
            if (t.Kind != TokenKind.Identifier || !GfpExtensions.Names.TryGetValue(t.Text, out var flag))
            {
                throw Error(t, $"unknown gfp flag '{t.Text}' (known: {Known(GfpExtensions.Names.Keys)})");
            }

            gfp |= flag;
        }

        return gfp;
    }

    private static readonly Dictionary<string, DmaAttrs> AttrNames = new(StringComparer.Ordinal)
    {
        ["DMA_ATTR_NO_KERNEL_MAPPING"] = DmaAttrs.DMA_ATTR_NO_KERNEL_MAPPING,
        ["DMA_ATTR_WRITE_COMBINE"] = DmaAttrs.DMA_ATTR_WRITE_COMBINE,
        ["DMA_ATTR_NO_WARN"] = DmaAttrs.DMA_ATTR_NO_WARN,
        ["DMA_ATTR_SKIP_CPU_SYNC"] = DmaAttrs.DMA_ATTR_SKIP_CPU_SYNC,
        ["DMA_ATTR_FORCE_CONTIGUOUS"] = DmaAttrs.DMA_ATTR_FORCE_CONTIGUOUS,
        ["DMA_ATTR_OVERWRITE"] = DmaAttrs.DMA_ATTR_OVERWRITE,
    };

    private DmaAttrs Attrs(ExprSyntax e)
    {
        if (e.Offset is not null || e.Mask is not null)
        {
            throw Error(e.Offset ?? e.Mask!, "DMA attributes are joined with '|', not '+' or '&'");
        }

        var attrs = DmaAttrs.None;
        foreach (var t in e.Terms)
        {
            if (t.Kind == TokenKind.Number && t.Number == 0 && e.Terms.Count == 1)
            {
                return DmaAttrs.None;
            }

            if (t.Kind != TokenKind.Identifier || !AttrNames.TryGetValue(t.Text, out var a))
            {
                throw Error(t, $"unknown or unmodelled DMA attribute '{t.Text}' (known: 0, {Known(AttrNames.Keys)})");
            }

            attrs |= a;
        }

        return attrs;
    }

    private int Order(ExprSyntax e)
    {
        if (e.Terms.Count != 1 || e.Head.Kind != TokenKind.Number || e.Head.Number > 10 || e.Offset is not null || e.Mask is not null)
        {
            throw Error(e.Span, "the order is a number from 0 to 10 (MAX_ORDER)");
        }

        return (int)e.Head.Number;
    }

    private DmaDirection Direction(ExprSyntax e)
    {
        if (e.Terms.Count == 1 && e.Offset is null && e.Mask is null && Enum.TryParse<DmaDirection>(e.Head.Text, out var dir) && e.Head.Kind == TokenKind.Identifier)
        {
            return dir;
        }

        throw Error(e.Span, $"expected a direction: DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL (or DMA_NONE), not '{e.Head.Text}'");
    }

    private Expectation BindExpectation(ExpectSyntax e)
    {
        var atoms = new List<Atom>();
        foreach (var a in e.Atoms)
        {
            var index = observed.IndexOf(a.Var.Text);
            if (index < 0)
            {
                throw Error(a.Var, assigned.ContainsKey(a.Var.Text)
                    ? $"'{a.Var.Text}' is an address, not observed bytes: expectations compare what a read saw"
                    : $"unknown observed variable '{a.Var.Text}' (observed: {(observed.Count == 0 ? "none; add a read ... -> VAR" : Known(observed))})");
            }

            if (!writers.TryGet(a.Writer.Text, out var writer))
            {
                throw Error(a.Writer, $"no statement writes '{a.Writer.Text}' (writers: {Known(Enumerable.Range(0, writers.Count).Select(i => writers.Name((byte)i)))})");
            }

            ulong low = 0;
            ulong? high = null;
            if (a.Range is not null)
            {
                (low, var hi) = Range(a.Range);
                high = hi;
                if (hi > observedLength[a.Var.Text])
                {
                    throw Error(a.Range.High, $"'{a.Var.Text}' holds {observedLength[a.Var.Text]} bytes; the range runs past its end");
                }
            }

            atoms.Add(new Atom(index, low, high, writer));
        }

        var line = source.Line(e.Name.Span.Line).Trim();
        return new Expectation(e.Name.Text, e.Name.Span, line, atoms);
    }
}
