// When a load test sends its requests.
//
// Open loop (a Poisson process at `rate` requests per second): requests arrive whether or not the
// server has answered the earlier ones, as users of a public service do. The gaps between arrivals
// are independent exponential draws with mean 1/rate (inverse transform: −ln(1 − u)/rate for u
// uniform in [0, 1)), seeded, so two runs with the same seed send at the same offsets. This is what
// exposes queueing: when the server falls behind, requests wait and TTFT grows without bound.
//
// Closed loop (`concurrency` C): C simulated users, each sending its next request when its previous
// one has finished. The server can never fall behind by more than C requests, so a closed loop
// measures throughput at a fixed load but hides queueing delay (it slows the arrivals down instead).
import { mulberry32 } from "../random.ts";

/** Milliseconds from the start of the test at which each of `count` requests is sent; rate in
 *  requests per second (Infinity: all at once, at 0). */
export function poissonArrivalsMs(rate: number, count: number, seed: number): number[] {
  if (!(rate > 0)) throw new RangeError(`arrival rate must be > 0 requests/s, got ${rate}`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`request count must be an integer >= 0, got ${count}`);
  if (rate === Infinity) return new Array<number>(count).fill(0);
  const random = mulberry32(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += (-Math.log(1 - random()) / rate) * 1000;
    out.push(t);
  }
  return out;
}
