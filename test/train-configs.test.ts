// The training mixes: which documents each phase's stream holds (lab/train/configs.ts).
import { describe, expect, it } from "vitest";
import { loadCorpus, loadDialog, loadTokenizer, TASKS } from "../lab/data/index.ts";
import { CHAT_DATA_MIX, DATA_MIX, LONG_DATA_MIX, phaseMix, tokenStreams, trainPhases, type TrainMix } from "../lab/train/configs.ts";

const tokenizer = loadTokenizer();
const none: TrainMix = { prose: 0, arithmetic: 0, facts: 0, code: 0, chat: 0, dialog: 0 };

function documents(mix: TrainMix): number[][] {
  const { train, trainDocStarts } = tokenStreams(tokenizer, { mix });
  const starts = Array.from(trainDocStarts!);
  return starts.map((s, i) => Array.from(train.subarray(s, starts[i + 1] ?? train.length)));
}

describe("tokenStreams", () => {
  it("adds the dialog documents, alone and behind the system prompt, as many times as the mix says", () => {
    const dialog = loadDialog(), system = loadCorpus("chat", "train")[0].split("\n", 1)[0];
    const docs = documents({ ...none, dialog: 2, systemDialog: 1 });
    expect(docs).toHaveLength(3 * dialog.length);
    const key = (ids: number[]) => ids.join(",");
    const want = new Map<string, number>();
    for (const d of dialog) {
      const plain = key(tokenizer.encode(d, { bos: true })), withSystem = key(tokenizer.encode(`${system}\n${d}`, { bos: true }));
      want.set(plain, (want.get(plain) ?? 0) + 2);
      want.set(withSystem, (want.get(withSystem) ?? 0) + 1);
    }
    const got = new Map<string, number>();
    for (const d of docs) got.set(key(d), (got.get(key(d)) ?? 0) + 1);
    expect(got).toEqual(want);
  });

  it("gives each phase its mix: the chat phase adds dialog to the short mix, the long phase adds the system-prompt dialog", () => {
    const [short, chat, long] = trainPhases("target", tokenizer.vocabSize);
    expect([phaseMix(short), phaseMix(chat), phaseMix(long)]).toEqual([DATA_MIX, CHAT_DATA_MIX, LONG_DATA_MIX]);
    expect(DATA_MIX.dialog).toBe(0);
    for (const t of TASKS) expect(CHAT_DATA_MIX[t]).toBe(DATA_MIX[t]);
    expect(CHAT_DATA_MIX.dialog).toBeGreaterThan(0);
    expect(LONG_DATA_MIX.systemDialog).toBeGreaterThan(0);
    // Fractions of copies round to whole documents: half of the chat transcripts.
    expect(documents({ ...none, chat: 0.5 })).toHaveLength(Math.round(loadCorpus("chat", "train").length / 2));
  });
});
