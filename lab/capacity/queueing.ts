// Waiting in line: a seeded discrete-event simulation of c identical servers taking requests first
// come, first served (M/G/c when arrivals are Poisson), and the M/M/c closed form (Erlang C) it is
// checked against. A "server" is one decode slot of a replica; its service time is one request's
// end-to-end latency from the latency model, or a measured distribution.
import { mulberry32 } from "../random.ts";

/** Seconds between arrivals of a Poisson process of `rate` per second (inverse transform). */
export function exponential(random: () => number, rate: number): number {
  return -Math.log(1 - random()) / rate;
}

/** Arrival times of a Poisson process over [0, durationS). */
export function poissonArrivals(rate: number, durationS: number, seed: number): number[] {
  if (!(rate > 0)) throw new RangeError(`arrival rate must be > 0, got ${rate}`);
  const random = mulberry32(seed);
  const out: number[] = [];
  for (let t = exponential(random, rate); t < durationS; t += exponential(random, rate)) out.push(t);
  return out;
}

export interface QueueResult {
  /** seconds each request waited before service began, in arrival order */
  waits: number[];
  meanWaitS: number;
  p99WaitS: number;
  /** busy server-seconds ÷ (servers × span from first arrival to last departure) */
  utilisation: number;
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * FCFS with c servers: each arrival takes the server that frees up first. With FCFS and identical
 * servers that is exact: the i-th request starts at max(its arrival, the earliest free time).
 */
export function simulateQueue(arrivals: number[], servers: number, serviceTime: (i: number) => number): QueueResult {
  if (!Number.isInteger(servers) || servers < 1) throw new RangeError(`servers must be a positive integer, got ${servers}`);
  const free = new Array<number>(servers).fill(0);
  const waits: number[] = [];
  let busy = 0;
  let last = 0;
  for (let i = 0; i < arrivals.length; i++) {
    let k = 0;
    for (let j = 1; j < servers; j++) if (free[j]! < free[k]!) k = j;
    const start = Math.max(arrivals[i]!, free[k]!);
    const s = serviceTime(i);
    free[k] = start + s;
    waits.push(start - arrivals[i]!);
    busy += s;
    last = Math.max(last, start + s);
  }
  const span = arrivals.length ? last - arrivals[0]! : 0;
  return {
    waits,
    meanWaitS: waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length),
    p99WaitS: quantile(waits, 0.99),
    utilisation: span > 0 ? busy / (servers * span) : 0,
  };
}

/** Erlang C: the probability an arrival waits, for c servers at offered load a = λ/μ (< c). */
export function erlangC(c: number, a: number): number {
  if (!(a < c)) throw new RangeError(`offered load ${a} must be below the ${c} servers (else the queue grows without bound)`);
  let term = 1; // a^k / k!
  let sum = 1;
  for (let k = 1; k < c; k++) {
    term *= a / k;
    sum += term;
  }
  const top = (term * a) / c / (1 - a / c); // a^c / c! × c/(c − a)
  return top / (sum + top);
}

/** M/M/c mean wait in queue: Wq = C(c, a) ÷ (cμ − λ). (M/M/1: ρ ÷ (μ − λ).) */
export function mmcMeanWait(lambda: number, mu: number, c: number): number {
  return erlangC(c, lambda / mu) / (c * mu - lambda);
}

/**
 * The q-quantile of the M/M/c wait in queue. A request waits with probability C(c, a) and, given
 * that it waits, the wait is exponential with rate cμ − λ: P(W > t) = C(c, a) · e^{−(cμ − λ)t}.
 * So the quantile is 0 when C(c, a) ≤ 1 − q, else ln(C(c, a) / (1 − q)) ÷ (cμ − λ).
 */
export function mmcWaitQuantile(lambda: number, mu: number, c: number, q: number): number {
  if (!(q > 0 && q < 1)) throw new RangeError(`quantile must be in (0, 1), got ${q}`);
  const waits = erlangC(c, lambda / mu);
  return waits <= 1 - q ? 0 : Math.log(waits / (1 - q)) / (c * mu - lambda);
}
