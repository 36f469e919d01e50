// `lab quantize IN OUT TYPE`: llama-quantize in TypeScript. The per-tensor rules live in
// lab/quant/mixes.ts (one table, printed in --help); the file work in lab/quant/file.ts.
import { UsageError } from "../../errors.ts";
import { findMix, mixTableText, MIXES } from "../../quant/mixes.ts";
import { quantizeGgufFile, QuantizeError } from "../../quant/file.ts";
import { parseFlags, printJson, say, type Command } from "../command.ts";

const MIX_NAMES = MIXES.map((m) => m.name).join(", ");

function progressBar(done: number, total: number, label: string): string {
  const width = 30;
  const filled = Math.round((width * done) / total);
  return `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(done).padStart(String(total).length)}/${total} ${label.slice(0, 40).padEnd(40)}`;
}

export const quantizeCommand: Command = {
  name: "quantize",
  summary: "Quantize a llama GGUF file with a llama-quantize mix (Q4_K_M, Q8_0, …)",
  help: `Usage: lab quantize IN.gguf OUT.gguf TYPE [--json] [--allow-requantize]

Writes OUT (atomically: a temp file, then rename) with each tensor converted as llama-quantize
would for TYPE, keeping all metadata and setting general.file_type and general.quantization_version.
IN is validated first and is never overwritten (also not through a symlink or hard link).
Quantized bytes equal ggml's reference quantizers' (no importance matrix).

Options:
  --json               print {input, output, inputBytes, outputBytes, bitsPerWeight, seconds, tensors[]}
  --allow-requantize   allow converting tensors that are already block-quantized

TYPE is one of: ${MIX_NAMES}
Per-tensor rules (llama.cpp's llama_tensor_get_type for llama models; i = layer, n = layers):
${mixTableText().replace(/^/gm, "  ")}
  Not quantized: 1-D tensors (norms) and *_norm.weight keep their type.
  output.weight (and token_embd.weight if tied): Q6_K; Q8_0 for the Q8_0 mix or when the row length is
  not a multiple of the base block; untied token_embd.weight: the base type.
  use_more_bits(i,n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2.
  Row length not a multiple of the block: Q2_K,Q3_K→Q4_0  Q4_K→Q5_0  Q5_K→Q5_1  Q6_K→Q8_0, else F16.

Example:
  lab quantize data/models/target.gguf /tmp/target-q4km.gguf Q4_K_M`,
  async run(args) {
    const { values, positionals } = parseFlags("quantize", args, {
      json: { type: "boolean" }, "allow-requantize": { type: "boolean" },
    }, { min: 3, max: 3 });
    const [input, output, type] = positionals;
    if (!findMix(type)) throw new UsageError(`lab quantize: unknown type "${type}"; expected one of ${MIX_NAMES}`);
    const tty = process.stderr.isTTY === true;
    try {
      const report = await quantizeGgufFile(input, output, type, {
        allowRequantize: values["allow-requantize"] === true,
        onProgress: tty ? (done, total, name) => process.stderr.write(progressBar(done, total, name)) : undefined,
      });
      if (tty) process.stderr.write("\n");
      if (values.json) printJson(report);
      else {
        for (const t of report.tensors) say(`  ${t.name.padEnd(28)} ${t.from.padEnd(5)} → ${t.to.padEnd(5)} ${t.reason === "base" ? "" : t.reason}`);
      }
      say(`${report.mix}: ${(report.inputBytes / 2 ** 20).toFixed(2)} MiB → ${(report.outputBytes / 2 ** 20).toFixed(2)} MiB, ` +
        `${report.bitsPerWeight.toFixed(3)} bits/weight, ${report.seconds.toFixed(2)} s → ${output}`);
      return 0;
    } catch (err) {
      if (tty) process.stderr.write("\n");
      if (err instanceof QuantizeError) {
        say(`lab quantize: ${err.message}`);
        return 1;
      }
      throw err;
    }
  },
};
