/**
 * JSON ⇄ blobmsg the way the ubus CLI does it (libubox blobmsg_json.c), working on typed nodes so that a DOUBLE 2.0
 * prints as "2.000000" and "1.0" on the command line is sent as a DOUBLE, exactly like the C tools.
 */
import { BlobmsgType } from './codec/index.ts';
import type { BlobmsgNode } from './codec/index.ts';

export interface FormatOptions {
  /** -1: one line, no spaces (blobmsg_format_json); >= 0: tab-indented starting at that level. */
  indent?: number;
  /** Print the list as an array instead of a table. */
  array?: boolean;
  /** Custom rendering of a leaf (the CLI's signature printer); return undefined for the default. */
  formatLeaf?(node: BlobmsgNode): string | undefined;
}

/** blobmsg_format_json_with_cb(list = true): a table body (or array body) as JSON text. */
export function formatBlobmsgJson(nodes: readonly BlobmsgNode[], opts: FormatOptions = {}): string {
  const out: string[] = [];
  const indent = opts.indent ?? -1;
  formatList(out, nodes, opts.array === true, {
    indent: indent >= 0,
    level: indent >= 0 ? indent : 0,
    formatLeaf: opts.formatLeaf,
  });
  return out.join('');
}

/** blobmsg_format_json_with_cb(list = false) on one named element: `"name":value`. */
export function formatBlobmsgElement(node: BlobmsgNode, opts: FormatOptions = {}): string {
  const out: string[] = [];
  const indent = opts.indent ?? -1;
  formatElement(out, node, false, {
    indent: indent >= 0,
    level: indent >= 0 ? indent : 0,
    formatLeaf: opts.formatLeaf,
  });
  return out.join('');
}

interface FormatState {
  indent: boolean;
  level: number;
  formatLeaf: FormatOptions['formatLeaf'];
}

// libubox caps the indentation at 16 tabs.
const separator = (s: FormatState): string => (s.indent ? `\n${'\t'.repeat(Math.min(s.level, 16))}` : '');

function formatList(out: string[], nodes: readonly BlobmsgNode[], array: boolean, s: FormatState): void {
  out.push(array ? '[' : '{');
  s.level++;
  out.push(separator(s));
  let first = true;
  for (const n of nodes) {
    if (!first) out.push(',', separator(s));
    formatElement(out, n, array, s);
    first = false;
  }
  s.level--;
  out.push(separator(s), array ? ']' : '}');
}

function formatElement(out: string[], n: BlobmsgNode, withoutName: boolean, s: FormatState): void {
  if (!withoutName && n.name !== '') out.push(formatString(n.name), s.indent ? ': ' : ':');
  if (n.type === BlobmsgType.TABLE) return formatList(out, n.children ?? [], false, s);
  if (n.type === BlobmsgType.ARRAY) return formatList(out, n.children ?? [], true, s);
  const custom = s.formatLeaf?.(n);
  if (custom !== undefined) {
    out.push(custom);
    return;
  }
  const v = n.value;
  switch (n.type) {
    case BlobmsgType.UNSPEC:
      out.push('null');
      return;
    case BlobmsgType.INT8:
      out.push(v === 0 || v === false ? 'false' : 'true');
      return;
    case BlobmsgType.STRING:
      out.push(formatString(String(v)));
      return;
    case BlobmsgType.DOUBLE:
      out.push(formatDouble(Number(v)));
      return;
    default:
      out.push(String(v));
  }
}

/** blobmsg_format_string: escapes only ", \ and control characters; everything else goes out as is. */
function formatString(str: string): string {
  let out = '"';
  for (const ch of str) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c === 8) out += '\\b';
    else if (c === 10) out += '\\n';
    else if (c === 9) out += '\\t';
    else if (c === 13) out += '\\r';
    else if (c < 0x20) out += `\\u00${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** printf("%lf"): six decimals, "inf"/"nan" for the non-finite values. */
export function formatDouble(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v < 0 ? '-inf' : 'inf';
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  const a = Math.abs(v);
  // toFixed switches to exponent notation at 1e21; such doubles are integers, so BigInt prints them exactly.
  return sign + (a >= 1e21 ? `${BigInt(a)}.000000` : a.toFixed(6));
}

// ---------------------------------------------------------------------------------------------- parse

class JsonSyntaxError extends Error {}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * blobmsg_add_json_from_string: the text must be a JSON object; integers inside int32 → INT32, other integers →
 * INT64 (saturated like json-c), numbers with a fraction or exponent → DOUBLE, booleans → INT8, null → UNSPEC.
 * Returns undefined when the text is not a JSON object (the CLI's "Parsing message data failed").
 */
export function parseJsonToBlobmsg(text: string): BlobmsgNode[] | undefined {
  try {
    const p = new Parser(text);
    p.ws();
    if (p.peek() !== '{') return undefined;
    const node = p.value('');
    p.ws();
    if (!p.atEnd()) return undefined;
    return node.children ?? [];
  } catch (err) {
    if (err instanceof JsonSyntaxError) return undefined;
    throw err;
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.pos];
  }
  ws(): void {
    while (this.pos < this.s.length && ' \t\n\r'.includes(this.s[this.pos]!)) this.pos++;
  }
  private expect(ch: string): void {
    if (this.s[this.pos] !== ch) throw new JsonSyntaxError(`expected '${ch}' at ${this.pos}`);
    this.pos++;
  }

  value(name: string, depth = 0): BlobmsgNode {
    if (depth > 64) throw new JsonSyntaxError('nesting too deep');
    this.ws();
    const c = this.peek();
    if (c === '{') return { name, type: BlobmsgType.TABLE, children: this.members(depth) };
    if (c === '[') return { name, type: BlobmsgType.ARRAY, children: this.elements(depth) };
    if (c === '"') return { name, type: BlobmsgType.STRING, value: this.string() };
    if (this.s.startsWith('true', this.pos)) return this.word(name, 'true', BlobmsgType.INT8, 1);
    if (this.s.startsWith('false', this.pos)) return this.word(name, 'false', BlobmsgType.INT8, 0);
    if (this.s.startsWith('null', this.pos)) return this.word(name, 'null', BlobmsgType.UNSPEC, null);
    return this.number(name);
  }

  private word(name: string, w: string, type: number, value: number | null): BlobmsgNode {
    this.pos += w.length;
    return { name, type, value };
  }

  private members(depth: number): BlobmsgNode[] {
    this.expect('{');
    const out: BlobmsgNode[] = [];
    this.ws();
    if (this.peek() === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      const key = this.string();
      this.ws();
      this.expect(':');
      const node = this.value(key, depth + 1);
      // json-c keeps a duplicate key in its first position with the last value.
      const at = out.findIndex((n) => n.name === key);
      if (at >= 0) out[at] = node;
      else out.push(node);
      this.ws();
      if (this.peek() === ',') {
        this.pos++;
        continue;
      }
      this.expect('}');
      return out;
    }
  }

  private elements(depth: number): BlobmsgNode[] {
    this.expect('[');
    const out: BlobmsgNode[] = [];
    this.ws();
    if (this.peek() === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value('', depth + 1));
      this.ws();
      if (this.peek() === ',') {
        this.pos++;
        continue;
      }
      this.expect(']');
      return out;
    }
  }

  private string(): string {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(this.s.slice(this.pos));
    if (m === null) throw new JsonSyntaxError(`bad string at ${this.pos}`);
    this.pos += m[0].length;
    return JSON.parse(m[0]) as string;
  }

  private number(name: string): BlobmsgNode {
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.pos));
    if (m === null) throw new JsonSyntaxError(`unexpected input at ${this.pos}`);
    this.pos += m[0].length;
    if (m[1] !== undefined || m[2] !== undefined) return { name, type: BlobmsgType.DOUBLE, value: Number(m[0]) };
    let big = BigInt(m[0]);
    if (big >= BigInt(INT32_MIN) && big <= BigInt(INT32_MAX))
      return { name, type: BlobmsgType.INT32, value: Number(big) };
    if (big > INT64_MAX) big = INT64_MAX;
    if (big < INT64_MIN) big = INT64_MIN;
    return { name, type: BlobmsgType.INT64, value: big };
  }
}
