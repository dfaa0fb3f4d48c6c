// Shared test helpers: run the CLI in-process with captured output, and write scratch files.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { main } from "../compiler/cli/main.ts";

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

export async function drifac(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** A fresh folder with the given files, plus a copy of models/lib as lib/. */
export function scratch(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-test-"));
  fs.cpSync(path.join(root, "models/lib"), path.join(dir, "lib"), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

export function modelFiles(): string[] {
  return fs.readdirSync(path.join(root, "models")).filter((f) => f.endsWith(".drifa")).map((f) => path.join(root, "models", f));
}

export function libraryFiles(): string[] {
  return fs.readdirSync(path.join(root, "models/lib")).filter((f) => f.endsWith(".drifa")).map((f) => path.join(root, "models/lib", f));
}
