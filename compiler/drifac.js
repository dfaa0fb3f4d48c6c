#!/usr/bin/env node
// The `drifac` command. The compiler is written in TypeScript and run from source through tsx's
// loader, so a fresh clone needs no build step and the CLI never runs stale output.
import { register } from "tsx/esm/api";

register();
// `drifac ir ... | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}
const { main } = await import("./cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
