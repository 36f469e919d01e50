#!/usr/bin/env node
// Entry point of the `lab` command. The kit is TypeScript; tsx's loader lets Node run it directly.
import { register } from "tsx/esm/api";
register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
