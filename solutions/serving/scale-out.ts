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
  const given = (["arrivalRate", "timeInSystemS", "inSystem"] as const).filter((k) => q[k] !== undefined);
  if (given.length !== 2) throw new RangeError(`littlesLaw: give exactly two of arrivalRate, timeInSystemS, inSystem (got ${given.length ? given.join(", ") : "none"})`);
  for (const k of given) if (!Number.isFinite(q[k]!) || q[k]! < 0) throw new RangeError(`littlesLaw: ${k} must be a finite number >= 0, got ${q[k]}`);
  const { arrivalRate: lambda, timeInSystemS: w, inSystem: l } = q;
  if (l === undefined) return { arrivalRate: lambda!, timeInSystemS: w!, inSystem: lambda! * w! };
  if (w === undefined) {
    if (lambda === 0) throw new RangeError("littlesLaw: with arrivalRate 0 the time in system is undefined");
    return { arrivalRate: lambda!, timeInSystemS: l / lambda!, inSystem: l };
  }
  if (w === 0) throw new RangeError("littlesLaw: with timeInSystemS 0 the arrival rate is undefined");
  return { arrivalRate: l / w, timeInSystemS: w, inSystem: l };
}

// ─── Task 3.5b: queue depth from a trace ──────────────────────────────────────────────────────────

/** One request of a trace: when it arrived and when it left (seconds, departure ≥ arrival). */
export interface TraceRequest {
  arrivalS: number;
  departureS: number;
}

function checkTrace(trace: readonly TraceRequest[], who: string): void {
  trace.forEach((r, i) => {
    if (!Number.isFinite(r?.arrivalS) || !Number.isFinite(r?.departureS) || r.departureS < r.arrivalS) {
      throw new RangeError(`${who}: request ${i} needs finite arrivalS <= departureS, got ${r?.arrivalS} → ${r?.departureS}`);
    }
  });
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
  checkTrace(trace, "inSystemAt");
  return trace.filter((r) => r.arrivalS <= t && t < r.departureS).length;
}

export function peakInSystem(trace: readonly TraceRequest[]): number {
  checkTrace(trace, "peakInSystem");
  // Sweep the events in time order; at equal times departures go first (half-open intervals).
  const events = trace.flatMap((r) => (r.departureS > r.arrivalS ? [[r.arrivalS, 1], [r.departureS, -1]] : []));
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let n = 0, peak = 0;
  for (const [, d] of events) {
    n += d!;
    peak = Math.max(peak, n);
  }
  return peak;
}

export function timeAverageInSystem(trace: readonly TraceRequest[], startS: number, endS: number): number {
  checkTrace(trace, "timeAverageInSystem");
  if (!(Number.isFinite(startS) && Number.isFinite(endS) && endS > startS)) throw new RangeError(`timeAverageInSystem: need startS < endS, got ${startS}, ${endS}`);
  // ∫ N(t) dt = Σ over requests of the time each spends inside the window.
  let area = 0;
  for (const r of trace) area += Math.max(0, Math.min(r.departureS, endS) - Math.max(r.arrivalS, startS));
  return area / (endS - startS);
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
  if (!(sloS > 0) || !Number.isFinite(sloS)) throw new RangeError(`bestOperatingPoint: sloS must be a finite number > 0, got ${sloS}`);
  let best: OperatingPoint | null = null;
  points.forEach((p, i) => {
    if (!(p?.concurrency > 0) || !Number.isFinite(p.concurrency)) throw new RangeError(`bestOperatingPoint: point ${i} needs concurrency > 0, got ${p?.concurrency}`);
    if (!(p.throughput > 0) || !Number.isFinite(p.throughput)) throw new RangeError(`bestOperatingPoint: point ${i} needs throughput > 0, got ${p.throughput}`);
    const latencyS = p.concurrency / p.throughput;
    if (latencyS > sloS) return;
    if (!best || p.throughput > best.throughput || (p.throughput === best.throughput && p.concurrency < best.concurrency)) {
      best = { concurrency: p.concurrency, throughput: p.throughput, latencyS };
    }
  });
  return best;
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
  if (!(arrivalRate >= 0) || !Number.isFinite(arrivalRate)) throw new RangeError(`replicasNeeded: arrivalRate must be a finite number >= 0, got ${arrivalRate}`);
  if (!(perReplicaThroughput > 0) || !Number.isFinite(perReplicaThroughput)) throw new RangeError(`replicasNeeded: perReplicaThroughput must be a finite number > 0, got ${perReplicaThroughput}`);
  if (!(headroom >= 0 && headroom < 1)) throw new RangeError(`replicasNeeded: headroom must be in [0, 1), got ${headroom}`);
  if (!Number.isInteger(minReplicas) || minReplicas < 0) throw new RangeError(`replicasNeeded: minReplicas must be an integer >= 0, got ${minReplicas}`);
  const x = arrivalRate / (perReplicaThroughput * (1 - headroom));
  const nearest = Math.round(x);
  const n = Math.abs(x - nearest) <= 1e-9 ? nearest : Math.ceil(x);
  return Math.max(minReplicas, n);
}
