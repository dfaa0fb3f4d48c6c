// The benchmark's jax-js peer differentiates DRIFA-Net segment by segment (bench/jax.ts,
// bench/README.md "jax-js on this network") because jax-js cannot compile the whole step at
// once: the chained segments must give the gradient that one jitted valueAndGrad of the whole
// network gives. `bench/jax.ts --check` compares the two at width 4, 32x32, batch 2, without
// dropout, in its own process (jax-js owns its device). Skipped without an adapter.
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gpuForTests, root } from "./helpers.ts";

const { gpu, gpuTest } = await gpuForTests("bench-peers");
gpu?.destroy(); // only whether there is an adapter matters: the peer runs in its own process

gpuTest("jax-js peer: the segmented gradient equals the whole-network gradient (loss and all 1,052 gradients)", async () => {
  const t0 = performance.now();
  const { code, out, err } = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, ["--import", "tsx", path.join(root, "bench/jax.ts"), "--check"], { cwd: root, timeout: 900_000, maxBuffer: 1 << 24 }, (e, stdout, stderr) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    );
  });
  assert.is(code, 0, err.slice(-2000));
  const r = JSON.parse(out.trim().split("\n").pop()!) as { lossWhole: number; lossSegmented: number; gradientNorm: number; relativeDifference: number; tensors: number };
  assert.is(r.tensors, 1052);
  assert.ok(r.gradientNorm > 1, `gradient norm ${r.gradientNorm}`);
  assert.ok(r.relativeDifference <= 1e-5, `relative difference ${r.relativeDifference}`);
  assert.ok(Math.abs(r.lossWhole - r.lossSegmented) <= 1e-5 * Math.abs(r.lossWhole), `${r.lossWhole} vs ${r.lossSegmented}`);
  console.log(`\n[bench-peers] jax-js segmented vs whole: loss ${r.lossSegmented}, gradients differ by ${r.relativeDifference.toExponential(2)} (norm ${r.gradientNorm.toFixed(1)}); ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

test.run();
