// Autoscaling replicas on a bursty trace: what should the scaler watch, queue depth or GPU utilisation?
//
// Both policies use the Kubernetes HPA rule, desired = ceil(current × metric ÷ target)
// (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/), evaluated every
// `intervalS`, with scale-down held back by a stabilisation window (HPA's default is 300 s):
//   utilisation: metric = busy slots ÷ slots of ready replicas, averaged over the last interval.
//     It saturates at 100%: during a burst it can ask for at most current ÷ target replicas per step
//     however long the queue is.
//   queue depth: metric = requests waiting or in service per replica, target = slots per replica;
//     that is desired = ceil(outstanding ÷ slots), so one step asks for all the capacity the backlog needs.
// A new replica serves only after `coldStartS` (loading 35–140 GB of weights takes a while) and is
// billed from the moment it is asked for. The simulation is event-driven and exact for FCFS.
import { mulberry32 } from "../random.ts";
import { exponential } from "./queueing.ts";

export type ScalingPolicy = { kind: "utilisation"; target: number } | { kind: "queue-depth"; targetPerSlot: number };

export interface AutoscaleInput {
  arrivals: number[];
  /** seconds of service of request i (one slot busy for that long) */
  serviceS: (i: number) => number;
  /** seconds from the start of service to the first token (prefill), counted toward TTFT */
  prefillS: (i: number) => number;
  slotsPerReplica: number;
  gpusPerReplica: number;
  minReplicas: number;
  maxReplicas: number;
  initialReplicas: number;
  coldStartS: number;
  intervalS: number;
  scaleDownWindowS: number;
  /** a request violates the SLO when its TTFT (queue wait + prefill) exceeds this */
  ttftSloS: number;
  policy: ScalingPolicy;
}

export interface AutoscaleResult {
  policy: string;
  requests: number;
  sloViolations: number;
  violationRate: number;
  p99TtftS: number;
  gpuHours: number;
  peakReplicas: number;
  /** [time, replicas asked for] after each decision */
  timeline: [number, number][];
}

interface Replica {
  requestedAt: number;
  readyAt: number;
  stoppedAt?: number;
  draining: boolean;
  slotFreeAt: number[];
}

export function simulateAutoscaling(input: AutoscaleInput): AutoscaleResult {
  const { arrivals, slotsPerReplica: slots, policy } = input;
  if (input.minReplicas < 1 || input.maxReplicas < input.minReplicas) throw new RangeError("need 1 ≤ minReplicas ≤ maxReplicas");
  const newReplica = (t: number, ready: number): Replica => ({ requestedAt: t, readyAt: ready, draining: false, slotFreeAt: new Array(slots).fill(ready) });
  const replicas: Replica[] = [];
  for (let i = 0; i < input.initialReplicas; i++) replicas.push(newReplica(0, 0));
  const queue: number[] = [];
  const ttft: number[] = new Array(arrivals.length).fill(NaN);
  const history: [number, number][] = [];
  const timeline: [number, number][] = [];
  let next = 0;
  let busyArea = 0; // busy slot-seconds of ready replicas since the last tick
  let readyArea = 0;
  let lastT = 0;
  let nextTick = input.intervalS;
  let done = 0;
  const live = () => replicas.filter((r) => r.stoppedAt === undefined && !r.draining);

  const account = (t: number) => {
    const dt = t - lastT;
    if (dt <= 0) return;
    for (const r of replicas) {
      if (r.stoppedAt !== undefined || r.readyAt > lastT) continue;
      readyArea += slots * dt;
      for (const f of r.slotFreeAt) busyArea += Math.max(0, Math.min(f, t) - lastT);
    }
    lastT = t;
  };

  const dispatch = (t: number) => {
    while (queue.length) {
      let best: { r: Replica; k: number } | undefined;
      for (const r of replicas) {
        if (r.stoppedAt !== undefined || r.draining || r.readyAt > t) continue;
        const k = r.slotFreeAt.findIndex((f) => f <= t);
        if (k >= 0) { best = { r, k }; break; }
      }
      if (!best) return;
      const i = queue.shift()!;
      ttft[i] = t - arrivals[i]! + input.prefillS(i);
      best.r.slotFreeAt[best.k] = t + input.serviceS(i);
    }
  };

  const stopDrained = (t: number) => {
    for (const r of replicas) if (r.draining && r.stoppedAt === undefined && r.slotFreeAt.every((f) => f <= t)) r.stoppedAt = t;
  };

  const decide = (t: number) => {
    const current = live().length;
    // in service: busy slots of started replicas (a replica still loading has none, though its slots read "busy until ready")
    const inService = replicas.reduce((s, r) => s + (r.stoppedAt === undefined && r.readyAt <= t ? r.slotFreeAt.filter((f) => f > t).length : 0), 0);
    const outstanding = queue.length + inService;
    const metric = policy.kind === "utilisation" ? (readyArea > 0 ? busyArea / readyArea : 0) : outstanding / Math.max(1, current);
    const target = policy.kind === "utilisation" ? policy.target : policy.targetPerSlot * slots;
    let desired = Math.ceil((current * metric) / target - 1e-9);
    if (policy.kind === "queue-depth") desired = Math.ceil(outstanding / target - 1e-9);
    desired = Math.min(input.maxReplicas, Math.max(input.minReplicas, desired));
    history.push([t, desired]);
    // scale down only to the highest recommendation within the stabilisation window
    const windowMax = Math.max(...history.filter(([h]) => h > t - input.scaleDownWindowS).map(([, d]) => d));
    if (desired > current) for (let k = current; k < desired; k++) replicas.push(newReplica(t, t + input.coldStartS));
    else if (windowMax < current) {
      const candidates = live().sort((a, b) => b.requestedAt - a.requestedAt); // newest first
      for (const r of candidates.slice(0, current - windowMax)) r.draining = true;
    }
    timeline.push([t, live().length]);
    busyArea = 0;
    readyArea = 0;
  };

  let t = 0;
  for (;;) {
    const nextArrival = next < arrivals.length ? arrivals[next]! : Infinity;
    let nextFree = Infinity;
    for (const r of replicas) {
      if (r.stoppedAt !== undefined) continue;
      if (r.readyAt > t) nextFree = Math.min(nextFree, r.readyAt);
      for (const f of r.slotFreeAt) if (f > t) nextFree = Math.min(nextFree, f);
    }
    const finished = done === arrivals.length && queue.length === 0 && nextFree === Infinity;
    if (finished) break;
    t = Math.min(nextArrival, nextFree, nextTick);
    account(t);
    if (t === nextArrival) { queue.push(next++); done++; }
    if (t === nextTick) { decide(t); nextTick += input.intervalS; }
    stopDrained(t);
    dispatch(t);
  }
  const end = t;
  let gpuSeconds = 0;
  for (const r of replicas) gpuSeconds += ((r.stoppedAt ?? end) - r.requestedAt) * input.gpusPerReplica;
  const violations = ttft.filter((x) => x > input.ttftSloS).length;
  const sorted = [...ttft].sort((a, b) => a - b);
  return {
    policy: policy.kind === "utilisation" ? `utilisation (target ${policy.target})` : `queue depth (target ${policy.targetPerSlot} per slot)`,
    requests: arrivals.length,
    sloViolations: violations,
    violationRate: violations / Math.max(1, arrivals.length),
    p99TtftS: sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))] ?? 0,
    gpuHours: gpuSeconds / 3600,
    peakReplicas: Math.max(0, ...timeline.map(([, n]) => n), input.initialReplicas),
    timeline,
  };
}

/**
 * A bursty arrival trace: Poisson at `baseRate`, switching to `burstRate` for `burstS` seconds
 * every `periodS` seconds (a piecewise-constant rate; each piece is its own Poisson process).
 */
export function burstyArrivals(o: { baseRate: number; burstRate: number; periodS: number; burstS: number; durationS: number; seed: number }): number[] {
  const random = mulberry32(o.seed);
  const out: number[] = [];
  const rateAt = (t: number) => (t % o.periodS >= o.periodS - o.burstS ? o.burstRate : o.baseRate);
  let t = 0;
  while (t < o.durationS) {
    const rate = rateAt(t);
    const pieceEnd = Math.min(o.durationS, t % o.periodS >= o.periodS - o.burstS ? (Math.floor(t / o.periodS) + 1) * o.periodS : Math.floor(t / o.periodS) * o.periodS + o.periodS - o.burstS);
    const step = exponential(random, rate);
    // memorylessness: a draw that overshoots the piece restarts at the boundary with the next rate
    if (t + step >= pieceEnd) { t = pieceEnd; continue; }
    t += step;
    out.push(t);
  }
  return out;
}
