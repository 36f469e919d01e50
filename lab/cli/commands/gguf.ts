// `lab gguf inspect FILE`: what a GGUF file holds, after the same validation every engine gets.
import { stat } from "node:fs/promises";
import { parseFlags, printJson, type Command } from "../command.ts";
import { openGguf } from "../../gguf/index.ts";
import { inspectJson, inspectReport } from "../../gguf/inspect.ts";

export const ggufInspectCommand: Command = {
  name: "gguf inspect",
  summary: "Validate a GGUF file and show its architecture, tokenizer and tensor table",
  help: `Usage: lab gguf inspect FILE [--json] [--no-validate]

Reads only the header (tensor data is not loaded), validates it the way llama.cpp would load it,
and reports: architecture, hyperparameters, tokenizer (model, vocabulary size, special ids, byte
tokens), every metadata key, and a tensor table (name, type, shape, bytes, bits per weight) with
totals (parameters, tensor bytes, average bits per weight).

An invalid file exits with code 1 and the reason (key, tensor or byte offset) on stderr.

Options:
  --json         print { metadata, tensors: [{ name, type, shape, bytes }], totals } on stdout;
                 metadata is complete (whole arrays); 64-bit integers are numbers when exact,
                 else decimal strings
  --no-validate  describe a file even if llama.cpp could not load it (it must still parse)

Example:
  lab gguf inspect data/models/target.gguf --json`,
  async run(args) {
    const { values, positionals } = parseFlags("gguf inspect", args, {
      json: { type: "boolean" }, "no-validate": { type: "boolean" },
    }, { min: 1, max: 1 });
    const path = positionals[0];
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new Error(`no such file: ${path}`);
    if (!info.isFile()) throw new Error(`not a file: ${path}`);
    const file = await openGguf(path, { validate: !values["no-validate"] });
    if (values.json) printJson(inspectJson(file));
    else process.stdout.write(inspectReport(file) + "\n");
    return 0;
  },
};
