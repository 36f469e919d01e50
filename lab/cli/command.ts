// What every `lab` subcommand is, and the few helpers they share: flag parsing that turns mistakes
// into UsageError (exit code 2), and the --json convention (one JSON document on stdout, human text
// on stderr).
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.ts";

export interface Command {
  /** Words after `lab`, e.g. "notebooks run" or "quantize". */
  name: string;
  /** One line for `lab --help`. */
  summary: string;
  /** Full help for `lab NAME --help`: usage line, flags, examples. */
  help: string;
  /** Runs with the arguments after the name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Strict flag parsing: unknown flags, missing values and extra positionals become UsageError. */
export function parseFlags<O extends Options>(
  command: string,
  args: string[],
  options: O,
  positionals: { min?: number; max?: number } = { min: 0, max: 0 },
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`lab ${command}: ${(err as Error).message}`);
  }
  const n = parsed.positionals.length;
  const { min = 0, max = Infinity } = positionals;
  if (n < min) throw new UsageError(`lab ${command}: expected at least ${min} argument(s), got ${n}`);
  if (n > max) throw new UsageError(`lab ${command}: unexpected argument "${parsed.positionals[max]}"`);
  return parsed;
}

/** Parses a flag value as a number within bounds, or throws UsageError naming the flag. */
export function numberFlag(command: string, flag: string, value: string | undefined, fallback: number,
  { min = -Infinity, max = Infinity, integer = false } = {}): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (!Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < min || x > max) {
    throw new UsageError(`lab ${command}: --${flag} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], got "${value}"`);
  }
  return x;
}

/** Human-readable progress and reports go to stderr so stdout stays machine-readable. */
export function say(...parts: unknown[]): void {
  process.stderr.write(parts.map(String).join(" ") + "\n");
}

/** The --json output: exactly one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
