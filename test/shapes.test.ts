// Symbolic sizes and broadcasting by dimension name: the type system's arithmetic.
import { test } from "uvu";
import * as assert from "uvu/assert";
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import { broadcast2, formatShape, type Shape } from "../compiler/check/shape.ts";
import { Size } from "../compiler/check/size.ts";
import { root } from "./helpers.ts";

const H = Size.symbol("H");
const ax = (label: string | null, size: Size | number): Shape[0] => ({ label, size: typeof size === "number" ? Size.of(size) : size });

test("sizes have canonical forms", () => {
  // 3x3 stride-2 padding-1 convolution vs 1x1 stride-2 shortcut: the same output size.
  const conv3 = H.add(Size.of(2 - 2 - 1)).floorDiv(2).add(Size.of(1));
  const conv1 = H.add(Size.of(0 - 0 - 1)).floorDiv(2).add(Size.of(1));
  assert.ok(conv3.equals(conv1));
  assert.is(conv3.toString(), "floor((H - 1) / 2) + 1");
  assert.ok(H.scale(2).floorDiv(2).equals(H));
  assert.ok(H.add(Size.of(4)).scale(4).floorDiv(4).equals(H.add(Size.of(4))));
  assert.ok(H.mul(Size.symbol("W")).equals(Size.symbol("W").mul(H)));
  assert.not.ok(H.equals(Size.symbol("W")));
  assert.is(H.sub(H).value, 0);
  assert.is(H.add(Size.of(3)).substitute(new Map([["H", Size.of(5)]])).value, 8);
  assert.is(Size.of(7).floorDiv(2).value, 3);
});

test("broadcasting lines axes up by name", () => {
  const x: Shape = [ax("N", Size.symbol("N")), ax("C", 8), ax("H", 4), ax("W", 4)];
  const a: Shape = [ax("N", Size.symbol("N")), ax("C", 8)];
  const w: Shape = [ax("C", 8)];
  const r1 = broadcast2(x, a);
  assert.ok(r1.ok);
  if (r1.ok) {
    assert.is(formatShape(r1.value.shape), "[N, C=8, H=4, W=4]");
    assert.equal(r1.value.axisMaps[1], [0, 1]);
  }
  const r2 = broadcast2(w, x);
  assert.ok(r2.ok && r2.value.axisMaps[0]![0] === 1);
  assert.ok(broadcast2([], x).ok);
  // A [C] vector never lines up with H by accident, even when the sizes agree.
  const byH = broadcast2(x, [ax("H", 4)]);
  assert.ok(byH.ok && byH.value.axisMaps[1]![0] === 2);
  const wrong = broadcast2(x, [ax("C", 4)]);
  assert.not.ok(wrong.ok);
  if (!wrong.ok) assert.match(wrong.reason, /dimension C has size 8 in one and 4 in the other/);
  const unlabelled = broadcast2(x, [ax(null, 8)]);
  assert.not.ok(unlabelled.ok);
  const outOfOrder = broadcast2(x, [ax("W", 4), ax("C", 8)]);
  assert.not.ok(outOfOrder.ok);
});

test("library blocks check generically with symbolic dimensions", () => {
  const r = checkFile(path.join(root, "models/lib/mfa.drifa"));
  assert.equal(r.diagnostics, []);
  // A generic check still finds a real shape error inside an unused block.
  const bad = checkFile(path.join(root, "models/lib/bad.drifa"), {}, "block B(x: [N, C, H, W]) -> [N, C, H, W] {\n  return x * gap(conv(x, 2 * C))\n}\n");
  assert.is(bad.diagnostics[0]?.code, "E300");
  assert.match(bad.diagnostics[0]!.message, /\[N, C, H, W\] with \[N, C=2\*C\]/);
});

test("compile-time evaluation: loops, conditionals, comprehensions, interpolation", () => {
  const src = `model M(n: int = 3, wide: bool = false) {
  input x: [N, C: 2, H: 8, W: 8]
  sizes = [4 * (i + 1) for i in range(n) if i != 1]
  h = x
  for i, s in enumerate(sizes) {
    h = conv(h, if wide then 2 * s else s, k: 3) as "conv{i}_{s}"
  }
  task t: classify(dense(gap(h), 3), classes: 3)
}
`;
  const p = checkFile(path.join(root, "models/generated.drifa"), {}, src).programs[0]!;
  assert.equal(p.params.filter((q) => q.name.endsWith(".weight")).map((q) => q.name), ["conv0_4.weight", "conv1_12.weight", "t.weight"]);
  const wide = checkFile(path.join(root, "models/generated.drifa"), { settings: { wide: "true" } }, src).programs[0]!;
  assert.equal(wide.params.find((q) => q.name === "conv1_12.weight")!.shape.map(String), ["24", "8", "3", "3"]);
});

test.run();
