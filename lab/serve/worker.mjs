// Worker-thread entry for lab/serve/worker.ts. Workers do not inherit the parent's TypeScript
// loader, so this registers tsx before importing the TypeScript module (as lab/train/worker.mjs).
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { EngineWorker } = await import("./worker.ts");
await new EngineWorker(parentPort, workerData).start();
