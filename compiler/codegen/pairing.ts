// Paired dispatches: two kernels with the same WGSL (the same primitive or fused group on the
// same shapes: DRIFA-Net's branches run every layer once per modality) that do not depend on
// each other run as ONE dispatch of twice the workgroups, z = 0 computing the first and z = 1
// the second over bindings of its own. On lavapipe each dispatch costs about 0.1 ms whatever it
// does, and a training step of DRIFA-Net has thousands of small ones: pairing the modalities'
// kernels halves that cost for the branches.
//
// The pass runs on the fused plan's kernels in execution order, before the memory plan, which
// then sees a pair as one kernel (a value the first reads is not reused by the second's writes
// within the dispatch). A pair is formed when the later kernel reads nothing written at or after
// the earlier one's position (it can move up to it), the two bind at most `maxBindings`
// buffers together, and (checked after placement, by the caller) no buffer is bound both
// read-only and writable across them.
import type { KernelSpec, KernelVariant } from "./wgsl/index.ts";
import { tuneIdentity } from "./wgsl/kernel.ts";

export interface Pairing {
  /** Kernels in their new order, each one kernel or a pair [first, second] (indices into the
   * input order). */
  slots: number[][];
}

/** Chooses pairs among `specs` (in execution order); `reads`/`writes` are each kernel's graph
 * values. Looks back at most `window` kernels for a partner. */
export function pairKernels(specs: readonly KernelSpec[], reads: readonly (readonly number[])[], writes: readonly (readonly number[])[], maxBindings: number, window = 512): Pairing {
  const producer = new Map<number, number>();
  writes.forEach((ws, k) => ws.forEach((v) => producer.set(v, k)));
  const key = specs.map((s) => (pairable(s) && 2 * s.bindings.length <= maxBindings ? textKey(s) : null));
  const partner = new Map<number, number>(); // later -> earlier
  const taken = new Set<number>();
  const open = new Map<string, number[]>(); // key -> unpaired earlier kernels
  for (let j = 0; j < specs.length; j++) {
    const kj = key[j];
    if (kj === null) continue;
    // The latest position j's inputs are written at: j can move up to any later position.
    let after = -1;
    for (const r of reads[j]!) after = Math.max(after, producer.get(r) ?? -1);
    const list = open.get(kj) ?? [];
    const k = list.find((c) => c > after && j - c <= window && !taken.has(c));
    if (k !== undefined) {
      partner.set(j, k);
      // j now runs at k's position: what it writes is there for the kernels after it.
      for (const v of writes[j]!) producer.set(v, k);
      taken.add(k);
      taken.add(j);
      open.set(kj, list.filter((c) => c !== k));
    } else open.set(kj, [...list.filter((c) => j - c <= window), j]);
  }
  const firstOf = new Map([...partner].map(([later, earlier]) => [earlier, later]));
  const slots: number[][] = [];
  for (let k = 0; k < specs.length; k++) {
    if (partner.has(k)) continue; // moved up to its partner
    const later = firstOf.get(k);
    slots.push(later === undefined ? [k] : [k, later]);
  }
  return { slots };
}

/** Kernels whose module this pass can rewrite: one entry point `main`, a grid that uses z only
 * through workgroup_id, workgroups one deep; and short ones. Twins unpaired share one compiled
 * pipeline (same WGSL), a pair compiles a module twice as long, and lavapipe's compile time
 * grows faster than the text: a register convolution took 1.9 s alone and 5.4 s paired. So the
 * convolutions and matmuls (autotuned, long) stay single: the elementwise kernels, reductions
 * and the other short ones, most of the dispatches, pair. */
export const PAIR_MAX_CHARS = 3000;
/** 1x1 convolutions (KernelSpec.quickToCompile) pair with every variant under this length: their
 * modules have no unrolled taps (the blocked variant paired compiles in about 0.1 s). */
export const PAIR_MAX_TUNED_CHARS = 16000;
function pairable(s: KernelSpec): boolean {
  const texts = [s.wgsl, ...(s.variants ?? []).map((v) => v.wgsl)];
  const short = (s.variants ?? []).length === 0 ? s.wgsl.length <= PAIR_MAX_CHARS : s.quickToCompile === true && texts.every((w) => w.length <= PAIR_MAX_TUNED_CHARS);
  if (!short) return false;
  const ok = (w: string, wg: [number, number, number]) => wg[2] === 1 && !/global_invocation_id\) \w+: vec3<u32>[^{]*\{[\s\S]*\bgid\.z\b/.test(w);
  return s.entryPoint === "main" && ok(s.wgsl, s.workgroupSize) && (s.variants ?? []).every((v) => ok(v.wgsl, v.workgroupSize));
}

const textKey = (s: KernelSpec) => [s.wgsl, ...(s.variants ?? []).map((v) => `${v.name}\n${v.wgsl}`)].join("\n\u0000\n");

const BINDING = /^@group\(0\) @binding\((\d+)\) var<storage, ([^>]+)> (\w+): array<(.+)>;$/;

/** One kernel computing `a` (workgroups with z = 0) and `b` (z = 1); a and b have the same WGSL. */
export function pairSpecs(a: KernelSpec, b: KernelSpec): KernelSpec {
  const variants: KernelVariant[] | undefined = a.variants?.map((v) => ({ ...v, wgsl: pairWgsl(v.wgsl, v.dispatch[2]), dispatch: [v.dispatch[0], v.dispatch[1], 2 * v.dispatch[2]] }));
  return {
    ...a,
    ...(a.variants ? { tuneAs: tuneIdentity(a) } : {}),
    label: `${a.label} | ${b.label}`,
    wgsl: pairWgsl(a.wgsl, a.dispatch[2]),
    bindings: [...a.bindings, ...b.bindings],
    dispatch: [a.dispatch[0], a.dispatch[1], 2 * a.dispatch[2]],
    ...(variants ? { variants } : {}),
  };
}

/** The module of a kernel doubled: the second copy's bindings (renumbered after the first's) and
 * the module functions that use them get the suffix `_b`; main runs the first body for
 * workgroup_id.z < depth (the kernel's own grid depth) and the second, with z shifted back,
 * otherwise (a branch uniform over the workgroup: barriers stay valid). */
export function pairWgsl(wgsl: string, depth = 1): string {
  const lines = wgsl.split("\n");
  const decl = lines.map((l) => BINDING.exec(l));
  const names = decl.filter((m) => m !== null).map((m) => m[3]!);
  const count = names.length;
  // Module-scope functions (fn ... { ... } from column 0) other than main.
  const fns: { name: string; start: number; end: number }[] = [];
  for (let k = 0; k < lines.length; k++) {
    const m = /^fn (\w+)\(/.exec(lines[k]!);
    if (!m) continue;
    let end = k;
    while (end < lines.length && lines[end] !== "}") end++;
    fns.push({ name: m[1]!, start: k, end });
    k = end;
  }
  const main = fns.find((f) => f.name === "main");
  if (!main) throw new Error("internal error: a kernel without fn main");
  const usesBinding = (text: string) => names.some((n) => new RegExp(`(?<![\\w.])${n}\\b`).test(text));
  const renamed = new Set(names);
  for (const f of fns) if (f !== main && usesBinding(lines.slice(f.start, f.end + 1).join("\n"))) renamed.add(f.name);
  const rename = (text: string) => text.replace(new RegExp(`(?<![\\w.])(${[...renamed].join("|")})\\b`, "g"), "$1_b");
  const out: string[] = [];
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k]!;
    out.push(line);
    const d = decl[k];
    // After the last binding: the second copy's bindings.
    if (d && k === decl.map((x) => x !== null).lastIndexOf(true)) {
      for (let j = 0; j < lines.length; j++) {
        const m = decl[j];
        if (m) out.push(`@group(0) @binding(${Number(m[1]) + count}) var<storage, ${m[2]}> ${m[3]}_b: array<${m[4]}>;`);
      }
    }
    const f = fns.find((x) => x.start === k);
    if (f && f !== main && renamed.has(f.name)) {
      // The function as it is, then its copy over the second bindings.
      out.push(...lines.slice(k + 1, f.end + 1), "", ...rename(lines.slice(f.start, f.end + 1).join("\n")).split("\n"));
      k = f.end;
    } else if (f === main) {
      const header = lines[k]!;
      const wid = /@builtin\(workgroup_id\) (\w+): vec3<u32>/.exec(header);
      const z = wid ? wid[1]! : "pair_wid";
      if (!wid) out[out.length - 1] = header.replace(/^fn main\(/, "fn main(@builtin(workgroup_id) pair_wid: vec3<u32>, ");
      const body = lines.slice(k + 1, f.end);
      const second = rename(body.join("\n")).replace(new RegExp(`(?<![\\w.])${z}\\.z\\b`, "g"), `(${z}.z - ${depth}u)`);
      out.push(`  if (${z}.z < ${depth}u) {`, ...body.map((l) => `  ${l}`), "  } else {", ...second.split("\n").map((l) => `  ${l}`), "  }", "}");
      k = f.end;
    }
  }
  return out.join("\n");
}
