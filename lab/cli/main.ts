// `lab`: one CLI for the kit. Finds the subcommand (one or two words), runs it, maps errors to exit
// codes: 0 ok, 1 the command failed (bad file, failing notebook), 2 bad usage.
import { UsageError } from "../errors.ts";
import type { Command } from "./command.ts";
import { commands } from "./commands/index.ts";

export function helpText(list: Command[] = commands): string {
  const width = Math.max(...list.map((c) => c.name.length), 8);
  const lines = list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "Usage: lab <command> [options]",
    "",
    "Commands:",
    ...lines,
    "",
    "Run `lab <command> --help` for a command's options. Commands that report numbers accept --json:",
    "then stdout holds exactly one JSON document and human text goes to stderr.",
  ].join("\n");
}

/** The command whose name matches the longest prefix of argv. */
export function findCommand(argv: string[], list: Command[] = commands): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const command of list) {
    const words = command.name.split(" ");
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(" ").length)) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    process.stdout.write(helpText() + "\n");
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = commands.filter((c) => c.name.startsWith(argv[0] + " "));
    const hint = group.length ? `\n\n"${argv[0]}" has subcommands:\n${group.map((c) => `  lab ${c.name}  ${c.summary}`).join("\n")}` : "\n\n" + helpText();
    process.stderr.write(`lab: unknown command "${argv.join(" ")}"${hint}\n`);
    return 2;
  }
  const { command, rest } = found;
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help.trimEnd() + "\n");
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\nRun \`lab ${command.name} --help\` for usage.\n`);
      return 2;
    }
    const e = err as Error;
    process.stderr.write(`lab ${command.name}: ${e.name && e.name !== "Error" ? e.name + ": " : ""}${e.message}\n`);
    if (process.env.LAB_DEBUG) process.stderr.write(String(e.stack) + "\n");
    return 1;
  }
}
