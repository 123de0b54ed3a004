using System.CommandLine;
using DmaCheck.Reports;

namespace DmaCheck.Cli.Commands;

/// <summary><c>dmacheck merge SHARD.json...</c>: the JSON reports of all N shards of a run, as the unsharded run prints it.</summary>
public static class MergeCommand
{
    public static Command Create(CliContext cli)
    {
        var files = new Argument<string[]>("SHARD.json")
        {
            Description = "the --format json outputs of 'dmacheck check|sweep ... --shard K/N', one per K, in any order",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("merge", "combine the JSON reports of all shards of a check or sweep into the unsharded run's report") { files };
        command.SetAction(parse =>
        {
            var shards = new List<(string, string)>();
            foreach (var file in parse.GetValue(files) ?? [])
            {
                try
                {
                    shards.Add((file, File.ReadAllText(file)));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new UsageException($"cannot read {file}: {e.Message}");
                }
            }

            try
            {
                var (json, code) = ShardMerge.Merge(shards);
                cli.Out.Write(json);
                return code;
            }
            catch (MergeException e)
            {
                throw new UsageException(e.Message);
            }
        });
        return command;
    }
}
