// `lab doctor`: what is present and what is missing for the kit on this machine, with fixes.
import { parseFlags, printJson, type Command } from "../command.ts";
import { doctor, formatDoctor } from "../../doctor.ts";

export const doctorCommand: Command = {
  name: "doctor",
  summary: "Check Node, Jupyter, the tslab kernel, node-llama-cpp and the models; say how to fix gaps",
  help: `Usage: lab doctor [--json]

Checks, each with the fix when it fails:
  Node.js >= 20.19, the npm packages, zeromq (used to talk to kernels), a Python with Jupyter
  (jupyterlab or notebook; $LAB_PYTHON, else the best of jupyter's Python, /usr/bin/python3, PATH), the tslab kernel registered
  with that Jupyter, node-llama-cpp's prebuilt CPU binary loading (and its build type), and the
  embedded models data/models/target.gguf and draft.gguf. Optional (shown as "absent", not a failure):
  gcc, which only \`npm test\` needs (it compiles the C oracle test/oracle/*.c against ggml), and
  Chromium, which only the browser test and \`lab notebooks screenshot\` need.

Exit code 0 when everything required is present, 1 otherwise.

Options:
  --json   print { ok, checks: [{ name, ok, optional?, detail, fix? }] }`,
  async run(args) {
    const { values } = parseFlags("doctor", args, { json: { type: "boolean" } });
    const report = await doctor();
    if (values.json) printJson(report);
    else process.stdout.write(formatDoctor(report) + "\n");
    return report.ok ? 0 : 1;
  },
};
