// The grader: runs the graded tests of each task in its own vitest process against exercises/ (the
// student's code) or solutions/ (the reference), with a wall-clock limit per task, and turns the
// results into a table plus, for every task that did not pass, what a student needs to fix it: the
// failing test's name, the message, expected and received in full, and the place in their file.
// A student's exception or infinite loop costs that task, never the grader. Before running a task it
// reads the task's file's imports and refuses one that imports the kit's own implementation of it.
//
// This file is also the vitest reporter of those child processes (the default export below): the
// built-in JSON reporter keeps only stack strings, not expected/received, so the grader writes its own.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { isBuiltin } from "node:module";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Reporter, TestModule } from "vitest/node";
import { TASKS, type TaskSpec } from "../test/exercises/tasks.ts";

/** exercises/ or solutions/; the grader's own tests also use fixture folders named `.grade-fixture-*`. */
export type Target = "exercises" | "solutions" | `.grade-fixture-${string}`;
export type TaskStatus = "pass" | "fail" | "not started" | "timeout" | "error" | "refused";

/** The first failing test of a task, in full (nothing is cut off, in the table's details or in --json). */
export interface Failure {
  /** the test's full name: "task 1.1 — Q8_0 quantize/dequantize > is bit-exact with ggml on random rows" */
  test: string;
  /** the error: its class and whole message, e.g. "AssertionError: Q8_0 row of 256: expected '…' to be 'none'" */
  message: string;
  /** what the test expected and what your code gave, as vitest prints them (assertions only) */
  expected?: string;
  received?: string;
  /** where in the graded tree it happened, relative to the repository: "exercises/quantization/blocks.ts:31:7" */
  location?: string;
  /** that line of your code, trimmed */
  code?: string;
  /** the check that failed, in the test file: "test/exercises/quantization.test.ts:42:7" (read it: it says what is tested) */
  checkedAt?: string;
}

export interface TaskResult {
  id: string;
  title: string;
  points: number;
  earned: number;
  status: TaskStatus;
  passed: number;
  total: number;
  /** one line: the error message of the first failure, or why the task could not run (not cut off) */
  message?: string;
  /** the first failure in full, when a test failed or the tests could not load */
  failure?: Failure;
  /** names of all failing tests of the task (without the "task N.M — …" prefix) */
  failing?: string[];
  seconds: number;
}

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const SELF = fileURLToPath(import.meta.url);
const NOT_IMPLEMENTED = /NotImplementedError|Not implemented: /;
/** Paths no exercise may import: the reference solutions and the tests (with their recorded answers). */
const ALWAYS_FORBIDDEN = ["solutions/", "test/", "lab/notebook.ts", "lab/notebook.cjs"];

/** The tasks named by id ("1.3") or by prefix ("1" → every task of question 1); all when empty. */
export function selectTasks(ids: string[], all: TaskSpec[] = TASKS): TaskSpec[] {
  if (ids.length === 0) return all;
  return ids.flatMap((id) => {
    const hits = all.filter((t) => t.id === id || t.id.startsWith(id + "."));
    if (hits.length === 0) throw new RangeError(`no task "${id}"; tasks are ${all.map((t) => t.id).join(", ")}`);
    return hits;
  });
}

// ---- the child's report (written by GradeReporter, read by gradeTask) --------------------------

interface ReportedError { name?: string; message: string; stack?: string; expected?: string; actual?: string }
interface ReportedTest { name: string; state: string; errors: ReportedError[] }
/** What one graded vitest run writes to $LAB_GRADE_REPORT. */
interface GradeReport {
  tests: ReportedTest[];
  /** errors that stopped a test file from loading: syntax errors, a throw at import time */
  moduleErrors: ReportedError[];
  unhandled: ReportedError[];
}

const reported = (e: { name?: unknown; message?: unknown; stack?: unknown; expected?: unknown; actual?: unknown }): ReportedError => ({
  name: typeof e.name === "string" ? e.name : undefined,
  message: String(e.message ?? ""),
  stack: typeof e.stack === "string" ? e.stack : undefined,
  expected: typeof e.expected === "string" ? e.expected : undefined,
  actual: typeof e.actual === "string" ? e.actual : undefined,
});

/** vitest reporter for graded runs: writes every test's state and errors, with expected/actual. */
export default class GradeReporter implements Reporter {
  async onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<{ message: string }>): Promise<void> {
    const out = process.env.LAB_GRADE_REPORT;
    if (!out) throw new Error("GradeReporter needs LAB_GRADE_REPORT (the report's path); it is meant for lab/grade.ts");
    const report: GradeReport = { tests: [], moduleErrors: [], unhandled: unhandled.map(reported) };
    for (const m of modules) {
      report.moduleErrors.push(...m.errors().map(reported));
      for (const t of m.children.allTests()) {
        const r = t.result();
        report.tests.push({ name: t.fullName, state: r.state, errors: (r.errors ?? []).map(reported) });
      }
    }
    await writeFile(out, JSON.stringify(report));
  }
}

// ---- turning errors into something a student can act on ----------------------------------------

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The first `DIR/…:line:col` in a stack or message: absolute (under the repository) or relative, but
 * DIR must start a path ("exercises/" inside "test/exercises/" is not the exercises tree).
 */
function findPosition(text: string, dir: string): RegExpExecArray | null {
  return new RegExp(`(?:${escapeRegExp(ROOT)}/|(?<![\\w./-]))(${escapeRegExp(dir)}/[^\\s:()\\[\\]]+):(\\d+):(\\d+)`).exec(text);
}

/** Where in the graded tree an error happened, and that line of code. */
export function locate(text: string, target: Target): { location?: string; code?: string } {
  const m = findPosition(text, target);
  if (!m) return {};
  const [, file, line, col] = m;
  let code: string | undefined;
  try {
    code = readFileSync(join(ROOT, file!), "utf8").split("\n")[Number(line) - 1]?.trim() || undefined;
  } catch { /* a file that vanished: the location alone still helps */ }
  return { location: `${file}:${line}:${col}`, code };
}

/**
 * The message of an error, whole: its class and every line of the message (no stack frames). A
 * transform (syntax) error becomes "SyntaxError: <what the parser said>", without the code frame.
 */
function describeError(e: ReportedError): string {
  const text = stripAnsi(e.message).trim();
  if (/^Transform failed/.test(text)) {
    const said = text.split("\n").map((l) => l.trim()).find((l) => /\[[A-Z_]+\]|ERROR:|error:/.test(l) && !/^Transform failed/.test(l));
    return `SyntaxError: ${(said ?? text).replace(/^\[[A-Z_]+\]\s*/, "").replace(/^.*?ERROR:\s*/, "")}`;
  }
  const name = e.name && e.name !== "Error" && !text.startsWith(e.name) ? `${e.name}: ` : "";
  return name + text;
}

function failureOf(test: string, e: ReportedError, target: Target): Failure {
  const text = `${e.stack ?? ""}\n${stripAnsi(e.message)}`;
  const where = locate(text, target);
  const check = findPosition(e.stack ?? "", "test/exercises");
  return {
    test, message: describeError(e),
    ...(e.expected !== undefined ? { expected: e.expected } : {}),
    ...(e.actual !== undefined ? { received: e.actual } : {}),
    ...where,
    ...(check ? { checkedAt: `${check[1]}:${check[2]}:${check[3]}` } : {}),
  };
}

const firstLine = (s: string) => s.split("\n").find((l) => l.trim())?.trim() ?? s.trim();

// ---- the import check --------------------------------------------------------------------------

interface ImportSite { specifier: string | undefined; line: number; col: number }

/** Every import/export-from/require/import() of a TypeScript file (specifier undefined: not a literal). */
async function importsOf(file: string): Promise<ImportSite[]> {
  const ts = (await import("typescript")).default;
  const text = await readFile(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const sites: ImportSite[] = [];
  const add = (node: import("typescript").Node, spec: import("typescript").Node | undefined) => {
    const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    sites.push({ specifier: spec && ts.isStringLiteralLike(spec) ? spec.text : undefined, line: line + 1, col: character + 1 });
  };
  const visit = (node: import("typescript").Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(callee) && (callee.text === "require" || callee.text === "createRequire");
      if (isImport || isRequire) add(node, callee.getText(sf) === "createRequire" ? undefined : node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return sites;
}

/** A relative specifier as an absolute path (adding .ts / index.ts the way a bundler would). */
function resolveLocal(fromFile: string, specifier: string): string {
  const abs = resolve(dirname(fromFile), specifier);
  const isFile = (p: string) => { try { return statSync(p).isFile(); } catch { return false; } };
  return [abs, `${abs}.ts`, join(abs, "index.ts")].find(isFile) ?? abs;
}

const blocked = (path: string, rules: string[]) => rules.some((r) => (r.endsWith("/") ? path.startsWith(r) : path === r || path.startsWith(r + "/")));

/**
 * Why the task's code may not be graded, or undefined when its imports are fine. Reads the task's
 * file and its set's index.ts (what the tests import) and follows their imports within the graded
 * tree, so a helper file or a re-export that reaches lab/quant counts too. A check of the source,
 * not a sandbox: it keeps a student from grading the kit's code instead of their own.
 */
export async function checkImports(task: TaskSpec, target: Target): Promise<string | undefined> {
  const treeDir = join(ROOT, target);
  const rules = [...ALWAYS_FORBIDDEN, ...task.forbidden];
  const seen = new Set<string>();
  const queue = [join(treeDir, task.source), join(treeDir, dirname(task.source), "index.ts")];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    const shown = relative(ROOT, file);
    for (const site of await importsOf(file)) {
      const at = `${shown}:${site.line}:${site.col}`;
      if (site.specifier === undefined) {
        return `${at} loads a module the grader cannot check (a name computed at run time, or createRequire); use import with a literal path, so that the grader can check it`;
      }
      let path: string;
      if (site.specifier.startsWith(".")) {
        const abs = resolveLocal(file, site.specifier);
        path = relative(ROOT, abs);
        if (abs.startsWith(treeDir + "/") && path.endsWith(".ts")) { queue.push(abs); continue; }
      } else path = site.specifier;
      if (isBuiltin(path) || (task.allowed ?? []).includes(path) || !blocked(path, rules)) continue;
      const why = path.startsWith("solutions/") ? "the reference solution"
        : path.startsWith("test/") ? "the graded tests"
        : path.startsWith("lab/notebook") ? "the whole kit, including its implementation of this task"
        : `the kit's own implementation of what task ${task.id} asks you to write`;
      const allowed = task.allowed?.length ? ` (allowed: ${task.allowed.join(", ")})` : "";
      return `${at} imports "${site.specifier}" (${path}), ${why}: grading it would grade the kit, not your code. ` +
        `Task ${task.id} may not import ${rules.join(", ")}${allowed}`;
    }
  }
  return undefined;
}

// ---- grading one task --------------------------------------------------------------------------

/** Runs one task's tests in a child vitest process and reads its report. */
export async function gradeTask(task: TaskSpec, target: Target, timeoutMs: number): Promise<TaskResult> {
  const started = performance.now();
  const base = { id: task.id, title: task.title, points: task.points, earned: 0, passed: 0, total: 0 };
  const refusal = await checkImports(task, target);
  if (refusal) return { ...base, status: "refused", seconds: (performance.now() - started) / 1000, message: refusal };
  const dir = await mkdtemp(join(tmpdir(), "lab-grade-"));
  const report = join(dir, "report.json");
  try {
    const args = [VITEST, "run", task.file, "--testNamePattern", `^task ${escapeRegExp(task.id)} `,
      `--reporter=${SELF}`, "--maxWorkers=1", `--testTimeout=${timeoutMs}`];
    const child = spawn(process.execPath, args, {
      cwd: ROOT, env: { ...process.env, LAB_TARGET: target, LAB_GRADE_REPORT: report, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "ignore", "pipe"], detached: true,
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ }
    }, timeoutMs);
    await new Promise<void>((done) => child.on("close", () => done()));
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    if (timedOut) return { ...base, status: "timeout", seconds, message: `no result within ${timeoutMs / 1000} s (an infinite loop?)` };
    let json: GradeReport;
    try {
      json = JSON.parse(await readFile(report, "utf8")) as GradeReport;
    } catch {
      return { ...base, status: "error", seconds, message: firstLine(stripAnsi(stderr) || "vitest wrote no report") };
    }
    const ran = json.tests.filter((t) => t.state === "passed" || t.state === "failed");
    const failed = ran.filter((t) => t.state === "failed");
    const passed = ran.length - failed.length;
    if (ran.length === 0) {
      const e = json.moduleErrors[0] ?? json.unhandled[0];
      if (!e) return { ...base, status: "error", seconds, message: "no tests matched this task" };
      const failure = failureOf(`loading ${task.file}`, e, target);
      if (NOT_IMPLEMENTED.test(e.message)) return { ...base, status: "not started", seconds, message: firstLine(failure.message) };
      return { ...base, status: "error", seconds, message: firstLine(failure.message), failure };
    }
    const earned = Math.round((task.points * passed) / ran.length * 10) / 10;
    const common = { ...base, passed, total: ran.length, earned, seconds };
    if (failed.length === 0) return { ...common, status: "pass" };
    const shortName = (t: ReportedTest) => t.name.replace(/^task [\d.]+ — .*? > /, "");
    const failing = failed.map(shortName);
    const stubbed = (t: ReportedTest) => t.errors.some((e) => NOT_IMPLEMENTED.test(e.message));
    // Nothing passes and the stub still throws somewhere: not started. (Tests that expect a
    // RangeError fail on a stub with "expected … RangeError", which must not read as a real failure.)
    const stub = failed.find(stubbed);
    if (passed === 0 && stub) {
      return { ...common, status: "not started", message: firstLine(stub.errors[0]!.message.match(/Not implemented: .*/)?.[0] ?? stub.errors[0]!.message) };
    }
    const shown = failed.find((t) => !stubbed(t)) ?? failed[0]!;
    const failure = failureOf(shown.name, shown.errors[0] ?? { message: "failed without an error" }, target);
    return { ...common, status: "fail", message: firstLine(failure.message), failure, failing };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Grades tasks two at a time (this machine has two cores), in table order. */
export async function gradeTasks(tasks: TaskSpec[], target: Target, timeoutMs: number,
  onResult?: (r: TaskResult) => void): Promise<TaskResult[]> {
  const results: TaskResult[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await gradeTask(tasks[i]!, target, timeoutMs);
      onResult?.(results[i]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

/** The summary table (its message column cut to fit), then every non-passing task in full, then the total. */
export function formatTable(results: TaskResult[]): string {
  const rows = results.map((r) => [r.id, r.title, `${r.earned}/${r.points}`, r.status, r.message ?? ""]);
  const head = ["task", "title", "points", "result", "first message (in full below)"];
  const widths = head.map((h, c) => Math.min(c === 4 ? 80 : 60, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
  const line = (cells: string[]) => cells.map((s, c) => (s.length > widths[c]! ? s.slice(0, widths[c]! - 1) + "…" : s.padEnd(widths[c]!))).join("  ").trimEnd();
  const earned = results.reduce((s, r) => s + r.earned, 0);
  const total = results.reduce((s, r) => s + r.points, 0);
  const details = results.map(formatDetails).filter((d) => d);
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line), "", ...details.flatMap((d) => [d, ""]),
    `total: ${Math.round(earned * 10) / 10}/${total}`].join("\n");
}

const indent = (text: string, prefix = "  ") => text.split("\n").map((l) => prefix + l).join("\n");

/** What a student reads to fix one task: nothing for pass / not started; everything, uncut, otherwise. */
export function formatDetails(r: TaskResult): string {
  if (r.status === "pass" || r.status === "not started") return "";
  const task = TASKS.find((t) => t.id === r.id);
  const lines = [`task ${r.id} — ${r.status}${r.total ? `: ${r.passed}/${r.total} tests pass` : ""}`];
  const f = r.failure;
  if (!f) lines.push(indent(r.message ?? ""));
  else {
    if (r.status === "fail") lines.push(`  failing test: ${f.test.replace(/^task [\d.]+ — .*? > /, "")}`);
    else lines.push("  the tests could not load your code:");
    lines.push(indent(f.message));
    if (f.expected !== undefined) lines.push(`  expected: ${f.expected.split("\n").join("\n            ")}`);
    if (f.received !== undefined) lines.push(`  received: ${f.received.split("\n").join("\n            ")}`);
    if (f.location) lines.push(`  at ${f.location}${f.code ? `\n      ${f.code}` : ""}`);
    if (f.checkedAt) lines.push(`  checked at ${f.checkedAt}`);
  }
  const others = (r.failing ?? []).filter((name) => !f || !f.test.endsWith(name));
  if (others.length) lines.push(`  also failing: ${others.join("; ")}`);
  if (task && r.status !== "refused") {
    const hints = join(dirname(task.source), "HINTS.md");
    try {
      if (readFileSync(join(ROOT, "exercises", hints), "utf8").includes(`## Task ${r.id}`)) lines.push(`  hints: exercises/${hints}, task ${r.id}`);
    } catch { /* a set without hints */ }
  }
  return lines.join("\n");
}

// ---- kit consistency (npm run check:kit) -------------------------------------------------------

/** Exported value names (with their typeof) and exported type names of every module of a tree. */
async function exportsOf(tree: Target): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const treeDir = join(ROOT, tree);
  for (const set of (await readdir(treeDir, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    for (const file of (await readdir(join(treeDir, set.name))).filter((f) => f.endsWith(".ts")).sort()) {
      const path = join(treeDir, set.name, file);
      const mod = (await import(path)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) out.set(`${set.name}/${file}: ${name}`, typeof value);
      const source = await readFile(path, "utf8");
      for (const m of source.matchAll(/^export\s+(?:interface|type)\s+(\w+)/gm)) out.set(`${set.name}/${file}: type ${m[1]}`, "type");
    }
  }
  return out;
}

export interface KitProblem { kind: "solution fails" | "exercise solved" | "exports differ"; detail: string }

/**
 * The kit is consistent when every solution passes, every exercise is still unsolved (fails with
 * NotImplementedError), and exercises/ and solutions/ export the same names with the same kinds.
 * (The types themselves are compared by the typecheck: test/exercises/kit-types.ts.)
 */
export async function checkKit(timeoutMs: number, onResult?: (target: Target, r: TaskResult) => void): Promise<KitProblem[]> {
  const problems: KitProblem[] = [];
  for (const r of await gradeTasks(TASKS, "solutions", timeoutMs, (r) => onResult?.("solutions", r))) {
    if (r.status !== "pass") problems.push({ kind: "solution fails", detail: `task ${r.id}: ${r.status}${r.message ? ` — ${r.message}` : ""}` });
  }
  for (const r of await gradeTasks(TASKS, "exercises", timeoutMs, (r) => onResult?.("exercises", r))) {
    if (r.status !== "not started") problems.push({ kind: "exercise solved", detail: `task ${r.id}: ${r.status} (an exercise stub must throw NotImplementedError)` });
  }
  const [ex, sol] = await Promise.all([exportsOf("exercises"), exportsOf("solutions")]);
  for (const [name, kind] of sol) {
    if (!ex.has(name)) problems.push({ kind: "exports differ", detail: `${name} is in solutions/ but not in exercises/` });
    else if (ex.get(name) !== kind) problems.push({ kind: "exports differ", detail: `${name} is a ${kind} in solutions/ but a ${ex.get(name)} in exercises/` });
  }
  for (const name of ex.keys()) if (!sol.has(name)) problems.push({ kind: "exports differ", detail: `${name} is in exercises/ but not in solutions/` });
  return problems;
}
