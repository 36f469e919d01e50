// What a load test asks: prompts from the kit's held-out data, so the requests look like the traffic
// our models were trained for (and a server with a prefix cache sees the repeated chat system prompt).
//
// - chat: a conversation from data/corpus/chat.val.txt (the ~920-token system prompt, the earlier
//   turns, then a user question) sent as OpenAI chat messages to /v1/chat/completions. The server
//   applies its chat template; `lab serve`'s renders the corpus format `System: …\nUser: …\nAssistant:`.
// - prose: the first sentences of a held-out story (data/eval/prose.jsonl) sent to /v1/completions,
//   for the model to continue.
// - mixed: each request is chat or prose with probability 1/2.
// All choices are seeded.
import { loadCorpus, loadEvalSet } from "../data/index.ts";
import { mulberry32 } from "../random.ts";

export const PROMPT_SETS = ["chat", "prose", "mixed"] as const;
export type PromptSet = (typeof PROMPT_SETS)[number];

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** One request's input: chat messages (→ /v1/chat/completions) or a text prompt (→ /v1/completions).
 *  maxTokens overrides the load test's max tokens for this request. */
export type LoadPrompt =
  | { kind: "chat"; messages: ChatMessage[]; maxTokens?: number }
  | { kind: "completion"; prompt: string; maxTokens?: number };

/** A corpus chat transcript as messages: "System: …", then alternating "User: …" / "Assistant: …" lines. */
export function parseTranscript(doc: string): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (const line of doc.split("\n")) {
    const m = /^(System|User|Assistant): ?(.*)$/.exec(line);
    if (m) messages.push({ role: m[1]!.toLowerCase() as ChatMessage["role"], content: m[2]! });
    else if (messages.length > 0) messages[messages.length - 1]!.content += `\n${line}`;
    else throw new RangeError(`chat transcript must start with "System: ", got ${JSON.stringify(line.slice(0, 40))}`);
  }
  return messages;
}

/** The corpus's own chat format for messages, ending with "Assistant:" for the model to answer
 *  (what a server without a chat template gets through /v1/completions). */
export function renderChat(messages: readonly ChatMessage[]): string {
  const name = { system: "System", user: "User", assistant: "Assistant" } as const;
  return `${messages.map((m) => `${name[m.role]}: ${m.content}`).join("\n")}\nAssistant:`;
}

/** `count` prompts of a set, seeded. dataDir: the kit's data/ folder (default). */
export function loadTestPrompts(set: PromptSet, count: number, seed = 0, dataDir?: string): LoadPrompt[] {
  if (!PROMPT_SETS.includes(set)) throw new RangeError(`unknown prompt set "${set}" (expected ${PROMPT_SETS.join(" | ")})`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`prompt count must be an integer >= 0, got ${count}`);
  const random = mulberry32(seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const chats = set === "prose" ? [] : loadCorpus("chat", "val", dataDir).map(parseTranscript);
  const stories = set === "chat" ? [] : loadEvalSet("prose", dataDir).map((item) => item.text);
  const out: LoadPrompt[] = [];
  for (let i = 0; i < count; i++) {
    const kind = set === "mixed" ? (random() < 0.5 ? "chat" : "prose") : set;
    if (kind === "chat") {
      const transcript = pick(chats);
      // Cut after one of the user's turns (the answer that followed is what the model should say).
      const userTurns = transcript.flatMap((m, j) => (m.role === "user" ? [j] : []));
      const cut = pick(userTurns);
      out.push({ kind: "chat", messages: transcript.slice(0, cut + 1).map((m) => ({ ...m })) });
    } else {
      // The first one to three sentences of a story.
      const sentences = pick(stories).match(/[^.!?]+[.!?]+["”]?\s*/g) ?? [];
      const n = Math.min(sentences.length, 1 + Math.floor(random() * 3));
      out.push({ kind: "completion", prompt: sentences.slice(0, n).join("").trim() });
    }
  }
  return out;
}
