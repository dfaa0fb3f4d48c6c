// Stable hierarchical names for parameters and block instances. A name is built from the block
// path (model scope, then each instance) and a base: the `as "..."` name when given, else the
// name the statement binds (`l3 = ...` names its layer l3), else the kind of thing created.
// Auto names that collide get _2, _3, ... in creation order, so the same program always yields
// the same names; an explicit name that collides is an error.
import type { Span } from "../../grammar/ast.ts";
import { fail } from "./values.ts";

interface Base {
  name: string;
  explicit: boolean;
  used: boolean;
}

export class Namer {
  private readonly taken = new Map<string, Span>();
  private readonly bases: Base[] = [];

  /** Runs `f` with a naming base in force (a statement's target or an `as` name). */
  withBase<T>(name: string, explicit: boolean, f: () => T): T {
    this.bases.push({ name, explicit, used: false });
    try {
      return f();
    } finally {
      this.bases.pop();
    }
  }

  /** Like withBase for an explicit name, and reports whether anything took the name. */
  withExplicitName<T>(name: string, f: () => T): { value: T; used: boolean } {
    const base = { name, explicit: true, used: false };
    this.bases.push(base);
    try {
      return { value: f(), used: base.used };
    } finally {
      this.bases.pop();
    }
  }

  /** Runs `f` with no naming base (a block body starts afresh). */
  isolated<T>(f: () => T): T {
    const saved = this.bases.splice(0, this.bases.length);
    try {
      return f();
    } finally {
      this.bases.splice(0, this.bases.length, ...saved);
    }
  }

  /** Claims a full name under `scope` for a new thing of `kind`. Returns "" only for an
   * explicit `as ""` (a transparent block instance). */
  claim(scope: string, kind: string, file: string, span: Span, allowTransparent: boolean): string {
    const base = this.bases[this.bases.length - 1];
    const join = (n: string) => (scope && n ? `${scope}.${n}` : scope || n);
    if (base && base.explicit && !base.used) {
      base.used = true;
      if (base.name === "") {
        if (!allowTransparent) fail("E402", `a ${kind} needs a non-empty name`, file, span);
        return scope;
      }
      if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9][A-Za-z0-9_]*)*$/.test(base.name)) {
        fail("E402", `'${base.name}' is not a valid name: use letters, digits and _ in dot-separated parts`, file, span);
      }
      const full = join(base.name);
      const prior = this.taken.get(full);
      if (prior) {
        fail("E403", `the name '${full}' is already used (at line ${prior.line})`, file, span, "give each instance its own name, e.g. with {i} in the `as` string");
      }
      this.taken.set(full, span);
      return full;
    }
    const stem = base ? base.name : kind;
    let full = join(stem);
    for (let i = 2; this.taken.has(full); i++) full = join(`${stem}_${i}`);
    this.taken.set(full, span);
    return full;
  }
}
