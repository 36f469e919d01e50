// Quantization mixes and `lab quantize`, checked against llama.cpp's own llama_model_quantize (run
// through test/oracle/llama-quantize.c over the libllama that node-llama-cpp ships): for every mix,
// our output file must be BYTE-IDENTICAL to llama-quantize's — same per-tensor types, same bytes, same
// metadata, same layout.
import { execFileSync } from "node:child_process";
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../lab/cli/main.ts";
import { GgufError, getValue, ggufStringToBytes, openGguf, writeGguf } from "../lab/gguf/index.ts";
import { syntheticLlama, writeSyntheticLlama, type SyntheticLlamaOptions } from "../lab/model/synthetic.ts";
import { quantizeGgufFile } from "../lab/quant/file.ts";
import { chooseTensorType, fallbackType, MIXES, useMoreBits } from "../lab/quant/mixes.ts";
import { NUL_PIECES, TRICKY_PIECES, trickyLlamaDocument } from "./fuzz/gguf-fixtures.ts";
import { buildOracle } from "./oracle/ggml.ts";

let dir: string;
let llamaQuantize: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "quant-mixes-"));
  llamaQuantize = buildOracle(join(import.meta.dirname, "oracle/llama-quantize.c"), [":libllama.v0.4.0.so"]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("rule helpers", () => {
  it("use_more_bits picks the first and last eighth and every third layer between (llama.cpp's lambda)", () => {
    const picked = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
    expect(picked(32)).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    expect(picked(2)).toEqual([1]);
  });

  it("falls back when a row is not a whole number of blocks", () => {
    expect(fallbackType("Q4_K", 4096)).toBe("Q4_K");
    expect(fallbackType("Q4_K", 96)).toBe("Q5_0");
    expect(fallbackType("Q2_K", 96)).toBe("Q4_0");
    expect(fallbackType("Q5_K", 160)).toBe("Q5_1");
    expect(fallbackType("Q6_K", 96)).toBe("Q8_0");
    expect(fallbackType("Q6_K", 80)).toBe("F16"); // Q8_0 does not fit either
    expect(fallbackType("Q4_0", 80)).toBe("F16");
  });

  it("keeps norms and 1-D tensors, gives the output head Q6_K", () => {
    const model = { nLayer: 2, nGqa: 2, tiedEmbeddings: false };
    const mix = MIXES.find((m) => m.name === "Q4_K_M")!;
    expect(chooseTensorType(mix, { name: "blk.0.attn_norm.weight", ne: [256], type: "F32" }, model).type).toBe("F32");
    expect(chooseTensorType(mix, { name: "output.weight", ne: [256, 512], type: "F32" }, model).type).toBe("Q6_K");
    expect(chooseTensorType(mix, { name: "token_embd.weight", ne: [256, 512], type: "F32" }, model).type).toBe("Q4_K");
    expect(chooseTensorType(mix, { name: "token_embd.weight", ne: [256, 512], type: "F32" }, { ...model, tiedEmbeddings: true }).type).toBe("Q6_K");
  });
});

// Shapes chosen to exercise every rule: 16 layers (use_more_bits, i<4, n/8, n/16), GQA 4 (Q2_K's attn_v),
// rows of 96 and 160 (k-quant fallbacks to 32-blocks), rows of 80 (fallback to F16).
const SHAPES: [string, SyntheticLlamaOptions][] = [
  ["16 layers, nEmbd 96, GQA 4", { seed: 2, nLayer: 16, nEmbd: 96, nHead: 4, nKvHead: 1, nFf: 160, nCtx: 64 }],
  ["3 layers, nEmbd 80", { seed: 3, nLayer: 3, nEmbd: 80, nHead: 4, nKvHead: 2, nFf: 128, nCtx: 64 }],
];

describe.each(SHAPES)("every mix is byte-identical to llama_model_quantize (%s)", (_label, shape) => {
  let input: string;
  beforeAll(async () => {
    input = join(dir, `in-${shape.seed}.gguf`);
    await writeSyntheticLlama(input, shape);
  });

  it.each(MIXES.map((m) => m.name))("%s", async (mixName) => {
    const mix = MIXES.find((m) => m.name === mixName)!;
    const theirs = join(dir, `${shape.seed}-${mixName}-llama.gguf`);
    const ours = join(dir, `${shape.seed}-${mixName}-ours.gguf`);
    execFileSync(llamaQuantize, [input, theirs, String(mix.ftype)], { stdio: ["ignore", "ignore", "pipe"] });
    await quantizeGgufFile(input, ours, mixName);
    const [a, b] = [await openGguf(ours), await openGguf(theirs)];
    // Per-tensor types first, for a readable failure; then the whole files.
    expect(a.tensors.map((t) => `${t.name}:${t.type}`)).toEqual(b.tensors.map((t) => `${t.name}:${t.type}`));
    expect(getValue(a, "general.file_type")).toBe(mix.ftype);
    expect(getValue(a, "general.quantization_version")).toBe(2);
    expect(Buffer.compare(readFileSync(ours), readFileSync(theirs))).toBe(0);
  });
});

// GGUF strings are bytes: a third-party vocabulary may hold a lone U+FEFF (Llama-2's token 30143),
// pieces that are not UTF-8, an empty piece. llama_model_quantize copies them byte for byte; so must we.
describe("a vocabulary whose pieces are bytes (BOM, invalid UTF-8, empty): every mix is byte-identical to llama_model_quantize", () => {
  const shape: SyntheticLlamaOptions = { seed: 8, nLayer: 2, nEmbd: 64, nHead: 2, nKvHead: 1, nFf: 96, nCtx: 32 };
  let input: string;
  beforeAll(async () => {
    input = join(dir, "tricky-in.gguf");
    await writeGguf(input, trickyLlamaDocument(shape).doc);
  });

  it.each(MIXES.map((m) => m.name))("%s", async (mixName) => {
    const mix = MIXES.find((m) => m.name === mixName)!;
    const theirs = join(dir, `tricky-${mixName}-llama.gguf`);
    const ours = join(dir, `tricky-${mixName}-ours.gguf`);
    execFileSync(llamaQuantize, [input, theirs, String(mix.ftype)], { stdio: ["ignore", "ignore", "pipe"] });
    await quantizeGgufFile(input, ours, mixName);
    expect(Buffer.compare(readFileSync(ours), readFileSync(theirs))).toBe(0);
  });

  it("a piece with a NUL: llama_model_quantize writes it cut at the NUL; the kit refuses the file, naming the token", async () => {
    const { doc, ids } = trickyLlamaDocument(shape, [...NUL_PIECES, ...TRICKY_PIECES]);
    const nulInput = join(dir, "nul-in.gguf");
    await writeGguf(nulInput, doc);
    const theirs = join(dir, "nul-Q8_0-llama.gguf");
    execFileSync(llamaQuantize, [nulInput, theirs, "7"], { stdio: ["ignore", "ignore", "pipe"] });
    const tokens = (await openGguf(theirs, { validate: false })).metadata.get("tokenizer.ggml.tokens")!.value as string[];
    expect(tokens[ids.get("NUL inside")!]).toBe("a"); // was "a\0b"
    expect(tokens[ids.get("NUL only")!]).toBe(""); // was "\0"
    // Every other piece it copies byte for byte.
    for (const [name, piece] of TRICKY_PIECES) expect(Buffer.from(ggufStringToBytes(tokens[ids.get(name)!])).equals(Buffer.from(piece)), name).toBe(true);
    const ours = join(dir, "nul-Q8_0-ours.gguf");
    const err = await quantizeGgufFile(nulInput, ours, "Q8_0").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GgufError);
    // The first NUL in id order is "NUL only" (pieces are placed from the end of the vocabulary).
    expect((err as GgufError).message).toContain(`token ${ids.get("NUL only")} "\\u0000" contains a NUL byte`);
    expect(existsSync(ours)).toBe(false);
  });
});

describe("tied embeddings (no output.weight): token_embd is treated as the output head, like llama.cpp", () => {
  const cases: [string, SyntheticLlamaOptions, string[]][] = [
    ["rows of 256", { seed: 6, nLayer: 1, nEmbd: 256, nHead: 4, nKvHead: 2, nFf: 256, nCtx: 32 }, ["Q4_K_M", "Q8_0"]],
    ["rows of 96", { seed: 7, nLayer: 2, nEmbd: 96, nHead: 4, nKvHead: 2, nFf: 128, nCtx: 32 }, ["Q4_K_M", "Q2_K", "Q4_0"]],
  ];
  it.each(cases)("%s", async (_label, shape, mixes) => {
    const model = syntheticLlama(shape);
    const input = join(dir, `tied-${shape.seed}.gguf`);
    await writeGguf(input, {
      metadata: model.metadata,
      tensors: model.tensors.filter((t) => t.name !== "output.weight")
        .map((t) => ({ name: t.name, type: "F32" as const, ne: t.ne, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    });
    for (const mixName of mixes) {
      const theirs = join(dir, `tied-${shape.seed}-${mixName}-llama.gguf`);
      const ours = join(dir, `tied-${shape.seed}-${mixName}-ours.gguf`);
      execFileSync(llamaQuantize, [input, theirs, String(MIXES.find((m) => m.name === mixName)!.ftype)], { stdio: ["ignore", "ignore", "pipe"] });
      const report = await quantizeGgufFile(input, ours, mixName);
      expect(report.tensors.find((t) => t.name === "token_embd.weight")!.reason).toMatch(/^output head/);
      expect(Buffer.compare(readFileSync(ours), readFileSync(theirs))).toBe(0);
    }
  });
});

describe("lab quantize (CLI)", () => {
  let input: string;
  beforeAll(async () => {
    input = join(dir, "cli-in.gguf");
    await writeSyntheticLlama(input, { seed: 5, nLayer: 2, nEmbd: 64, nHead: 2, nKvHead: 1, nFf: 96, nCtx: 32 });
  });

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const out = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
    const err = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
    try {
      return { code: await main(["quantize", ...args]), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it("--json reports sizes, bits per weight, seconds and per-tensor types", async () => {
    const output = join(dir, "cli-q8.gguf");
    const r = await run([input, output, "Q8_0", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.outputBytes).toBe(readFileSync(output).length);
    expect(report.inputBytes).toBe(readFileSync(input).length);
    expect(report.bitsPerWeight).toBeGreaterThan(8.5);
    expect(report.bitsPerWeight).toBeLessThan(9.5); // norms stay F32
    expect(report.seconds).toBeGreaterThan(0);
    const types = Object.fromEntries(report.tensors.map((t: { name: string; to: string }) => [t.name, t.to]));
    expect(types["blk.0.attn_q.weight"]).toBe("Q8_0");
    expect(types["blk.0.attn_norm.weight"]).toBe("F32");
    expect(types["output.weight"]).toBe("Q8_0");
  });

  it("unknown TYPE exits 2 and lists the types", async () => {
    const r = await run([input, join(dir, "never.gguf"), "Q9_K"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Q4_K_M");
    expect(existsSync(join(dir, "never.gguf"))).toBe(false);
  });

  it("refuses to overwrite the input, also through a symlink or a hard link, and leaves it intact", async () => {
    const before = readFileSync(input);
    const sym = join(dir, "sym.gguf");
    const hard = join(dir, "hard.gguf");
    symlinkSync(input, sym);
    linkSync(input, hard);
    for (const out of [input, sym, hard]) {
      const r = await run([input, out, "Q4_0"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("refusing to overwrite");
    }
    expect(Buffer.compare(readFileSync(input), before)).toBe(0);
  });

  it("validates the input first: a truncated file fails and no output appears", async () => {
    const broken = join(dir, "broken.gguf");
    writeFileSync(broken, readFileSync(input).subarray(0, 200));
    const output = join(dir, "from-broken.gguf");
    const r = await run([broken, output, "Q4_0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/GgufError/);
    expect(existsSync(output)).toBe(false);
  });

  it("refuses to requantize an already quantized file unless --allow-requantize", async () => {
    const q8 = join(dir, "cli-q8-for-requant.gguf");
    expect((await run([input, q8, "Q8_0"])).code).toBe(0);
    const r = await run([q8, join(dir, "requant.gguf"), "Q4_0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--allow-requantize");
    expect((await run([q8, join(dir, "requant.gguf"), "Q4_0", "--allow-requantize"])).code).toBe(0);
  });
});
