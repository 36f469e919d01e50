// 1,000 damaged GGUF files, strings with odd bytes among them (test/fuzz/gguf-fuzz.ts has the mutations; run it standalone with
// `npx tsx test/fuzz/gguf-fuzz.ts --count 100000 --seed 7` for a longer campaign).
import { describe, expect, it } from "vitest";
import { MUTATORS, runFuzz } from "./fuzz/gguf-fuzz.ts";

describe("GGUF fuzz", () => {
  it("every damaged file opens cleanly or fails with a GgufError, each within a second", async () => {
    // The first 25 accepted llama files also go to llama.cpp (in a child process, which may abort).
    const r = await runFuzz({ count: 1000, seed: 7, llamaCheck: 25 });
    expect(r.failures).toEqual([]);
    expect(r.cases).toBe(1000);
    expect(r.rejected + r.accepted).toBe(1000);
    expect(r.maxCaseMs).toBeLessThan(1000);
    expect(r.llamaLoaded).toBe(25);
    // Every kind of damage was tried and caught at least once.
    for (const name of [...Object.keys(MUTATORS), "semantic", "semanticString"]) expect(r.byMutation[name]?.rejected, name).toBeGreaterThan(0);
    // Strings given a BOM, NUL or non-UTF-8 bytes: some are refused (keys, tensor names, NUL), and
    // the accepted ones each wrote back byte for byte (runFuzz checks; a difference is a failure).
    for (const name of ["stringBytes", "semanticString"]) expect(r.byMutation[name]?.accepted, name).toBeGreaterThan(10);
  });
});
