/// <reference types="@webgpu/types" />
// Picks one variant per kernel for the adapter at hand, as Triton's autotune does: the first
// time a kernel (a set of variants) is seen on an adapter, each variant is timed on scratch
// buffers and the fastest is kept; the choice is cached under the adapter's description and a
// hash of every variant's WGSL, so later runs (and other processes) skip the measurement.
// Why measure at all: on lavapipe the register-blocked kernels beat shared-memory tiles by
// 10x or more (barriers are expensive there), on a real GPU the opposite holds, and no static
// rule of the adapter's limits predicts it reliably.
//
// Measuring never touches a plan's buffers: variants run on zero-filled scratch buffers of the
// same sizes, so tuning cannot change a result (and every variant computes the same values
// within f32 rounding anyway). Timing is wall clock around queue.onSubmittedWorkDone() over a
// batch of dispatches, after a warm-up dispatch (which, on lavapipe, JIT-compiles the shader),
// in rounds that interleave the candidates, the best of each kept; a variant must beat the
// default by 10% to replace it. (Measured one after another, a burst of other work on a 2-core
// machine once made lavapipe pick shared-memory tiles for 154 kernels, 2-5x slower there.)
//
// Browser-safe: the Node cache file is reached through variable-specifier imports (as
// device.ts loads `webgpu`), so bundlers keep node:fs out of a page build; pages use
// localStorage when there is one. Mode: option `mode`, else env DRIFA_AUTOTUNE
// (off | cached | measure), default measure: off = always the default variant; cached = the
// cached choice when there is one, else the default (never measures).
import { type Gpu, withErrorScopes } from "./device.ts";
import type { KernelLaunch } from "./executor.ts";

export type AutotuneMode = "off" | "cached" | "measure";

export interface CacheEntry {
  choice: string;
  /** Milliseconds per dispatch of each variant measured (absent: stopped early, or failed). */
  ms: Record<string, number>;
  at: string;
}

/** Where choices persist. `load` returns every entry; `save` merges new entries in. */
export interface AutotuneCache {
  load(): Promise<Record<string, CacheEntry>>;
  save(entries: Record<string, CacheEntry>): Promise<void>;
}

export interface AutotuneOptions {
  mode?: AutotuneMode;
  /** Default: the Node cache file, else localStorage, else none (measure every time). */
  cache?: AutotuneCache;
  /** Use this variant wherever a kernel has one of that name (tests, debugging); no measuring. */
  prefer?: string;
}

/** Process-wide counters, for tests and reports: kernel signatures measured, choices read from
 * the cache, and signatures left at the default (mode off, or cached with no entry). */
export const autotuneCounters = { measured: 0, fromCache: 0, defaulted: 0 };

/** One alternative as the runtime sees it (index 0 is the kernel's own fields). */
export interface Candidate {
  name: string;
  wgsl: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
}

export const DEFAULT_VARIANT = "register";

export function candidatesOf(k: KernelLaunch): Candidate[] {
  return [
    {
      name: DEFAULT_VARIANT,
      wgsl: k.wgsl,
      workgroupSize: k.workgroupSize,
      dispatch: k.dispatch,
    },
    ...(k.variants ?? []),
  ];
}

/** A 53-bit string hash (cyrb53): short, stable, synchronous (crypto.subtle is async and absent
 * on plain http pages). Collisions only cost a wrong cache hit between two kernel texts. */
export function hash53(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/** Cache key: the adapter, then each variant's name and a hash of its WGSL, grid and layout. */
export function tuneKey(adapter: string, k: KernelLaunch): string {
  const parts = candidatesOf(k).map((c) => `${c.name}:${hash53(`${k.access.join()}\n${k.entryPoint}\n${c.workgroupSize}\n${c.dispatch}\n${c.wgsl}`)}`);
  return `${adapter}|${parts.join(",")}`;
}

type Env = Record<string, string | undefined>;
const env = (): Env => (globalThis as { process?: { env?: Env } }).process?.env ?? {};

export function autotuneMode(options: AutotuneOptions = {}): AutotuneMode {
  const m = options.mode ?? env().DRIFA_AUTOTUNE ?? "measure";
  if (m !== "off" && m !== "cached" && m !== "measure") throw new Error(`DRIFA_AUTOTUNE=${m}: expected off, cached or measure`);
  return m;
}

/** The Node cache file: $XDG_CACHE_HOME/drifa/autotune.json (default ~/.cache/drifa/). */
export async function nodeCacheFile(): Promise<string> {
  const osModule = "node:os";
  const pathModule = "node:path";
  const os = (await import(/* @vite-ignore */ osModule)) as {
    homedir(): string;
  };
  const path = (await import(/* @vite-ignore */ pathModule)) as {
    join(...p: string[]): string;
  };
  return path.join(env().XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "drifa", "autotune.json");
}

interface NodeFs {
  readFileSync(p: string, enc: "utf8"): string;
  writeFileSync(p: string, data: string): void;
  renameSync(a: string, b: string): void;
  mkdirSync(p: string, o: { recursive: true }): void;
}

/** Version 2: choices measured in interleaved rounds with a margin for the default; version 1's
 * choices (one candidate after another) may carry a burst of load, so they are measured again. */
const FORMAT = "drifa-autotune/2";

const parse = (text: string | null | undefined): Record<string, CacheEntry> => {
  try {
    const v = JSON.parse(text ?? "{}") as {
      format?: string;
      entries?: Record<string, CacheEntry>;
    };
    return v.format === FORMAT ? (v.entries ?? {}) : {};
  } catch {
    return {}; // a damaged cache only costs a measurement
  }
};
const serialise = (entries: Record<string, CacheEntry>) => `${JSON.stringify({ format: FORMAT, entries }, null, 1)}\n`;

/** The cache file in Node. Read at every load (other processes may have added entries);
 * written atomically (a temporary file renamed over it) so a crash never leaves half a file.
 * The path is resolved at each call, so XDG_CACHE_HOME set later (tests) is honoured. */
export function nodeFileCache(file?: string): AutotuneCache {
  const fsModule = "node:fs";
  const fsP = import(/* @vite-ignore */ fsModule) as Promise<NodeFs>;
  const where = async () => file ?? (await nodeCacheFile());
  const read = async () => {
    const fs = await fsP;
    try {
      return parse(fs.readFileSync(await where(), "utf8"));
    } catch {
      return {};
    }
  };
  return {
    load: read,
    async save(entries) {
      const fs = await fsP;
      const target = await where();
      fs.mkdirSync(target.replace(/[\\/][^\\/]*$/, ""), { recursive: true });
      const temp = `${target}.${(globalThis as { process?: { pid?: number } }).process?.pid ?? 0}.${Date.now()}.tmp`;
      fs.writeFileSync(temp, serialise({ ...(await read()), ...entries }));
      fs.renameSync(temp, target);
    },
  };
}

/** localStorage in a page (one JSON item). */
export function localStorageCache(storage: Storage, item = "drifa.autotune"): AutotuneCache {
  return {
    load: async () => parse(storage.getItem(item)),
    async save(entries) {
      try {
        storage.setItem(item, serialise({ ...parse(storage.getItem(item)), ...entries }));
      } catch {
        // Quota or privacy mode: the next page load measures again.
      }
    },
  };
}

function defaultCache(): AutotuneCache | undefined {
  const g = globalThis as {
    process?: { versions?: { node?: string } };
    localStorage?: Storage;
  };
  if (typeof g.process?.versions?.node === "string") return nodeFileCache();
  if (g.localStorage) return localStorageCache(g.localStorage);
  return undefined;
}

/** Compiles a candidate with the executor's layout (shared with the plan's own pipelines). */
export type Compile = (wgsl: string, k: KernelLaunch, label: string) => Promise<GPUComputePipeline>;

const SAMPLE_MS = 20;
/** Rounds of samples per candidate, interleaved across the candidates: a burst of other load on
 * the machine (lavapipe shares the CPU with everything) then slows all of them alike instead of
 * whichever happened to be measured during it. */
const ROUNDS = 3;
/** A variant replaces the default only when its best time is below this fraction of the
 * default's: a near tie is noise, and the default is the variant the tests exercise most. */
const MARGIN = 0.9;

/** Times dispatches of one candidate on zero-filled stand-ins of the kernel's bindings, so
 * measuring never touches the plan's data. */
interface Timer {
  /** Milliseconds of one dispatch after the warm-up (submission latency included). */
  once: number;
  /** Milliseconds for `n` dispatches in one pass. */
  run(n: number): Promise<number>;
  destroy(): void;
}

async function prepareTimer(gpu: Gpu, pipe: GPUComputePipeline, layout: GPUBindGroupLayout, sizes: number[], dispatch: [number, number, number]): Promise<Timer> {
  const { device } = gpu;
  const scratch = sizes.map((f) => device.createBuffer({ label: "autotune scratch", size: Math.max(4, f * 4), usage: GPUBufferUsage.STORAGE }));
  const destroy = () => scratch.forEach((b) => b.destroy());
  try {
    const bind = device.createBindGroup({ label: "autotune", layout, entries: scratch.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const run = (n: number) =>
      withErrorScopes(device, "autotune", async () => {
        const enc = device.createCommandEncoder({ label: "autotune" });
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bind);
        for (let i = 0; i < n; i++) pass.dispatchWorkgroups(...dispatch);
        pass.end();
        const t0 = performance.now();
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
        return performance.now() - t0;
      });
    await run(1); // warm-up: lavapipe compiles the shader to machine code here
    return { once: await run(1), run, destroy };
  } catch (e) {
    destroy();
    throw e;
  }
}

/** The candidate to use given each one's best milliseconds (index 0 the default; Infinity: not
 * measurable): the fastest, unless it is not MARGIN faster than the default. */
export function pickVariant(best: readonly number[]): number {
  const pick = Math.max(0, best.indexOf(Math.min(...best)));
  return pick !== 0 && best[pick]! > MARGIN * best[0]! ? 0 : pick;
}

/** Best milliseconds per dispatch of each candidate (Infinity: not measurable), measured in
 * interleaved rounds; a candidate already 3x slower than the best is not sampled again. */
async function measureAll(timers: (Timer | undefined)[]): Promise<number[]> {
  const best = timers.map((t) => t?.once ?? Infinity);
  for (let round = 0; round < ROUNDS; round++) {
    for (let c = 0; c < timers.length; c++) {
      const t = timers[c];
      if (!t || best[c]! > 3 * Math.min(...best) || (round > 0 && best[c]! > 200)) continue;
      const n = Math.max(1, Math.min(32, Math.round(SAMPLE_MS / Math.max(best[c]!, 0.01))));
      best[c] = Math.min(best[c]!, (await t.run(n)) / n);
    }
  }
  return best;
}

export interface TuneResult {
  /** Per kernel: the candidate index chosen (0 = the default). */
  choice: number[];
  /** Per kernel: the chosen candidate's name. */
  names: string[];
  /** Wall time spent measuring. */
  ms: number;
}

/**
 * Chooses a candidate for every kernel; kernels without variants keep the default. Kernels
 * with the same candidates (the same shapes) share one decision. `floats(b)` is the size of
 * plan buffer b; `layout(k)` the bind group layout of kernel k.
 */
export async function chooseVariants(
  gpu: Gpu,
  kernels: readonly KernelLaunch[],
  floats: (buffer: number) => number,
  compile: Compile,
  layout: (k: KernelLaunch) => GPUBindGroupLayout,
  options: AutotuneOptions = {},
): Promise<TuneResult> {
  const t0 = performance.now();
  const choice = kernels.map(() => 0);
  const tuned = kernels.map((k, i) => i).filter((i) => (kernels[i]!.variants?.length ?? 0) > 0);
  if (tuned.length === 0) return { choice, names: kernels.map(() => DEFAULT_VARIANT), ms: 0 };
  const mode = autotuneMode(options);
  const bySig = new Map<string, number[]>();
  for (const i of tuned) {
    const k = kernels[i]!;
    const key = k.tuneAs ? `${gpu.adapterName}|as:${k.tuneAs}|${candidatesOf(k).map((c) => c.name).join(",")}` : tuneKey(gpu.adapterName, k);
    bySig.set(key, [...(bySig.get(key) ?? []), i]);
  }
  const cache = mode === "off" || options.prefer ? undefined : (options.cache ?? defaultCache());
  const cached = cache ? await cache.load() : {};
  const fresh: Record<string, CacheEntry> = {};
  const maxInvocations = gpu.limits.maxComputeInvocationsPerWorkgroup;
  for (const [key, ids] of bySig) {
    const k = kernels[ids[0]!]!;
    const cands = candidatesOf(k);
    let pick = 0;
    const named = (name: string | undefined) => cands.findIndex((c) => c.name === name);
    if (options.prefer !== undefined) pick = Math.max(0, named(options.prefer));
    else if (mode === "off") autotuneCounters.defaulted++;
    else if (cached[key] && named(cached[key]!.choice) >= 0) {
      pick = named(cached[key]!.choice);
      autotuneCounters.fromCache++;
    } else if (mode === "cached") autotuneCounters.defaulted++;
    else {
      autotuneCounters.measured++;
      const ms: Record<string, number> = {};
      const timers: (Timer | undefined)[] = [];
      try {
        for (let c = 0; c < cands.length; c++) {
          const cand = cands[c]!;
          if (cand.workgroupSize.reduce((a, b) => a * b, 1) > maxInvocations) continue;
          try {
            const pipe = await compile(cand.wgsl, k, `${k.label} [${cand.name}]`);
            timers[c] = await prepareTimer(gpu, pipe, layout(k), k.buffers.map(floats), cand.dispatch);
          } catch {
            // A variant this adapter cannot compile or run is simply not a candidate; the
            // default's own errors surface when the plan compiles it.
          }
        }
        const best = await measureAll(timers);
        best.forEach((t, c) => Number.isFinite(t) && (ms[cands[c]!.name] = +t.toPrecision(4)));
        pick = pickVariant(best);
      } finally {
        for (const t of timers) t?.destroy();
      }
      fresh[key] = {
        choice: cands[pick]!.name,
        ms,
        at: new Date().toISOString(),
      };
    }
    for (const i of ids) choice[i] = pick;
  }
  if (cache && Object.keys(fresh).length > 0) await cache.save(fresh);
  return {
    choice,
    names: kernels.map((k, i) => candidatesOf(k)[choice[i]!]!.name),
    ms: performance.now() - t0,
  };
}
