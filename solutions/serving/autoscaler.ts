// Reference solution for task 3.9 — a queue-depth autoscaler on an arrival trace
// (notebooks/05-serving-a-70b-model.ipynb §3.9). The rules are written out in
// exercises/serving/autoscaler.ts.

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

function integerAtLeast(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

export function desiredReplicas(outstanding: number, capacityPerReplica: number, target: number, minReplicas: number, maxReplicas: number): number {
  if (!(outstanding >= 0)) throw new RangeError(`outstanding must be ≥ 0, got ${outstanding}`);
  if (!(capacityPerReplica > 0)) throw new RangeError(`capacityPerReplica must be > 0, got ${capacityPerReplica}`);
  if (!(target > 0 && target <= 1)) throw new RangeError(`target must be in (0, 1], got ${target}`);
  integerAtLeast("minReplicas", minReplicas, 1);
  integerAtLeast("maxReplicas", maxReplicas, minReplicas);
  return Math.min(maxReplicas, Math.max(minReplicas, Math.ceil(outstanding / (capacityPerReplica * target))));
}

export function runQueueDepthAutoscaler(input: AutoscalerInput): AutoscalerRun {
  const { arrivals, capacityPerReplica: cap, coldStartTicks: cold, sloTicks } = input;
  integerAtLeast("capacityPerReplica", cap, 1);
  integerAtLeast("coldStartTicks", cold, 1);
  integerAtLeast("sloTicks", sloTicks, 0);
  integerAtLeast("initialReplicas", input.initialReplicas, input.minReplicas);
  if (input.initialReplicas > input.maxReplicas) throw new RangeError(`initialReplicas ${input.initialReplicas} exceeds maxReplicas ${input.maxReplicas}`);
  desiredReplicas(0, cap, input.target, input.minReplicas, input.maxReplicas); // validates the rest
  for (const [t, a] of arrivals.entries()) if (!Number.isInteger(a) || a < 0) throw new RangeError(`arrivals[${t}] must be a non-negative integer, got ${a}`);

  // each replica is the tick it was asked for (initial ones: −cold, so they serve from tick 0)
  let replicas: number[] = Array.from({ length: input.initialReplicas }, () => -cold);
  const queue: { tick: number; count: number }[] = []; // FIFO cohorts
  const run: AutoscalerRun = { ready: [], requested: [], backlog: [], violations: 0, replicaTicks: 0, peakReplicas: input.initialReplicas };
  for (let t = 0; t < arrivals.length || queue.length > 0; t++) {
    const ready = replicas.filter((asked) => asked + cold <= t).length;
    if (t < arrivals.length && arrivals[t]! > 0) queue.push({ tick: t, count: arrivals[t]! });
    let budget = ready * cap;
    let served = 0;
    while (budget > 0 && queue.length > 0) {
      const head = queue[0]!;
      const n = Math.min(head.count, budget);
      if (t - head.tick > sloTicks) run.violations += n;
      head.count -= n;
      budget -= n;
      served += n;
      if (head.count === 0) queue.shift();
    }
    const waiting = queue.reduce((s, c) => s + c.count, 0);
    const desired = desiredReplicas(waiting + served, cap, input.target, input.minReplicas, input.maxReplicas);
    if (desired > replicas.length) {
      replicas = [...replicas, ...Array.from({ length: desired - replicas.length }, () => t)];
    } else if (desired < replicas.length) {
      // drop the newest first: replicas still starting go before serving ones
      replicas = [...replicas].sort((a, b) => a - b).slice(0, desired);
    }
    run.ready.push(ready);
    run.requested.push(replicas.length);
    run.backlog.push(waiting);
    run.replicaTicks += replicas.length;
    run.peakReplicas = Math.max(run.peakReplicas, replicas.length);
  }
  return run;
}
