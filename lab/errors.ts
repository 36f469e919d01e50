// Errors shared by the whole kit. Each says what went wrong in words a student can act on.

/** Thrown by exercise stubs: the grader shows it as "not started", not as a failure. */
export class NotImplementedError extends Error {
  constructor(task: string) {
    super(`Not implemented: ${task}`);
    this.name = "NotImplementedError";
  }
}

/** Bad command-line usage: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
