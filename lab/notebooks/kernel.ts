// A Jupyter kernel client in one file: start the real tslab kernel as a child process, speak the
// Jupyter messaging protocol (v5.3) to it over ZeroMQ, run code, collect outputs, shut it down.
// No Python involved. Reading order: wire format -> starting -> executing -> stopping.
//
// Wire format (https://jupyter-client.readthedocs.io/en/latest/messaging.html#the-wire-protocol):
//   [routing ids…, "<IDS|MSG>", hmac-sha256 hex, header, parent_header, metadata, content]
// each of the last four a JSON frame; the HMAC covers exactly those four frames.
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as Zmq from "zeromq";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The kernel could not be started, died, or broke the protocol. */
export class KernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelError";
  }
}

/** A cell ran longer than its budget; the kernel process has been killed. */
export class CellTimeoutError extends Error {
  constructor(readonly seconds: number) {
    super(`cell timed out after ${seconds} s; the kernel was killed`);
    this.name = "CellTimeoutError";
  }
}

// ---------------------------------------------------------------------------------------------
// Messages and outputs
// ---------------------------------------------------------------------------------------------

export interface JupyterHeader {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export interface JupyterMessage {
  header: JupyterHeader;
  parent_header: Partial<JupyterHeader>;
  metadata: Record<string, unknown>;
  content: Record<string, any>;
}

/** nbformat v4 output objects, exactly as stored in an .ipynb. */
export type CellOutput =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | { output_type: "display_data"; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: "execute_result"; execution_count: number | null; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

export interface ExecuteResult {
  status: "ok" | "error" | "abort";
  executionCount: number | null;
  outputs: CellOutput[];
}

const DELIMITER = Buffer.from("<IDS|MSG>");
const PROTOCOL_VERSION = "5.3";

function sign(key: string, frames: Buffer[]): string {
  const mac = createHmac("sha256", key);
  for (const f of frames) mac.update(f);
  return mac.digest("hex");
}

function encode(key: string, msg: JupyterMessage): Buffer[] {
  const body = [msg.header, msg.parent_header, msg.metadata, msg.content].map((part) => Buffer.from(JSON.stringify(part)));
  return [DELIMITER, Buffer.from(sign(key, body)), ...body];
}

function decode(key: string, frames: Buffer[]): JupyterMessage {
  const at = frames.findIndex((f) => f.equals(DELIMITER));
  if (at < 0 || frames.length < at + 6) throw new KernelError("malformed message from kernel (no <IDS|MSG> delimiter)");
  const signature = frames[at + 1].toString();
  const body = frames.slice(at + 2, at + 6);
  if (signature !== sign(key, body)) throw new KernelError("message from kernel has a bad HMAC signature");
  const [header, parent_header, metadata, content] = body.map((b) => JSON.parse(b.toString()));
  return { header, parent_header, metadata, content };
}

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

export interface KernelOptions {
  /** Working directory of the kernel: relative imports in cells resolve from here. */
  cwd: string;
  /** Extra environment variables for the kernel process. */
  env?: Record<string, string>;
  /** How long to wait for the kernel to answer kernel_info_request. */
  startupTimeoutMs?: number;
}

const requireHere = createRequire(import.meta.url);

/** The tslab entry script, resolved from this package so the kernel matches the installed tslab. */
export function tslabBinPath(): string {
  return join(requireHere.resolve("tslab/package.json"), "..", "bin", "tslab");
}

async function loadZmq(): Promise<typeof Zmq> {
  // zeromq is tslab's own dependency: we talk to the kernel with the same library it listens with.
  return (await import("zeromq")) as typeof Zmq;
}

// Kernels must not outlive us: a Ctrl-C or a crash of `lab notebooks run` would otherwise leave a
// tslab process behind (tslab itself treats SIGINT as "interrupt the cell", not "exit").
const liveKernels = new Map<ChildProcess, string>(); // process -> its connection-file folder
let exitHooksInstalled = false;

function killLiveKernels(): void {
  for (const [child, dir] of liveKernels) {
    try {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // already gone
    }
  }
  liveKernels.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", killLiveKernels);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killLiveKernels();
      // Then behave as if we had not listened: the default action for the signal.
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    // Only take over if nobody else handles the signal (vitest, Jupyter's own tooling do).
    if (process.listenerCount(signal) === 0) process.on(signal, onSignal);
  }
}

export class TslabKernel {
  private readonly session = randomUUID();
  private readonly pending = new Map<string, (msg: JupyterMessage) => void>();
  private readonly iopubListeners = new Map<string, (msg: JupyterMessage) => void>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private stderrTail = "";
  private closed = false;

  private constructor(
    readonly process: ChildProcess,
    private readonly key: string,
    private readonly shell: Zmq.Dealer,
    private readonly control: Zmq.Dealer,
    private readonly iopub: Zmq.Subscriber,
    private readonly dir: string,
    /** The kernel_info_reply content: language_info etc. */
    public info: Record<string, any> = {},
  ) {
    this.exited = new Promise((resolve) => {
      process.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    process.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    process.stdout?.on("data", () => {}); // drain; cell output travels over iopub, not stdout
    void this.pump(shell, (m) => this.pending.get(m.parent_header.msg_id ?? "")?.(m));
    void this.pump(control, (m) => this.pending.get(m.parent_header.msg_id ?? "")?.(m));
    void this.pump(iopub, (m) => this.iopubListeners.get(m.parent_header.msg_id ?? "")?.(m));
  }

  /** Starts `tslab kernel` on private IPC sockets and waits until shell and iopub both answer. */
  static async start(opts: KernelOptions): Promise<TslabKernel> {
    const zmq = await loadZmq();
    const dir = await mkdtemp(join(tmpdir(), "labk-"));
    const key = randomBytes(32).toString("hex");
    // IPC endpoints need no free TCP ports (no races between parallel runs). tslab binds
    // `${transport}://${ip}:${port}`, so the socket files are `<dir>/k:<port>`.
    const conn = {
      transport: "ipc", ip: join(dir, "k"), key, signature_scheme: "hmac-sha256",
      shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5,
      kernel_name: "tslab",
    };
    const connPath = join(dir, "connection.json");
    await writeFile(connPath, JSON.stringify(conn));
    installExitHooks();
    const child = spawn(process.execPath, [tslabBinPath(), "kernel", "--config-path", connPath], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    liveKernels.set(child, dir);
    child.once("exit", () => liveKernels.delete(child));
    const endpoint = (port: number) => `ipc://${conn.ip}:${port}`;
    const shell = new zmq.Dealer({ linger: 0 });
    const control = new zmq.Dealer({ linger: 0 });
    const iopub = new zmq.Subscriber({ linger: 0 });
    shell.connect(endpoint(conn.shell_port));
    control.connect(endpoint(conn.control_port));
    iopub.connect(endpoint(conn.iopub_port));
    iopub.subscribe();
    const kernel = new TslabKernel(child, key, shell, control, iopub, dir);
    try {
      await kernel.waitReady(opts.startupTimeoutMs ?? 120_000);
    } catch (err) {
      await kernel.kill();
      throw err;
    }
    return kernel;
  }

  /** Receives until the socket closes, dispatching each decoded message. */
  private async pump(socket: Zmq.Dealer | Zmq.Subscriber, deliver: (msg: JupyterMessage) => void): Promise<void> {
    try {
      for await (const frames of socket) {
        try {
          deliver(decode(this.key, frames as Buffer[]));
        } catch {
          // A message we cannot verify is dropped, exactly as a Jupyter client would.
        }
      }
    } catch {
      // Socket closed while receiving: normal during shutdown.
    }
  }

  private message(msg_type: string, content: Record<string, unknown>): JupyterMessage {
    return {
      header: { msg_id: randomUUID(), msg_type, session: this.session, username: "lab", date: new Date().toISOString(), version: PROTOCOL_VERSION },
      parent_header: {}, metadata: {}, content,
    };
  }

  private async send(socket: Zmq.Dealer, msg: JupyterMessage): Promise<void> {
    await socket.send(encode(this.key, msg));
  }

  /**
   * Subscribers join late ("slow joiner"): iopub messages published before the connection completes
   * are lost. So we repeat kernel_info_request until both its reply and its iopub status arrive.
   */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitInfo) throw this.deathError("while starting");
      const req = this.message("kernel_info_request", {});
      let reply: JupyterMessage | undefined;
      let sawIopub = false;
      const done = new Promise<void>((resolve) => {
        const check = () => { if (reply && sawIopub) resolve(); };
        this.pending.set(req.header.msg_id, (m) => { reply = m; check(); });
        this.iopubListeners.set(req.header.msg_id, () => { sawIopub = true; check(); });
      });
      await this.send(this.shell, req);
      await Promise.race([done, sleep(500), this.exited]);
      this.pending.delete(req.header.msg_id);
      this.iopubListeners.delete(req.header.msg_id);
      if (reply && sawIopub) {
        this.info = reply.content;
        return;
      }
    }
    throw new KernelError(`tslab kernel did not answer within ${Math.round(timeoutMs / 1000)} s${this.stderrNote()}`);
  }

  private stderrNote(): string {
    const tail = this.stderrTail.trim();
    return tail ? `\nkernel stderr:\n${tail}` : "";
  }

  private deathError(when: string): KernelError {
    const how = this.exitInfo?.signal ? `signal ${this.exitInfo.signal}` : `exit code ${this.exitInfo?.code}`;
    return new KernelError(`tslab kernel died ${when} (${how})${this.stderrNote()}`);
  }

  // -------------------------------------------------------------------------------------------
  // Executing
  // -------------------------------------------------------------------------------------------

  /**
   * Runs one cell. Resolves when the kernel is idle again and has sent execute_reply. Outputs are
   * collected in arrival order; consecutive stream chunks of one name are merged like Jupyter does.
   * On timeout the kernel process is killed and CellTimeoutError is thrown.
   */
  async execute(code: string, timeoutMs: number): Promise<ExecuteResult> {
    if (this.closed || this.exitInfo) throw new KernelError("kernel is not running");
    const req = this.message("execute_request", {
      code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true,
    });
    const outputs: CellOutput[] = [];
    const displays = new Map<string, CellOutput>();
    let reply: JupyterMessage | undefined;
    let idle = false;
    const finished = new Promise<void>((resolve) => {
      const check = () => { if (reply && idle) resolve(); };
      this.pending.set(req.header.msg_id, (m) => { reply = m; check(); });
      this.iopubListeners.set(req.header.msg_id, (m) => {
        if (m.header.msg_type === "status") {
          if (m.content.execution_state === "idle") { idle = true; check(); }
          return;
        }
        collectOutput(outputs, displays, m);
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => { timer = setTimeout(() => resolve("timeout"), timeoutMs); });
    try {
      await this.send(this.shell, req);
      const winner = await Promise.race([finished.then(() => "done" as const), timedOut, this.exited.then(() => "exit" as const)]);
      if (winner === "timeout") {
        await this.kill();
        throw new CellTimeoutError(Math.round(timeoutMs / 100) / 10);
      }
      if (winner === "exit") throw this.deathError("while running a cell");
    } finally {
      clearTimeout(timer);
      this.pending.delete(req.header.msg_id);
      this.iopubListeners.delete(req.header.msg_id);
    }
    const content = reply!.content;
    return { status: content.status, executionCount: content.execution_count ?? null, outputs };
  }

  // -------------------------------------------------------------------------------------------
  // Stopping
  // -------------------------------------------------------------------------------------------

  /** Polite shutdown over the control channel; kills the process if it does not exit in time. */
  async shutdown(graceMs = 3000): Promise<void> {
    if (!this.closed && !this.exitInfo) {
      try {
        await this.send(this.control, this.message("shutdown_request", { restart: false }));
      } catch {
        // Socket trouble: fall through to kill.
      }
      // tslab closes its sockets on shutdown but its process may linger on timers; give it a moment.
      await Promise.race([this.exited, sleep(graceMs)]);
    }
    await this.kill();
  }

  /** SIGKILL the kernel (if alive), close our sockets, remove the connection files. */
  async kill(): Promise<void> {
    if (!this.exitInfo) {
      this.process.kill("SIGKILL");
      await this.exited;
    }
    if (!this.closed) {
      this.closed = true;
      for (const s of [this.shell, this.control, this.iopub]) s.close();
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  get pid(): number | undefined {
    return this.process.pid;
  }
}

/** Appends one iopub message to a cell's outputs, the way Jupyter front ends store them. */
function collectOutput(outputs: CellOutput[], displays: Map<string, CellOutput>, m: JupyterMessage): void {
  const c = m.content;
  const displayId: string | undefined = c.transient?.display_id;
  switch (m.header.msg_type) {
    case "stream": {
      const last = outputs[outputs.length - 1];
      if (last?.output_type === "stream" && last.name === c.name) last.text += c.text;
      else outputs.push({ output_type: "stream", name: c.name, text: c.text });
      return;
    }
    case "display_data": {
      const out: CellOutput = { output_type: "display_data", data: c.data ?? {}, metadata: c.metadata ?? {} };
      outputs.push(out);
      if (displayId) displays.set(displayId, out);
      return;
    }
    case "update_display_data": {
      // Overwrites the earlier output with the same display_id (tslab's newDisplay()) in place.
      const target = displayId ? displays.get(displayId) : undefined;
      if (target?.output_type === "display_data") {
        target.data = c.data ?? {};
        target.metadata = c.metadata ?? {};
      }
      return;
    }
    case "execute_result":
      outputs.push({ output_type: "execute_result", execution_count: c.execution_count ?? null, data: c.data ?? {}, metadata: c.metadata ?? {} });
      return;
    case "error":
      outputs.push({ output_type: "error", ename: c.ename, evalue: c.evalue, traceback: c.traceback ?? [] });
      return;
    case "clear_output":
      outputs.length = 0;
      return;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
