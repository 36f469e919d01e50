// The list of `lab` subcommands, in the order `lab --help` shows them. Add one line per command.
import type { Command } from "../command.ts";
import { dataCommands } from "./data.ts";
import { grade } from "./grade.ts";
import { generateCommand } from "./generate.ts";
import { evalCommand } from "./eval.ts";
import { benchCommand } from "./bench.ts";
import { quantizeCommand } from "./quantize.ts";
import { ggufInspectCommand } from "./gguf.ts";
import { trainCommand } from "./train.ts";

export const commands: Command[] = [
  ...dataCommands,
  grade,
  generateCommand,
  evalCommand,
  benchCommand,
  quantizeCommand,
  ggufInspectCommand,
  trainCommand,
];
