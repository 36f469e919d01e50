export function importNodeLlamaCpp(): Promise<typeof import("node-llama-cpp")>;
export function cpuLlama(): Promise<import("node-llama-cpp").Llama>;
