using System.CommandLine;
using DmaCheck.Reports;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck profiles</c>: the kernel profiles and every switch value with the commit it comes from.</summary>
public static class ProfilesCommand
{
    public static Command Create(CliContext cli)
    {
        var command = new Command("profiles", "list kernel profiles and their switches");
        command.SetAction(_ =>
        {
            cli.Out.Write(ProfilesReport.Text());
            return 0;
        });
        return command;
    }
}
