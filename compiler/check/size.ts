// Symbolic dimension sizes. A size is a canonical sum  c + Σ k_i · atom_i  where an atom is a
// symbol (N, C, ...), a floor division of a size by a positive integer, or a product of atoms.
// Canonical forms make equal sizes compare equal: the 3x3/stride-2 convolution and the 1x1
// stride-2 shortcut both give floor((H - 1) / 2) + 1, so their sum type-checks for symbolic H.

type Atom = { kind: "sym"; name: string } | { kind: "floordiv"; num: Size; den: number } | { kind: "prod"; factors: Size[] };

export class Size {
  private constructor(
    readonly constant: number,
    /** key (canonical atom text) -> coefficient and atom; never holds a zero coefficient. */
    private readonly terms: ReadonlyMap<string, { coef: number; atom: Atom }>,
  ) {}

  static of(n: number): Size {
    return new Size(n, new Map());
  }

  static symbol(name: string): Size {
    return new Size(0, new Map([[name, { coef: 1, atom: { kind: "sym", name } }]]));
  }

  private static atom(atom: Atom, key: string): Size {
    return new Size(0, new Map([[key, { coef: 1, atom }]]));
  }

  get isConstant(): boolean {
    return this.terms.size === 0;
  }

  /** The value when constant, else undefined. */
  get value(): number | undefined {
    return this.isConstant ? this.constant : undefined;
  }

  add(other: Size): Size {
    const terms = new Map(this.terms);
    for (const [key, t] of other.terms) {
      const coef = (terms.get(key)?.coef ?? 0) + t.coef;
      if (coef === 0) terms.delete(key);
      else terms.set(key, { coef, atom: t.atom });
    }
    return new Size(this.constant + other.constant, terms);
  }

  scale(k: number): Size {
    if (k === 0) return Size.of(0);
    const terms = new Map<string, { coef: number; atom: Atom }>();
    for (const [key, t] of this.terms) terms.set(key, { coef: t.coef * k, atom: t.atom });
    return new Size(this.constant * k, terms);
  }

  sub(other: Size): Size {
    return this.add(other.scale(-1));
  }

  mul(other: Size): Size {
    if (other.isConstant) return this.scale(other.constant);
    if (this.isConstant) return other.scale(this.constant);
    const factors = [this, other].sort((a, b) => (a.toString() < b.toString() ? -1 : 1));
    const key = `(${factors.map(String).join(")*(")})`;
    return Size.atom({ kind: "prod", factors }, key);
  }

  /** floor(this / d) for a positive integer d. */
  floorDiv(d: number): Size {
    if (this.isConstant) return Size.of(Math.floor(this.constant / d));
    if (d === 1) return this;
    const divisible = [...this.terms.values()].every((t) => t.coef % d === 0);
    if (divisible) {
      // floor((d·A + c) / d) = A + floor(c / d) when A is an integer combination.
      const terms = new Map<string, { coef: number; atom: Atom }>();
      for (const [key, t] of this.terms) terms.set(key, { coef: t.coef / d, atom: t.atom });
      return new Size(Math.floor(this.constant / d), terms);
    }
    return Size.atom({ kind: "floordiv", num: this, den: d }, `floor((${this}) / ${d})`);
  }

  equals(other: Size): boolean {
    return this.toString() === other.toString();
  }

  /** Substitutes symbols by sizes (used to evaluate a symbolic shape once N is known). */
  substitute(env: ReadonlyMap<string, Size>): Size {
    let result = Size.of(this.constant);
    for (const { coef, atom } of this.terms.values()) {
      let value: Size;
      if (atom.kind === "sym") value = env.get(atom.name) ?? Size.symbol(atom.name);
      else if (atom.kind === "floordiv") value = atom.num.substitute(env).floorDiv(atom.den);
      else value = atom.factors.map((f) => f.substitute(env)).reduce((a, b) => a.mul(b));
      result = result.add(value.scale(coef));
    }
    return result;
  }

  symbols(): string[] {
    const out = new Set<string>();
    for (const { atom } of this.terms.values()) {
      if (atom.kind === "sym") out.add(atom.name);
      else if (atom.kind === "floordiv") atom.num.symbols().forEach((s) => out.add(s));
      else atom.factors.forEach((f) => f.symbols().forEach((s) => out.add(s)));
    }
    return [...out];
  }

  toString(): string {
    const keys = [...this.terms.keys()].sort();
    const parts: string[] = [];
    for (const key of keys) {
      const { coef } = this.terms.get(key)!;
      const sign = coef < 0 ? "-" : "+";
      const mag = Math.abs(coef);
      parts.push(`${sign} ${mag === 1 ? "" : `${mag}*`}${key}`);
    }
    if (this.constant !== 0 || parts.length === 0) {
      parts.push(`${this.constant < 0 ? "-" : "+"} ${Math.abs(this.constant)}`);
    }
    const text = parts.join(" ");
    return text.startsWith("+ ") ? text.slice(2) : `-${text.slice(2)}`;
  }
}
