// Data-parallel gradients on worker threads. The parameters live in one SharedArrayBuffer that every
// worker reads; each worker owns a slice of the batch, its own Workspace, and its own gradient
// buffer (also shared memory). The main thread sums the workers' gradients in worker order, so a run
// is deterministic for a given worker count however the threads are scheduled, and it updates the
// parameters only while every worker is idle.
//
// With workers = 0 the same work runs inline on the calling thread (tests, gradient checks).
import { Worker } from "node:worker_threads";
import { Workspace, type ModelShape } from "./model.ts";

export interface GradientResult {
  lossSum: number; // Σ −log p(target) over the batch's counted positions
  count: number; // positions counted
}

interface WorkerInit {
  shape: ModelShape;
  maxBatch: number;
  maxT: number;
  params: SharedArrayBuffer; // [nParams] f32
  grads: SharedArrayBuffer; // [nParams] f32, this worker's
  tokens: SharedArrayBuffer; // [maxBatch][maxT+1] i32, this worker's slice of the batch
}

interface WorkerJob {
  batch: number;
  T: number;
  scale: number; // gradient multiplier, 1/(positions in the whole batch)
  withGradient: boolean;
}

/** The computation one worker does for one job; also the inline path. */
function runJob(ws: Workspace, params: Float32Array, grads: Float32Array, tokens: Int32Array, job: WorkerJob): GradientResult {
  const { batch, T } = job;
  const inputs = new Int32Array(batch * T), targets = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = tokens[b * (T + 1) + t];
      targets[b * T + t] = tokens[b * (T + 1) + t + 1];
    }
  }
  ws.params.set(params);
  ws.forward(inputs, batch, T);
  const lossSum = ws.lossSum(targets);
  if (job.withGradient) {
    ws.transposeWeights();
    ws.backward(targets, job.scale);
    grads.set(ws.grads);
  }
  return { lossSum, count: batch * T };
}

/** Entry point inside a worker thread (started through worker.mjs). */
export function runGradientWorker(port: import("node:worker_threads").MessagePort, init: WorkerInit): void {
  const ws = new Workspace(init.shape, init.maxBatch, init.maxT);
  const params = new Float32Array(init.params), grads = new Float32Array(init.grads), tokens = new Int32Array(init.tokens);
  port.on("message", (job: WorkerJob | "exit") => {
    if (job === "exit") { port.close(); return; }
    try {
      port.postMessage({ ok: true, result: runJob(ws, params, grads, tokens, job) });
    } catch (err) {
      port.postMessage({ ok: false, error: String((err as Error).stack ?? err) });
    }
  });
}

interface Lane {
  worker?: Worker;
  workspace?: Workspace; // inline lane only
  grads: Float32Array; // [nParams] f32
  tokens: Int32Array; // [maxBatch][maxT+1] i32
  maxBatch: number;
}

export class GradientPool {
  readonly params: Float32Array; // [nParams] f32 in shared memory: update it in place between steps
  readonly grads: Float32Array; // [nParams] f32, the summed gradient after compute()
  private readonly lanes: Lane[];

  private constructor(params: Float32Array, lanes: Lane[]) {
    this.params = params;
    this.grads = new Float32Array(params.length);
    this.lanes = lanes;
  }

  /** Splits batches of up to `batch` sequences of up to `maxT` tokens over `workers` threads. */
  static async start(shape: ModelShape, nParams: number, batch: number, maxT: number, workers: number): Promise<GradientPool> {
    const params = new Float32Array(new SharedArrayBuffer(4 * nParams));
    const nLanes = Math.max(1, Math.min(workers, batch));
    const lanes: Lane[] = [];
    for (let w = 0; w < nLanes; w++) {
      const maxBatch = Math.ceil(batch / nLanes);
      const gradsBuf = new SharedArrayBuffer(4 * nParams), tokensBuf = new SharedArrayBuffer(4 * maxBatch * (maxT + 1));
      const lane: Lane = { grads: new Float32Array(gradsBuf), tokens: new Int32Array(tokensBuf), maxBatch };
      if (workers === 0) {
        lane.workspace = new Workspace(shape, maxBatch, maxT);
      } else {
        const init: WorkerInit = { shape, maxBatch, maxT, params: params.buffer as SharedArrayBuffer, grads: gradsBuf, tokens: tokensBuf };
        lane.worker = new Worker(new URL("./worker.mjs", import.meta.url), { workerData: init });
        lane.worker.unref();
      }
      lanes.push(lane);
    }
    return new GradientPool(params, lanes);
  }

  get workerCount(): number {
    return this.lanes[0].worker ? this.lanes.length : 0;
  }

  /** Loss (and, withGradient, the summed gradient in this.grads, scaled to the batch mean) for
   *  `sequences`: [batch][T+1] tokens, each row predicting tokens 1..T from 0..T−1. */
  async compute(sequences: Int32Array, batch: number, T: number, withGradient = true): Promise<GradientResult> {
    const per = Math.ceil(batch / this.lanes.length);
    const scale = 1 / (batch * T);
    const pending: Promise<GradientResult>[] = [];
    const used: Lane[] = [];
    for (let w = 0; w < this.lanes.length; w++) {
      const lane = this.lanes[w], first = w * per, count = Math.min(per, batch - first);
      if (count <= 0) break;
      lane.tokens.set(sequences.subarray(first * (T + 1), (first + count) * (T + 1)));
      const job: WorkerJob = { batch: count, T, scale, withGradient };
      used.push(lane);
      pending.push(lane.worker ? ask(lane.worker, job) : Promise.resolve(runJob(lane.workspace!, this.params, lane.grads, lane.tokens, job)));
    }
    const results = await Promise.all(pending);
    if (withGradient) {
      this.grads.set(used[0].grads);
      for (let w = 1; w < used.length; w++) {
        const g = used[w].grads;
        for (let i = 0; i < g.length; i++) this.grads[i] += g[i];
      }
    }
    return results.reduce((a, r) => ({ lossSum: a.lossSum + r.lossSum, count: a.count + r.count }), { lossSum: 0, count: 0 });
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.worker?.terminate()));
  }
}

function ask(worker: Worker, job: WorkerJob): Promise<GradientResult> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { ok: boolean; result?: GradientResult; error?: string }) => {
      worker.off("error", onError);
      if (msg.ok) resolve(msg.result!); else reject(new Error(`gradient worker failed: ${msg.error}`));
    };
    const onError = (err: Error) => { worker.off("message", onMessage); reject(err); };
    worker.once("message", onMessage);
    worker.once("error", onError);
    worker.ref();
    worker.postMessage(job);
  }).finally(() => worker.unref()) as Promise<GradientResult>;
}
