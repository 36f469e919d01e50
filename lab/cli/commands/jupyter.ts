// `lab jupyter`: register the tslab kernel with a Python that has Jupyter, then start JupyterLab
// (or the classic notebook) with node_modules/.bin on PATH so Jupyter can launch `tslab`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { parseFlags, say, type Command } from "../command.ts";
import { findJupyter, REPO_ROOT, type JupyterInstall } from "../../doctor.ts";
import { ensureNotebookTypes } from "../../notebooks/index.ts";

/** PATH with the repository's node_modules/.bin first: the tslab kernelspec runs plain `tslab`. */
export function pathWithLocalBin(env = process.env): string {
  return [join(REPO_ROOT, "node_modules", ".bin"), env.PATH ?? ""].filter(Boolean).join(delimiter);
}

/** True when this process runs as root (uid 0), as it often does in containers. */
function runningAsRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * The commands `lab jupyter` runs, in order (printed by --dry-run). `allowRoot` says that
 * --allow-root was added: Jupyter refuses to start as root without it ("Running as root is not
 * recommended"), and containers commonly run everything as root.
 */
export function jupyterPlan(j: JupyterInstall, jupyterArgs: string[], asRoot = runningAsRoot()): { install: string[]; start: string[]; allowRoot: boolean } {
  const install = [process.execPath, join(REPO_ROOT, "node_modules", "tslab", "bin", "tslab"), "install", `--python=${j.python}`];
  // Non-root users get a per-user kernelspec (~/.local/share/jupyter/kernels/tslab).
  if (!asRoot) install.push("--user");
  const allowRoot = asRoot && !jupyterArgs.includes("--allow-root");
  const start = [j.python, "-m", j.jupyterlab ? "jupyterlab" : "notebook", ...jupyterArgs, ...(allowRoot ? ["--allow-root"] : [])];
  return { install, start, allowRoot };
}

export const jupyterCommand: Command = {
  name: "jupyter",
  summary: "Register the tslab kernel and start JupyterLab (or Jupyter Notebook) on the kit",
  help: `Usage: lab jupyter [--python PATH] [--dry-run] [-- JUPYTER_ARGS…]

Finds a Python that has Jupyter (--python or $LAB_PYTHON if given; else the Python behind a
\`jupyter\` command on PATH, /usr/bin/python3, /usr/local/bin/python3, python3/python on PATH,
preferring one with JupyterLab), registers the tslab TypeScript kernel with it
(\`tslab install --python=…\`), and starts \`jupyter lab\` if JupyterLab is installed, else
\`jupyter notebook\`, in the repository root with node_modules/.bin on PATH so Jupyter finds
\`tslab\`. Arguments after -- go to Jupyter (e.g. -- --no-browser --port 8899). Run as root (uid 0,
common in containers), it passes --allow-root, without which Jupyter refuses to start, and says so.

No Jupyter? \`pip install jupyterlab\` or (Debian/Ubuntu) \`sudo apt-get install jupyter-notebook\`;
\`lab doctor\` shows what is missing.

Options:
  --python PATH   the Python whose Jupyter to use
  --dry-run       print the commands instead of running them`,
  async run(args) {
    const { values, positionals } = parseFlags("jupyter", args, {
      python: { type: "string" }, "dry-run": { type: "boolean" },
    }, { min: 0, max: Infinity });
    if (values.python && !existsSync(values.python)) throw new Error(`--python: no such file: ${values.python}`);
    const env = values.python ? { ...process.env, LAB_PYTHON: values.python } : process.env;
    const j = await findJupyter(env);
    if (!j || (values.python && j.python !== values.python)) {
      throw new Error(`no Python with Jupyter found${values.python ? ` (${values.python} lacks jupyterlab/notebook)` : ""}. ` +
        "Install it with `pip install jupyterlab` or `sudo apt-get install jupyter-notebook`; `lab doctor` lists what is missing.");
    }
    const plan = jupyterPlan(j, positionals);
    if (values["dry-run"]) {
      process.stdout.write(`PATH=${pathWithLocalBin()}\n${plan.install.join(" ")}\n(cd ${REPO_ROOT} && ${plan.start.join(" ")})\n`);
      return 0;
    }
    const types = await ensureNotebookTypes();
    if (types.regenerated) say(`generated lab type declarations for notebook cells (${types.seconds.toFixed(1)} s)`);
    say(`registering the tslab kernel with ${j.python}`);
    const installed = spawnSync(plan.install[0], plan.install.slice(1), { stdio: "inherit", env: { ...env, PATH: pathWithLocalBin(env) } });
    if (installed.status !== 0) throw new Error(`\`tslab install\` failed (exit code ${installed.status})`);
    if (plan.allowRoot) say("running as root (uid 0): passing --allow-root to Jupyter, which refuses to start as root without it");
    say(`starting ${plan.start.slice(2).join(" ")} in ${REPO_ROOT} (Ctrl-C to stop)`);
    const child = spawn(plan.start[0], plan.start.slice(1), { cwd: REPO_ROOT, stdio: "inherit", env: { ...env, PATH: pathWithLocalBin(env) } });
    // Ctrl-C reaches Jupyter directly (same terminal) and it asks for confirmation: we just wait.
    // SIGTERM/SIGHUP are sent to us alone: pass them on so Jupyter and its kernels shut down too.
    const onSigint = () => {};
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", forward);
    process.on("SIGHUP", forward);
    const code = await new Promise<number>((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 + 15 : 1))));
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", forward);
    process.off("SIGHUP", forward);
    return code;
  },
};
