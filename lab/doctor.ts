// `lab doctor`: what this machine has and what it lacks for the kit, with the fix for each gap.
// Also the Jupyter lookup `lab jupyter` uses. Every probe that could crash or hang (Python,
// node-llama-cpp's native binary) runs in a child process with a time limit, so the doctor itself
// always finishes and reports.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const MODELS_DIR = join(REPO_ROOT, "data", "models");
/** The embedded models the notebooks use (trained by `lab train`, committed under data/models/). */
export const EMBEDDED_MODELS = ["target.gguf", "draft.gguf"];
export const MIN_NODE = [20, 19] as const;

export interface Check {
  name: string;
  ok: boolean;
  /** What was found, e.g. "v20.20.2" or "/usr/bin/python3 (jupyter notebook 6.4.12)". */
  detail: string;
  /** What to do when not ok. */
  fix?: string;
  /** Not needed by the kit itself (only by one test): absent is reported, but the doctor stays ok. */
  optional?: boolean;
}

export interface DoctorReport { ok: boolean; checks: Check[] }

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, timeout: timeoutMs, env: env ?? process.env, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === "number" ? (err as any).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code !== 0 ? err.message : "") });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Node and npm packages
// ---------------------------------------------------------------------------------------------

export function checkNode(version = process.versions.node): Check {
  const [major, minor] = version.split(".").map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return { name: "Node.js", ok, detail: `v${version}`, ...(ok ? {} : { fix: `install Node.js >= ${MIN_NODE.join(".")} (https://nodejs.org), then \`npm install\`` }) };
}

export async function checkZeromq(): Promise<Check> {
  try {
    const zmq = await import("zeromq");
    return { name: "zeromq (kernel protocol)", ok: true, detail: `libzmq ${(zmq as any).version ?? "loaded"}` };
  } catch (err) {
    return { name: "zeromq (kernel protocol)", ok: false, detail: (err as Error).message.split("\n")[0], fix: "reinstall packages: `rm -rf node_modules && npm ci`" };
  }
}

// ---------------------------------------------------------------------------------------------
// Python and Jupyter
// ---------------------------------------------------------------------------------------------

export interface JupyterInstall {
  python: string;
  /** Which front ends this Python can start. */
  jupyterlab: boolean;
  notebook: boolean;
  nbconvert: boolean;
  /** Registered kernel names (from `jupyter kernelspec list`). */
  kernels: string[];
}

const PROBE = `
import json, importlib.util as u
mods = {m: u.find_spec(m) is not None for m in ["jupyter_core", "jupyterlab", "notebook", "nbconvert", "jupyter_client"]}
kernels = []
if mods["jupyter_client"]:
    from jupyter_client.kernelspec import KernelSpecManager
    kernels = sorted(KernelSpecManager().find_kernel_specs().keys())
print(json.dumps({"mods": mods, "kernels": kernels}))
`;

/** The interpreter named by a script's "#!" line (e.g. the `jupyter` launcher's Python). */
function shebangPython(script: string): string | undefined {
  try {
    const first = readFileSync(script, "utf8").slice(0, 256).split("\n")[0];
    const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (!m) return undefined;
    return m[1].endsWith("/env") ? m[2] : m[1];
  } catch {
    return undefined;
  }
}

/**
 * Pythons worth trying, in order: $LAB_PYTHON; the Python behind a `jupyter` command on PATH (a
 * pip/venv install); the system Pythons (Debian's jupyter packages live there); python3/python on PATH.
 */
export function pythonCandidates(env = process.env): string[] {
  const out: string[] = [];
  const onPath = (name: string) => (env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, name)).filter((p) => existsSync(p));
  if (env.LAB_PYTHON) out.push(env.LAB_PYTHON);
  for (const launcher of onPath("jupyter")) {
    const py = shebangPython(launcher);
    if (py?.startsWith("/")) out.push(py);
  }
  out.push("/usr/bin/python3", "/usr/local/bin/python3", ...onPath("python3"), ...onPath("python"));
  // One probe per interpreter: /bin/python3 and /usr/bin/python3 are often the same file.
  const seen = new Set<string>();
  return out.filter((p) => {
    if (!existsSync(p)) return false;
    const real = realpathSync(p);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

/**
 * The Python to run Jupyter with, or undefined. All candidates are probed (in parallel); the first
 * one with JupyterLab wins, else the first with the classic notebook. $LAB_PYTHON, when it has
 * Jupyter at all, always wins.
 */
export async function findJupyter(env = process.env): Promise<JupyterInstall | undefined> {
  const candidates = pythonCandidates(env);
  const probes = await Promise.all(candidates.map(async (python): Promise<JupyterInstall | undefined> => {
    const r = await run(python, ["-c", PROBE], 20_000);
    if (r.code !== 0) return undefined;
    try {
      const { mods, kernels } = JSON.parse(r.stdout.trim().split("\n").pop()!);
      if (!mods.jupyter_core || !(mods.jupyterlab || mods.notebook)) return undefined;
      return { python, jupyterlab: mods.jupyterlab, notebook: mods.notebook, nbconvert: mods.nbconvert, kernels };
    } catch {
      return undefined; // not our JSON: not a usable Python
    }
  }));
  const found = probes.filter((p): p is JupyterInstall => p !== undefined);
  if (env.LAB_PYTHON && found[0]?.python === env.LAB_PYTHON) return found[0];
  return found.find((j) => j.jupyterlab) ?? found[0];
}

// ---------------------------------------------------------------------------------------------
// node-llama-cpp
// ---------------------------------------------------------------------------------------------

const LLAMA_PROBE = join(REPO_ROOT, "lab", "doctor-llama-probe.mjs");

/** Loads node-llama-cpp's prebuilt CPU binary in a child process (a native crash cannot take us down). */
export async function checkNodeLlamaCpp(): Promise<Check & { buildType?: string }> {
  const name = "node-llama-cpp binary";
  const r = await run(process.execPath, [LLAMA_PROBE], 60_000);
  try {
    const info = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    const ok = info.buildType === "prebuilt" || info.buildType === "localBuild";
    return { name, ok, detail: `loads, build type "${info.buildType}", gpu ${info.gpu}`, buildType: info.buildType,
      ...(ok ? {} : { fix: "reinstall packages (`npm ci`); the kit needs node-llama-cpp's prebuilt CPU binary" }) };
  } catch {
    const why = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ") || `exit code ${r.code}`;
    return { name, ok: false, detail: `does not load: ${why}`, fix: "reinstall packages (`rm -rf node_modules && npm ci`); node-llama-cpp must find @node-llama-cpp/linux-x64 (or your platform's) prebuilt binary" };
  }
}

// ---------------------------------------------------------------------------------------------
// Embedded models
// ---------------------------------------------------------------------------------------------

export function checkModels(dir = MODELS_DIR): Check {
  const present = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort() : [];
  const missing = EMBEDDED_MODELS.filter((m) => !present.includes(m));
  const sizes = present.map((f) => `${f} ${(statSync(join(dir, f)).size / 2 ** 20).toFixed(1)} MiB`).join(", ");
  return {
    name: "embedded models (data/models/)",
    ok: missing.length === 0,
    detail: present.length ? sizes : "none",
    ...(missing.length ? { fix: `missing ${missing.join(", ")}: restore them with \`git checkout -- data/models\`, or retrain with \`npx lab train --config target\` and \`--config draft\`` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// gcc (optional: only `npm test` compiles the C oracle test/oracle/*.c against node-llama-cpp's libggml)
// ---------------------------------------------------------------------------------------------

export async function checkGcc(gcc = "gcc"): Promise<Check> {
  const name = "gcc (optional: npm test)";
  const r = await run(gcc, ["--version"], 20_000);
  const version = r.code === 0 ? r.stdout.split("\n")[0]?.trim() : undefined;
  return version
    ? { name, ok: true, optional: true, detail: version }
    : { name, ok: false, optional: true, detail: "not found (only `npm test` needs it: the quantization tests compile test/oracle/*.c against ggml)",
        fix: "`sudo apt-get install gcc` (Debian/Ubuntu)" };
}

// ---------------------------------------------------------------------------------------------
// Chromium (optional: only test/browser.test.ts and `lab notebooks screenshot` drive a browser)
// ---------------------------------------------------------------------------------------------

export interface ChromiumInstall { path: string; version: string }

/**
 * The system Chromium (or Chrome) puppeteer-core can drive, or undefined: $LAB_CHROMIUM, then
 * $PUPPETEER_EXECUTABLE_PATH, then chromium / chromium-browser / google-chrome(-stable) on PATH. Each
 * candidate must answer `--version` (Debian's `chromium` is a shell wrapper; a broken one hangs or fails).
 */
export async function findChromium(env = process.env): Promise<ChromiumInstall | undefined> {
  const onPath = (name: string) => (env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, name)).filter((p) => existsSync(p));
  const candidates = [env.LAB_CHROMIUM, env.PUPPETEER_EXECUTABLE_PATH].filter((p): p is string => !!p && existsSync(p));
  for (const name of ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) candidates.push(...onPath(name));
  for (const path of candidates) {
    const r = await run(path, ["--version"], 20_000);
    const version = /(?:Chromium|Chrome)\s+[\d.]+/.exec(r.stdout)?.[0];
    if (r.code === 0 && version) return { path, version };
  }
  return undefined;
}

export async function checkChromium(env = process.env): Promise<Check> {
  const name = "Chromium (optional: browser test)";
  const found = await findChromium(env);
  return found
    ? { name, ok: true, optional: true, detail: `${found.path} (${found.version})` }
    : { name, ok: false, optional: true, detail: "not found (only test/browser.test.ts and `lab notebooks screenshot` need it)",
        fix: "`sudo apt-get install chromium`, or set LAB_CHROMIUM to a Chromium/Chrome binary" };
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

export async function doctor(): Promise<DoctorReport> {
  const checks: Check[] = [checkNode()];
  const packages = ["tslab", "node-llama-cpp", "@observablehq/plot", "danfojs", "tsx"];
  const absent = packages.filter((p) => !existsSync(join(REPO_ROOT, "node_modules", p, "package.json")));
  checks.push({ name: "npm packages", ok: absent.length === 0, detail: absent.length ? `missing ${absent.join(", ")}` : packages.join(", "),
    ...(absent.length ? { fix: "run `npm install` in the repository" } : {}) });
  checks.push(await checkZeromq());
  // The two slow probes (Python, node-llama-cpp) run side by side.
  const [jupyter, llama] = await Promise.all([findJupyter(), checkNodeLlamaCpp()]);
  checks.push(jupyter
    ? { name: "Jupyter", ok: true, detail: `${jupyter.python} (${jupyter.jupyterlab ? "jupyterlab" : "notebook"}${jupyter.nbconvert ? ", nbconvert" : ""})` }
    : { name: "Jupyter", ok: false, detail: `no Python with jupyterlab or notebook among ${pythonCandidates().join(", ") || "(no python found)"}`,
        fix: "`pip install jupyterlab` (then set LAB_PYTHON to that python if it is not on PATH), or `sudo apt-get install jupyter-notebook`" });
  const registered = jupyter?.kernels.includes("tslab") ?? false;
  checks.push({ name: "tslab kernel registered", ok: registered,
    detail: jupyter ? (registered ? `kernel "tslab" in ${jupyter.python}'s Jupyter` : `kernels: ${jupyter.kernels.join(", ") || "none"}`) : "no Jupyter to register with",
    ...(registered ? {} : { fix: "`npx lab jupyter` registers it (or `npx tslab install --python=/usr/bin/python3`)" }) });
  checks.push(llama);
  checks.push(checkModels());
  checks.push(await checkGcc());
  checks.push(await checkChromium());
  return { ok: checks.every((c) => c.ok || c.optional), checks };
}

/** The report as aligned text lines: "ok  Node.js  v20.20.2" / "MISSING ... -> fix". */
export function formatDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => {
    const line = `${c.ok ? "ok     " : c.optional ? "absent " : "MISSING"}  ${c.name.padEnd(width)}  ${c.detail}`;
    return c.ok || !c.fix ? line : `${line}\n${" ".repeat(width + 11)}fix: ${c.fix}`;
  });
  lines.push(report.ok ? "Everything is in place." : "Some things are missing: see the fixes above.");
  return lines.join("\n");
}
