// lab serve: an OpenAI-compatible inference service over the continuous-batching scheduler.
// Reading order: scheduler.ts (the batching), protocol.ts (HTTP thread ↔ engine worker),
// worker.ts (engines, schedulers, caches, drafters), text.ts (chat template, detokenization,
// stop strings), openai.ts (schemas, responses), metrics.ts (Prometheus), server.ts (startServer).
export { startServer, type ServeOptions, type ServerHandle, type ServiceStatus } from "./server.ts";
export { resolveModels, parseModelRef, modelId, MODEL_ALIASES, DEFAULT_MODELS } from "./models.ts";
export { chatPrompt, CHAT_STOP, TextStream, type ChatMessage } from "./text.ts";
export { PREFIX_CACHE_CHOICES, type LoadedModel, type PrefixCacheChoice } from "./protocol.ts";
export { Scheduler, requestLatencies, type Request, type RequestRecord, type SchedulerOptions, type StepStats, type BatchDrafter } from "./scheduler.ts";
export { ModelBatchDrafter, NgramBatchDrafter } from "./drafter.ts";
