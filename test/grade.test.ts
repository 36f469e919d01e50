// The grader itself: a student's exception costs only that task, an infinite loop is stopped by the
// per-task timeout, and the table reads "not started" for untouched stubs.
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatTable, gradeTasks, selectTasks } from "../lab/grade.ts";
import { TASKS } from "./exercises/tasks.ts";

const FIXTURE = `.grade-fixture-${process.pid}` as const;

beforeAll(async () => {
  // A "student" who solved 1.1, 1.2 and 1.4 (copied from the solutions), crashes in 1.3, loops
  // forever in 1.5.
  await mkdir(FIXTURE, { recursive: true });
  await cp("solutions/quantization", `${FIXTURE}/quantization`, { recursive: true });
  const memory = `${FIXTURE}/quantization/memory.ts`;
  const source = await readFile(memory, "utf8");
  await writeFile(memory, source.replace("export function planMemory(c: ServingConfig): MemoryPlan {",
    "export function planMemory(c: ServingConfig): MemoryPlan {\n  if (c) throw new TypeError(\"student bug: oops\");"));
  const quiz = `${FIXTURE}/quantization/quiz.ts`;
  await writeFile(quiz, (await readFile(quiz, "utf8")).replace("export function quizAnswers(): QuizAnswers {",
    "export function quizAnswers(): QuizAnswers {\n  for (;;) { /* never returns */ }"));
});

afterAll(async () => {
  await rm(FIXTURE, { recursive: true, force: true });
});

describe("grader", () => {
  it("scores each task on its own: pass, fail with the student's message, timeout", async () => {
    const results = await gradeTasks(TASKS, FIXTURE, 8_000);
    const byId = Object.fromEntries(results.map((r) => [r.id, r]));
    expect(byId["1.1"]).toMatchObject({ status: "pass", earned: 20 });
    expect(byId["1.2"]).toMatchObject({ status: "pass", earned: 20 });
    expect(byId["1.4"]).toMatchObject({ status: "pass", earned: 25 });
    expect(byId["1.3"]!.status).toBe("fail");
    expect(byId["1.3"]!.message).toMatch(/student bug: oops/);
    expect(byId["1.3"]!.earned).toBeLessThan(20);
    expect(byId["1.5"]).toMatchObject({ status: "timeout", earned: 0 });
    expect(byId["1.5"]!.seconds).toBeLessThan(30);
    const table = formatTable(results);
    expect(table).toMatch(/1\.5\s+Quiz.*0\/15\s+timeout/);
    expect(table).toMatch(/total: \d/);
  }, 120_000);

  it("selects tasks by id or by question and rejects unknown ones", () => {
    expect(selectTasks(["1.3"]).map((t) => t.id)).toEqual(["1.3"]);
    expect(selectTasks(["1"]).length).toBe(TASKS.filter((t) => t.id.startsWith("1.")).length);
    expect(() => selectTasks(["7.7"])).toThrow(/no task "7.7"/);
  });
});
