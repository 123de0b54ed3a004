using System.CommandLine;

namespace DmaCheck.Cli.Commands;

/// <summary>
/// <c>dmacheck completion bash|zsh</c>: prints a script that asks dmacheck itself for completions through
/// System.CommandLine's <c>[suggest]</c> directive (commands, each command's options, profiles, switches, formats),
/// and falls back to file names.
/// </summary>
public static class CompletionCommand
{
    public const string Bash = """
        # dmacheck bash completion: source it, or save it as ~/.local/share/bash-completion/completions/dmacheck
        _dmacheck_complete()
        {
            local IFS=$'\n'
            local words
            words=$(dmacheck "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)
            COMPREPLY=( $(compgen -W "${words}" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -o nospace -F _dmacheck_complete dmacheck
        """;

    public const string Zsh = """
        # dmacheck zsh completion: source it from ~/.zshrc (after compinit)
        _dmacheck_complete()
        {
            local -a words
            words=("${(@f)$(dmacheck "[suggest:${#BUFFER}]" "${BUFFER}" 2>/dev/null)}")
            _describe 'dmacheck' words || _files
        }
        compdef _dmacheck_complete dmacheck
        """;

    public static Command Create(CliContext cli)
    {
        var shell = new Argument<string>("SHELL")
        {
            Description = "bash or zsh",
            CustomParser = r =>
            {
                var value = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
                if (value is not ("bash" or "zsh"))
                {
                    r.AddError($"completion scripts are for bash or zsh, not '{value}'");
                }

                return value;
            },
        };
        shell.CompletionSources.Add("bash", "zsh");
        var command = new Command("completion", "print a shell completion script (bash or zsh)") { shell };
        command.SetAction(parse =>
        {
            cli.Out.WriteLine(parse.GetValue(shell) == "zsh" ? Zsh : Bash);
            return 0;
        });
        return command;
    }
}
