// The files we write are files llama.cpp uses: ggml's own GGUF code reads our synthetic model and
// writes it back byte for byte identical, and llama.cpp loads it, tokenizes with its vocabulary,
// and generates from it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufValueType, ggufStringFromBytes, kv, openGguf, writeGguf } from "../lab/gguf/index.ts";
import { writeSyntheticLlama } from "../lab/model/synthetic.ts";
import { everyValueTypeDocument, NUL_PIECES, TRICKY_PIECES, trickyLlamaDocument } from "./fuzz/gguf-fixtures.ts";
import { buildOracle } from "./oracle/ggml.ts";

// Our own tiny harness over ggml's gguf API (prototypes declared here, linked against the
// libggml-base.so node-llama-cpp ships): read a file with gguf_init_from_file, data included,
// and write it back with gguf_write_to_file.
const GGUF_HARNESS = String.raw`
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
struct ggml_context;
struct gguf_context;
struct gguf_init_params { bool no_alloc; struct ggml_context ** ctx; };
struct gguf_context * gguf_init_from_file(const char * fname, struct gguf_init_params params);
bool gguf_write_to_file(const struct gguf_context * ctx, const char * fname, bool only_meta);
int64_t gguf_get_n_kv(const struct gguf_context * ctx);
int64_t gguf_get_n_tensors(const struct gguf_context * ctx);
const char * gguf_get_tensor_name(const struct gguf_context * ctx, int64_t tensor_id);
struct gguf_context * gguf_init_empty(void);
void gguf_set_kv(struct gguf_context * ctx, const struct gguf_context * src);
void gguf_add_tensor(struct gguf_context * ctx, const struct ggml_tensor * tensor);
struct ggml_tensor * ggml_get_tensor(struct ggml_context * ctx, const char * name);
void gguf_free(struct gguf_context * ctx);
void ggml_free(struct ggml_context * ctx);
int main(int argc, char ** argv) {
  if (argc < 2) return 2;
  struct ggml_context * data = NULL;
  struct gguf_init_params params = { false, &data };
  struct gguf_context * ctx = gguf_init_from_file(argv[1], params);
  if (!ctx) { printf("rejected\n"); return 1; }
  printf("ok %lld %lld\n", (long long) gguf_get_n_kv(ctx), (long long) gguf_get_n_tensors(ctx));
  fflush(stdout);
  if (argc > 2) {
    // The way llama-quantize writes a model: a fresh context, the metadata copied in order,
    // then each loaded tensor added in order (ggml computes offsets and padding itself).
    struct gguf_context * out = gguf_init_empty();
    gguf_set_kv(out, ctx);
    for (int64_t i = 0; i < gguf_get_n_tensors(ctx); i++) {
      gguf_add_tensor(out, ggml_get_tensor(data, gguf_get_tensor_name(ctx, i)));
    }
    if (!gguf_write_to_file(out, argv[2], false)) return 3;
    gguf_free(out);
  }
  gguf_free(ctx);
  ggml_free(data);
  return 0;
}
`;

let dir: string;
let modelPath: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gguf-llama-"));
  modelPath = join(dir, "synthetic.gguf");
  await writeSyntheticLlama(modelPath, { seed: 11 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the synthetic model in llama.cpp", () => {
  it("ggml's gguf reader accepts our files and its writer reproduces our bytes exactly", async () => {
    const source = join(dir, "gguf-harness.c");
    writeFileSync(source, GGUF_HARNESS);
    const exe = buildOracle(source, ["ggml-base"]);
    // The every-value-type file minus its nested array (valid GGUF, but ggml refuses nesting), at
    // the default alignment: a context built with gguf_init_empty keeps laying tensors out at 32
    // even after general.alignment is set, so ggml's writer cannot reproduce other alignments.
    const sink = everyValueTypeDocument(3, 32);
    sink.metadata = sink.metadata.filter((e) => e.itemType !== GgufValueType.ARRAY);
    const sinkPath = join(dir, "sink.gguf");
    await writeGguf(sinkPath, sink);
    // Strings are bytes: a vocabulary with BOM, empty and non-UTF-8 pieces, and a plain container
    // whose strings also hold NUL bytes (ggml keeps a std::string's length), rewritten by ggml too.
    const trickyPath = join(dir, "tricky.gguf");
    await writeGguf(trickyPath, trickyLlamaDocument({ seed: 12, nEmbd: 32, nFf: 64, nHead: 4, nKvHead: 2, nLayer: 1, nCtx: 64 }).doc);
    const stringsPath = join(dir, "strings.gguf");
    await writeGguf(stringsPath, {
      metadata: [kv.strings("strings.all", [...TRICKY_PIECES, ...NUL_PIECES].map(([, b]) => ggufStringFromBytes(b)))],
      tensors: [{ name: "t", type: "F32", ne: [8], data: new Uint8Array(32) }],
    });
    for (const path of [modelPath, sinkPath, trickyPath]) {
      const copy = `${path}.ggml-rewritten`;
      const file = await openGguf(path);
      expect(execFileSync(exe, [path, copy], { encoding: "utf8" }).trim()).toBe(`ok ${file.metadata.size} ${file.tensors.length}`);
      expect(readFileSync(copy).equals(readFileSync(path)), path).toBe(true);
    }
    // ggml reads the NUL-holding container, but copying it the way llama-quantize does (gguf_set_kv,
    // through c_str()) cuts each string at its first NUL and keeps every other byte.
    const cut = `${stringsPath}.ggml-rewritten`;
    expect(execFileSync(exe, [stringsPath, cut], { encoding: "utf8" }).trim()).toBe("ok 1 1");
    const items = (await openGguf(cut)).metadata.get("strings.all")!.value as string[];
    expect(items).toEqual([...TRICKY_PIECES, ...NUL_PIECES].map(([, b]) => ggufStringFromBytes(b).split("\0")[0]));
  });

  it("loads, tokenizes with the SPM vocabulary, and generates", async () => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath });
    try {
      expect(model.fileInfo.tensorInfo?.length).toBe(2 + 9 * 2 + 1);
      const vocab = (await openGguf(modelPath)).metadata.get("tokenizer.ggml.tokens")!.value as string[];
      const text = "the word is one";
      const ids = model.tokenize(text);
      // Whole words come out as single pieces; unknown text falls back to pieces and bytes.
      expect(ids.map((id) => vocab[id])).toEqual(["▁the", "▁word", "▁is", "▁one"]);
      expect(model.detokenize(ids)).toBe(text);
      const odd = "zebra 😀 naïve";
      expect(model.detokenize(model.tokenize(odd))).toBe(odd);
      expect(model.tokens.bos).toBe(1);
      expect(model.tokens.eos).toBe(2);

      const context = await model.createContext({ contextSize: 64, threads: 1, flashAttention: false });
      const sequence = context.getSequence();
      const out = await sequence.controlledEvaluate([...ids.slice(0, -1),
        [ids[ids.length - 1], { generateNext: { probabilities: true, options: { temperature: 0 } } }]]);
      const probabilities = out[ids.length - 1]?.next?.probabilities;
      expect(probabilities).toBeDefined();
      const p = [...probabilities!.values()];
      const sum = p.reduce((a, b) => a + b, 0);
      const entropy = -p.reduce((a, b) => a + (b > 0 ? b * Math.log(b) : 0), 0);
      expect(sum).toBeCloseTo(1, 3);
      // Peaked, not flat: well below the log(512) ≈ 6.24 nats of a uniform distribution.
      expect(entropy).toBeLessThan(Math.log(512) - 1);
      expect(entropy).toBeGreaterThan(0.05);
      await context.dispose();
    } finally {
      await model.dispose();
    }
  });
});
