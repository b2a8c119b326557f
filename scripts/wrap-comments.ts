/**
 * Re-wraps the comment paragraphs that pass the line limit: prettier formats code but leaves comments as written, and
 * the 120-column rule (test/line-length.test.ts) holds for comments too. Only a paragraph with a line over the limit
 * changes, and only by moving words to the next line (a new line after its last), so the author's other breaks stay
 * and the words never change. Left as they are: list items keep their marker and hanging indent, and fenced or
 * indented code, table rows, tool directives (`@ts-…`, `prettier-ignore`, `///`), test tier declarations and a
 * comment after code on its line are never rewrapped (a word longer than the limit, such as a URL, stays whole).
 *
 * Usage: node --import tsx scripts/wrap-comments.ts [--check] [file or folder…]   (default: src workers test bench
 * scripts). --check changes nothing, lists the files it would change and exits 1 when there are any.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { tokenize, UnsupportedSyntax, type CommentRange } from './ts-tokens.ts';

const require = createRequire(import.meta.url);

export const WIDTH = 120;

/** A comment line that is never rewrapped: a directive, or a test file's tier declaration. */
const UNTOUCHABLE = /^(@ts-|prettier-ignore|eslint|tier:|\/|#!)/;
/** A list item's marker; its paragraph continues with a hanging indent of the marker's width. */
const LIST_MARKER = /^(?:[-*+•]|\d+[.)]|\([a-z0-9]+\))\s+/;
/** What a moved word must not start a line with: it would read as a list item, a table row, a tag or a fence. */
const UNSAFE_LINE_START = /^(?:[-*+•>#|@]|\d+[.)]\s|```|\([a-z0-9]+\)\s)/;

/** One line of a comment: what stays in front (indent and comment marker), its words, what follows (a `*\/`). */
interface Line {
  prefix: string;
  text: string;
  suffix: string;
}

/** A paragraph: lines rewrapped together; `hang` is the prefix of a line the wrap adds. */
interface Paragraph {
  lines: Line[];
  hang: string;
}

const width = (s: string): number => [...s].length;
const full = (l: Line): string => l.prefix + l.text + l.suffix;

/**
 * Moves the words that pass the limit to the next line of the paragraph, cascading, and adds a line after the last
 * (or after a line that ends a code span). A line whose first word alone passes the limit stays as it is.
 */
export function reflow(paragraph: Paragraph, limit = WIDTH): Line[] {
  const lines = paragraph.lines.map((l) => ({ ...l }));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (width(full(line)) <= limit) continue;
    const room = limit - width(line.prefix) - width(line.suffix);
    const at = breakAt(line.text, room);
    if (at < 0) continue;
    const endsCode = line.text.endsWith('`');
    const moved = line.text.slice(at + 1).trimStart();
    line.text = line.text.slice(0, at).trimEnd();
    const next = lines[i + 1];
    // A line that ends a code span (a usage line) keeps its end of line: the words go on a line of their own.
    if (next !== undefined && !endsCode) {
      next.text = `${moved} ${next.text}`;
    } else {
      lines.splice(i + 1, 0, { prefix: paragraph.hang, text: moved, suffix: line.suffix });
      line.suffix = '';
    }
  }
  return lines;
}

/**
 * The last space in text at which the part before fits room and the part after starts safely; when no part before
 * fits (a word longer than the line, such as a URL), the first safe space after that word; -1 when there is none.
 */
function breakAt(text: string, room: number): number {
  let first = -1;
  for (let at = text.lastIndexOf(' '); at > 0; at = text.lastIndexOf(' ', at - 1)) {
    const head = text.slice(0, at).trimEnd();
    if (head === '') break;
    if (UNSAFE_LINE_START.test(text.slice(at + 1))) continue;
    if (width(head) <= room) return at;
    first = at;
  }
  return first;
}

/**
 * Splits one comment's lines into paragraphs and the lines between them (blank, code, tables, directives), each kept
 * in order: a paragraph's lines are the ones to rewrap. `marker` is what follows the indent on a line (`// `, ` * `).
 */
export function paragraphs(lines: Line[]): (Paragraph | Line)[] {
  const out: (Paragraph | Line)[] = [];
  let current: Paragraph | null = null;
  let fenced = false;
  let example = false;
  /** The extra indent after the marker that continues the current list item. */
  let hangText = '';
  for (const line of lines) {
    const text = line.text;
    const fence = /^\s*```/.test(text);
    if (fenced || fence) {
      if (fence) fenced = !fenced;
      current = null;
      out.push(line);
      continue;
    }
    if (/^@example\b/.test(text)) example = true;
    else if (/^@\w/.test(text)) example = false;
    const blank = text.trim() === '';
    const indented = /^\s/.test(text);
    if (blank || example || text.startsWith('|') || UNTOUCHABLE.test(text)) {
      current = null;
      out.push(line);
      continue;
    }
    if (indented) {
      const lead = /^\s*/.exec(text)![0];
      if (current !== null && hangText !== '' && lead === hangText) {
        current.lines.push({ ...line, prefix: line.prefix + lead, text: text.slice(lead.length) });
        continue;
      }
      current = null;
      out.push(line);
      continue;
    }
    const marker = LIST_MARKER.exec(text);
    // An unindented line after a list item ends the item.
    if (current === null || marker !== null || /^@\w/.test(text) || hangText !== '') {
      hangText = marker !== null ? ' '.repeat(width(marker[0])) : '';
      const hang = hangLine(line, hangText);
      current = { lines: [line], hang };
      out.push(current);
      continue;
    }
    current.lines.push(line);
  }
  return out;
}

/** The prefix of a continuation line of a paragraph whose first line is `first`. */
function hangLine(first: Line, hangText: string): string {
  // The opening line of a block comment (`/** text`) continues as ` * `.
  const block = /^(\s*)\/\*\*? ?$/.exec(first.prefix);
  if (block !== null) return `${block[1]} * ${hangText}`;
  return first.prefix + hangText;
}

/** Rewraps one comment (its text from `//` or `/*` to its end) that starts at column `column`. */
export function wrapComment(comment: string, column: number, limit = WIDTH): string {
  const indent = ' '.repeat(column);
  // Each line with its indent (the first line's too, as if the comment stood alone at its column); the column is cut
  // from the first line again at the end.
  const raw = comment.split('\n').map((l, i) => (i === 0 ? indent + l : l));
  if (comment.startsWith('//')) {
    const lines = raw.map((l): Line => {
      const m = /^\s*\/\/ ?/.exec(l)!;
      return { prefix: m[0], text: l.slice(m[0].length), suffix: '' };
    });
    return render(lines, limit).slice(column);
  }
  if (!comment.startsWith('/*')) return comment;
  if (raw.length === 1) {
    // A one-line block comment over the limit becomes a block of lines: `/**`, ` * …`, ` *\/`.
    if (width(raw[0]!) <= limit || !comment.startsWith('/** ') || !comment.endsWith(' */')) return comment;
    const text = comment.slice(4, -3).trim();
    if (text === '' || UNTOUCHABLE.test(text)) return comment;
    const body = render([{ prefix: `${indent} * `, text, suffix: '' }], limit);
    return ['/**', body, `${indent} */`].join('\n');
  }
  // Every line after the first must be ` * …` or ` *\/`: other block comments are left as written.
  if (!raw.slice(1).every((l) => /^\s*\*/.test(l))) return comment;
  const lines = raw.map((l, i): Line => {
    if (i === 0) {
      const m = /^\s*\/\*\*? ?/.exec(l)!;
      return { prefix: m[0], text: l.slice(m[0].length), suffix: '' };
    }
    if (/^\s*\*\/$/.test(l)) return { prefix: l, text: '', suffix: '' };
    const m = /^\s*\* ?/.exec(l)!;
    const text = l.slice(m[0].length);
    const close = i === raw.length - 1 ? / ?\*\/$/.exec(text) : null;
    if (close === null) return { prefix: m[0], text, suffix: '' };
    return { prefix: m[0], text: text.slice(0, -close[0].length), suffix: close[0] };
  });
  return render(lines, limit).slice(column);
}

/** Lines rewrapped by paragraph and joined. */
function render(lines: Line[], limit: number): string {
  const out: string[] = [];
  for (const part of paragraphs(lines)) {
    if ('prefix' in part) out.push(full(part));
    else out.push(...reflow(part, limit).map(full));
  }
  return out.join('\n');
}

/**
 * Every comment of a TypeScript or JavaScript source, by position: from its tokens (ts-tokens.ts), or from TypeScript's
 * tree for a source those do not read (tsCommentRanges; the two agree on every source of the repository,
 * test/syntax-scan-typescript.test.ts). Loading TypeScript was most of this script's and its test's CPU.
 */
export function commentRanges(source: string, fileName = 'file.ts'): CommentRange[] {
  const comments: CommentRange[] = [];
  try {
    tokenize(source, 0, false, comments);
    return comments;
  } catch (err) {
    if (err instanceof UnsupportedSyntax) return tsCommentRanges(source, fileName);
    throw err;
  }
}

/** Every comment of a source as TypeScript's tree has it (leading and trailing trivia of every token). */
export function tsCommentRanges(source: string, fileName = 'file.ts'): CommentRange[] {
  const ts = require('typescript') as typeof import('typescript');
  const kind = /\.m?js$/.test(fileName) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
  const found = new Map<number, CommentRange>();
  const add = (r: import('typescript').CommentRange): void => {
    found.set(r.pos, { pos: r.pos, end: r.end, single: r.kind === ts.SyntaxKind.SingleLineCommentTrivia });
  };
  const visit = (node: import('typescript').Node): void => {
    for (const r of ts.getLeadingCommentRanges(source, node.getFullStart()) ?? []) add(r);
    for (const r of ts.getTrailingCommentRanges(source, node.getEnd()) ?? []) add(r);
    for (const child of node.getChildren(file)) visit(child);
  };
  visit(file);
  return [...found.values()].sort((a, b) => a.pos - b.pos);
}

/** A run of `//` comments, each alone on its line, on consecutive lines at one column: one comment to rewrap. */
interface Run {
  pos: number;
  end: number;
  column: number;
}

function runsOf(source: string, ranges: CommentRange[]): Run[] {
  const runs: Run[] = [];
  for (const r of ranges) {
    const lineStart = source.lastIndexOf('\n', r.pos - 1) + 1;
    const before = source.slice(lineStart, r.pos);
    if (before.trim() !== '') continue; // after code on its line: left as written
    const column = width(before);
    const last = runs[runs.length - 1];
    const single = r.single;
    if (
      single &&
      last !== undefined &&
      last.column === column &&
      source.slice(last.end, r.pos) === `\n${before}` &&
      source.slice(last.pos, last.pos + 2) === '//'
    ) {
      last.end = r.end;
      continue;
    }
    runs.push({ pos: r.pos, end: r.end, column });
  }
  return runs;
}

/** The source with its over-long comment paragraphs rewrapped; anything else byte for byte as it was. */
export function wrapComments(source: string, fileName = 'file.ts', limit = WIDTH): string {
  let out = '';
  let at = 0;
  for (const run of runsOf(source, commentRanges(source, fileName))) {
    const text = source.slice(run.pos, run.end);
    if (!text.split('\n').some((l, i) => (i === 0 ? run.column : 0) + width(l) > limit)) continue;
    out += source.slice(at, run.pos) + wrapComment(text, run.column, limit);
    at = run.end;
  }
  return out + source.slice(at);
}

const CODE = /\.(ts|mts|mjs|js)$/;

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .filter((name) => name !== 'node_modules')
    .flatMap((name) => {
      const child = join(path, name);
      return statSync(child).isDirectory() ? filesUnder(child) : CODE.test(name) ? [child] : [];
    });
}

function main(args: string[]): number {
  const check = args.includes('--check');
  const paths = args.filter((a) => a !== '--check');
  const changed: string[] = [];
  for (const file of (paths.length > 0 ? paths : ['src', 'workers', 'test', 'bench', 'scripts']).flatMap(filesUnder)) {
    const source = readFileSync(file, 'utf8');
    const wrapped = wrapComments(source, file);
    if (wrapped === source) continue;
    changed.push(relative(process.cwd(), file));
    if (!check) writeFileSync(file, wrapped);
  }
  for (const file of changed) console.log(`${check ? 'would rewrap' : 'rewrapped'} ${file}`);
  return check && changed.length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = main(process.argv.slice(2));
}
