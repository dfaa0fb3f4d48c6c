// The IR commands: gradcheck's verdict and exit code, the IR dump and the Graphviz graph.
import { test } from "uvu";
import * as assert from "uvu/assert";
import path from "node:path";
import { drifac, root } from "./helpers.ts";

const drifa = path.join(root, "models/drifa.drifa");

test("gradcheck on DRIFA-Net at width 4, 16x16, batch 2 passes below 1e-5", async () => {
  const r = await drifac("gradcheck", drifa, "--set", "width=4,size=16", "--batch", "2");
  assert.is(r.code, 0, r.err);
  const m = /max relative error: (\S+)/.exec(r.out);
  assert.ok(m, r.out);
  assert.ok(Number(m![1]) < 1e-5, r.out);
  assert.match(r.out, /4 conv, 4 dense, 4 param, 4 batchnorm/);
});

test("gradcheck exits 1 above the tolerance", async () => {
  const r = await drifac("gradcheck", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16", "--tolerance", "1e-30", "--samples", "1");
  assert.is(r.code, 1);
  assert.match(r.err, /gradcheck failed/);
});

test("drifac ir prints parameters by name and the gradients with --grad", async () => {
  const r = await drifac("ir", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16", "--grad");
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /%skin\.stem\.conv\.weight = param : \[4,3,7,7\]/);
  assert.match(r.out, /output loss = %\d+/);
  assert.match(r.out, /output grad\.skin\.stage4\.block2\.conv2\.weight = %\d+/);
  const plain = await drifac("ir", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16");
  assert.not.match(plain.out, /output grad\./);
});

test("drifac graph --dot writes Graphviz", async () => {
  const r = await drifac("graph", path.join(root, "models/resnet18.drifa"), "--dot", "--set", "width=4,size=16");
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^digraph ir \{/);
  assert.match(r.out, /->/);
  assert.match(r.out.trim(), /\}$/);
});

test.run();
