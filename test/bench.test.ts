// The benchmark's peers (bench/tfjs.ts, bench/jax.ts) run DRIFA-Net from bench/net-spec.ts: it
// must be the network the checker makes of models/drifa.drifa, parameter for parameter (names,
// shapes, roles, initialisers). No GPU, no timing.
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BENCH_CONFIG, EXPECTED_PARAMS, ShapeOps, describeNet, segmentParamNames, segments } from "../bench/net-spec.ts";
import { checkFile } from "../compiler/check/index.ts";
import { root } from "./helpers.ts";

test("bench/net-spec.ts describes models/drifa.drifa at width 16: same parameters, 3,397,988 in 1,052 tensors", () => {
  const r = checkFile(path.join(root, "models/drifa.drifa"), { settings: { width: String(BENCH_CONFIG.width), size: String(BENCH_CONFIG.size) } });
  assert.equal(r.diagnostics, []);
  const ours = r.programs[0]!.params.map((p) => ({ name: p.name, shape: p.shape.map((s) => s.value), role: p.role, init: p.init }));
  const net = describeNet();
  const rows = (ps: { name: string; shape: unknown; role: string; init: unknown }[]) => ps.map((p) => `${p.name} ${JSON.stringify(p.shape)} ${p.role} ${JSON.stringify(p.init)}`).sort();
  assert.equal(rows(net.params), rows(ours));
  assert.is(net.paramCount, EXPECTED_PARAMS);
  assert.is(net.tensors, 1052);
  // About 2 GFLOP of convolution and dense work per training step (performance.md: ~1.9).
  assert.ok(net.trainFlops > 1.8e9 && net.trainFlops < 2.2e9, String(net.trainFlops));
});

test("the network's segments (jax-js differentiates them one by one) chain from the inputs to the logits and split the parameters without overlap", () => {
  const names = segmentParamNames();
  assert.is(names.length, segments().length);
  assert.equal(names.map((n) => n.length > 0), names.map(() => true));
  const all = names.flat();
  assert.is(new Set(all).size, all.length, "a parameter is used by two segments");
  const trained = describeNet().params.filter((p) => p.role === "param").map((p) => p.name);
  assert.equal([...all].sort(), [...trained].sort());
  // Chained, the segments take the inputs to the logits of each head.
  const inputs = BENCH_CONFIG.modalities.map(() => [BENCH_CONFIG.batch, 3, BENCH_CONFIG.size, BENCH_CONFIG.size]);
  const chained = segments().reduce((xs, seg) => seg.run(new ShapeOps(), xs), inputs);
  assert.equal(chained, BENCH_CONFIG.heads.map((h) => [BENCH_CONFIG.batch, h.classes]));
});

test.run();
