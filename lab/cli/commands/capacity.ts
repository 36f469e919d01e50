// `lab capacity`: memory, latency and throughput of one deployment from lab/capacity's sourced
// tables and roofline. Bad input (unknown model/GPU/format, TP that does not split the heads, a
// context beyond the model's) exits 2 with what is known.
import { UsageError } from "../../errors.ts";
import {
  CapacityError, DEFAULTS, mmcMeanWait, estimateLatency, findFormat, findGpu, findKvFormat, findModel, GPUS, KV_FORMATS, MODELS,
  parameterCount, peakFlops, planMemory, WEIGHT_FORMATS, type LatencyEstimate, type MemoryPlan,
} from "../../capacity/index.ts";
import { numberFlag, parseFlags, printJson, say, type Command } from "../command.ts";

const DEFAULT_PROMPT = 1024;
const DEFAULT_OUTPUT = 256;

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

export const capacityCommand: Command = {
  name: "capacity",
  summary: "Memory fit, TTFT/TPOT and throughput of an LLM deployment (roofline, sourced GPU/model tables)",
  help: `Usage: lab capacity --model M --gpu G [--gpus N] [--format F] [--kv fp16|fp8] [--context N]
                    [--concurrency N] [--prompt-tokens N] [--output-tokens N] [--mfu X] [--mbu X]
                    [--headroom X] [--cached-share X] [--speculative-speedup X] [--queue-wait-ms N]
                    [--all-reduce-latency-us N] [--arrival-rate R] [--json]

Memory per GPU = weights ÷ TP + KV cache (2 × layers × KV heads × head dim × bytes per token, × context
× concurrency, split over TP) + headroom. Latency is a roofline: prefill and decode each take the longer
of compute (FLOP/s × MFU) and memory (bandwidth × MBU) time, plus tensor-parallel all-reduces over the
interconnect. TTFT = queue wait + prefill × (1 − cached share); TPOT ÷ speculative speedup.

Options:
  --model M                  ${[...MODELS.map((m) => m.key), "target"].join(", ")} (target = data/models/target.gguf)
  --gpu G                    ${GPUS.map((g) => g.key).join(", ")}
  --gpus N                   tensor-parallel GPUs in one replica (default 1); must split the heads
  --format F                 ${WEIGHT_FORMATS.map((f) => f.key).join(", ")} (default fp16)
  --kv K                     ${KV_FORMATS.map((k) => k.key).join(", ")} (default fp16)
  --context N                tokens of KV cache per sequence (default prompt + output tokens)
  --concurrency N            sequences decoding together (default 1)
  --prompt-tokens N          default ${DEFAULT_PROMPT}
  --output-tokens N          default ${DEFAULT_OUTPUT}
  --mfu X, --mbu X           efficiencies (default ${DEFAULTS.mfu.value} and ${DEFAULTS.mbu.value}; sources in --json assumptions)
  --headroom X               fraction of GPU memory held back (default ${DEFAULTS.headroom.value})
  --cached-share X           share of the prompt served by a prefix cache, in [0, 1) (default 0)
  --speculative-speedup X    measured TPOT speedup from speculative decoding, ≥ 1 (default 1)
  --queue-wait-ms N          queueing delay added to TTFT (default 0)
  --arrival-rate R           requests/s offered to one replica: the queue wait is M/M/c's (Erlang C) with
                             c = concurrency slots and mean service time = the end-to-end latency
  --all-reduce-latency-us N  fixed cost per all-reduce (default 0: not modelled without a measurement)
  --json                     print { inputs, memory, latency, throughput, assumptions } on stdout

Examples:
  lab capacity --model llama-2-70b --gpu h100-sxm --format awq-int4 --context 4096 --concurrency 16
  lab capacity --model llama-2-70b --gpu a100-80gb --gpus 4 --kv fp8 --json
  lab capacity --model llama-3-8b --gpu l4 --format fp8 --concurrency 8 --arrival-rate 0.3`,
  async run(args) {
    const { values } = parseFlags("capacity", args, {
      model: { type: "string" }, gpu: { type: "string" }, gpus: { type: "string" }, format: { type: "string" }, kv: { type: "string" },
      context: { type: "string" }, concurrency: { type: "string" }, "prompt-tokens": { type: "string" }, "output-tokens": { type: "string" },
      mfu: { type: "string" }, mbu: { type: "string" }, headroom: { type: "string" }, "cached-share": { type: "string" },
      "speculative-speedup": { type: "string" }, "queue-wait-ms": { type: "string" }, "all-reduce-latency-us": { type: "string" },
      "arrival-rate": { type: "string" }, json: { type: "boolean" },
    });
    if (!values.model) throw new UsageError(`lab capacity: --model is required; known: ${[...MODELS.map((m) => m.key), "target"].join(", ")}`);
    if (!values.gpu) throw new UsageError(`lab capacity: --gpu is required; known: ${GPUS.map((g) => g.key).join(", ")}`);
    const known = <T>(find: () => T): T => {
      try {
        return find();
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`lab capacity: ${err.message}`);
        throw err;
      }
    };
    const gpu = known(() => findGpu(values.gpu!));
    const format = known(() => findFormat(values.format ?? "fp16"));
    const kv = known(() => findKvFormat(values.kv ?? "fp16"));
    let model;
    try {
      model = await findModel(values.model);
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(`lab capacity: ${err.message}`);
      throw err;
    }
    const int = (flag: string, fallback: number) => numberFlag("capacity", flag, values[flag as keyof typeof values] as string | undefined, fallback, { min: 1, integer: true });
    const num = (flag: string, fallback: number, min: number, max: number) => numberFlag("capacity", flag, values[flag as keyof typeof values] as string | undefined, fallback, { min, max });
    const tp = int("gpus", 1);
    const promptTokens = int("prompt-tokens", DEFAULT_PROMPT);
    const outputTokens = int("output-tokens", DEFAULT_OUTPUT);
    const context = int("context", promptTokens + outputTokens);
    const concurrency = int("concurrency", 1);
    if (context < promptTokens + outputTokens) {
      throw new UsageError(`lab capacity: --context ${context} cannot hold --prompt-tokens ${promptTokens} + --output-tokens ${outputTokens}`);
    }
    const mfu = num("mfu", DEFAULTS.mfu.value, 1e-6, 1);
    const mbu = num("mbu", DEFAULTS.mbu.value, 1e-6, 1);
    const headroom = num("headroom", DEFAULTS.headroom.value, 0, 0.99);
    const cachedShare = num("cached-share", 0, 0, 0.999999);
    const speculativeSpeedup = num("speculative-speedup", 1, 1, 100);
    const queueWaitS = num("queue-wait-ms", 0, 0, 1e9) / 1e3;
    const allReduceLatencyS = num("all-reduce-latency-us", 0, 0, 1e6) / 1e6;
    const arrivalRate = values["arrival-rate"] === undefined ? undefined : num("arrival-rate", 0, 1e-9, 1e9);
    if (arrivalRate !== undefined && values["queue-wait-ms"] !== undefined) throw new UsageError("lab capacity: give --arrival-rate or --queue-wait-ms, not both");

    let memory: MemoryPlan;
    let latency: LatencyEstimate;
    try {
      memory = planMemory({ model, gpu, format, kv, tp, context, concurrency, headroom });
      const input = { model, gpu, format, kv, tp, promptTokens, outputTokens, concurrency, mfu, mbu, queueWaitS, cachedShare, speculativeSpeedup, allReduceLatencyS };
      latency = estimateLatency(input);
      if (arrivalRate !== undefined) {
        // M/M/c: c slots, each busy for one end-to-end latency per request (exponential service assumed)
        const capacity = concurrency / (latency.e2eMs / 1e3);
        if (arrivalRate >= capacity) {
          throw new UsageError(`lab capacity: --arrival-rate ${arrivalRate}/s overloads this replica: ${concurrency} slots × 1/${(latency.e2eMs / 1e3).toFixed(2)} s serve at most ${capacity.toFixed(3)} requests/s`);
        }
        latency = estimateLatency({ ...input, queueWaitS: mmcMeanWait(arrivalRate, 1e3 / latency.e2eMs, concurrency) });
      }
    } catch (err) {
      if (err instanceof CapacityError) throw new UsageError(`lab capacity: ${err.message}`);
      throw err;
    }
    const assumptions = [
      `${gpu.name}: ${gb(gpu.memoryBytes)}, ${(gpu.memoryBandwidth / 1e12).toFixed(2)} TB/s, ${(peakFlops(gpu, format).flops / 1e12).toFixed(0)} dense ${latency.math} TFLOP/s — ${gpu.source.url}`,
      `${model.name}: ${model.layers} layers, hidden ${model.hidden}, ${model.heads} heads / ${model.kvHeads} KV heads × ${model.headDim}, FFN ${model.ffn}, vocab ${model.vocab}, ${(parameterCount(model) / 1e9).toFixed(2)}B parameters — ${model.source.url}`,
      `weights ${format.name}: ${format.source.says} — ${format.source.url}`,
      `KV cache ${kv.key}: ${kv.bytesPerElement} byte(s) per element — ${kv.source.url}`,
      `MFU ${mfu}${values.mfu ? " (given)" : ` — ${DEFAULTS.mfu.source.says} (${DEFAULTS.mfu.source.url})`}`,
      `MBU ${mbu}${values.mbu ? " (given)" : ` — ${DEFAULTS.mbu.source.says} (${DEFAULTS.mbu.source.url})`}`,
      `headroom ${headroom} of each GPU's memory${values.headroom ? " (given)" : ` — ${DEFAULTS.headroom.source.says} (${DEFAULTS.headroom.source.url})`}; activations are not counted separately`,
      `decode: the average sequence is at prompt + output/2 tokens; prefill of one request alone; TP all-reduce latency ${allReduceLatencyS * 1e6} µs`,
      arrivalRate === undefined ? `queue wait ${queueWaitS * 1e3} ms (given, or 0)` : `queue wait ${(latency.ttftMs - latency.prefillMs).toFixed(1)} ms: M/M/c mean wait (Erlang C) at ${arrivalRate} requests/s, c = ${concurrency}, service = e2e latency`,
    ];
    const throughput = {
      decodeTokensPerSecond: latency.decodeTokensPerSecond,
      decodeTokensPerSecondPerGpu: latency.decodeTokensPerSecond / tp,
      requestsPerSecond: latency.requestsPerSecond,
    };
    if (values.json) {
      printJson({
        inputs: { model: model.key, gpu: gpu.key, gpus: tp, format: format.key, kv: kv.key, context, concurrency, promptTokens, outputTokens, mfu, mbu, headroom, cachedShare, speculativeSpeedup, arrivalRate: arrivalRate ?? null, queueWaitMs: latency.ttftMs - latency.prefillMs },
        memory, latency, throughput, assumptions,
      });
      return 0;
    }
    const p = memory.perGpu;
    const lines = [
      `${model.name} on ${tp} × ${gpu.name}, ${format.name} weights, ${kv.key} KV, ${concurrency} × ${context} tokens`,
      `memory per GPU: weights ${gb(p.weightsBytes)} + KV ${gb(p.kvBytes)} (${memory.kvBytesPerToken.toLocaleString("en-US")} B/token) + headroom ${gb(p.headroomBytes)} = ${gb(p.totalBytes)} of ${gb(p.capacityBytes)} → ${memory.fits ? "fits" : "DOES NOT FIT"}`,
      `  at ${context} tokens at most ${memory.maxConcurrency} sequences fit; at ${concurrency} sequences at most ${memory.maxContext} tokens each`,
      `latency: TTFT ${latency.ttftMs.toFixed(1)} ms (prefill ${latency.prefillMs.toFixed(1)} ms), TPOT ${latency.tpotMs.toFixed(2)} ms (${latency.decodeBound}-bound; crossover batch ${latency.crossoverBatch.toFixed(0)}), end to end ${(latency.e2eMs / 1e3).toFixed(2)} s`,
      `throughput: ${throughput.decodeTokensPerSecond.toFixed(0)} output tokens/s (${throughput.decodeTokensPerSecondPerGpu.toFixed(0)} per GPU), ${throughput.requestsPerSecond.toFixed(2)} requests/s`,
      "assumptions:", ...assumptions.map((a) => `  - ${a}`),
    ];
    process.stdout.write(lines.join("\n") + "\n");
    if (!memory.fits) say(`lab capacity: this configuration does not fit; try more --gpus, a smaller --format or --kv fp8`);
    return 0;
  },
};
