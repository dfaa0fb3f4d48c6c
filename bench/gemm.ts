// The roofline for the kernel bench: a hand-written f32 GEMM C = A B (row-major, n x n) in the
// style that is fastest on lavapipe: an 8x8 register block per invocation (8 rows x 2 vec4
// columns), workgroup 64, no workgroup memory, operands read as vec4 (A along k, B along n).
// Per 4 steps of k an invocation makes 16 vec4 loads and 64 vec4 FMAs.
export function gemmWgsl(n: number): string {
  if (n % 8 !== 0) throw new Error("gemm size must be a multiple of 8");
  const nv = n / 4;
  const L: string[] = [
    "@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;",
    "@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;",
    "@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;",
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {",
    `  let t = gid.x + gid.y * ${65535 * 64}u;`,
    `  if (t >= ${(n / 8) * (n / 8)}u) { return; }`,
    `  let cb = t % ${n / 8}u;`,
    `  let rb = t / ${n / 8}u;`,
    "  let r0 = rb * 8u;",
    "  let c0 = cb * 2u;",
  ];
  for (let i = 0; i < 8; i++) for (let v = 0; v < 2; v++) L.push(`  var acc${i}_${v} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < ${nv}u; k++) {`);
  for (let i = 0; i < 8; i++) L.push(`    let a${i} = a[(r0 + ${i}u) * ${nv}u + k];`);
  for (let kk = 0; kk < 4; kk++) for (let v = 0; v < 2; v++) L.push(`    let b${kk}_${v} = b[(k * 4u + ${kk}u) * ${nv}u + c0 + ${v}u];`);
  const comp = ["x", "y", "z", "w"];
  for (let i = 0; i < 8; i++)
    for (let v = 0; v < 2; v++) L.push(`    acc${i}_${v} += ${[0, 1, 2, 3].map((kk) => `a${i}.${comp[kk]} * b${kk}_${v}`).join(" + ")};`);
  L.push("  }");
  for (let i = 0; i < 8; i++) for (let v = 0; v < 2; v++) L.push(`  c[(r0 + ${i}u) * ${nv}u + c0 + ${v}u] = acc${i}_${v};`);
  L.push("}");
  return L.join("\n");
}

export function gemmDispatch(n: number): [number, number, number] {
  const groups = Math.ceil(((n / 8) * (n / 8)) / 64);
  return [Math.min(groups, 65535), Math.ceil(groups / 65535), 1];
}
