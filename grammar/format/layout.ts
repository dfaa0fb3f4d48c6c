// Comment-aware layouts shared by the printers: a sequence of statements between braces, and a
// bracketed list that stays on one line when it fits and puts one element per line when not.
// A `#` comment runs to the end of its line, so whatever follows one must start a new line:
// every comment printed here comes with a forced break.
import { doc, type Doc } from "prettier";
import type { CommentToken } from "../ast.ts";
import type { CommentMap, Container, Spanned } from "./comments.ts";

const { breakParent, group, hardline, ifBreak, indent, join, line, lineSuffix, softline } = doc.builders;

export function commentText(c: CommentToken): string {
  return c.text.trimEnd();
}

/** Comments after an element on its last line. Only the first can share that line: the others
 * follow on lines of their own, as they will be read back (as leading comments) next time. */
export function trailing(comments: CommentToken[]): Doc {
  if (comments.length === 0) return "";
  return [
    lineSuffix(" " + commentText(comments[0]!)),
    ...comments.slice(1).map((c) => lineSuffix([hardline, commentText(c)])),
    breakParent,
  ];
}

/** Comment lines to print above something, each followed by a line break. */
export function commentLines(comments: CommentToken[]): Doc {
  return comments.map((c) => [commentText(c), hardline]);
}

/** An element with its comments, for containers that never keep blank lines. */
export function withComments(cm: CommentMap, el: Spanned, printed: Doc): Doc {
  const a = cm.comments(el);
  return [commentLines([...a.hoisted, ...a.leading]), printed, trailing(a.trailing)];
}

/** The first comment on the opening bracket's line; any others go on lines below it. */
function afterOpen(ct: Container): { suffix: Doc; lines: CommentToken[] } {
  const [first, ...rest] = ct.afterOpen;
  return { suffix: first ? [lineSuffix(" " + commentText(first)), breakParent] : "", lines: rest };
}

export interface ListOptions {
  /** The grammar allows a trailing comma after the last element. */
  trailingComma: boolean;
  /** `{ A, B }` rather than `(a, b)`. */
  spaced?: boolean;
  /** Separator between elements; a comma by default. */
  separator?: Doc;
  /** Leave out the group, so that the caller's group (a whole declaration header) decides. */
  bare?: boolean;
}

export function printList(cm: CommentMap, ct: Container, docs: Doc[], open: string, close: string, opts: ListOptions): Doc {
  const { suffix, lines } = afterOpen(ct);
  if (docs.length === 0 && ct.dangling.length === 0 && lines.length === 0) return [open, suffix, suffix ? hardline : "", close];
  const items = ct.elements.map((el, i) => withComments(cm, el, docs[i]!));
  if (items.length > 0 && lines.length > 0) items[0] = [commentLines(lines), items[0]!];
  const dangling = [...(items.length === 0 ? lines : []), ...ct.dangling].map(commentText);
  const edge = opts.spaced ? line : softline;
  const parts: Doc[] = [
    open,
    suffix,
    indent([
      edge,
      join(opts.separator ?? [",", line], items),
      opts.trailingComma && items.length > 0 ? ifBreak(",") : "",
      dangling.length > 0 ? [items.length > 0 ? hardline : "", join(hardline, dangling), breakParent] : "",
    ]),
    edge,
    close,
  ];
  return opts.bare ? parts : group(parts);
}

export function hasComments(cm: CommentMap, ct: Container): boolean {
  if (ct.afterOpen.length > 0 || ct.dangling.length > 0) return true;
  return ct.elements.some((el) => {
    const a = cm.comments(el);
    return a.hoisted.length + a.leading.length + a.trailing.length > 0;
  });
}

export interface SequenceOptions {
  /** Forces an empty line before this element (top-level declarations). */
  blankBefore?: (el: Spanned, index: number) => boolean;
  /** `##` lines directly above an element document it (top-level declarations). */
  keepDocs?: boolean;
}

/** Statements (or `train` entries, or the file's items), one per line, with at most one of the
 * author's empty lines kept between them and around their comments. */
export function printSequence(cm: CommentMap, ct: Container, print: (el: Spanned) => Doc, opts: SequenceOptions = {}): Doc[] {
  const parts: Doc[] = [];
  let prevEnd: number | null = null;
  const put = (printed: Doc, start: number, end: number, forceBlank: boolean) => {
    if (prevEnd !== null) parts.push(hardline, forceBlank || cm.blankBetween(prevEnd, start) ? hardline : "");
    parts.push(printed);
    prevEnd = end;
  };
  // Comments that cannot stay where they were (a second one on an element's last line, one from
  // inside an element) go on lines of their own before the next element: where the next run will
  // find them, so that it prints them the same way.
  let moved: CommentToken[] = afterOpen(ct).lines;
  ct.elements.forEach((el, i) => {
    const a = cm.comments(el);
    moved = [...moved, ...a.hoisted];
    const lead = [...moved, ...a.leading];
    const force = prevEnd !== null && (opts.blankBefore?.(el, i) ?? false);
    // A moved `##` line must not become the doc comment of the declaration below it.
    const detach = opts.keepDocs === true && moved.some((c) => c.doc);
    lead.forEach((c, j) => {
      put(commentText(c), Math.min(c.span.start, el.span.start), c.span.end, (force && j === 0) || (detach && j === moved.length));
    });
    const end = Math.max(el.span.end, a.trailing[0]?.span.end ?? 0);
    put([print(el), trailing(a.trailing.slice(0, 1))], el.span.start, end, (force && lead.length === 0) || (detach && a.leading.length === 0));
    moved = a.trailing.slice(1);
  });
  for (const c of [...moved, ...ct.dangling]) put(commentText(c), c.span.start, c.span.end, false);
  return parts;
}

/** `{ ... }` around a sequence: `{}` when there is nothing inside. */
export function printBraced(cm: CommentMap, ct: Container, print: (el: Spanned) => Doc): Doc {
  const { suffix } = afterOpen(ct);
  const inner = printSequence(cm, ct, print);
  if (inner.length === 0) return ["{", suffix, suffix ? hardline : "", "}"];
  return ["{", suffix, indent([hardline, ...inner]), hardline, "}"];
}
