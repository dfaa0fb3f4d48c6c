// Runs every test/*.test.ts with uvu (TypeScript through tsx) and ends with the line
// `N passed, N failed` that CI reads. Exit code: uvu's.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pattern = process.argv[2] ?? "\\.test\\.ts$";
const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "node_modules/uvu/bin.js"), "test", pattern], {
  cwd: root,
  stdio: ["ignore", "pipe", "pipe"],
  // Kernel variants are measured only by test/gpu-variants.test.ts: elsewhere the default variant
  // keeps every suite fast and independent of a ~/.cache left by earlier runs.
  env: { ...process.env, FORCE_COLOR: "0", DRIFA_AUTOTUNE: process.env.DRIFA_AUTOTUNE ?? "off" },
});
let output = "";
child.stdout.on("data", (d) => {
  output += d;
  process.stdout.write(d);
});
child.stderr.on("data", (d) => {
  output += d;
  process.stderr.write(d);
});
child.on("close", (code) => {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const failed = total - passed || (code !== 0 && total === 0 ? 1 : 0);
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  process.exit(code ?? 1);
});
