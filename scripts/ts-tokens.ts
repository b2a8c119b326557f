/**
 * A TypeScript or JavaScript source as tokens, for test/helpers/syntax-scan.ts: names, literals and punctuation with
 * their offsets, white space dropped, and its comments' ranges for wrap-comments.ts. A template literal is one token
 * whose `${…}` parts are token lists of their own; `>` is always a token alone (`Map<string, Set<number>>` closes two
 * lists of type arguments), so `>>` and `>=` come as two tokens. A `/` starts a regular expression where an operand is
 * expected, from the token before it (a `/` after a `}` is a division: code that starts a statement with a regular
 * expression literal is read wrong).
 */
export type TokenKind = 'name' | 'private' | 'string' | 'number' | 'template' | 'regex' | 'punct';

export interface Token {
  kind: TokenKind;
  text: string;
  start: number;
  end: number;
  /** A line break between this token and the one before it. */
  newline: boolean;
  /** A template's `${…}` parts. */
  parts: Token[][] | undefined;
  /** What a string literal, or a template without parts, says (escapes kept as written). */
  value: string | undefined;
}

/** A comment's range: `//` to its line's end, or `/*` to its `*\/`. */
export interface CommentRange {
  pos: number;
  end: number;
  single: boolean;
}

/** A source this reader does not read (syntax-scan.ts then leaves the file to TypeScript's parser). */
export class UnsupportedSyntax extends Error {
  readonly code = 'ERR_UNSUPPORTED_SYNTAX';
  constructor(what: string, at: number) {
    super(`${what} at offset ${at}`);
  }
}

const PUNCTUATION = [
  '...',
  '===',
  '!==',
  '**=',
  '<<=',
  '&&=',
  '||=',
  '??=',
  '=>',
  '==',
  '!=',
  '<=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '**',
  '&&',
  '||',
  '??',
  '?.',
  '++',
  '--',
  '<<',
];
/** The longer punctuators by their first character, longest first. */
const LONG = new Map<string, string[]>();
for (const p of PUNCTUATION) LONG.set(p[0]!, [...(LONG.get(p[0]!) ?? []), p]);
const SINGLE = new Set('{}()[];,<>=+-*/%&|^!~?:.@');
/** Names after which an operand comes, not an operator: a `/` there starts a regular expression. */
export const BEFORE_OPERAND: ReadonlySet<string> = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
]);

const NAME = /[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*/y;
const NUMBER =
  /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)n?/y;

function add(
  tokens: Token[],
  source: string,
  kind: TokenKind,
  start: number,
  end: number,
  newline: boolean,
  extra?: Partial<Token>,
): number {
  // One shape for every token: V8 then reads them all with one hidden class.
  tokens.push({
    kind,
    text: source.slice(start, end),
    start,
    end,
    newline,
    parts: extra?.parts,
    value: extra?.value,
  });
  return end;
}

function longPunctuator(source: string, i: number, ch: string): string | undefined {
  const candidates = LONG.get(ch);
  if (candidates === undefined) return undefined;
  for (const p of candidates) {
    if (!source.startsWith(p, i)) continue;
    if (p === '?.' && /\d/.test(source[i + 2] ?? '')) continue; // `a?.5:b`
    return p;
  }
  return undefined;
}

function regexAllowed(tokens: readonly Token[]): boolean {
  const before = tokens[tokens.length - 1];
  if (before === undefined) return true;
  if (before.text === '!' && before.kind === 'punct') {
    // `x! / 2`: a `!` right after an operand asserts it is not null.
    const operand = tokens[tokens.length - 2];
    return !(operand !== undefined && operand.end === before.start && !regexAllowed(tokens.slice(0, -1)));
  }
  if (before.kind === 'punct') return before.text !== ')' && before.text !== ']' && before.text !== '}';
  return before.kind === 'name' && BEFORE_OPERAND.has(before.text);
}

/**
 * The tokens of `source` from `from`; with `inTemplate`, up to the `}` that closes a template's `${`. Its comments are
 * added to `comments` when given.
 */
export function tokenize(
  source: string,
  from = 0,
  inTemplate = false,
  comments?: CommentRange[],
): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  let i = from;
  // A shebang line is no token and no comment.
  if (from === 0 && source.startsWith('#!')) i = source.indexOf('\n') < 0 ? source.length : source.indexOf('\n');
  let newline = false;
  let braces = 0;
  const n = source.length;
  while (i < n) {
    const c = source.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) {
      newline = true;
      i++;
      continue;
    }
    if (c === 32 || c === 9 || c === 11 || c === 12 || c === 0xfeff || c === 0xa0) {
      i++;
      continue;
    }
    const start = i;
    const ch = source[i]!;
    if (ch === '/' && source[i + 1] === '/') {
      const eol = source.indexOf('\n', i);
      i = eol < 0 ? n : eol;
      if (source.charCodeAt(i - 1) === 13) i--;
      comments?.push({ pos: start, end: i, single: true });
      continue;
    }
    if (ch === '/' && source[i + 1] === '*') {
      const close = source.indexOf('*/', i + 2);
      if (close < 0) throw new UnsupportedSyntax('an unclosed comment', i);
      if (/[\n\r\u2028\u2029]/.test(source.slice(i, close))) newline = true;
      i = close + 2;
      comments?.push({ pos: start, end: i, single: false });
      continue;
    }
    NAME.lastIndex = i;
    if (NAME.test(source)) {
      i = add(tokens, source, 'name', start, NAME.lastIndex, newline);
      newline = false;
      continue;
    }
    if (ch === '#') {
      NAME.lastIndex = i + 1;
      if (!NAME.test(source)) throw new UnsupportedSyntax("a '#' that starts no private name", i);
      i = add(tokens, source, 'private', start, NAME.lastIndex, newline);
      newline = false;
      continue;
    }
    if ((c >= 48 && c <= 57) || (ch === '.' && /\d/.test(source[i + 1] ?? ''))) {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(source)) throw new UnsupportedSyntax('a number', i);
      i = add(tokens, source, 'number', start, NUMBER.lastIndex, newline);
      newline = false;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < n && source[j] !== ch) {
        if (source[j] === '\\') j++;
        else if (source[j] === '\n') throw new UnsupportedSyntax('an unclosed string', i);
        j++;
      }
      if (j >= n) throw new UnsupportedSyntax('an unclosed string', i);
      i = add(tokens, source, 'string', start, j + 1, newline, { value: source.slice(i + 1, j) });
      newline = false;
      continue;
    }
    if (ch === '`') {
      const parts: Token[][] = [];
      let j = i + 1;
      for (;;) {
        if (j >= n) throw new UnsupportedSyntax('an unclosed template', i);
        const d = source[j];
        if (d === '\\') j += 2;
        else if (d === '`') break;
        else if (d === '$' && source[j + 1] === '{') {
          const part = tokenize(source, j + 2, true, comments);
          parts.push(part.tokens);
          j = part.end + 1;
        } else j++;
      }
      i = add(
        tokens,
        source,
        'template',
        start,
        j + 1,
        newline,
        parts.length > 0 ? { parts } : { value: source.slice(i + 1, j) },
      );
      newline = false;
      continue;
    }
    if (ch === '/' && regexAllowed(tokens)) {
      let j = i + 1;
      let inClass = false;
      for (;;) {
        const d = source[j];
        if (d === undefined || d === '\n') throw new UnsupportedSyntax('an unclosed regular expression', i);
        if (d === '\\') j++;
        else if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) break;
        j++;
      }
      NAME.lastIndex = j + 1;
      i = add(tokens, source, 'regex', start, NAME.test(source) ? NAME.lastIndex : j + 1, newline);
      newline = false;
      continue;
    }
    if (inTemplate && ch === '}' && braces === 0) return { tokens, end: i };
    if (ch === '{') braces++;
    else if (ch === '}') braces--;
    const long = longPunctuator(source, i, ch);
    if (long !== undefined) {
      i = add(tokens, source, 'punct', start, i + long.length, newline);
      newline = false;
      continue;
    }
    if (!SINGLE.has(ch)) throw new UnsupportedSyntax(`the character ${JSON.stringify(ch)}`, i);
    i = add(tokens, source, 'punct', start, i + 1, newline);
    newline = false;
  }
  if (inTemplate) throw new UnsupportedSyntax('an unclosed template part', from);
  return { tokens, end: n };
}

/** For each bracket of `tokens`, the index of the one that closes or opens it (-1 elsewhere). */
export function matchBrackets(tokens: readonly Token[]): Int32Array {
  const match = new Int32Array(tokens.length).fill(-1);
  const open: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'punct') continue;
    if (t.text === '(' || t.text === '[' || t.text === '{') open.push(i);
    else if (t.text === ')' || t.text === ']' || t.text === '}') {
      const o = open.pop();
      const pair = o === undefined ? '' : tokens[o]!.text + t.text;
      if (pair !== '()' && pair !== '[]' && pair !== '{}')
        throw new UnsupportedSyntax(`an unmatched '${t.text}'`, t.start);
      match[o!] = i;
      match[i] = o!;
    }
  }
  if (open.length > 0) throw new UnsupportedSyntax(`an unclosed '${tokens[open.pop()!]!.text}'`, 0);
  return match;
}
