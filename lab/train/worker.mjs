// Worker-thread entry for lab/train/parallel.ts. Workers do not inherit the parent's TypeScript
// loader, so each registers tsx itself before importing the TypeScript module.
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { runGradientWorker } = await import("./parallel.ts");
runGradientWorker(parentPort, workerData);
