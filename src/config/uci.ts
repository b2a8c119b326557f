/**
 * UCI file parser: a port of openwrt/uci `file.c` (uci_parse_line / next_arg / parse_str), strict mode, as used by
 * `uci` and by rpcd. The goal is that sluice sees exactly what `uci export` and LuCI see, quirks included:
 *
 * - Commands `package`, `config <type> [name]`, `option <name> [value]`, `list <name> [value]` (also abbreviated
 *   `p`, `c`, `o`, `l`); `;` ends a command; `#` outside quotes comments out the rest of the line.
 * - A value is made of adjacent pieces: bare text, `'single'` (no escapes: `'\''` is close-quote, escaped quote,
 *   reopen) and `"double"`. In bare text and double quotes a backslash takes the next character literally (`\n` is
 *   `n`: libuci does not decode escapes); a backslash at the end of a line joins the next line. Quoted pieces may
 *   span lines (the newline is part of the value).
 * - libuci quirk kept on purpose: a `;` directly after an argument with no quotes or escapes in it is overwritten
 *   by the argument's terminator in libuci's in-place buffer, so the rest of that line is dropped
 *   (`option a 1;option b 2` sets only `a`). Write `option a 1 ; option b 2` or `option a '1';option b 2`.
 * - `option` again replaces the value (keeping its position), `list` appends (turning a plain option into a list),
 *   an empty value (`option x ''`, `option x`) deletes the option. A `list` item may be empty.
 * - `config <type> <name>` with a name seen before reopens that section (a different type is an error);
 *   an unnamed section gets libuci's generated name `cfgNNHHHH` and is addressable as `@type[index]`.
 *
 * Pure: no I/O. Errors are UciParseError (ERR_UCI_PARSE) carrying file, line, column and libuci's reason text.
 */
import { SluiceError } from '../errors.ts';

export type UciValue = string | string[];

export interface UciSection {
  type: string;
  /** The section name; for an anonymous section, libuci's generated `cfgNNHHHH` name. */
  name: string;
  anonymous: boolean;
  /** Position among the sections of the same type: the `i` of `@type[i]`. */
  index: number;
  /** In file order; `option` values are strings, `list` values arrays (possibly with empty items). */
  options: Map<string, UciValue>;
}

export interface UciPackage {
  /** From a `package <name>` line if present (libuci ignores it when loading a config file; so do we). */
  name: string | undefined;
  sections: UciSection[];
}

export class UciParseError extends SluiceError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(file: string, line: number, column: number, reason: string) {
    super('ERR_UCI_PARSE', `${file}:${line}:${column}: ${reason}`, { details: { file, line, column, reason } });
    this.name = 'UciParseError';
    this.file = file;
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

const NUL = '';
// C isspace() in the "C" locale.
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isAlnum = (c: string): boolean => /^[A-Za-z0-9]$/.test(c);

/** libuci uci_validate_str: names are [A-Za-z0-9_]; package names add '-'; types allow any printable ASCII. */
export function isValidUciName(s: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(s);
}
export function isValidUciType(s: string): boolean {
  return (
    s.length > 0 && [...s].every((c) => isAlnum(c) || c === '_' || (c.charCodeAt(0) >= 33 && c.charCodeAt(0) <= 126))
  );
}
function isValidPackageName(s: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(s);
}

/** libuci djbhash over the section type, then `cfg%02x%04x` with the package's section counter. */
export function anonymousSectionName(type: string, sectionCounter: number): string {
  let hash = 5381;
  for (const byte of Buffer.from(type, 'utf8')) {
    // C `char` is signed on x86 (the bytes ≥ 0x80 of a UTF-8 type would differ by platform; types are ASCII in
    // practice).
    hash = (Math.imul(hash, 33) + byte) >>> 0;
  }
  hash &= 0x7fffffff;
  return `cfg${sectionCounter.toString(16).padStart(2, '0')}${(hash % 0x10000).toString(16).padStart(4, '0')}`;
}

// libuci accepts each command word or its first letter.
const COMMANDS: ReadonlyMap<string, 'package' | 'config' | 'option' | 'list'> = new Map([
  ['p', 'package'],
  ['package', 'package'],
  ['c', 'config'],
  ['config', 'config'],
  ['o', 'option'],
  ['option', 'option'],
  ['l', 'list'],
  ['list', 'list'],
]);

class Parser {
  private pos = 0;
  /** End of libuci's line buffer: the current line (grown by multi-line quotes and continuations), or a `#`/`;` cut. */
  private end = 0;
  /** End of the physical text the buffer holds (a cut does not move it). */
  private bufferEnd = 0;
  private readonly sections: UciSection[] = [];
  private current: UciSection | undefined;
  private sectionCounter = 0;
  private packageName: string | undefined;

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  parse(): UciPackage {
    const nul = this.text.indexOf('\0');
    if (nul >= 0) this.fail('NUL byte in file', nul);
    while (this.bufferEnd < this.text.length) {
      this.pos = this.bufferEnd;
      this.getLine();
      this.parseLine();
    }
    const perType = new Map<string, number>();
    for (const s of this.sections) {
      const i = perType.get(s.type) ?? 0;
      s.index = i;
      perType.set(s.type, i + 1);
    }
    return { name: this.packageName, sections: this.sections };
  }

  private cur(): string {
    return this.pos < this.end ? this.text[this.pos]! : NUL;
  }

  /** uci_getln: appends the next physical line to the buffer (the text itself; a cut `end` is reset). */
  private getLine(): boolean {
    if (this.bufferEnd >= this.text.length) return false;
    const nl = this.text.indexOf('\n', this.bufferEnd);
    this.bufferEnd = nl < 0 ? this.text.length : nl + 1;
    this.end = this.bufferEnd;
    return true;
  }

  private fail(reason: string, at = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    throw new UciParseError(this.file, line, at - lineStart + 1, reason);
  }

  private skipWhitespace(): void {
    while (this.cur() !== NUL && isSpace(this.cur())) this.pos++;
  }

  /** parse_backslash: true if the escaped character is to be taken; false after joining the next line. */
  private backslash(): boolean {
    this.pos++;
    const c = this.cur();
    const atLineEnd =
      c === NUL || c === '\n' || (c === '\r' && this.text[this.pos + 1] === '\n' && this.pos + 2 === this.end);
    if (!atLineEnd) return true;
    // The escaped newline is dropped: continue right after it on the next line (if any).
    this.pos = this.end;
    this.getLine();
    return false;
  }

  private singleQuoted(): string {
    const start = this.pos++;
    let out = '';
    for (;;) {
      const c = this.cur();
      if (c === "'") {
        this.pos++;
        return out;
      }
      if (c === NUL) {
        if (!this.getLine()) this.fail("EOF with unterminated '", start);
        continue;
      }
      out += c;
      this.pos++;
    }
  }

  private doubleQuoted(): string {
    const start = this.pos++;
    let out = '';
    for (;;) {
      const c = this.cur();
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === NUL) {
        if (!this.getLine()) this.fail('EOF with unterminated "', start);
        continue;
      }
      if (c === '\\' && !this.backslash()) continue;
      out += this.cur();
      this.pos++;
    }
  }

  /** parse_str: one argument of concatenated pieces. */
  private parseString(): string {
    const start = this.pos;
    let out = '';
    let next = true;
    done: do {
      const c = this.cur();
      switch (c) {
        case "'":
          out += this.singleQuoted();
          break;
        case '"':
          out += this.doubleQuoted();
          break;
        case '#':
          this.end = this.pos;
          break done;
        case NUL:
          break done;
        case ';':
          next = false;
          // libuci writes the terminator in place: with nothing removed (no quotes/escapes), it lands on the ';'.
          if (this.pos - start === out.length) this.end = this.pos;
          break done;
        case '\\':
          if (!this.backslash()) continue;
          out += this.cur();
          this.pos++;
          break;
        default:
          out += c;
          this.pos++;
      }
    } while (this.cur() !== NUL && !isSpace(this.cur()));
    if (this.cur() !== NUL && next) this.pos++;
    return out;
  }

  private nextArg(required: boolean, kind: 'value' | 'name' | 'package'): string {
    this.skipWhitespace();
    const at = this.pos;
    let value = '';
    if (this.cur() === ';') this.pos++;
    else value = this.parseString();
    if (value === '') {
      if (required) this.fail('insufficient arguments', at);
      return value;
    }
    if (kind === 'name' && !isValidUciName(value)) this.fail('invalid character in name field', at);
    if (kind === 'package' && !isValidPackageName(value)) this.fail('invalid character in name field', at);
    return value;
  }

  private assertEol(): void {
    this.skipWhitespace();
    const at = this.pos;
    if (this.nextArg(false, 'value') !== '') this.fail('too many arguments', at);
  }

  private parseLine(): void {
    this.skipWhitespace();
    for (;;) {
      // strtok(" \t"): the command word ends at a space or tab only.
      while (this.cur() === ' ' || this.cur() === '\t') this.pos++;
      const wordStart = this.pos;
      while (this.cur() !== NUL && this.cur() !== ' ' && this.cur() !== '\t') this.pos++;
      const word = this.text.slice(wordStart, this.pos);
      if (word === '' || word.startsWith('#')) return;
      const command = COMMANDS.get(word);
      if (command === undefined) this.fail('invalid command', wordStart);
      if (command !== 'config' && command !== 'package' && !this.current) {
        this.fail('option/list command found before the first section', wordStart);
      }
      // libuci steps over the word and its delimiter, and refuses to step past the end of the text.
      if (this.cur() === NUL) this.fail(`${command === 'list' ? 'option' : command} without name`, wordStart);
      this.pos++;
      switch (command) {
        case 'package':
          this.packageName = this.nextArg(true, 'package');
          this.assertEol();
          break;
        case 'config':
          this.parseConfig();
          break;
        case 'option':
          this.parseOption(false);
          break;
        case 'list':
          this.parseOption(true);
          break;
      }
    }
  }

  private parseConfig(): void {
    const typeAt = this.pos;
    const type = this.nextArg(true, 'value');
    if (!isValidUciType(type)) this.fail('invalid character in type field', typeAt);
    const name = this.nextArg(false, 'name');
    this.assertEol();
    if (name === '') {
      this.sectionCounter++;
      const section: UciSection = {
        type,
        name: anonymousSectionName(type, this.sectionCounter),
        anonymous: true,
        index: 0,
        options: new Map(),
      };
      this.sections.push(section);
      this.current = section;
      return;
    }
    const existing = this.sections.find((s) => s.name === name);
    if (existing) {
      if (existing.type !== type)
        this.fail('section of different type overwrites prior section with same name', typeAt);
      this.current = existing;
      return;
    }
    this.sectionCounter++;
    const section: UciSection = { type, name, anonymous: false, index: 0, options: new Map() };
    this.sections.push(section);
    this.current = section;
  }

  private parseOption(isList: boolean): void {
    const section = this.current!;
    const name = this.nextArg(true, 'name');
    const value = this.nextArg(false, 'value');
    this.assertEol();
    const old = section.options.get(name);
    if (isList) {
      if (old === undefined) section.options.set(name, [value]);
      else if (typeof old === 'string') section.options.set(name, [old, value]);
      else old.push(value);
    } else if (value === '') {
      section.options.delete(name);
    } else {
      section.options.set(name, value);
    }
  }
}

/** Parses UCI text. `file` only labels errors (default `<uci>`). Throws UciParseError. */
export function parseUci(text: string, file = '<uci>'): UciPackage {
  return new Parser(text, file).parse();
}

/** Looks a section up the way `uci` addresses it: by name, or `@type[i]` (negative i counts from the end). */
export function findSection(pkg: UciPackage, ref: string): UciSection | undefined {
  const m = /^@([^[\]]+)\[(-?\d+)\]$/.exec(ref);
  if (!m) return pkg.sections.find((s) => s.name === ref);
  const ofType = sectionsOfType(pkg, m[1]!);
  const i = Number(m[2]);
  return ofType[i < 0 ? ofType.length + i : i];
}

export function sectionsOfType(pkg: UciPackage, type: string): UciSection[] {
  return pkg.sections.filter((s) => s.type === type);
}
