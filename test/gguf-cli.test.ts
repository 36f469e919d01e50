// `lab gguf inspect` as a user runs it: a separate process, exit codes, stdout/stderr.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeGguf } from "../lab/gguf/index.ts";
import { everyValueTypeDocument, tinyLlamaDocument } from "./fuzz/gguf-fixtures.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "lab", "cli", "bin.mjs");

async function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; signal?: string; stdout: string; stderr: string };
    if (e.signal) throw new Error(`lab ${args.join(" ")} died of ${e.signal}`);
    return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
let llamaPath: string;
let sinkPath: string;
let brokenPath: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gguf-cli-"));
  llamaPath = join(dir, "tiny.gguf");
  await writeGguf(llamaPath, tinyLlamaDocument());
  sinkPath = join(dir, "sink.gguf");
  await writeGguf(sinkPath, everyValueTypeDocument(3, 64));
  const broken = tinyLlamaDocument();
  broken.metadata = broken.metadata.filter((e) => e.key !== "llama.attention.head_count");
  brokenPath = join(dir, "no-head-count.gguf");
  await writeGguf(brokenPath, broken);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lab gguf inspect", () => {
  it("prints exactly { metadata, tensors, totals } with --json, metadata complete", async () => {
    const { code, stdout } = await lab("gguf", "inspect", llamaPath, "--json");
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    expect(Object.keys(json)).toEqual(["metadata", "tensors", "totals"]);
    expect(json.metadata["general.architecture"]).toBe("llama");
    expect(json.metadata["llama.block_count"]).toBe(2);
    expect(json.metadata["tokenizer.ggml.tokens"]).toHaveLength(512);
    expect(json.metadata["tokenizer.ggml.tokens"][3 + 0x41]).toBe("<0x41>");
    const doc = tinyLlamaDocument();
    expect(json.tensors).toHaveLength(doc.tensors.length);
    for (const t of json.tensors) expect(Object.keys(t)).toEqual(["name", "type", "shape", "bytes"]);
    expect(json.tensors[0]).toEqual({ name: "token_embd.weight", type: "F32", shape: [32, 512], bytes: 32 * 512 * 4 });
    const parameters = doc.tensors.reduce((a, t) => a + t.ne.reduce((x, y) => x * y, 1), 0);
    expect(json.totals).toEqual({ parameters, tensorBytes: parameters * 4, bitsPerWeight: 32 });
  });

  it("prints a report with hyperparameters, tokenizer summary and tensor table", async () => {
    const { code, stdout } = await lab("gguf", "inspect", llamaPath);
    expect(code).toBe(0);
    expect(stdout).toContain("architecture: llama");
    expect(stdout).toMatch(/nEmbd=32 .*nLayer=2/);
    expect(stdout).toContain("tokenizer: llama, vocab 512, 256 byte tokens, special unknown=0 bos=1 eos=2");
    expect(stdout).toMatch(/blk\.1\.ffn_down\.weight\s+F32\s+\[64, 32\]\s+8192\s+32/);
    expect(stdout).toMatch(/totals: \d+ parameters/);
  });

  it("shows 64-bit values exactly and nested arrays whole (--no-validate for ggml-refused nesting)", async () => {
    const refused = await lab("gguf", "inspect", sinkPath, "--json");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/GgufError: nested arrays.*sink\.array\.nested/);
    const { code, stdout } = await lab("gguf", "inspect", sinkPath, "--json", "--no-validate");
    expect(code).toBe(0);
    const m = JSON.parse(stdout).metadata;
    expect(m["sink.scalar.u64"]).toBe("18446744073709551615");
    expect(m["sink.scalar.i64"]).toBe("-9223372036854775808");
    expect(m["sink.array.u64"]).toEqual([0, "18446744073709551615"]);
    expect(m["sink.array.nested"]).toEqual([[1, 2, 3], ["x", "yz"], [[-1, 5]], []]);
    expect(m["sink.scalar.string"]).toBe("héllo ▁wörld ✓ 😀");
  });

  it("exits 1 with the GgufError on stderr for invalid, truncated and missing files", async () => {
    const truncated = join(dir, "truncated.gguf");
    writeFileSync(truncated, readFileSync(llamaPath).subarray(0, 700));
    const garbage = join(dir, "garbage.gguf");
    writeFileSync(garbage, "this is not a model at all");
    const [broken, cut, junk, missing] = await Promise.all([
      lab("gguf", "inspect", brokenPath), lab("gguf", "inspect", truncated, "--json"),
      lab("gguf", "inspect", garbage), lab("gguf", "inspect", join(dir, "absent.gguf")),
    ]);
    expect(broken).toMatchObject({ code: 1, stdout: "" });
    expect(broken.stderr).toMatch(/GgufError: .*key "llama\.attention\.head_count"/);
    expect(cut).toMatchObject({ code: 1, stdout: "" });
    expect(cut.stderr).toMatch(/GgufError: .*truncated/);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/not a GGUF file/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no such file: .*absent\.gguf/);
  });
});
