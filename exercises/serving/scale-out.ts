// Task 3.5 — queue depth, Little's law and a scale-out rule. Read notebooks/04-batching-and-serving.ipynb
// §3.5 first. Hints (progressive): exercises/serving/HINTS.md. Grade with `npm run grade -- 3.5`. The
// grader refuses a file that imports the kit's own queueing models or scheduler (lab/capacity/,
// lab/serve/).
//
// Little's law: in any system in a steady state — a server, its queue, a single GPU, a whole
// cluster — the mean number of requests inside (L) equals their arrival rate (λ) times the mean time
// each spends inside (W): L = λ·W. It needs no assumption about arrivals or service. It turns what a
// dashboard shows (requests running + waiting: the queue depth) into latency, and it ties a
// closed-loop load test (C users always in flight: L = C) to latency: W = C / throughput.
//
// A scale-out rule from it: load-test one replica in a closed loop at several concurrencies, take
// the point with the highest throughput whose latency still meets the SLO (a replica pushed past it
// gains little throughput and a lot of queueing), and run enough replicas that each sees at most
// that throughput, keeping some headroom for bursts.
import { NotImplementedError } from "../../lab/errors.ts";

// ─── Task 3.5a: Little's law ──────────────────────────────────────────────────────────────────────

export interface LittleQuantities {
  /** λ, requests per second */
  arrivalRate?: number;
  /** W, mean seconds a request spends in the system (waiting + being served) */
  timeInSystemS?: number;
  /** L, mean number of requests in the system (the time-averaged queue depth, running included) */
  inSystem?: number;
}

/**
 * Task 3.5a — L = λ·W. Give exactly two of the three; returns all three. RangeError when not
 * exactly two are given, when a given one is negative or not finite, or when the missing one is
 * undefined (W or λ from L with the other 0).
 * Check: λ = 4 requests/s and W = 0.5 s → L = 2 requests in the system on average.
 */
export function littlesLaw(q: LittleQuantities): Required<LittleQuantities> {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}

// ─── Task 3.5b: queue depth from a trace ──────────────────────────────────────────────────────────

/** One request of a trace: when it arrived and when it left (seconds, departure ≥ arrival). */
export interface TraceRequest {
  arrivalS: number;
  departureS: number;
}

/**
 * Task 3.5b — queue depth over a trace. A request is in the system on [arrivalS, departureS): at
 * the instant it leaves it no longer counts, and one arriving at that instant does.
 *  - inSystemAt(trace, t): N(t), the requests in the system at time t;
 *  - peakInSystem(trace): the largest N(t) over all t (0 for an empty trace);
 *  - timeAverageInSystem(trace, startS, endS): (1 / (end − start)) ∫ N(t) dt over [startS, endS),
 *    the time-averaged queue depth, which Little's law calls L. RangeError if endS <= startS.
 * RangeError for a request whose times are not finite or that leaves before it arrives.
 */
export function inSystemAt(trace: readonly TraceRequest[], t: number): number {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}

export function peakInSystem(trace: readonly TraceRequest[]): number {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}

export function timeAverageInSystem(trace: readonly TraceRequest[], startS: number, endS: number): number {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}

// ─── Task 3.5c: the best operating point of one replica ──────────────────────────────────────────

/** A closed-loop load test of one replica: `concurrency` requests always in flight, `throughput`
 *  requests per second completed. */
export interface ClosedLoopPoint {
  concurrency: number;
  throughput: number;
}

export interface OperatingPoint extends ClosedLoopPoint {
  /** mean latency by Little's law: concurrency / throughput */
  latencyS: number;
}

/**
 * Task 3.5c — among measured closed-loop points, the one with the highest throughput whose mean
 * latency (Little's law: W = C / X) is at most sloS; ties in throughput go to the lower concurrency.
 * null when no point meets the SLO. RangeError for sloS <= 0, a concurrency that is not > 0, or a
 * throughput that is not > 0 (every point must be finite).
 * Check: C = 8 at X = 20 requests/s → W = 0.4 s.
 */
export function bestOperatingPoint(points: readonly ClosedLoopPoint[], sloS: number): OperatingPoint | null {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}

// ─── Task 3.5d: the scale-out rule ───────────────────────────────────────────────────────────────

/**
 * Task 3.5d — replicas for an arrival rate: the smallest n ≥ minReplicas with
 *   n × perReplicaThroughput × (1 − headroom) ≥ arrivalRate,
 * i.e. ceil(arrivalRate / (perReplicaThroughput × (1 − headroom))), where a quotient within 1e-9
 * of an integer counts as that integer (1.1 / 0.1 is 11.000000000000002 in floating point: 11
 * replicas, not 12). RangeError for arrivalRate < 0, perReplicaThroughput <= 0, headroom outside
 * [0, 1), minReplicas not an integer >= 0 (any of them not finite).
 * Check: 30 requests/s, 8 per replica, 20% headroom → ceil(30 / 6.4) = 5 replicas.
 */
export function replicasNeeded(arrivalRate: number, perReplicaThroughput: number, headroom = 0, minReplicas = 1): number {
  throw new NotImplementedError("Task 3.5 — see notebooks/04-batching-and-serving.ipynb §3.5");
}
