// The list of `lab` subcommands, in the order `lab --help` shows them. Add one line per command.
import type { Command } from "../command.ts";
import { notebookCommands } from "./notebooks.ts";
import { jupyterCommand } from "./jupyter.ts";
import { doctorCommand } from "./doctor.ts";
import { regenerateCommand } from "./regenerate.ts";
import { dataCommands } from "./data.ts";
import { grade } from "./grade.ts";
import { generateCommand } from "./generate.ts";
import { evalCommand } from "./eval.ts";
import { benchCommand } from "./bench.ts";
import { quantizeCommand } from "./quantize.ts";
import { ggufInspectCommand } from "./gguf.ts";
import { trainCommand } from "./train.ts";
import { capacityCommand } from "./capacity.ts";
import { speculateCommand } from "./speculate.ts";
import { prefixBenchCommand } from "./prefix-bench.ts";
import { serveCommand } from "./serve.ts";
import { loadtestCommand } from "./loadtest.ts";

export const commands: Command[] = [
  ...notebookCommands, jupyterCommand, doctorCommand, regenerateCommand,
  ...dataCommands,
  grade,
  generateCommand,
  evalCommand,
  benchCommand,
  quantizeCommand,
  ggufInspectCommand,
  trainCommand,
  speculateCommand,
  capacityCommand,
  prefixBenchCommand,
  loadtestCommand,
  serveCommand,
];
