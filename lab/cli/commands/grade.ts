import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";
import { UsageError } from "../../errors.ts";
import { checkKit, formatTable, gradeTasks, selectTasks, type Target } from "../../grade.ts";

export const grade: Command = {
  name: "grade",
  summary: "Grade the exercises (or the solutions) task by task",
  help: `Usage: lab grade [TASK…] [--target exercises|solutions] [--timeout SECONDS] [--json]
       lab grade --check-kit

Runs the graded tests of each task (e.g. 1.3, or 1 for all of question 1) in its own process
against exercises/ (your code; default, or LAB_TARGET) or solutions/ (the reference), and prints
task, points, result and the first message, then for every task that did not pass: the failing
test's name, the whole message, expected and received, and the file:line:column in your code
(for a syntax error too). "not started" means the stub still throws NotImplementedError;
"refused" means the task's code imports the kit's own implementation of it (e.g. lab/quant for
1.1/1.2) or the solutions. A task that runs longer than --timeout (default 60 s) is stopped and
scored 0. Exit code 0 only when every selected task passes.

--json       stdout is exactly one JSON document { target, results: [{ id, status, earned, points,
             message, failure?: { test, message, expected?, received?, location?, code?, checkedAt? },
             failing? }], earned, points }; progress goes to stderr. Through npm, silence npm's
             banner: \`npm run -s grade -- --json\` (or \`npx lab grade --json\`).
--check-kit  (npm run check:kit) every solution passes, every exercise is still "not started",
             and exercises/ and solutions/ export the same names.

Examples:
  lab grade 1.3
  lab grade 1.5 --json

Hints: exercises/<set>/HINTS.md.`,
  async run(args) {
    const { values, positionals } = parseFlags("grade", args, {
      target: { type: "string" }, timeout: { type: "string" }, json: { type: "boolean" }, "check-kit": { type: "boolean" },
    }, { min: 0 });
    const timeoutMs = numberFlag("grade", "timeout", values.timeout, 60, { min: 1, max: 3600 }) * 1000;
    if (values["check-kit"]) {
      if (positionals.length || values.target) throw new UsageError("lab grade: --check-kit takes no tasks and no --target");
      const problems = await checkKit(timeoutMs, (target, r) => say(`  ${target.padEnd(9)} task ${r.id}: ${r.status}`));
      if (values.json) printJson({ ok: problems.length === 0, problems });
      for (const p of problems) say(`✗ ${p.kind}: ${p.detail}`);
      say(problems.length === 0 ? "kit is consistent: solutions pass, exercises are unsolved, exports match" : `${problems.length} problem(s)`);
      return problems.length === 0 ? 0 : 1;
    }
    const target = (values.target ?? process.env.LAB_TARGET ?? "exercises") as Target;
    if (target !== "exercises" && target !== "solutions") throw new UsageError(`lab grade: --target must be exercises or solutions, got "${target}"`);
    let tasks;
    try {
      tasks = selectTasks(positionals);
    } catch (err) {
      throw new UsageError(`lab grade: ${(err as Error).message}`);
    }
    say(`grading ${tasks.length} task(s) against ${target}/ …`);
    const results = await gradeTasks(tasks, target, timeoutMs, (r) => say(`  task ${r.id}: ${r.status} (${r.seconds.toFixed(1)} s)`));
    const earned = Math.round(results.reduce((s, r) => s + r.earned, 0) * 10) / 10;
    if (values.json) printJson({ target, results, earned, points: results.reduce((s, r) => s + r.points, 0) });
    else process.stdout.write(formatTable(results) + "\n");
    return results.every((r) => r.status === "pass") ? 0 : 1;
  },
};
