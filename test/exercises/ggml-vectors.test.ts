// The recorded vectors the graders of tasks 1.1/1.2 compare with (test/exercises/ggml-vectors.json)
// are what ggml produces today: recomputed through the C oracle (needs gcc), byte for byte.
import { describe, expect, it } from "vitest";
import { CASES, ggmlCase, recordVectors } from "./ggml-vectors.ts";

describe("recorded ggml vectors for tasks 1.1/1.2", () => {
  it("every case equals ggml_quantize_chunk / to_float of node-llama-cpp's libggml now", async () => {
    const fresh = await recordVectors();
    expect(Object.keys(fresh.vectors).sort()).toEqual(Object.keys(CASES).sort());
    for (const name of Object.keys(CASES)) {
      const recorded = ggmlCase(name);
      const now = fresh.vectors[name]!;
      expect(Buffer.from(recorded.bytes).toString("base64"), `${name}: bytes`).toBe(now.bytes);
      expect(Buffer.from(recorded.values.buffer).toString("base64"), `${name}: values`).toBe(now.values);
    }
  });

  it("the bytes have the block layout of their type (34 or 18 bytes per 32 weights)", () => {
    for (const [name, c] of Object.entries(CASES)) {
      const v = ggmlCase(name);
      expect(v.bytes.length, name).toBe((v.input.length / 32) * (c.type === "Q8_0" ? 34 : 18));
      expect(v.values.length, name).toBe(v.input.length);
    }
  });
});
