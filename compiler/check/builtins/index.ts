// The table of built-ins: every primitive the language offers, defined once.
import type { Builtin } from "./context.ts";
import { layers } from "./layers.ts";
import { meta, settings } from "./meta.ts";
import { ops } from "./ops.ts";

export type { Builtin, BuiltinContext } from "./context.ts";

export const builtins: ReadonlyMap<string, Builtin> = new Map([...layers, ...ops, ...meta, ...settings].map((b) => [b.name, b]));
