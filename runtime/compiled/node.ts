// Node side of a compiled model folder: reads manifest.json and the shaders from disk, finds the
// `webgpu` package of the drifa installation that compiled it (the folder may live anywhere),
// and runs the generated trainer's command line. When asked for a batch size the folder was
// not planned for, it re-runs that same `drifac compile` with the batch size added.
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type Gpu, acquireDevice } from "../device.ts";
import { runTrainerCli } from "../trainer/cli.ts";
import type { Manifest } from "./manifest.ts";
import { CompiledModelError, CompiledRunner, readCompiled } from "./runner.ts";

export function readFrom(dir: string) {
  return (relative: string) => fs.readFile(path.join(dir, relative), "utf8");
}

/** A GPU device through the `webgpu` package, resolved from the compiling drifa's installation
 * first (a compiled folder outside the project has no node_modules of its own). */
export async function nodeDevice(manifest: Manifest): Promise<Gpu> {
  const root = path.dirname(path.dirname(manifest.source.drifac));
  try {
    const entry = createRequire(path.join(root, "package.json")).resolve("webgpu");
    const webgpu = (await import(pathToFileURL(entry).href)) as { create(flags: string[]): GPU; globals: Record<string, unknown> };
    for (const [k, v] of Object.entries(webgpu.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    return await acquireDevice({ gpu: webgpu.create([]) });
  } catch (e) {
    if ((e as { code?: string }).code !== "MODULE_NOT_FOUND") throw e;
    return acquireDevice();
  }
}

/** Re-plans the folder for one more batch size by re-running the compile that produced it. */
export function recompileWithBatch(dir: string, manifest: Manifest, batch: number, log: (s: string) => void): void {
  const batches = [...new Set([...Object.keys(manifest.plans).map(Number), batch])].sort((a, b) => a - b);
  const settings = Object.entries(manifest.source.settings).map(([k, v]) => `${k}=${v}`).join(",");
  const args = [manifest.source.drifac, "compile", manifest.source.file, "-o", dir, "--batch", batches.join(","), ...(settings ? ["--set", settings] : []), ...(manifest.source.fuse === false ? ["--no-fuse"] : [])];
  log(`planning ${manifest.model} for batch ${batch}: drifac ${args.slice(1).join(" ")}\n`);
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) {
    throw new CompiledModelError(`could not re-plan for batch ${batch}; run: node ${args.join(" ")}`);
  }
}

/** The generated train.js: `process.exitCode = await trainMain(import.meta.dirname, argv)`. */
export async function trainMain(dir: string, argv: string[]): Promise<number> {
  let { manifest, shaders } = await readCompiled(readFrom(dir));
  let gpu: Gpu | null = null;
  const result = await runTrainerCli(
    argv,
    async (opts) => {
      if (!manifest.plans[String(opts.batch)]) {
        recompileWithBatch(dir, manifest, opts.batch, (s) => process.stderr.write(s));
        ({ manifest, shaders } = await readCompiled(readFrom(dir)));
      }
      gpu ??= await nodeDevice(manifest);
      return CompiledRunner.create(manifest, shaders, { batch: opts.batch, seed: opts.seed, gpu });
    },
    manifest.train,
    { name: manifest.model, metadata: { model: manifest.model, source: manifest.source.file } },
  );
  (gpu as Gpu | null)?.destroy();
  return result.exitCode;
}
