// Text in and out of the service: the chat template of the kit's corpus, and the incremental
// detokenizer that turns a growing list of generated token ids into text deltas with stop strings.
//
// Reading order: chatPrompt (messages → the prompt text the model was trained on), then TextStream.
import type { EngineTokenizer } from "../engine/engine.ts";

// ---------------------------------------------------------------------------------------------
// The chat template

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant";
  content: string;
}

/**
 * The corpus's transcript format (data/corpus/chat.train.txt): one line per turn,
 *   System: …\nUser: …\nAssistant: …\nUser: …\nAssistant:
 * ending with "Assistant:" so the model writes the next answer (it begins with a space, which the
 * service drops). "developer" is OpenAI's newer name for the system role. Several system messages
 * are joined with a space, in order; a transcript without one starts at the first User line. A
 * newline inside a message would start a new turn in this format, so it is folded to a space.
 */
export function chatPrompt(messages: readonly ChatMessage[]): string {
  const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").trim();
  const system = messages.filter((m) => m.role === "system" || m.role === "developer").map((m) => oneLine(m.content)).filter(Boolean);
  const lines: string[] = [];
  if (system.length > 0) lines.push(`System: ${system.join(" ")}`);
  for (const m of messages) {
    if (m.role === "user") lines.push(`User: ${oneLine(m.content)}`);
    else if (m.role === "assistant") lines.push(`Assistant: ${oneLine(m.content)}`);
  }
  lines.push("Assistant:");
  return lines.join("\n");
}

/** Where a chat answer ends: the next turn of the transcript, or the blank line between transcripts. */
export const CHAT_STOP = ["\nUser:", "\nSystem:", "\n\n"];

// ---------------------------------------------------------------------------------------------
// Incremental detokenization with stop strings

/**
 * Text of the tokens generated so far, produced a step at a time.
 *
 * Why not decode each new token alone: a SentencePiece decoder drops the leading space of the first
 * token it is given, and a character outside ASCII may be split over several byte tokens (alone,
 * each decodes to U+FFFD). So each update decodes [anchor, …new tokens] and removes the anchor's
 * own text, where the anchor is the last token already turned into text (at the start, the prompt's
 * last token); the anchor moves on only when the text does not end in a broken character. That
 * keeps every update O(new tokens) instead of re-decoding the whole output.
 *
 * Stop strings: the text is searched for each one (only where a new match can be); at a match the
 * text is cut before it. What is handed out by take() holds back any tail that could still become a
 * stop string (and a trailing U+FFFD), so a client never sees text that is later taken back.
 */
export class TextStream {
  /** The decoded continuation (cut at the stop string once one matched). */
  text = "";
  /** A stop string was found (text ends before it). */
  stopped = false;
  /** Characters of `text` already handed out by take(). */
  private sent = 0;
  /** Tokens of the output whose text is in `stableText`; the anchor is the last of them (or the prompt's). */
  private stableCount = 0;
  private stableText = "";
  private anchor: number | undefined;
  private readonly maxStop: number;

  constructor(private readonly tokenizer: EngineTokenizer, prompt: readonly number[], private readonly stops: readonly string[],
    /** Drop one leading space from the first text handed out (a chat answer follows "Assistant:"). */
    private trimLeadingSpace = false) {
    const last = prompt[prompt.length - 1];
    // BOS decodes to nothing and would make the first word lose its space: no anchor then.
    this.anchor = last === undefined || last === tokenizer.bosId ? undefined : last;
    this.maxStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Takes the whole output so far; returns true when it now contains a stop string. */
  update(generated: readonly number[]): boolean {
    if (this.stopped) return true;
    // Nothing new since the text was last stable: the text cannot have changed.
    if (generated.length === this.stableCount && this.stableText === this.text) return false;
    const before = this.text.length;
    const fresh = generated.slice(this.stableCount);
    let tail: string;
    if (this.anchor === undefined) {
      tail = this.tokenizer.decode(fresh);
    } else {
      const anchorText = this.tokenizer.decode([this.anchor]);
      const both = this.tokenizer.decode([this.anchor, ...fresh]);
      tail = both.startsWith(anchorText) ? both.slice(anchorText.length) : this.tokenizer.decode(fresh);
    }
    const text = this.stableText + tail;
    this.text = text;
    if (!text.endsWith("\uFFFD") && generated.length > 0) {
      this.stableCount = generated.length;
      this.stableText = text;
      this.anchor = generated[generated.length - 1];
    }
    if (this.maxStop === 0) return false;
    const from = Math.max(0, Math.min(before, this.sent) - this.maxStop + 1);
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut < 0) return false;
    this.text = text.slice(0, cut);
    this.stopped = true;
    return true;
  }

  /** The text not handed out yet: everything when `final`, else what can no longer change. */
  take(final: boolean): string {
    let end = this.text.length;
    if (!final && !this.stopped) {
      end -= this.heldBack();
      if (end > this.sent && this.text[end - 1] === "\uFFFD") end--;
    }
    if (end <= this.sent) return "";
    let out = this.text.slice(this.sent, end);
    this.sent = end;
    if (this.trimLeadingSpace) {
      this.trimLeadingSpace = false;
      if (out.startsWith(" ")) out = out.slice(1);
    }
    return out;
  }

  /** Length of the longest tail of the text that is the start of a stop string. */
  private heldBack(): number {
    const text = this.text;
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(s.slice(0, n))) { hold = n; break; }
      }
    }
    return hold;
  }
}
