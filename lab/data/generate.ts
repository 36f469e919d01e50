// The "tiny world" corpus: a seeded generator of short, regular, templated text in five task families,
// so a 1–4M-parameter model trained for half an hour can learn them and we can measure, per family,
// how quality degrades under quantization.
//
//   prose       short stories about the world's people            -> perplexity (eval: prose.jsonl {text})
//   arithmetic  "Q: 47 + 85 = ? A: 132"                           -> exact match, eval items held out
//   facts       "Q: Where does Mira live? A: Tolven"              -> exact match, every fact in training
//   code        "Code: x = 3; y = 5; x = 7; print(x + 2) Output: 9" -> exact match, eval programs held out
//   chat        transcripts that all open with one long system prompt (for prefix-caching experiments)
//
// Reading order: 1. seeded randomness  2. the world (knowledge base)  3. one generator per task family
// 4. eval items  5. generateCorpus, which assembles train/val text and eval sets.
// Everything here is pure: the same seed gives the same strings on every machine (no Math.random, no
// locale, no Date). File I/O lives in lab/data/index.ts.

// ---------------------------------------------------------------------------------------------------
// 1. Seeded randomness
// ---------------------------------------------------------------------------------------------------
import { mulberry32 } from "../random.ts";

/** A small, fast, well-mixed PRNG (mulberry32). Streams are derived per task so that changing one
 *  generator does not reshuffle the others. */
export class Rng {
  private readonly draw: () => number;
  constructor(seed: number) {
    this.draw = mulberry32(seed);
  }
  /** Derives an independent stream from a seed and a label (FNV-1a of the label mixed into the seed). */
  static stream(seed: number, label: string): Rng {
    let h = 0x811c9dc5 ^ (seed >>> 0);
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.draw();
  }
  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. The world: a fixed knowledge base of invented people
// ---------------------------------------------------------------------------------------------------

export const COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink", "brown"] as const;
export const JOBS = ["baker", "farmer", "teacher", "doctor", "painter", "fisher", "builder", "singer",
  "tailor", "potter", "miner", "sailor", "cook", "guard", "smith", "weaver"] as const;
export const PETS = ["cat", "dog", "rabbit", "goat", "parrot", "turtle", "horse", "duck"] as const;
const PLACES = ["market", "river", "bridge", "school", "park", "library", "harbor", "hill", "garden", "square"] as const;
const OBJECTS = ["stone", "hat", "book", "box", "ribbon", "cup", "key", "kite", "lamp", "shoe", "apple", "feather"] as const;

export interface Person {
  name: string;
  pronoun: "she" | "he";
  town: string;
  job: (typeof JOBS)[number];
  color: (typeof COLORS)[number];
  pet: (typeof PETS)[number];
}

export interface World {
  towns: string[];
  people: Person[];
}

export const N_PEOPLE = 200;
export const N_TOWNS = 24;

const ONSETS = ["b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "tr", "st", "th", "sh"];
const VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o"];
const CODAS = ["", "", "", "n", "r", "l", "s", "m"];
const TOWN_ENDINGS = ["ford", "wick", "holm", "dale", "mere", "by", "ton", "stead"];

function capitalize(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

function syllable(rng: Rng): string {
  return rng.pick(ONSETS) + rng.pick(VOWELS) + rng.pick(CODAS);
}

/** The knowledge base: N_TOWNS towns and N_PEOPLE people, each with one town, job, color and pet.
 *  Names are unique and never collide with towns or ordinary words used by the templates. */
export function buildWorld(seed: number): World {
  const rng = Rng.stream(seed, "world");
  const taken = new Set<string>(["The", "She", "He", "One", "Every", "In", "It", "Hello", "Code", "Output", "User",
    "Assistant", "System", "Thank", "Yes", "No"]);
  const towns: string[] = [];
  while (towns.length < N_TOWNS) {
    const name = capitalize(syllable(rng) + rng.pick(TOWN_ENDINGS));
    if (!taken.has(name)) { taken.add(name); towns.push(name); }
  }
  const people: Person[] = [];
  while (people.length < N_PEOPLE) {
    const name = capitalize(syllable(rng) + rng.pick(VOWELS) + rng.pick(["n", "r", "l", "s", "", "ra", "na", "ko", "lo"]));
    if (name.length < 3 || name.length > 8 || taken.has(name)) continue;
    taken.add(name);
    people.push({
      name,
      pronoun: rng.chance(0.5) ? "she" : "he",
      town: rng.pick(towns),
      job: rng.pick(JOBS),
      color: rng.pick(COLORS),
      pet: rng.pick(PETS),
    });
  }
  return { towns, people };
}

export type Relation = "town" | "job" | "color" | "pet";
export const RELATIONS: readonly Relation[] = ["town", "job", "color", "pet"];

/** The canonical question for a fact; its answer is exactly the attribute value. */
export function factQuestion(p: Person, rel: Relation): string {
  switch (rel) {
    case "town": return `Where does ${p.name} live?`;
    case "job": return `What is the job of ${p.name}?`;
    case "color": return `What color does ${p.name} like?`;
    case "pet": return `What pet does ${p.name} have?`;
  }
}

/** The same fact as a plain sentence. */
export function factStatement(p: Person, rel: Relation): string {
  switch (rel) {
    case "town": return `${p.name} lives in ${p.town}.`;
    case "job": return `${p.name} works as a ${p.job}.`;
    case "color": return `${p.name} likes the color ${p.color}.`;
    case "pet": return `${p.name} has a ${p.pet}.`;
  }
}

export function factAnswer(p: Person, rel: Relation): string {
  return p[rel];
}

// ---------------------------------------------------------------------------------------------------
// 3. Task generators (each returns one document: a string without blank lines)
// ---------------------------------------------------------------------------------------------------

// --- prose --------------------------------------------------------------------------------------

const WEATHER = ["sunny", "cold", "windy", "quiet", "warm", "grey", "bright", "rainy"] as const;
const FEELINGS = ["happy", "surprised", "tired", "glad", "curious", "calm"] as const;
const TIMES = ["morning", "afternoon", "evening"] as const;
const FOODS = ["bread", "soup", "apples", "cheese", "fish", "cake", "rice", "pie"] as const;
const DISHES = ["bread", "soup", "cake", "rice", "pie", "tea"] as const;

/** A short story (5–9 sentences) that agrees with the knowledge base. */
export function story(rng: Rng, world: World): string {
  const p = rng.pick(world.people);
  let q = rng.pick(world.people);
  while (q === p) q = rng.pick(world.people);
  const Pr = capitalize(p.pronoun);
  const pos = p.pronoun === "she" ? "her" : "his";
  const obj = p.pronoun === "she" ? "her" : "him";
  const s: string[] = [];
  s.push(rng.pick([
    `${p.name} lived in ${p.town}.`,
    `${p.name} was a ${p.job} who lived in ${p.town}.`,
    `In the town of ${p.town}, there lived a ${p.job} named ${p.name}.`,
    `Once upon a time, ${p.name} lived in ${p.town} with a ${p.pet}.`,
  ]));
  if (rng.chance(0.6)) s.push(`${Pr} worked as a ${p.job} and ${rng.pick(["loved", "liked", "enjoyed"])} ${pos} work.`);
  s.push(rng.pick([
    `Every morning ${p.pronoun} fed ${pos} ${p.pet} and walked to the ${rng.pick(PLACES)}.`,
    `${Pr} liked the color ${p.color} more than any other color.`,
    `${Pr} had a ${p.pet} that followed ${obj} everywhere.`,
    `The day was ${rng.pick(WEATHER)}, and ${p.name} went to the ${rng.pick(PLACES)}.`,
  ]));
  const events = rng.shuffle([0, 1, 2, 3, 4]).slice(0, rng.int(1, 3));
  for (const event of events) {
    switch (event) {
      case 0:
        s.push(`One ${rng.pick(TIMES)}, ${p.name} met ${q.name} at the ${rng.pick(PLACES)}.`);
        s.push(`${q.name} was a ${q.job} from ${q.town}.`);
        if (rng.chance(0.5)) s.push(`"Hello, ${p.name}!" said ${q.name}. "Do you want some ${rng.pick(FOODS)}?"`);
        break;
      case 1: {
        const thing = rng.pick(OBJECTS);
        s.push(`Near the ${rng.pick(PLACES)}, ${p.pronoun} found a ${rng.pick(COLORS)} ${thing}.`);
        s.push(`${Pr} was ${rng.pick(FEELINGS)} and took the ${thing} home.`);
        break;
      }
      case 2:
        s.push(`The sky was ${rng.pick(WEATHER)}, so ${p.name} stayed at home and made ${rng.pick(DISHES)}.`);
        break;
      case 3:
        s.push(`${p.name} painted the door ${p.color}, because ${p.color} was ${pos} favorite color.`);
        break;
      default:
        s.push(`${p.name} and ${pos} ${p.pet} went to visit ${q.name} in ${q.town}.`);
        s.push(`They ate ${rng.pick(FOODS)} and talked until the ${rng.pick(TIMES)}.`);
    }
  }
  s.push(rng.pick([
    `In the evening, ${p.name} went home and slept.`,
    `It was a good day.`,
    `${p.name} smiled and went back to work.`,
    `Then ${p.pronoun} went home to ${p.town}.`,
  ]));
  return s.join(" ");
}

// --- arithmetic ---------------------------------------------------------------------------------

export interface ArithmeticItem { a: number; op: "+" | "-"; b: number }

/** Operands with 1–2 digits (digit count uniform); subtraction never goes negative. Why not 3: with
 *  1–3 digit operands the 2-layer target got 5.6% of held-out 2-digit additions (and 9% of all
 *  arithmetic). Fine-tuning that model on arithmetic alone reached 5% of 200 held-out 2-digit
 *  additions in 600 steps with 1–3 digit operands, and 31% in 1000 steps with 1–2 digit ones. Trained
 *  from scratch on 1–2 digit operands (and twice the arithmetic share), the target adds held-out 2-digit
 *  numbers correctly 94% of the time (data/models/README.md). */
export function arithmeticItem(rng: Rng): ArithmeticItem {
  const operand = () => {
    const digits = rng.int(1, 2);
    return digits === 1 ? rng.int(0, 9) : rng.int(10 ** (digits - 1), 10 ** digits - 1);
  };
  let a = operand();
  let b = operand();
  const op = rng.chance(0.5) ? "+" : "-";
  if (op === "-" && a < b) [a, b] = [b, a];
  return { a, op, b };
}

/** Both operands single digits: the 155 problems of the addition and subtraction table. Training
 *  teaches the whole table (as a times table is taught), so these are never held out and never asked
 *  in the eval set: every eval item has a 2-digit operand the model has not seen in that problem. */
export function isTableProblem(it: ArithmeticItem): boolean {
  return it.a < 10 && it.b < 10;
}

export function arithmeticKey(it: ArithmeticItem): string {
  return `${it.a} ${it.op} ${it.b}`;
}

export function arithmeticAnswer(it: ArithmeticItem): number {
  return it.op === "+" ? it.a + it.b : it.a - it.b;
}

export function arithmeticPrompt(it: ArithmeticItem): string {
  return `Q: ${arithmeticKey(it)} = ? A:`;
}

// --- code tracing -------------------------------------------------------------------------------

const VARS = ["a", "b", "c", "n", "x", "y", "z"] as const;

export interface CodeItem { program: string; output: number }

/** A straight-line program: 2–4 assignments of digits to variables (a later one may overwrite an
 *  earlier variable: the last assignment wins), then print of a variable, or of a variable plus or
 *  minus a digit. What it measures is variable tracking — find the binding that is live at the print —
 *  with one small sum, which a 2-layer model can learn. Programs whose values flow through several
 *  assignments were beyond what the embedded models learn in their budget (measured: 7–9% exact match
 *  for 2- and 4-layer probes, about what guessing the most common output gets). Outputs lie in
 *  [0, CODE_MAX]. */
export const CODE_MAX = 18;
export function codeItem(rng: Rng): CodeItem {
  const env = new Map<string, number>();
  const statements: string[] = [];
  const assigns = rng.int(2, 4);
  for (let i = 0; i < assigns; i++) {
    const target = env.size > 0 && rng.chance(0.25) ? rng.pick([...env.keys()]) : rng.pick(VARS);
    const v = rng.int(0, 9);
    env.set(target, v);
    statements.push(`${target} = ${v}`);
  }
  const name = rng.pick([...env.keys()]), value = env.get(name)!;
  if (rng.chance(0.4)) {
    statements.push(`print(${name})`);
    return { program: statements.join("; "), output: value };
  }
  const d = rng.int(1, 9);
  const op = value - d >= 0 && rng.chance(0.5) ? "-" : "+";
  statements.push(`print(${name} ${op} ${d})`);
  return { program: statements.join("; "), output: op === "+" ? value + d : value - d };
}

export function codePrompt(it: CodeItem): string {
  return `Code: ${it.program} Output:`;
}

// --- chat ---------------------------------------------------------------------------------------

/** The one long system prompt every chat transcript opens with (the shared prefix for caching). */
export function systemPrompt(world: World): string {
  const towns = world.towns.join(", ");
  return [
    "System: You are Tilly, the friendly guide of the Valley of Rivers. You help the people of the valley",
    "and the visitors who come to it. You answer questions about the people who live in the valley, about",
    "the towns where they live, about the work they do, about the colors they like and about the animals",
    "they keep at home. You also help with small sums and with short programs, and you explain what a",
    "program prints when it runs. Always follow these rules.",
    "Rule one: be kind and be brief. Answer the question that was asked, in one or two short sentences,",
    "and do not add a long story unless the user asks for a story.",
    "Rule two: be correct. When you are asked about a person, give only what you know about that person.",
    "If you do not know the answer, say that you do not know. Never invent a person, a town or a job.",
    "Rule three: when you add or subtract numbers, write the sum and then the answer, for example",
    "twelve plus seven is written as 12 + 7 = 19. Check each digit from right to left, and carry the one",
    "when a column is ten or more. When you subtract, borrow from the next column when you need to.",
    "Rule four: when you read a program, read it from left to right, one statement at a time. A statement",
    "like x = 3 puts the number three into the name x, and a new number put into x replaces the old one.",
    "print(x + 2) prints the number in x plus two. When the program says print, say the number that it prints.",
    "Rule five: speak plainly. Use short words. Do not use words that the people of the valley would not know.",
    "Rule six: if the user greets you, greet the user back and ask how you can help today.",
    "Rule seven: if the user says thank you, say that you are glad to help.",
    `About the valley: the valley has ${world.towns.length} towns. The towns are ${towns}.`,
    "Each town has a market, a school, a library, a park, a garden and a square, and most towns have a",
    "bridge over the river. Some towns also have a harbor, and the hills are to the north of the valley.",
    `The people of the valley work as ${JOBS.join(", ")}.`,
    `Their favorite colors are ${COLORS.join(", ")}, and they keep pets such as ${PETS.join(", ")}.`,
    "Every person in the valley lives in exactly one town, has exactly one job, likes exactly one color",
    "and keeps exactly one pet. When you are asked where a person lives, answer with the name of the town.",
    "When you are asked about a job, answer with the job. When you are asked about a color, answer with",
    "the color. When you are asked about a pet, answer with the animal.",
    "The weather in the valley is often sunny in the morning and windy in the evening. In the cold months",
    "the river is grey and quiet, and in the warm months the gardens are bright with flowers of every color.",
    "The people of the valley like bread, soup, apples, cheese, fish, cake, rice and pie, and they often",
    "share their food with their friends. They meet at the market in the morning and at the square in the",
    "evening, and they tell each other stories about the day.",
    "Remember: be kind, be brief, be correct, and help the user with what the user asked. Now the",
    "conversation with the user begins.",
  ].join(" ");
}

/** The assistant's line for a person question: a whole sentence (the Q/A form answers one word). */
export function chatFactAnswer(p: Person, rel: Relation): string {
  return rel === "town" ? `${p.name} lives in ${p.town}.` : rel === "job" ? `${p.name} is a ${p.job}.`
    : rel === "color" ? `${p.name} likes ${p.color}.` : `${p.name} has a ${p.pet}.`;
}

// One [user, assistant] form per kind of exchange, shared by transcripts, dialog and the chat eval
// set, so what the models are trained on and what they are graded on cannot drift apart.
const sumExchange = (it: ArithmeticItem): [string, string] => [`What is ${arithmeticKey(it)}?`, `${arithmeticKey(it)} = ${arithmeticAnswer(it)}.`];
const programExchange = (it: CodeItem): [string, string] => [`What does this program print? ${it.program}`, `It prints ${it.output}.`];
const greetingExchange = (rng: Rng): [string, string] => [rng.pick(["Hello!", "Hi!", "Good morning!"]), "Hello! How can I help you today?"];

function chatTurn(rng: Rng, world: World, heldOut: HeldOut): [string, string] {
  switch (rng.int(0, 6)) {
    case 0: case 1: case 2: {
      const p = rng.pick(world.people);
      const rel = rng.pick(RELATIONS);
      return [factQuestion(p, rel), chatFactAnswer(p, rel)];
    }
    case 3:
      return sumExchange(freshArithmetic(rng, heldOut));
    case 4:
      return programExchange(freshCode(rng, heldOut));
    case 5:
      return greetingExchange(rng);
    default: {
      const p = rng.pick(world.people);
      return [`Tell me about ${p.name}.`,
        `${p.name} lives in ${p.town} and works as a ${p.job}. ${capitalize(p.pronoun)} likes ${p.color} and has a ${p.pet}.`];
    }
  }
}

/** A transcript: the system prompt, then 2–4 user/assistant exchanges, one line each. */
export function chat(rng: Rng, world: World, heldOut: HeldOut): string {
  const lines = [systemPrompt(world)];
  const turns = rng.int(2, 4);
  for (let i = 0; i < turns; i++) {
    const [user, assistant] = chatTurn(rng, world, heldOut);
    lines.push(`User: ${user}`, `Assistant: ${assistant}`);
  }
  if (rng.chance(0.3)) lines.push("User: Thank you!", "Assistant: I am glad to help.");
  return lines.join("\n");
}

/** The chat eval set: the system prompt, 1–3 earlier exchanges (as in training transcripts), then
 *  the question. Person questions cover every person fact relation (each fact is in training, as in
 *  the facts set); sums and programs are the held-out arithmetic and code eval items themselves, so
 *  neither they nor their answers occur in any training text. Drawn from its own random stream:
 *  adding it changed no training document. */
/** Characters of prompt + answer a chat eval item may take: 3,650 characters stay under ~1,000
 *  tokens with this corpus's tokenizer (the data tests check the token count). */
export const CHAT_EVAL_MAX_CHARS = 3650;

function chatEval(rng: Rng, world: World, heldOut: HeldOut, sums: ArithmeticItem[], programs: CodeItem[]): ChatEvalItem[] {
  const nSums = 50, nPrograms = 50, nPeople = SIZES.chat.eval - nSums - nPrograms;
  type Question = Omit<ChatEvalItem, "prompt"> & { user: string };
  const questions: Question[] = [];
  for (let i = 0; i < nPeople; i++) {
    const p = rng.pick(world.people), rel = RELATIONS[i % RELATIONS.length];
    const answer = chatFactAnswer(p, rel);
    questions.push({ kind: "person", user: factQuestion(p, rel), answer, qaPrompt: `Q: ${factQuestion(p, rel)} A:`, qaAnswer: factAnswer(p, rel) });
  }
  for (const it of sums.slice(0, nSums)) {
    const [user, answer] = sumExchange(it);
    questions.push({ kind: "sum", user, answer, qaPrompt: arithmeticPrompt(it), qaAnswer: String(arithmeticAnswer(it)) });
  }
  for (const it of programs.slice(0, nPrograms)) {
    const [user, answer] = programExchange(it);
    questions.push({ kind: "program", user, answer, qaPrompt: codePrompt(it), qaAnswer: String(it.output) });
  }
  return rng.shuffle(questions).map(({ user, answer, kind, qaPrompt, qaAnswer }) => {
    const turns = Array.from({ length: rng.int(1, 3) }, () => chatTurn(rng, world, heldOut));
    const lines = [systemPrompt(world)];
    const last = [`User: ${user}`, "Assistant:"];
    // Keep each item inside the models' 1,024-token context with room to answer: the first earlier
    // exchange always, later ones while prompt + answer stay within CHAT_EVAL_MAX_CHARS (~1,000 tokens).
    turns.forEach(([u, a], i) => {
      const more = [`User: ${u}`, `Assistant: ${a}`];
      if (i === 0 || [...lines, ...more, ...last].join("\n").length + 1 + answer.length <= CHAT_EVAL_MAX_CHARS) lines.push(...more);
    });
    lines.push(...last);
    return { prompt: lines.join("\n"), answer, kind, qaPrompt, qaAnswer };
  });
}

// --- dialog -------------------------------------------------------------------------------------

/** Chat exchanges without the system prompt, for the chat phase's 128-token windows (and, behind the
 *  system prompt, the long phase: lab/train/configs.ts). A transcript is ~1,000
 *  tokens, so 128-token windows almost never see a "User: … / Assistant: …" exchange in it: models
 *  trained on transcripts alone never learned the answer form (no system prompt: 8 of 60 person
 *  questions right). Dialog documents carry exchanges short enough for those windows: every person
 *  fact `personRepeats` times in its chat form, fresh sums and programs (the eval items stay held
 *  out), and greetings. Training text only (no validation split, no eval set: the chat eval set
 *  measures the task), from its own random stream, and not part of the tokenizer's training text,
 *  so adding it changed no other file. Tried: 4,000 sums and 3,000 programs (the target's chat phase
 *  at 1,200 steps, 2e-3). The model then copies a sum's operands (`93 - 8 = 86.`; the committed model,
 *  with 800, says `9 + 9 = 10.`) but gets none of the first 15 right, and after the long phase (whose mix
 *  then carries 2.4 times the dialog tokens) answers 16 of 34 person questions behind the system
 *  prompt (27 with 800), arithmetic 75% and facts 86% of 100 items (87%, 96%): not adopted.
 *  Probed on the committed target (the first 40 chat sums, LabEngine F32): with the operands written
 *  for it (`…\nAssistant: 47 - 10 =`) it completes 0 of 40 correctly, behind the system prompt or with
 *  only the question, while the same items in Q/A form (`Q: 47 - 10 = ? A:`) get 37 of 40. So the
 *  sums fail at computing in the chat answer's context, not at copying operands nor behind the long
 *  prompt: the model's adding is tied to the Q/A form it learned in the short phase. The model card
 *  (data/models/README.md) measures this on every chat item: its probe table asks them again without
 *  the system prompt, with the answer begun, and in Q/A form as the assistant's answer. */
export const DIALOG = { personRepeats: 3, sums: 800, programs: 600, greetings: 100, exchangesPerDoc: 8 } as const;

function dialog(rng: Rng, world: World, heldOut: HeldOut): string[] {
  const exchanges: [string, string][] = [];
  for (let r = 0; r < DIALOG.personRepeats; r++) {
    for (const p of world.people) for (const rel of RELATIONS) exchanges.push([factQuestion(p, rel), chatFactAnswer(p, rel)]);
  }
  for (let i = 0; i < DIALOG.sums; i++) exchanges.push(sumExchange(freshArithmetic(rng, heldOut)));
  for (let i = 0; i < DIALOG.programs; i++) exchanges.push(programExchange(freshCode(rng, heldOut)));
  for (let i = 0; i < DIALOG.greetings; i++) exchanges.push(greetingExchange(rng));
  rng.shuffle(exchanges);
  const out: string[] = [];
  for (let i = 0; i < exchanges.length; i += DIALOG.exchangesPerDoc) {
    out.push(exchanges.slice(i, i + DIALOG.exchangesPerDoc).flatMap(([u, a]) => [`User: ${u}`, `Assistant: ${a}`]).join("\n"));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 4. Eval items and hold-out
// ---------------------------------------------------------------------------------------------------

export interface EvalItem { prompt: string; answer: string }
/** A chat eval item: `prompt` ends with "Assistant:", `answer` is the exact assistant line. `qaPrompt`
 *  and `qaAnswer` ask the same question in the Q/A form of the facts, arithmetic and code sets, so
 *  chat accuracy can be compared with Q/A accuracy on the very same items. */
export interface ChatEvalItem extends EvalItem { kind: ChatEvalKind; qaPrompt: string; qaAnswer: string }
export type ChatEvalKind = "person" | "sum" | "program";
export interface ProseItem { text: string }

/** Keys of eval items that training text must never contain. */
export interface HeldOut { arithmetic: Set<string>; code: Set<string> }

function freshArithmetic(rng: Rng, heldOut: HeldOut): ArithmeticItem {
  for (;;) {
    const it = arithmeticItem(rng);
    if (!heldOut.arithmetic.has(arithmeticKey(it))) return it;
  }
}

function freshCode(rng: Rng, heldOut: HeldOut): CodeItem {
  for (;;) {
    const it = codeItem(rng);
    if (!heldOut.code.has(it.program)) return it;
  }
}

/** Exact-match scoring used by every {prompt, answer} set: the model's continuation up to its first
 *  newline, trimmed, must equal the answer. */
export function exactMatch(continuation: string, answer: string): boolean {
  return continuation.split("\n", 1)[0].trim() === answer;
}

// ---------------------------------------------------------------------------------------------------
// 5. The whole corpus
// ---------------------------------------------------------------------------------------------------

export const TASKS = ["prose", "arithmetic", "facts", "code", "chat"] as const;
export type Task = (typeof TASKS)[number];
export const EVAL_SETS = ["prose", "arithmetic", "facts", "code", "chat"] as const;
export type EvalSetName = (typeof EVAL_SETS)[number];

/** How much of each family to generate. Documents are separated by one blank line in corpus files. */
export const SIZES = {
  prose: { train: 3000, val: 150, eval: 200 },          // stories
  arithmetic: { train: 12000, val: 250, eval: 300 },    // train/val: documents of 8 lines
  facts: { train: 6, val: 60, eval: 300 },              // train: each fact asked 6 times; val: documents
  code: { train: 4500, val: 125, eval: 300 },           // train/val: documents of 8 lines
  chat: { train: 300, val: 30, eval: 250 },             // transcripts; eval: 150 person questions, 50 sums, 50 programs
} as const;

export const LINES_PER_DOC = 8;

export interface Corpus {
  seed: number;
  world: World;
  /** Per task: train and validation text (documents joined by "\n\n", ending in "\n"). */
  text: Record<Task, { train: string; val: string }>;
  /** Short chat exchanges without the system prompt (training only; see DIALOG). */
  dialog: string;
  eval: { prose: ProseItem[]; arithmetic: EvalItem[]; facts: EvalItem[]; code: EvalItem[]; chat: ChatEvalItem[] };
}

function docs(lines: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += LINES_PER_DOC) out.push(lines.slice(i, i + LINES_PER_DOC).join("\n"));
  return out;
}

function joinDocs(documents: string[]): string {
  return documents.join("\n\n") + "\n";
}

/** Generates the whole corpus for a seed. Pure and deterministic. */
export function generateCorpus(seed = 1): Corpus {
  const world = buildWorld(seed);
  const heldOut: HeldOut = { arithmetic: new Set(), code: new Set() };

  // Eval items first, so training generation can avoid them.
  const evalRng = Rng.stream(seed, "eval");
  const arithmeticEval: EvalItem[] = [], arithmeticHeld: ArithmeticItem[] = [];
  while (arithmeticEval.length < SIZES.arithmetic.eval) {
    const it = arithmeticItem(evalRng);
    if (isTableProblem(it) || heldOut.arithmetic.has(arithmeticKey(it))) continue;
    heldOut.arithmetic.add(arithmeticKey(it));
    arithmeticHeld.push(it);
    arithmeticEval.push({ prompt: arithmeticPrompt(it), answer: String(arithmeticAnswer(it)) });
  }
  const codeEval: EvalItem[] = [], codeHeld: CodeItem[] = [];
  while (codeEval.length < SIZES.code.eval) {
    const it = codeItem(evalRng);
    if (heldOut.code.has(it.program)) continue;
    heldOut.code.add(it.program);
    codeHeld.push(it);
    codeEval.push({ prompt: codePrompt(it), answer: String(it.output) });
  }
  const allFacts = world.people.flatMap((p) => RELATIONS.map((rel) => ({ p, rel })));
  const factsEval: EvalItem[] = evalRng.shuffle([...allFacts]).slice(0, SIZES.facts.eval)
    .map(({ p, rel }) => ({ prompt: `Q: ${factQuestion(p, rel)} A:`, answer: factAnswer(p, rel) }));

  // Prose: train, val and eval stories are all distinct.
  const proseRng = Rng.stream(seed, "prose");
  const seenStories = new Set<string>();
  const freshStory = () => {
    for (;;) {
      const s = story(proseRng, world);
      if (!seenStories.has(s)) { seenStories.add(s); return s; }
    }
  };
  const proseEval = Array.from({ length: SIZES.prose.eval }, () => ({ text: freshStory() }));
  const proseTrain = Array.from({ length: SIZES.prose.train }, freshStory);
  const proseVal = Array.from({ length: SIZES.prose.val }, freshStory);

  const arithRng = Rng.stream(seed, "arithmetic");
  const arithLine = () => {
    const it = freshArithmetic(arithRng, heldOut);
    return `${arithmeticPrompt(it)} ${arithmeticAnswer(it)}`;
  };
  const arithLines = (nDocs: number) => Array.from({ length: nDocs * LINES_PER_DOC }, arithLine);

  const codeRng = Rng.stream(seed, "code");
  const codeLine = () => {
    const it = freshCode(codeRng, heldOut);
    return `${codePrompt(it)} ${it.output}`;
  };
  const codeLines = (nDocs: number) => Array.from({ length: nDocs * LINES_PER_DOC }, codeLine);

  // Facts: every fact appears as a question SIZES.facts.train times and as a sentence in a profile
  // document, so recall is pure memorization.
  const factsRng = Rng.stream(seed, "facts");
  const qa = ({ p, rel }: { p: Person; rel: Relation }) => `Q: ${factQuestion(p, rel)} A: ${factAnswer(p, rel)}`;
  const factQa: string[] = [];
  for (let r = 0; r < SIZES.facts.train; r++) factQa.push(...allFacts.map(qa));
  factsRng.shuffle(factQa);
  const profiles = world.people.map((p) => RELATIONS.map((rel) => factStatement(p, rel)).join(" "));
  const factsTrain = factsRng.shuffle([...docs(factQa), ...profiles, ...factsRng.shuffle([...profiles])]);
  const factsVal = docs(Array.from({ length: SIZES.facts.val * LINES_PER_DOC }, () => qa(factsRng.pick(allFacts))));

  const chatRng = Rng.stream(seed, "chat");
  const chats = (n: number) => Array.from({ length: n }, () => chat(chatRng, world, heldOut));

  return {
    seed,
    world,
    text: {
      prose: { train: joinDocs(proseTrain), val: joinDocs(proseVal) },
      arithmetic: { train: joinDocs(docs(arithLines(SIZES.arithmetic.train))), val: joinDocs(docs(arithLines(SIZES.arithmetic.val))) },
      facts: { train: joinDocs(factsTrain), val: joinDocs(factsVal) },
      code: { train: joinDocs(docs(codeLines(SIZES.code.train))), val: joinDocs(docs(codeLines(SIZES.code.val))) },
      chat: { train: joinDocs(chats(SIZES.chat.train)), val: joinDocs(chats(SIZES.chat.val)) },
    },
    dialog: joinDocs(dialog(Rng.stream(seed, "dialog"), world, heldOut)),
    eval: {
      prose: proseEval, arithmetic: arithmeticEval, facts: factsEval, code: codeEval,
      chat: chatEval(Rng.stream(seed, "chat-eval"), world, heldOut, arithmeticHeld, codeHeld),
    },
  };
}
