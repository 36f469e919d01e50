// Every example command the kit shows a user — in `lab <command> --help` texts and in README.md —
// runs and succeeds (or fails the way it says it will), and README's facts match the data they cite.
// Examples are parsed from the texts themselves, so a new example is tested as soon as it is written:
// one that no rule below knows fails the test until it is classified. Long-running or machine-changing
// commands are skipped explicitly, each with its reason; cheap ones run on small inputs (flags
// appended, paths under /tmp and --out moved into a temporary folder, placeholders filled in).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { commands } from "../lab/cli/commands/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "lab", "cli", "bin.mjs");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const work = mkdtempSync(join(tmpdir(), "lab-examples-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ---- finding the examples ----------------------------------------------------------------------

/** `lab …` lines under "Example:" / "Examples:" / "Examples (…):" in each command's help, per command. */
function helpExamples(): { command: string; lines: string[] }[] {
  return commands.map((c) => {
    const lines: string[] = [];
    let inExamples = false;
    for (const line of c.help.split("\n")) {
      if (/^Examples?\b.*:$/.test(line)) inExamples = true;
      else if (!line.trim()) inExamples = false;
      else if (inExamples && /^\s+lab /.test(line)) lines.push(line.trim());
    }
    return { command: c.name, lines };
  }).filter((e) => e.lines.length > 0);
}

type Where = "readme block" | "readme inline" | "help";

/** Command lines of README's ```sh blocks, and inline `code` that starts like a command. */
function readmeExamples(): { line: string; where: Where }[] {
  const blocks = [...README.matchAll(/^```sh\n([\s\S]*?)^```/gm)].flatMap((m) => m[1]!.split("\n").filter((l) => l.trim()));
  const inline = [...README.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).filter((s) => /^(npx |npm |lab |[A-Z_]+=\S+ npx )/.test(s));
  return [...blocks.map((line) => ({ line, where: "readme block" as const })),
    ...[...new Set(inline)].map((line) => ({ line, where: "readme inline" as const }))];
}

const withoutComment = (line: string) => line.replace(/\s+#.*$/, "").trim();

/** Shell words (double and single quotes; nothing else of shell syntax is used in the examples). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

// ---- what to do with each example --------------------------------------------------------------

interface Run {
  argv: string[];
  env?: Record<string, string>;
  /** accepted exit codes (default [0]) */
  codes?: number[];
  /** stdout must be exactly one JSON document */
  json?: boolean;
  /** text the output must contain */
  output?: RegExp;
}
type Plan = { skip: string } | Run;

const CHEAP_BENCH = ["--repeats", "1", "--warmup", "0", "--prompt-tokens", "16", "--decode-tokens", "4"];
const CHEAP_EVAL = ["--texts", "2", "--items", "2"];
const PLACEHOLDERS: Record<string, string> = {
  MODEL: "data/models/draft.gguf", FILE: "data/models/draft.gguf", IN: "data/models/draft.gguf", "IN.gguf": "data/models/draft.gguf",
  OUT: join(work, "placeholder-out.gguf"), "OUT.gguf": join(work, "placeholder-out.gguf"), TYPE: "Q8_0", N: "4096",
};
const labCommandNames = new Set(commands.map((c) => c.name));

/** `lab …` arguments made cheap and harmless: placeholders filled, /tmp and --out moved to `work`. */
function labArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!.replace(/^\[(.*)\]$/, "$1"); // optional flags are shown as [--json]: use them
    if (a in PLACEHOLDERS) a = PLACEHOLDERS[a]!;
    else if (a.startsWith("/tmp/")) a = join(work, basename(a));
    else if (/^[A-Z][A-Z_.]*$/.test(a) && !/^Q\d|^[BF]\d|^F16|^F32|^BF16/.test(a)) throw new Error(`unknown placeholder ${a}: add it to PLACEHOLDERS`);
    if (args[i - 1] === "--out") a = join(work, basename(a));
    out.push(a);
  }
  return out;
}

const lab = (args: string[], more: Partial<Run> = {}): Run => ({
  argv: [process.execPath, BIN, ...args], json: args.includes("--json"), ...more,
});

/** Commands that are cheap and harmless to run with no arguments at all. */
const RUN_BARE = new Set(["doctor", "data check", "notebooks list"]);

/** The plan for one example, or undefined when no rule knows it (the test then fails). */
function plan(line: string, where: Where): Plan | undefined {
  const cmd = withoutComment(line);
  if (/&&|\|\s/.test(cmd) && !/^lab data generate\|check$/.test(cmd)) {
    if (/^npm install && npm start$/.test(cmd)) return { skip: "installs packages and runs every notebook (minutes); .ci/run does both on a fresh clone" };
    return undefined;
  }
  if (/^npm (install|ci)\b/.test(cmd)) return { skip: "installs packages from the registry (.ci/run does it on a fresh clone)" };
  if (/^npm test\b/.test(cmd)) return { skip: "is this test suite" };
  if (/^npm run check:kit\b/.test(cmd)) return { skip: "part of npm test itself (it runs after vitest); test/grade.test.ts covers the grader" };
  if (/^(npm start|(npx )?lab regenerate)\b/.test(cmd)) {
    return { skip: "runs every notebook (minutes) and rewrites their outputs (--with-timings: also timed speed runs); test/notebooks.test.ts runs every notebook" };
  }
  if (/^npm run grade$/.test(cmd)) return { skip: "the same five graded runs as `npm run -s grade -- --json`, which runs here; its table is tested in test/grade.test.ts" };
  if (/^npm run (-s )?grade\b/.test(cmd)) {
    // The stubs are not started: exit 1, and the JSON form must still be one document. (On a machine
    // loaded by the rest of the suite a task may hit the grader's 60 s limit instead: also exit 1.)
    return { argv: ["npm", ...words(cmd).slice(1)], codes: [1], json: cmd.includes("--json"), output: /not started|timeout/ };
  }
  if (/^npx lab grade --json$/.test(cmd)) return { skip: "the program `npm run -s grade -- --json` runs (tested here) without npm in front" };
  if (/^[A-Z_]+=\S+ npx vitest run test\/exercises$/.test(cmd)) {
    const [assign, ...rest] = words(cmd);
    const [k, v] = assign!.split("=");
    return { argv: [join(ROOT, "node_modules/.bin/vitest"), ...rest.slice(2)], env: { [k!]: v! }, codes: [1], output: /NotImplementedError/ };
  }
  if (/^curl /.test(cmd)) return { skip: "talks to a running `lab serve`; test/serve.test.ts sends the same requests with the openai client" };
  if (/^npx tsx bench\//.test(cmd)) return { skip: "a benchmark: minutes of timed runs that rewrite data/results/ (bench/engine.ts) or only print speeds" };
  if (/^npx tsx test\/fuzz\/gguf-fuzz\.ts\b/.test(cmd)) {
    return { argv: [join(ROOT, "node_modules/.bin/tsx"), "test/fuzz/gguf-fuzz.ts", "--count", "200", "--seed", "7", "--llama", "3"], json: true };
  }
  if (/^npx tsx test\/oracle\/stress\.ts\b/.test(cmd)) return { argv: [join(ROOT, "node_modules/.bin/tsx"), "test/oracle/stress.ts", ...labArgs(words(cmd).slice(3))], output: /Q4_0\s+bit-exact/ };
  if (/^npx lab --help$/.test(cmd)) return { argv: ["npx", "lab", "--help"], output: /Usage: lab <command>/ }; // once through npx itself
  const labLine = cmd.replace(/^npx /, "");
  if (!labLine.startsWith("lab ")) return undefined;
  const args = words(labLine).slice(1);
  const name = [args.slice(0, 2).join(" "), args[0]!].find((n) => labCommandNames.has(n));
  // A bare command name in README's prose (`lab eval`, `lab data generate|check`) names a command:
  // it must exist, so its help runs (or the command itself, when that is cheap).
  const names = labLine.slice(4).split("|").map((n, i, all) => (i === 0 ? n : `${all[0]!.split(" ")[0]} ${n}`).trim());
  if (where === "readme inline" && names.every((n) => labCommandNames.has(n))) {
    if (names.length === 1 && RUN_BARE.has(names[0]!)) return lab(names[0]!.split(" "), { codes: names[0] === "doctor" ? [0, 1] : [0] });
    return lab([...names[0]!.split(" "), "--help"], { output: /Usage: lab / });
  }
  if (!name) return undefined;
  if (name === "jupyter") return { skip: "starts a Jupyter server; `lab jupyter --dry-run` is tested in test/cli.test.ts" };
  if (name === "serve") return { skip: "starts a server that runs until SIGTERM; test/serve-cli.test.ts starts `lab serve` and stops it with SIGTERM" };
  if (name === "doctor") return lab(labArgs(args), { codes: [0, 1] }); // a machine without Jupyter is told so, exit 1
  if (name === "train" && args.includes("--card-only")) return { skip: "evaluates both embedded models for minutes and rewrites data/models' card; test/train-smoke.test.ts runs --card-only on the committed files" };
  if (name === "train") return { skip: "trains models: seconds (smoke, test/train-smoke.test.ts runs it) up to 60 minutes (the embedded models, all phases)" };
  if (name === "notebooks run") return { skip: "runs notebooks and rewrites their committed outputs; test/notebooks.test.ts runs every notebook" };
  if (name === "notebooks screenshot") return { skip: "drives Chromium, which is optional; test/browser.test.ts covers it where Chromium exists" };
  // A load test needs the server its example assumes (lab serve, llama-server, vLLM, SGLang): --dry-run
  // checks the flags and loads the prompts without sending anything; test/loadtest.test.ts runs it
  // against a stub server, and the notebook against lab serve.
  if (name === "loadtest") return lab([...labArgs(args).filter((a) => a !== "--dry-run"), "--dry-run"]);
  if (name === "bench") return lab([...labArgs(args), ...CHEAP_BENCH]);
  if (name === "eval") return lab([...labArgs(args), ...CHEAP_EVAL]);
  if (name === "grade") return lab(labArgs(args), { codes: [1], output: /not started|timeout/ }); // the stubs are not started
  if (name === "quantize" && args.includes("--help")) return lab(args, { output: /Q4_K_M/ });
  return lab(labArgs(args));
}

function execute(r: Run) {
  const p = spawnSync(r.argv[0]!, r.argv.slice(1), { cwd: ROOT, encoding: "utf8", timeout: 240_000, env: { ...process.env, ...r.env } });
  return { code: p.status, stdout: p.stdout ?? "", stderr: p.stderr ?? "", error: p.error };
}

function check(example: string, r: Run): void {
  const out = execute(r);
  const shown = `${example}\n→ ${r.argv.join(" ")}\n--- stderr (tail) ---\n${out.stderr.slice(-1500)}`;
  expect(out.error, shown).toBeUndefined();
  expect(r.codes ?? [0], `exit code ${out.code}: ${shown}`).toContain(out.code);
  if (r.json) expect(() => JSON.parse(out.stdout), `stdout is not one JSON document: ${shown}\n--- stdout ---\n${out.stdout.slice(0, 500)}`).not.toThrow();
  if (r.output) expect(out.stdout + out.stderr, shown).toMatch(r.output);
}

// ---- the tests ---------------------------------------------------------------------------------

const MINUTES = 60_000;

describe("every example command runs", () => {
  it("every example in README and --help texts is classified (run, or skipped with a reason)", () => {
    const all = [...readmeExamples(), ...helpExamples().flatMap((e) => e.lines.map((line) => ({ line, where: "help" as const })))];
    const unknown = all.filter((e) => plan(e.line, e.where) === undefined).map((e) => `${e.where}: ${e.line}`);
    expect(unknown, "add a rule for these in test/examples.test.ts").toEqual([]);
    // The finders find what they should: a sanity floor, so a broken regex cannot make this test pass empty.
    expect(readmeExamples().length).toBeGreaterThan(20);
    expect(helpExamples().map((e) => e.command)).toEqual(expect.arrayContaining(["eval", "bench", "generate", "quantize", "gguf inspect", "grade"]));
  });

  for (const { command, lines } of helpExamples()) {
    it(`lab ${command} --help examples`, () => {
      for (const line of lines) {
        const p = plan(line, "help")!;
        if ("skip" in p) continue;
        check(line, p);
      }
    }, 6 * MINUTES);
  }

  // README's examples are independent of each other: one test each, so a failure names its command.
  for (const { line, where } of readmeExamples()) {
    const p = plan(line, where);
    if (!p || "skip" in p) continue;
    it(`README (${where}): ${withoutComment(line)}`, () => check(line, p), 4 * MINUTES);
  }
});

describe("README's facts are the data's", () => {
  it("the F32 engine agreement it states is the one data/results/engine-agreement.json records", () => {
    const json = JSON.parse(readFileSync(join(ROOT, "data/results/engine-agreement.json"), "utf8")) as {
      rows: { mix: string; positions: number; labF32Activations: { maxAbsLogProbDiff: number } }[];
    };
    const f32 = json.rows.find((r) => r.mix === "F32")!;
    const stated = /max \|Δ log p\| = ([\d.]+e-\d+) over (\d+) positions/.exec(README.replace(/\s+/g, " "));
    expect(stated, "README states the measured F32 agreement").not.toBeNull();
    expect(stated![1], "README's figure, at 2 significant digits").toBe(f32.labF32Activations.maxAbsLogProbDiff.toExponential(1));
    expect(Number(stated![2])).toBe(f32.positions);
  });

  it("the facts example is a person of the corpus, with the corpus's answer", () => {
    const example = /`(Q: Where does (\w+) live\? A: (\w+))`/.exec(README);
    expect(example).not.toBeNull();
    const corpus = readFileSync(join(ROOT, "data/corpus/facts.train.txt"), "utf8");
    expect(corpus).toContain(example![1]);
  });
});
