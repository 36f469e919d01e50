// Task 3.4 — one step of a continuous-batching scheduler under a token budget, with chunked
// prefill. Read notebooks/04-batching-and-serving.ipynb §3.4 first. Hints (progressive):
// exercises/serving/HINTS.md. Grade with `npm run grade -- 3.4`. The grader refuses a file that
// imports the kit's own scheduler or engines (lab/serve/, lab/engine/).
//
// Before every forward pass the scheduler decides which requests run and how many of their tokens go
// in. A request holds `totalTokens` (prompt + tokens generated so far) of which `computedTokens`
// already have keys and values in the KV cache; it needs `totalTokens − computedTokens` more. A
// decoding request needs exactly 1 (the token sampled last step); one still prefilling needs the rest
// of its prompt. One step may carry at most `maxBatchTokens` tokens over all its rows (vLLM's
// max_num_batched_tokens), so a long prompt is split into chunks over several steps (chunked prefill,
// Sarathi-Serve) instead of stalling every stream for its whole prefill.
//
// The rules, in this order (Sarathi-Serve's "stall-free" order, vLLM v1's admission):
//   1. Decodes first: every running request that needs exactly 1 token gets it, in running order,
//      while the budget lasts (kind "decode").
//   2. Then running requests still prefilling, in running order: each gets min(what it needs, the
//      budget left).
//   3. Then waiting requests, first come first served, while budget is left and fewer than
//      `maxRunning` requests would run. The head of the queue gets min(what it needs, the budget left)
//      tokens — unless chunked prefill is off, when it must get everything it needs or wait — and it
//      is admitted only if the KV blocks for that chunk are free after the blocks of everything
//      scheduled before it. A head that cannot be admitted blocks everyone behind it (no skipping
//      ahead, even for a request that would fit).
//   A request samples its next token in this step exactly when its chunk reaches the end of what it
//   needs (`sample`); a chunk that stops short only writes KV.
// KV blocks hold `blockSize` positions; growing a request from c to c + n computed tokens takes
// ceil((c + n) / blockSize) − ceil(c / blockSize) new blocks. Running requests are always scheduled
// (when their blocks run out the real scheduler preempts one, which is not part of this task); the
// blocks they take count against the waiting ones.

export interface StepRequest {
  id: string;
  /** prompt + generated tokens (≥ 1) */
  totalTokens: number;
  /** of those, tokens whose KV is already computed (0 ≤ computed < total; a prefix-cache hit makes it > 0 for a waiting request) */
  computedTokens: number;
}

export interface StepInput {
  /** running requests, in admission order */
  running: StepRequest[];
  /** waiting requests, first come first served */
  waiting: StepRequest[];
  /** tokens this step may carry over all rows (≥ 1) */
  maxBatchTokens: number;
  /** requests that may run at once, admitted ones included (≥ running.length) */
  maxRunning: number;
  /** KV blocks free before this step, and positions per block */
  freeBlocks: number;
  blockSize: number;
  /** split a waiting prompt over several steps (default true) */
  chunkedPrefill?: boolean;
}

export interface ScheduledRequest {
  id: string;
  /** tokens of this request in this step (≥ 1) */
  tokens: number;
  /** "decode": a running request that needs exactly 1 token (its next one, or the last of its
   *  prompt); "prefill": a chunk of a prompt (or of a recompute after a preemption) */
  kind: "decode" | "prefill";
  /** the chunk reaches the end of what the request needs: the step samples its next token */
  sample: boolean;
  /** it was waiting and is admitted in this step */
  admitted: boolean;
  /** new KV blocks its tokens take */
  blocks: number;
}

export interface StepPlan {
  /** in the order the rules schedule them: decodes, running prefills, admitted requests */
  scheduled: ScheduledRequest[];
  /** maxBatchTokens − the tokens scheduled */
  budgetLeft: number;
  /** new KV blocks the whole step takes */
  blocksUsed: number;
  /** ids still waiting after this step, in queue order */
  stillWaiting: string[];
}

/** New KV blocks for growing from `computed` to `computed + n` positions. */
function newBlocks(computed: number, n: number, blockSize: number): number {
  return Math.ceil((computed + n) / blockSize) - Math.ceil(computed / blockSize);
}

function checkRequest(r: StepRequest, where: string): void {
  if (!r || typeof r.id !== "string") throw new RangeError(`${where}: every request needs a string id`);
  if (!Number.isInteger(r.totalTokens) || r.totalTokens < 1) throw new RangeError(`${where} request ${r.id}: totalTokens must be an integer >= 1, got ${r.totalTokens}`);
  if (!Number.isInteger(r.computedTokens) || r.computedTokens < 0 || r.computedTokens >= r.totalTokens) {
    throw new RangeError(`${where} request ${r.id}: computedTokens must be an integer in [0, totalTokens), got ${r.computedTokens} of ${r.totalTokens}`);
  }
}

/**
 * Task 3.4 — the plan of one step, by the rules above. RangeError (naming the field or the request)
 * for: maxBatchTokens, blockSize or maxRunning not an integer ≥ 1; freeBlocks not an integer ≥ 0;
 * maxRunning below running.length; a request with bad counts; an id that appears twice; and, with
 * chunked prefill off, a waiting head that needs more than maxBatchTokens (it could never run).
 */
export function scheduleStep(input: StepInput): StepPlan {
  const { running, waiting, maxBatchTokens, maxRunning, freeBlocks, blockSize } = input;
  const chunked = input.chunkedPrefill ?? true;
  for (const [name, v] of [["maxBatchTokens", maxBatchTokens], ["blockSize", blockSize], ["maxRunning", maxRunning]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`scheduleStep: ${name} must be an integer >= 1, got ${v}`);
  }
  if (!Number.isInteger(freeBlocks) || freeBlocks < 0) throw new RangeError(`scheduleStep: freeBlocks must be an integer >= 0, got ${freeBlocks}`);
  if (maxRunning < running.length) throw new RangeError(`scheduleStep: maxRunning ${maxRunning} is below the ${running.length} running requests`);
  const ids = new Set<string>();
  for (const [list, where] of [[running, "running"], [waiting, "waiting"]] as const) {
    for (const r of list) {
      checkRequest(r, where);
      if (ids.has(r.id)) throw new RangeError(`scheduleStep: request id ${r.id} appears twice`);
      ids.add(r.id);
    }
  }

  let budget = maxBatchTokens;
  let blocksUsed = 0;
  const scheduled: ScheduledRequest[] = [];
  const take = (r: StepRequest, n: number, kind: ScheduledRequest["kind"], admitted: boolean, blocks: number) => {
    scheduled.push({ id: r.id, tokens: n, kind, sample: r.computedTokens + n === r.totalTokens, admitted, blocks });
    budget -= n;
    blocksUsed += blocks;
  };

  // 1. Decodes first.
  for (const r of running) {
    if (budget === 0) break;
    if (r.totalTokens - r.computedTokens === 1) take(r, 1, "decode", false, newBlocks(r.computedTokens, 1, blockSize));
  }
  // 2. Running prefills, in running order.
  for (const r of running) {
    if (budget === 0) break;
    const need = r.totalTokens - r.computedTokens;
    if (need === 1) continue;
    const n = Math.min(need, budget);
    take(r, n, "prefill", false, newBlocks(r.computedTokens, n, blockSize));
  }
  // 3. Waiting requests, FCFS, never skipping ahead.
  let admittedCount = 0;
  while (budget > 0 && admittedCount < waiting.length && running.length + admittedCount < maxRunning) {
    const r = waiting[admittedCount]!;
    const need = r.totalTokens - r.computedTokens;
    if (!chunked && need > maxBatchTokens) throw new RangeError(`scheduleStep: waiting request ${r.id} needs ${need} tokens, more than maxBatchTokens ${maxBatchTokens}, and chunked prefill is off: it can never run`);
    if (!chunked && need > budget) break;
    const n = Math.min(need, budget);
    const blocks = newBlocks(r.computedTokens, n, blockSize);
    if (blocksUsed + blocks > freeBlocks) break;
    take(r, n, "prefill", true, blocks);
    admittedCount++;
  }
  return { scheduled, budgetLeft: budget, blocksUsed, stillWaiting: waiting.slice(admittedCount).map((r) => r.id) };
}
