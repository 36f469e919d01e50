// The grader: runs the graded tests of each task in its own vitest process against exercises/ (the
// student's code) or solutions/ (the reference), with a wall-clock limit per task, and turns the
// results into a table. A student's exception or infinite loop costs that task, never the grader.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TASKS, type TaskSpec } from "../test/exercises/tasks.ts";

/** exercises/ or solutions/; the grader's own tests also use fixture folders named `.grade-fixture-*`. */
export type Target = "exercises" | "solutions" | `.grade-fixture-${string}`;
export type TaskStatus = "pass" | "fail" | "not started" | "timeout" | "error";

export interface TaskResult {
  id: string;
  title: string;
  points: number;
  earned: number;
  status: TaskStatus;
  passed: number;
  total: number;
  /** the first useful line of the first failure, or why the task could not run */
  message?: string;
  seconds: number;
}

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const NOT_IMPLEMENTED = /NotImplementedError|Not implemented: /;

/** The tasks named by id ("1.3") or by prefix ("1" → every task of question 1); all when empty. */
export function selectTasks(ids: string[], all: TaskSpec[] = TASKS): TaskSpec[] {
  if (ids.length === 0) return all;
  return ids.flatMap((id) => {
    const hits = all.filter((t) => t.id === id || t.id.startsWith(id + "."));
    if (hits.length === 0) throw new RangeError(`no task "${id}"; tasks are ${all.map((t) => t.id).join(", ")}`);
    return hits;
  });
}

interface VitestJson {
  testResults?: { assertionResults?: { status: string; failureMessages?: string[] }[]; message?: string }[];
}

/** The first line of a failure worth showing: the error message, not the stack. */
function firstUsefulLine(text: string): string {
  const line = text.split("\n").map((l) => l.trim()).find((l) => l && !l.startsWith("at ")) ?? text.trim();
  return line.length > 200 ? line.slice(0, 197) + "…" : line;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Runs one task's tests in a child vitest process and reads its JSON report. */
export async function gradeTask(task: TaskSpec, target: Target, timeoutMs: number): Promise<TaskResult> {
  const dir = await mkdtemp(join(tmpdir(), "lab-grade-"));
  const report = join(dir, "report.json");
  const started = performance.now();
  const base = { id: task.id, title: task.title, points: task.points, earned: 0, passed: 0, total: 0 };
  try {
    const args = [VITEST, "run", task.file, "--testNamePattern", `^task ${escapeRegExp(task.id)} `,
      "--reporter=json", `--outputFile=${report}`, "--maxWorkers=1", `--testTimeout=${timeoutMs}`];
    const child = spawn(process.execPath, args, {
      cwd: ROOT, env: { ...process.env, LAB_TARGET: target }, stdio: ["ignore", "ignore", "pipe"], detached: true,
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
    let json: VitestJson;
    try {
      json = JSON.parse(await readFile(report, "utf8")) as VitestJson;
    } catch {
      return { ...base, status: "error", seconds, message: firstUsefulLine(stderr || "vitest wrote no report") };
    }
    const assertions = (json.testResults ?? []).flatMap((f) => f.assertionResults ?? []);
    const fileError = (json.testResults ?? []).map((f) => f.message).find((m) => m);
    const ran = assertions.filter((a) => a.status === "passed" || a.status === "failed");
    const failures = ran.filter((a) => a.status === "failed").map((a) => (a.failureMessages ?? []).join("\n"));
    const passed = ran.length - failures.length;
    if (ran.length === 0) {
      const message = fileError ? firstUsefulLine(fileError) : "no tests matched this task";
      return { ...base, status: NOT_IMPLEMENTED.test(message) ? "not started" : "error", seconds, message };
    }
    const earned = Math.round((task.points * passed) / ran.length * 10) / 10;
    const common = { ...base, passed, total: ran.length, earned, seconds };
    if (failures.length === 0) return { ...common, status: "pass" };
    // Nothing passes and the stub still throws somewhere: not started. (Tests that expect a
    // RangeError fail on a stub with "expected … RangeError", which must not read as a real failure.)
    const stub = failures.find((f) => NOT_IMPLEMENTED.test(f));
    if (passed === 0 && stub) {
      return { ...common, status: "not started", message: firstUsefulLine(stub.match(/Not implemented: .*/)?.[0] ?? stub) };
    }
    const shown = failures.find((f) => !NOT_IMPLEMENTED.test(f)) ?? failures[0]!;
    return { ...common, status: "fail", message: firstUsefulLine(shown) };
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

export function formatTable(results: TaskResult[]): string {
  const rows = results.map((r) => [r.id, r.title, `${r.earned}/${r.points}`, r.status, r.message ?? ""]);
  const head = ["task", "title", "points", "result", "first message"];
  const widths = head.map((h, c) => Math.min(c === 4 ? 80 : 60, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
  const line = (cells: string[]) => cells.map((s, c) => (s.length > widths[c]! ? s.slice(0, widths[c]! - 1) + "…" : s.padEnd(widths[c]!))).join("  ").trimEnd();
  const earned = results.reduce((s, r) => s + r.earned, 0);
  const total = results.reduce((s, r) => s + r.points, 0);
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line), "", `total: ${Math.round(earned * 10) / 10}/${total}`].join("\n");
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
