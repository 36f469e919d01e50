// Task 3.9 — a queue-depth autoscaler, run on an arrival trace. Read notebooks/05-serving-a-70b-model.ipynb
// §3.9 first. Hints: exercises/serving/HINTS.md. Grade with `npm run grade -- 3.9`. Do not import
// lab/capacity (the kit's own event-driven autoscaling simulation): the grader refuses it.
import { NotImplementedError } from "../../lab/errors.ts";

export interface AutoscalerInput {
  /** requests arriving in each tick (one tick = one scaling interval) */
  arrivals: number[];
  /** requests one ready replica completes per tick */
  capacityPerReplica: number;
  /** a replica asked for at tick t serves from tick t + coldStartTicks (≥ 1) */
  coldStartTicks: number;
  minReplicas: number;
  maxReplicas: number;
  /** replicas already serving at tick 0 */
  initialReplicas: number;
  /** the share of a replica's per-tick capacity the scaler aims to keep outstanding, in (0, 1] */
  target: number;
  /** a request served more than this many ticks after its arrival tick violates the SLO */
  sloTicks: number;
}

export interface AutoscalerRun {
  /** replicas serving in each tick */
  ready: number[];
  /** replicas asked for (serving or starting) after each tick's decision: what is billed */
  requested: number[];
  /** requests still waiting at the end of each tick */
  backlog: number[];
  /** requests that waited more than sloTicks */
  violations: number;
  /** Σ requested: replica-ticks billed */
  replicaTicks: number;
  peakReplicas: number;
}

/**
 * Task 3.9a — the scaling rule (Kubernetes HPA's desired = ceil(current × metric / target), with the
 * metric "outstanding requests per replica"), which simplifies to
 *   clamp(ceil(outstanding / (capacityPerReplica × target)), minReplicas, maxReplicas)
 * RangeError for outstanding < 0, capacityPerReplica ≤ 0, target ∉ (0, 1], minReplicas not an
 * integer ≥ 1, or maxReplicas not an integer ≥ minReplicas.
 */
export function desiredReplicas(outstanding: number, capacityPerReplica: number, target: number, minReplicas: number, maxReplicas: number): number {
  throw new NotImplementedError("Task 3.9 — see notebooks/05-serving-a-70b-model.ipynb §3.9");
}

/**
 * Task 3.9b — run the scaler tick by tick. Replicas asked for at tick t serve from tick
 * t + coldStartTicks; the initialReplicas serve from tick 0. In each tick t, in this order:
 *   1. ready = replicas serving at t;
 *   2. the arrivals[t] requests join the back of the queue (first come, first served);
 *   3. up to ready × capacityPerReplica requests leave the front of the queue; a request served at
 *      tick t that arrived at tick a waited t − a ticks, a violation when t − a > sloTicks;
 *   4. outstanding = requests still queued + requests served this tick;
 *      desired = desiredReplicas(outstanding, …). If desired is above the number of replicas asked
 *      for so far, ask for the difference now; if below, drop replicas newest first (those still
 *      starting go before those serving) — no stabilisation window;
 *   5. record ready, requested (replicas asked for after step 4, starting ones included: that is
 *      what is billed) and backlog (requests still queued).
 * After the last arrival tick keep running ticks with no arrivals until the queue is empty.
 * replicaTicks = Σ requested; peakReplicas = the most replicas asked for at once (initial included).
 * RangeError for capacityPerReplica not an integer ≥ 1, coldStartTicks not an integer ≥ 1, sloTicks
 * not an integer ≥ 0, initialReplicas outside [minReplicas, maxReplicas], a negative or non-integer
 * arrival count, and what desiredReplicas refuses.
 */
export function runQueueDepthAutoscaler(input: AutoscalerInput): AutoscalerRun {
  throw new NotImplementedError("Task 3.9 — see notebooks/05-serving-a-70b-model.ipynb §3.9");
}
