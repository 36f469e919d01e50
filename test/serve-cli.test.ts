// `lab serve` as a command: it prints its URL (--json: one document with the models and options),
// the models and their memory, status lines; SIGTERM while a stream is in flight lets that stream
// finish, refuses new work, and exits 0. Bad flags are usage errors (exit 2).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { serveCommand } from "../lab/cli/commands/serve.ts";
import { UsageError } from "../lab/errors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "lab", "cli", "bin.mjs");

describe("lab serve (command line)", () => {
  it("serves until SIGTERM: the in-flight stream completes with [DONE], then the process exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--models", "draft:F32", "--port", "0", "--context", "1024", "--max-running", "4", "--json", "--status-every", "0.2"], { cwd: ROOT });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const info = await new Promise<{ url: string; models: { id: string; weightBytes: number }[]; options: { maxRunning: number } }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL within 180 s; stderr: ${stderr}`)), 180_000);
        const poll = setInterval(() => {
          try {
            const doc = JSON.parse(stdout);
            clearInterval(poll);
            clearTimeout(timer);
            resolve(doc);
          } catch { /* not complete yet */ }
        }, 50);
        void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(info.models.map((m) => m.id)).toEqual(["draft-f32"]);
      expect(info.options.maxRunning).toBe(4);
      expect(stderr).toMatch(/model draft-f32\s+F32\s+weights\s+[\d.]+ MiB \(32\.00 bits\/weight\)\s+KV pool 256 blocks × 16/);
      // A long stream (1,000 tokens), then SIGTERM once it has started.
      const res = await fetch(`${info.url}/v1/completions`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "draft-f32", prompt: "Once upon a time", max_tokens: 1000, temperature: 0, stream: true }),
      });
      const reader = res.body!.getReader();
      let body = new TextDecoder().decode((await reader.read()).value);
      child.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        body += new TextDecoder().decode(value);
      }
      expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
      expect(body).toMatch(/"finish_reason":"length"/);
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/running \d+\s+waiting \d+\s+KV \d+\/256 blocks used \(\d+ free\)\s+[\d.]+ tokens\/s\s+finished \d+\s+RSS [\d.]+ MiB/);
      expect(stderr).toMatch(/SIGTERM: not accepting new requests; finishing 1 in flight/);
      expect(stderr).toMatch(/stopped/);
      // Nothing listens any more.
      await expect(fetch(`${info.url}/health`)).rejects.toThrow();
    } finally {
      child.kill("SIGKILL");
    }
  }, 240_000);

  it("bad flags are usage errors (exit code 2) naming the flag; an unknown model is a plain error (exit code 1)", async () => {
    const cases: [string[], RegExp][] = [
      [["--prefix-cache", "lru"], /unknown --prefix-cache "lru" \(expected block \| radix \| slot \| off\)/],
      [["--engine", "vllm"], /unknown engine "vllm"/],
      [["--max-queue=-1"], /--max-queue must be an integer in \[0, /],
      [["--port", "70000"], /--port must be an integer in \[0, 65535\]/],
      [["--scheduling", "dynamic"], /unknown --scheduling "dynamic"/],
      [["--chunked-prefill", "maybe"], /--chunked-prefill must be on or off/],
      [["--bogus"], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const err = await serveCommand.run(args).catch((e) => e);
      expect(err, args.join(" ")).toBeInstanceOf(UsageError);
      expect(err.message, args.join(" ")).toMatch(message);
    }
    const missing = await serveCommand.run(["--models", "nosuch:Q4_K_M", "--port", "0"]).catch((e) => e);
    expect(missing).not.toBeInstanceOf(UsageError);
    expect(missing.message).toMatch(/no model "nosuch": not one of target, draft and no file at nosuch/);
  });
});
