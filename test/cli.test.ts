// The `lab` command line: help lists the subcommands, mistakes are usage errors (exit code 2), and
// the notebook/doctor/jupyter commands answer in the documented shape.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const BIN = join(import.meta.dirname, "..", "lab", "cli", "bin.mjs");

function lab(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Every test spawns the CLI (about 1 s each when idle; much more while the whole suite runs).
const CLI_TEST_MS = 180_000;

describe("lab CLI", () => {
  it("--help lists the subcommands", () => {
    const r = lab("--help");
    expect(r.code).toBe(0);
    for (const name of ["notebooks run", "notebooks list", "jupyter", "doctor", "regenerate"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name}\\s+\\S`, "m"));
    }
  }, CLI_TEST_MS);

  it("no arguments prints help and exits 2", () => {
    const r = lab();
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("Usage: lab <command>");
  }, CLI_TEST_MS);

  it("an unknown command exits 2 and says so", () => {
    const r = lab("frobnicate");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  }, CLI_TEST_MS);

  it("a group word alone lists its subcommands and exits 2", () => {
    const r = lab("notebooks");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("lab notebooks run");
  }, CLI_TEST_MS);

  it("bad flags and bad values are usage errors (exit 2)", () => {
    const unknown = lab("notebooks", "run", "--bogus");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/bogus/);
    const timeout = lab("notebooks", "run", "--timeout", "soon");
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain("--timeout must be a number");
    const name = lab("notebooks", "run", "no-such-notebook");
    expect(name.code).toBe(2);
    expect(name.stderr).toContain('no notebook named "no-such-notebook"');
    expect(lab("doctor", "extra").code).toBe(2);
  }, CLI_TEST_MS);

  it("command --help prints the command's usage", () => {
    const r = lab("notebooks", "run", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: lab notebooks run");
  }, CLI_TEST_MS);

  it("notebooks list --json lists the welcome notebook with its cell count", () => {
    const r = lab("notebooks", "list", "--json");
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout);
    const welcome = list.find((n: { name: string }) => n.name === "00-welcome");
    expect(welcome).toMatchObject({ path: "notebooks/00-welcome.ipynb" });
    expect(welcome.cells).toBeGreaterThan(welcome.codeCells);
  }, CLI_TEST_MS);

  it("doctor --json reports every check with a fix for each missing one", () => {
    const r = lab("doctor", "--json");
    expect([0, 1]).toContain(r.code);
    const report = JSON.parse(r.stdout);
    expect(report.checks.map((c: { name: string }) => c.name)).toEqual([
      "Node.js", "npm packages", "zeromq (kernel protocol)", "Jupyter", "tslab kernel registered",
      "node-llama-cpp binary", "embedded models (data/models/)", "gcc (optional: npm test)",
      "Chromium (optional: browser test)",
    ]);
    expect(report.ok).toBe(r.code === 0);
    for (const c of report.checks) if (!c.ok) expect(c.fix).toBeTruthy();
    const llama = report.checks.find((c: { name: string }) => c.name === "node-llama-cpp binary");
    expect(llama).toMatchObject({ ok: true, buildType: "prebuilt" });
  }, CLI_TEST_MS);

  it("jupyter --dry-run shows the kernel registration and the Jupyter it would start", () => {
    const r = lab("jupyter", "--dry-run", "--", "--no-browser");
    if (r.code === 1 && r.stderr.includes("no Python with Jupyter")) return; // machine without Jupyter: covered by doctor
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PATH=.*node_modules[\\/]\.bin/m);
    expect(r.stdout).toMatch(/tslab install --python=\S+/);
    expect(r.stdout).toMatch(/-m (jupyterlab|notebook) --no-browser/);
  }, CLI_TEST_MS);

  it("jupyter --python with a missing file is an error, not a crash", () => {
    const r = lab("jupyter", "--python", "/no/such/python", "--dry-run");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no such file");
  }, CLI_TEST_MS);
});

describe("lab doctor checks (unit)", async () => {
  const { checkNode, checkModels, checkGcc, pythonCandidates } = await import("../lab/doctor.ts");
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");

  it("Node.js must be >= 20.19, with the fix when it is not", () => {
    expect(checkNode("20.19.0").ok).toBe(true);
    expect(checkNode("22.3.1").ok).toBe(true);
    const old = checkNode("20.18.3");
    expect(old.ok).toBe(false);
    expect(old.fix).toContain(">= 20.19");
  });

  it("embedded models: names what is missing and how to get it back", () => {
    const dir = mkdtempSync(join(tmpdir(), "lab-models-"));
    try {
      expect(checkModels(dir)).toMatchObject({ ok: false, detail: "none" });
      writeFileSync(join(dir, "target.gguf"), Buffer.alloc(1 << 20));
      const one = checkModels(dir);
      expect(one.ok).toBe(false);
      expect(one.detail).toBe("target.gguf 1.0 MiB");
      expect(one.fix).toMatch(/missing draft\.gguf/);
      writeFileSync(join(dir, "draft.gguf"), "x");
      expect(checkModels(dir).ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the Python behind a `jupyter` command on PATH comes before the system Python", () => {
    const bin = mkdtempSync(join(tmpdir(), "lab-bin-"));
    try {
      writeFileSync(join(bin, "jupyter"), `#!${process.execPath}\n`);
      expect(pythonCandidates({ PATH: bin })[0]).toBe(process.execPath);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("gcc: found with its version line, or optional with the fix when it is not", async () => {
    const found = await checkGcc();
    expect(found.optional).toBe(true);
    if (found.ok) expect(found.detail).toMatch(/gcc|GCC/);
    const missing = await checkGcc("/no/such/gcc");
    expect(missing).toMatchObject({ ok: false, optional: true });
    expect(missing.fix).toContain("apt-get install gcc");
  });

  it("LAB_PYTHON is tried first when it exists", () => {
    expect(pythonCandidates({ LAB_PYTHON: process.execPath, PATH: "" })[0]).toBe(process.execPath);
    expect(pythonCandidates({ LAB_PYTHON: "/no/such/python", PATH: "" })).not.toContain("/no/such/python");
  });
});

describe("human output of measurement commands (unit)", async () => {
  const { benchText } = await import("../lab/cli/commands/bench.ts");
  const report = (engine: string, decode: number) => ({
    engine, threads: 1, promptTokens: 64, decodeTokens: 32, repeats: 5, warmup: 1,
    prefillTokensPerSecond: 1234.56789, decodeTokensPerSecond: decode, ttftMs: 12.3456789, tpotMs: 1000 / decode,
    weightBytes: 6_844_800, kvBytesPerToken: 4096, peakRssBytes: 200 * 2 ** 20,
  }) as unknown as Parameters<typeof benchText>[0][string];

  it("lab bench: a table with 4 significant digits, a lab/llama column, and the peak RSS said to be shared", () => {
    const text = benchText({ lab: report("lab", 600.123456), llama: report("llama", 400) });
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^figure\s+lab\s+llama\s+lab\/llama$/);
    expect(text).toMatch(/^decode tok\/s\s+600\.1\s+400\s+1\.5$/m);
    expect(text).toMatch(/^prefill tok\/s\s+1235\s+1235\s+1$/m);
    expect(text).not.toMatch(/\d\.\d{5,}/); // no raw floats
    expect(text).not.toContain("{");
    expect(lines.at(-1)).toMatch(/peak RSS 200 MiB: the whole process, shared by both engines/);
    expect(text.match(/peak RSS/g)).toHaveLength(1);
  });

  it("lab bench with one engine: no ratio column", () => {
    const text = benchText({ lab: report("lab", 600) });
    expect(text.split("\n")[0]).toMatch(/^figure\s+lab$/);
    expect(text).toMatch(/peak RSS 200 MiB \(whole process\)$/);
  });
});

describe("lab eval human output (unit)", async () => {
  const { evalText } = await import("../lab/cli/commands/eval.ts");
  it("perplexity and KL at 4 significant digits (small ones in exponent form), top-1 and tasks in percent", () => {
    const text = evalText({
      perplexity: 1.8175524885762042, kl: { mean: 0.0020586123456, median: 0.0000777212345, p99: 0.0218123456, max: 0.27371234 },
      top1: 0.98333333, tasks: { arithmetic: 0.93, facts: 1 },
    }, { arithmetic: 50, facts: 50 });
    expect(text).toMatch(/^perplexity\s+1\.818$/m);
    expect(text).toMatch(/^KL mean \(nats\)\s+0\.002059$/m);
    expect(text).toMatch(/^KL median\s+7\.772e-5$/m);
    expect(text).toMatch(/^same top-1\s+98\.3%$/m);
    expect(text).toMatch(/^arithmetic\s+93\.0%\s+50$/m);
    expect(text).toMatch(/^facts\s+100\.0%\s+50$/m);
    expect(text).not.toContain("{");
    expect(text).not.toMatch(/\d\.\d{8,}/); // no raw doubles
  });
  it("without a reference: perplexity only, no KL rows", () => {
    const text = evalText({ perplexity: null, kl: null, top1: null, tasks: {} });
    expect(text).toMatch(/^perplexity\s+n\/a$/m);
    expect(text).not.toMatch(/KL|top-1/);
  });
});
