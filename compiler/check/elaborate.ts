// Elaboration: runs the compile-time part of a model (parameters, loops, conditionals, list
// comprehensions, block instantiation) and builds the checked program: a dataflow graph with
// every tensor's shape inferred and every parameter named. Shape errors surface here, at the
// span of the expression that caused them.
import type * as A from "../../grammar/ast.ts";
import { DiagnosticError } from "../../grammar/diagnostic.ts";
import { parseExpression } from "../../grammar/parse.ts";
import { closest } from "../diagnostics/suggest.ts";
import { type ArgIn, bindArguments, type DimScope, matchType, specParams } from "./bind.ts";
import { builtins } from "./builtins/index.ts";
import type { Builtin, BuiltinContext } from "./builtins/context.ts";
import { compare, isArithmetic, numeric } from "./arithmetic.ts";
import { Namer } from "./naming.ts";
import type { BlockInstance, Init, Node, OpName, ParamInfo } from "./program.ts";
import { broadcast2, formatShape, type Shape } from "./shape.ts";
import { Size } from "./size.ts";
import {
  type BlockRef, type LayerInstance, type Located, type TensorValue, type Value,
  describeValue, expectBool, expectList, fail, int, showValue,
} from "./values.ts";

export const LIMITS = { steps: 2_000_000, nodes: 1_000_000, depth: 48 };

export class Frame {
  readonly vars = new Map<string, Value>();
  returned: Value | null = null;
  constructor(
    readonly file: string,
    readonly blocks: ReadonlyMap<string, BlockRef>,
    readonly scope: string,
    readonly kind: "block" | "model",
  ) {}
}

export class Elaborator implements BuiltinContext {
  readonly nodes: Node[] = [];
  readonly params: ParamInfo[] = [];
  readonly instances: BlockInstance[] = [];
  readonly namer = new Namer();
  private steps = 0;
  private depth = 0;
  frame!: Frame;
  private readonly interpolations = new WeakMap<A.StringLit, (string | A.Expr)[]>();

  get file(): string {
    return this.frame.file;
  }

  // ---- the BuiltinContext the built-ins build the graph through ----------------------------

  addNode(op: OpName, inputs: number[], attrs: Node["attrs"], shape: Shape, span: A.Span): TensorValue {
    if (this.nodes.length >= LIMITS.nodes) fail("E401", `the model has more than ${LIMITS.nodes} operations`, this.file, span);
    const node: Node = { id: this.nodes.length, op, inputs, attrs, shape, scope: this.frame.scope, file: this.file, span };
    this.nodes.push(node);
    return { k: "tensor", node: node.id, shape };
  }

  addParam(owner: LayerInstance, suffix: string, shape: Size[], labels: (string | null)[], init: Init, role: "param" | "buffer", span: A.Span): TensorValue {
    return this.createParam(`${owner.name}.${suffix}`, shape, labels, init, role, owner.layer, span);
  }

  private createParam(name: string, shape: Size[], labels: (string | null)[], init: Init, role: "param" | "buffer", owner: string, span: A.Span): TensorValue {
    for (const s of shape) {
      if (s.isConstant && s.constant < 1) fail("E402", `parameter '${name}' would have a dimension of size ${s}`, this.file, span);
    }
    this.params.push({ name, shape, init, role, owner, span, file: this.file });
    const axes = shape.map((size, i) => ({ label: labels[i] ?? null, size }));
    return this.addNode("param", [], { name }, axes, span);
  }

  newLayer(layer: string, options: Map<string, Located>, span: A.Span): LayerInstance {
    const name = this.namer.claim(this.frame.scope, layer, this.file, span, false);
    return { layer, name, options, bound: null, span };
  }

  elementwise(op: "add" | "sub" | "mul" | "div" | "maximum" | "minimum", a: Located, b: Located, span: A.Span): Value {
    const x = a.value;
    const y = b.value;
    if (x.k !== "tensor" && y.k !== "tensor") return numeric(op, a, b, span, this.file);
    const ta = this.asTensor(a, op);
    const tb = this.asTensor(b, op);
    const result = broadcast2(ta.shape, tb.shape);
    if (!result.ok) {
      fail("E300", `shape mismatch: cannot combine ${formatShape(ta.shape)} with ${formatShape(tb.shape)}: ${result.reason}`, this.file, span);
    }
    const [mapA, mapB] = result.value.axisMaps;
    return this.addNode(op, [ta.node, tb.node], { alignA: mapA!, alignB: mapB! }, result.value.shape, span);
  }

  private asTensor(a: Located, op: string): TensorValue {
    const v = a.value;
    if (v.k === "tensor") return v;
    if (v.k === "float") return this.addNode("const", [], { value: v.v }, [], a.span);
    if (v.k === "int" && v.v.isConstant) return this.addNode("const", [], { value: v.v.constant }, [], a.span);
    return fail("E302", `cannot use ${describeValue(v)} in tensor arithmetic (${op})`, this.file, a.span);
  }

  callValue(callee: Located, args: Located[], span: A.Span): Value {
    return this.call(callee, args.map((value) => ({ name: null, value })), span);
  }

  // ---- statements ------------------------------------------------------------------------

  exec(stmts: A.Stmt[]): void {
    for (const s of stmts) {
      if (this.frame.returned) return;
      this.tick(s.span);
      this.execOne(s);
    }
  }

  private execOne(s: A.Stmt): void {
    const frame = this.frame;
    switch (s.kind) {
      case "Assign": {
        const value = this.namer.withBase(s.targets[0]!.text, false, () => this.eval(s.value));
        this.assign(s.targets, value, s.value.span);
        return;
      }
      case "Param": {
        const { shape, labels } = this.paramShape(s.type);
        const init = s.init ? this.initOf({ value: this.eval(s.init), span: s.init.span }) : { kind: "constant" as const, value: 0 };
        const name = this.namer.withBase(s.name.text, false, () => this.namer.claim(frame.scope, "param", this.file, s.name.span, false));
        frame.vars.set(s.name.text, this.createParam(name, shape, labels, init, "param", "param", s.span));
        return;
      }
      case "Layer": {
        const callee = this.eval(s.value.callee);
        const spec = callee.k === "builtin" ? builtins.get(callee.name) : undefined;
        if (!spec || spec.kind !== "layer") {
          fail("E302", `a layer declaration needs a layer (conv, dense, batchnorm), found ${describeValue(callee)}`, this.file, s.value.callee.span);
        }
        const args = this.evalArgs(s.value.args);
        const bound = bindArguments(spec.name, specParams(spec.params.slice(1)), args, false, this.file, s.value.span);
        const options = this.withDefaults(spec.params.slice(1), bound, s.value.span);
        const layer = this.namer.withBase(s.name.text, true, () => this.newLayer(spec.name, options, s.name.span));
        frame.vars.set(s.name.text, { k: "layer", layer });
        return;
      }
      case "Input": {
        if (frame.kind !== "model") fail("E402", "inputs are declared in a model, not in a block (blocks take tensors as parameters)", this.file, s.span);
        const shape: Shape = s.type.dims.map((d, i) => {
          if (!d.size) fail("E402", "input dimensions must be given (no _)", this.file, d.span);
          const label = d.label?.text ?? (d.size.kind === "Ident" ? d.size.name : null);
          if (d.size.kind === "Ident" && !frame.vars.has(d.size.name) && !frame.blocks.has(d.size.name)) {
            if (i !== 0) fail("E402", `only the batch dimension may be symbolic; '${d.size.name}' is not defined`, this.file, d.size.span);
            return { label, size: Size.symbol(d.size.name) };
          }
          return { label, size: this.evalSize(d.size) };
        });
        const node = this.addNode("input", [], { name: s.name.text }, shape, s.span);
        this.inputs.push({ name: s.name.text, node: node.node, shape });
        frame.vars.set(s.name.text, node);
        return;
      }
      case "For": {
        const items = expectList({ value: this.eval(s.iterable), span: s.iterable.span }, this.file, "the loop's iterable");
        for (const item of items) {
          this.assign(s.vars, item, s.iterable.span);
          this.exec(s.body);
          if (frame.returned) return;
        }
        return;
      }
      case "If": {
        const cond = expectBool({ value: this.eval(s.cond), span: s.cond.span }, this.file, "the condition");
        if (cond) this.exec(s.then);
        else if (s.otherwise) this.exec(s.otherwise);
        return;
      }
      case "Return": {
        if (frame.kind !== "block") fail("E402", "a model has no return; declare tasks with `task`", this.file, s.span);
        const values = s.values.map((v) => this.namer.withBase("out", false, () => this.eval(v)));
        frame.returned = values.length === 1 ? values[0]! : { k: "tuple", items: values };
        return;
      }
      case "Task":
      case "Train":
        if (frame.kind !== "model") fail("E402", `${s.kind === "Task" ? "tasks" : "training settings"} belong in a model, not in a block`, this.file, s.span);
        this.modelStatement(s);
        return;
    }
  }

  /** Tasks and the train section; the model elaborator overrides this. */
  protected modelStatement(s: A.TaskStmt | A.TrainStmt): void {
    void s;
  }

  readonly inputs: { name: string; node: number; shape: Shape }[] = [];

  private assign(targets: A.Name[], value: Value, span: A.Span): void {
    if (targets.length === 1) {
      this.frame.vars.set(targets[0]!.text, value);
      return;
    }
    const items = value.k === "tuple" || value.k === "list" ? value.items : null;
    if (!items || items.length !== targets.length) {
      fail("E304", `cannot unpack ${describeValue(value)} into ${targets.length} names`, this.file, span);
    }
    targets.forEach((t, i) => this.frame.vars.set(t.text, items[i]!));
  }

  private paramShape(type: A.TensorType): { shape: Size[]; labels: (string | null)[] } {
    const shape: Size[] = [];
    const labels: (string | null)[] = [];
    for (const d of type.dims) {
      if (!d.size) fail("E402", "parameter dimensions must be given (no _)", this.file, d.span);
      shape.push(this.evalSize(d.size));
      labels.push(d.label?.text ?? (d.size.kind === "Ident" ? d.size.name : null));
    }
    return { shape, labels };
  }

  private initOf(a: Located): Init {
    const v = a.value;
    if (v.k === "float") return { kind: "constant", value: v.v };
    if (v.k === "int" && v.v.isConstant) return { kind: "constant", value: v.v.constant };
    if (v.k === "record") {
      const num = (k: string) => {
        const f = v.fields.get(k)!;
        return f.k === "float" ? f.v : f.k === "int" ? (f.v.value ?? 0) : 0;
      };
      switch (v.kind) {
        case "he":
          return { kind: "he", fanIn: 0 };
        case "glorot":
          return { kind: "glorot", fanIn: 0, fanOut: 0 };
        case "normal":
          return { kind: "normal", std: num("std") };
        case "uniform":
          return { kind: "uniform", low: num("low"), high: num("high") };
      }
    }
    return fail("E302", `an initialiser must be a number or he(), glorot(), normal(std), uniform(low, high); found ${describeValue(v)}`, this.file, a.span);
  }

  // ---- expressions -----------------------------------------------------------------------

  private tick(span: A.Span): void {
    if (++this.steps > LIMITS.steps) fail("E401", `elaboration took more than ${LIMITS.steps} steps (a runaway loop?)`, this.file, span);
  }

  eval(e: A.Expr): Value {
    this.tick(e.span);
    switch (e.kind) {
      case "Number":
        if (!Number.isFinite(e.value) || (e.isInt && !Number.isSafeInteger(e.value))) fail("E402", `number ${e.raw} is out of range`, this.file, e.span);
        return e.isInt ? int(e.value) : { k: "float", v: e.value };
      case "String":
        return { k: "string", v: this.interpolate(e) };
      case "Bool":
        return { k: "bool", v: e.value };
      case "Ident":
        return this.lookup(e.name, e.span, false);
      case "Paren":
        return this.eval(e.value);
      case "List":
        return { k: "list", items: e.items.map((i) => this.eval(i)) };
      case "Comprehension":
        return this.comprehension(e);
      case "Call":
        return this.call(this.calleeOf(e), this.evalArgs(e.args), e.span);
      case "Index":
        return this.index(e);
      case "Unary":
        return this.unary(e);
      case "Binary":
        return this.binary(e);
      case "Cond": {
        const c = expectBool({ value: this.eval(e.cond), span: e.cond.span }, this.file, "the condition");
        return this.eval(c ? e.then : e.otherwise);
      }
      case "Named": {
        const name = this.interpolate(e.name);
        let inner = e.value;
        while (inner.kind === "Paren") inner = inner.value;
        if (inner.kind !== "Call") return this.namer.withBase(name, true, () => this.eval(e.value));
        // The name belongs to the call it is written on, not to what its arguments create.
        const call = inner;
        const callee = this.calleeOf(call);
        const args = this.evalArgs(call.args);
        const named = this.namer.withExplicitName(name, () => this.call(callee, args, call.span));
        if (!named.used) {
          fail("E402", `\`as "${name}"\` names nothing: ${describeValue(callee.value)} creates no layer or block instance`, this.file, e.name.span, "put `as` on the conv, dense, batchnorm or block call it should name");
        }
        return named.value;
      }
    }
  }

  lookup(name: string, span: A.Span, asCallee: boolean): Value {
    const v = this.frame.vars.get(name);
    if (v) return v;
    const block = this.frame.blocks.get(name);
    if (block) return { k: "block", ref: block };
    if (builtins.has(name)) return { k: "builtin", name };
    const candidates = [...this.frame.vars.keys(), ...this.frame.blocks.keys(), ...builtins.keys()];
    const suggestion = closest(name, candidates);
    const help = suggestion ? `did you mean '${suggestion}'?` : undefined;
    if (asCallee) return fail("E201", `unknown block or function '${name}'`, this.file, span, help);
    return fail("E200", `'${name}' is not defined here`, this.file, span, help);
  }

  private calleeOf(e: A.CallExpr): Located {
    return { value: e.callee.kind === "Ident" ? this.lookup(e.callee.name, e.callee.span, true) : this.eval(e.callee), span: e.callee.span };
  }

  private evalArgs(args: A.Arg[]): ArgIn[] {
    return args.map((a) => ({ name: a.name, value: { value: this.eval(a.value), span: a.value.span } }));
  }

  call(callee: Located, args: ArgIn[], span: A.Span): Value {
    const c = callee.value;
    if (c.k === "builtin") {
      const spec = builtins.get(c.name)!;
      const bound = bindArguments(spec.name, specParams(spec.params), args, !!spec.variadic, this.file, span);
      return spec.call(this, this.withDefaults(spec.params, bound, span), span);
    }
    if (c.k === "layer") {
      const spec = builtins.get(c.layer.layer)!;
      if (args.length !== 1 || args[0]!.name) fail("E207", `layer '${c.layer.name}' is applied to exactly one tensor`, this.file, span);
      return spec.apply!(this, c.layer, args[0]!.value, span);
    }
    if (c.k === "block") return this.callBlock(c.ref, args, span);
    return fail("E302", `${describeValue(c)} is not callable`, this.file, callee.span);
  }

  private withDefaults(params: Builtin["params"], bound: Map<string, Located>, span: A.Span): Map<string, Located> {
    for (const p of params) if (!bound.has(p.name) && p.default) bound.set(p.name, { value: p.default, span });
    return bound;
  }

  callBlock(ref: BlockRef, args: ArgIn[], span: A.Span): Value {
    const decl = ref.decl;
    const name = decl.name.text;
    if (this.depth >= LIMITS.depth) fail("E401", `blocks nested more than ${LIMITS.depth} deep (is '${name}' recursive?)`, this.file, span);
    const params = decl.params.map((p) => ({ name: p.name.text, required: p.default === null }));
    const bound = bindArguments(name, params, args, false, this.file, span);
    const path = this.namer.claim(this.frame.scope, name.toLowerCase(), this.file, span, true);
    const caller = this.frame;
    const frame = new Frame(ref.file, ref.scope, path, "block");
    this.frame = frame;
    this.depth++;
    try {
      return this.namer.isolated(() => {
        const dims = this.dimScope();
        for (const p of decl.params) {
          let arg = bound.get(p.name.text);
          if (!arg) arg = { value: this.eval(p.default!), span: p.default!.span };
          const value = p.type ? matchType(arg, p.type, dims, caller.file === this.file ? this.file : caller.file, `argument '${p.name.text}' of ${name}`) : arg.value;
          frame.vars.set(p.name.text, value);
        }
        this.instances.push({ path, block: name, file: ref.file, depth: this.depth });
        this.exec(decl.body);
        if (!frame.returned) fail("E305", `block '${name}' ends without a return`, ref.file, decl.endSpan);
        return this.checkReturn(decl, frame.returned);
      });
    } catch (e) {
      if (e instanceof DiagnosticError && e.diagnostic.file !== caller.file) {
        e.diagnostic.notes = [...(e.diagnostic.notes ?? []), { message: `in ${name}, instantiated here`, file: caller.file, span }];
      }
      throw e;
    } finally {
      this.depth--;
      this.frame = caller;
    }
  }

  private checkReturn(decl: A.BlockDecl, value: Value): Value {
    if (!decl.returns) return value;
    const values = decl.returns.length === 1 ? [value] : value.k === "tuple" ? value.items : [value];
    if (values.length !== decl.returns.length) {
      fail("E304", `block '${decl.name.text}' declares ${decl.returns.length} results but returns ${values.length}`, this.file, decl.name.span);
    }
    const dims = this.dimScope();
    const checked = values.map((v, i) => {
      try {
        return matchType({ value: v, span: decl.returns![i]!.span }, decl.returns![i]!, dims, this.file, `result of ${decl.name.text}`);
      } catch (e) {
        if (e instanceof DiagnosticError && (e.diagnostic.code === "E300" || e.diagnostic.code === "E302")) e.diagnostic.code = "E303";
        throw e;
      }
    });
    return checked.length === 1 ? checked[0]! : { k: "tuple", items: checked };
  }

  dimScope(): DimScope {
    return {
      lookup: (n) => this.frame.vars.get(n),
      bind: (n, v) => this.frame.vars.set(n, v),
      evalSize: (e) => this.evalSize(e),
    };
  }

  evalSize(e: A.Expr): Size {
    const v = this.eval(e);
    if (v.k === "int") return v.v;
    if (v.k === "float" && Number.isInteger(v.v)) return Size.of(v.v);
    return fail("E302", `a dimension must be an int, found ${describeValue(v)}`, this.file, e.span);
  }

  private comprehension(e: A.Comprehension): Value {
    const items = expectList({ value: this.eval(e.iterable), span: e.iterable.span }, this.file, "the comprehension's iterable");
    const names = e.vars.map((v) => v.text);
    const saved = names.map((n) => this.frame.vars.get(n));
    const out: Value[] = [];
    try {
      for (const item of items) {
        this.assign(e.vars, item, e.iterable.span);
        if (e.filter && !expectBool({ value: this.eval(e.filter), span: e.filter.span }, this.file, "the filter")) continue;
        out.push(this.eval(e.body));
      }
    } finally {
      names.forEach((n, i) => (saved[i] === undefined ? this.frame.vars.delete(n) : this.frame.vars.set(n, saved[i]!)));
    }
    return { k: "list", items: out };
  }

  private index(e: A.IndexExpr): Value {
    const target = this.eval(e.target);
    const idx = this.eval(e.index);
    if (idx.k !== "int" || !idx.v.isConstant) fail("E302", `an index must be a known int, found ${describeValue(idx)}`, this.file, e.index.span);
    let i = idx.v.constant;
    if (target.k === "list" || target.k === "tuple") {
      const n = target.items.length;
      if (i < -n || i >= n) fail("E400", `index ${i} is out of range for a list of ${n}`, this.file, e.index.span);
      return target.items[i < 0 ? n + i : i]!;
    }
    if (target.k === "tensor") {
      const first = target.shape[0];
      if (!first) fail("E301", "cannot index a scalar tensor", this.file, e.span);
      const n = first.size.value;
      if (n === undefined) fail("E400", `cannot index the symbolic axis ${first.size}`, this.file, e.span);
      if (i < -n || i >= n) fail("E400", `index ${i} is out of range for axis 0 of ${formatShape(target.shape)}`, this.file, e.index.span);
      if (i < 0) i += n;
      return this.addNode("select", [target.node], { axis: 0, index: i }, target.shape.slice(1), e.span);
    }
    return fail("E302", `cannot index ${describeValue(target)}`, this.file, e.target.span);
  }

  private unary(e: A.UnaryExpr): Value {
    const v = this.eval(e.operand);
    if (e.op === "not") return { k: "bool", v: !expectBool({ value: v, span: e.operand.span }, this.file, "the operand of not") };
    if (e.op === "+") return v;
    if (v.k === "int") return { k: "int", v: v.v.scale(-1) };
    if (v.k === "float") return { k: "float", v: -v.v };
    if (v.k === "tensor") return this.addNode("neg", [v.node], {}, v.shape, e.span);
    return fail("E302", `cannot negate ${describeValue(v)}`, this.file, e.operand.span);
  }

  private binary(e: A.BinaryExpr): Value {
    if (e.op === "and" || e.op === "or") {
      const l = expectBool({ value: this.eval(e.left), span: e.left.span }, this.file, `the left side of ${e.op}`);
      if (e.op === "and" ? !l : l) return { k: "bool", v: l };
      return { k: "bool", v: expectBool({ value: this.eval(e.right), span: e.right.span }, this.file, `the right side of ${e.op}`) };
    }
    // a + b + c + ... parses left-deep; walk the left spine iteratively so that long sums do not
    // grow the stack with their length.
    const spine: A.BinaryExpr[] = [e];
    while (spine[spine.length - 1]!.left.kind === "Binary" && isArithmetic((spine[spine.length - 1]!.left as A.BinaryExpr).op)) {
      spine.push(spine[spine.length - 1]!.left as A.BinaryExpr);
    }
    if (spine.length > 1) {
      const first = spine[spine.length - 1]!.left;
      let acc: Located = { value: this.eval(first), span: first.span };
      for (let i = spine.length - 1; i >= 0; i--) {
        const node = spine[i]!;
        this.tick(node.span);
        acc = { value: this.applyBinary(node, acc, { value: this.eval(node.right), span: node.right.span }), span: node.span };
      }
      return acc.value;
    }
    return this.applyBinary(e, { value: this.eval(e.left), span: e.left.span }, { value: this.eval(e.right), span: e.right.span });
  }

  private applyBinary(e: A.BinaryExpr, a: Located, b: Located): Value {
    switch (e.op) {
      case "+":
        if (a.value.k === "string" && b.value.k === "string") return { k: "string", v: a.value.v + b.value.v };
        if (a.value.k === "list" && b.value.k === "list") return { k: "list", items: [...a.value.items, ...b.value.items] };
        return this.elementwise("add", a, b, e.opSpan);
      case "-":
        return this.elementwise("sub", a, b, e.opSpan);
      case "*":
        return this.elementwise("mul", a, b, e.opSpan);
      case "/":
        return this.elementwise("div", a, b, e.opSpan);
      case "//":
      case "%":
      case "**":
        return numeric(e.op, a, b, e.opSpan, this.file);
      default:
        return compare(e.op, a, b, e.opSpan, this.file);
    }
  }

  private interpolate(s: A.StringLit): string {
    let parts = this.interpolations.get(s);
    if (!parts) {
      parts = [];
      const re = /\{\{|\}\}|\{([^{}]*)\}/g;
      let last = 0;
      for (let m = re.exec(s.value); m; m = re.exec(s.value)) {
        parts.push(s.value.slice(last, m.index));
        if (m[0] === "{{") parts.push("{");
        else if (m[0] === "}}") parts.push("}");
        else {
          const expr = parseExpression(m[1]!);
          if (!expr) fail("E101", `cannot parse {${m[1]}} in a string`, this.file, s.span, "write {expression}; use {{ and }} for literal braces");
          parts.push(expr);
        }
        last = m.index + m[0].length;
      }
      parts.push(s.value.slice(last));
      this.interpolations.set(s, parts);
    }
    let out = "";
    for (const p of parts) {
      if (typeof p === "string") out += p;
      else {
        try {
          out += showValue(this.eval(p));
        } catch (e) {
          if (e instanceof DiagnosticError && e.diagnostic.file === this.file) e.diagnostic.span = s.span;
          throw e;
        }
      }
    }
    return out;
  }
}
