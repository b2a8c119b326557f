/**
 * The syntax facts of a TypeScript source (syntax-facts.ts: its relative imports with the names taken, its exports,
 * its functions with their length and positional parameters) read from its tokens (scripts/ts-tokens.ts) by a reader of
 * statements and declarations that skims expressions and types, without TypeScript's compiler: loading that compiler
 * and parsing src/ with it cold took ~4 s of CPU, this reader ~0.2 s. It gives the facts TypeScript's tree gives, as
 * syntax-facts.ts's readers take them (test/syntax-scan.test.ts compares the two on every source of the repository);
 * what it does not know (a namespace, a decorator, an old-style type assertion, an ambiguous arrow's return type) it
 * refuses with UnsupportedSyntax, and syntax-facts.ts then parses that file with TypeScript.
 */
import type { ExportEntry, FunctionFacts, SyntaxFacts } from './syntax-facts.ts';
import { BEFORE_OPERAND, matchBrackets, tokenize, UnsupportedSyntax, type Token } from '../../scripts/ts-tokens.ts';

export { UnsupportedSyntax };

/** Modifiers of a class member or a constructor's parameter (a member with such a name is followed by `(`, `=`…). */
const MODIFIERS = new Set([
  'public',
  'private',
  'protected',
  'static',
  'readonly',
  'abstract',
  'override',
  'declare',
  'async',
  'accessor',
]);
const PARAMETER_MODIFIERS = new Set(['public', 'private', 'protected', 'readonly', 'override']);
/**
 * Names that are operators, after which an operand is expected: ts-tokens.ts's, and the type operators, but for `do`
 * and `else`, which start a statement where a line break ends an expression.
 */
const OPERATOR_NAMES = new Set(
  [...BEFORE_OPERAND, 'as', 'satisfies', 'keyof', 'extends'].filter((n) => n !== 'do' && n !== 'else'),
);
/** Tokens that cannot be in a list of type arguments: a `<` before one is a comparison. */
const NOT_IN_TYPES = new Set([
  ';',
  '=',
  '==',
  '===',
  '!=',
  '!==',
  '&&',
  '||',
  '??',
  '+',
  '*',
  '/',
  '%',
  '!',
  '++',
  '--',
  '<=',
  '+=',
  '-=',
  '?',
]);

const ignore = (_name: string | null): void => {};

interface Stream {
  t: Token[];
  match: Int32Array;
}

/** The facts of `source`, or UnsupportedSyntax where it meets what it does not read. */
export function scanFacts(source: string): SyntaxFacts {
  return new Scan(source).facts();
}

class Scan {
  private s: Stream;
  private readonly lineStarts: number[] = [0];
  private readonly imports = new Map<string, Set<string> | '*'>();
  private readonly exports: ExportEntry[] = [];
  private readonly functions: FunctionFacts[] = [];
  /** `Class.` for the members of the nearest class around, '' in an anonymous one or outside. */
  private classPrefix = '';
  /** The name of the nearest function around that has one (what an anonymous function is named by). */
  private outer: string | null = null;

  constructor(private readonly source: string) {
    const { tokens } = tokenize(source);
    this.s = { t: tokens, match: matchBrackets(tokens) };
    for (let at = source.indexOf('\n'); at >= 0; at = source.indexOf('\n', at + 1)) this.lineStarts.push(at + 1);
  }

  facts(): SyntaxFacts {
    this.statements(0, this.s.t.length, true);
    return {
      imports: [...this.imports].map(([specifier, names]) => ({
        specifier,
        names: names === '*' ? ('*' as const) : [...names],
      })),
      exports: this.exports,
      functions: this.functions,
    };
  }

  // ---- tokens ----

  private tok(i: number): Token | undefined {
    return this.s.t[i];
  }
  private is(i: number, text: string): boolean {
    const t = this.s.t[i];
    return t !== undefined && t.text === text && (t.kind === 'punct' || t.kind === 'name');
  }
  private isName(i: number): boolean {
    return this.s.t[i]?.kind === 'name';
  }
  private close(i: number): number {
    const m = this.s.match[i]!;
    if (m < 0) throw new UnsupportedSyntax('a bracket without its pair', this.s.t[i]?.start ?? 0);
    return m;
  }
  private lineOf(pos: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  private unsupported(what: string, i: number): never {
    throw new UnsupportedSyntax(what, this.s.t[i]?.start ?? this.source.length);
  }
  private text(a: number, b: number): string {
    return this.source.slice(this.s.t[a]!.start, this.s.t[b - 1]!.end);
  }

  // ---- imports and exports ----

  private addImport(specifier: string | null, names: Iterable<string> | '*'): void {
    if (specifier === null || !specifier.startsWith('.')) return;
    const had = this.imports.get(specifier);
    if (had === '*') return;
    if (names === '*') {
      this.imports.set(specifier, '*');
      return;
    }
    const set = had ?? new Set<string>();
    for (const n of names) set.add(n);
    this.imports.set(specifier, set);
  }

  private literal(i: number): string | null {
    const t = this.tok(i);
    if (t === undefined || t.value === undefined || (t.kind !== 'string' && t.kind !== 'template')) return null;
    if (t.value.includes('\\')) this.unsupported('an escape in a module specifier', i);
    return t.value;
  }

  /** `import … from 'x'`, `import 'x'`, `import x = require(…)`: the index after it. */
  private importDeclaration(i: number, end: number): number {
    let j = i + 1;
    if (this.is(j, 'type') && !this.is(j + 1, 'from') && !this.is(j + 1, ',')) j++;
    const spec = this.tok(j);
    if (spec?.kind === 'string') {
      this.addImport(this.literal(j), []);
      return this.statementEnd(j + 1, end);
    }
    const names: string[] = [];
    let whole = false;
    if (this.isName(j) && !this.is(j, 'from') && !this.is(j + 1, '=')) {
      names.push('default');
      j++;
      if (this.is(j, ',')) j++;
    } else if (this.isName(j) && this.is(j + 1, '=')) this.unsupported('import = require', j);
    if (this.is(j, '*')) {
      whole = true;
      j += 3; // * as name
    } else if (this.is(j, '{')) {
      const c = this.close(j);
      for (const [a, b] of this.commaParts(j + 1, c)) names.push(this.specifierName(a, b));
      j = c + 1;
    }
    if (!this.is(j, 'from')) this.unsupported('an import without from', j);
    this.addImport(this.literal(j + 1), whole ? '*' : names);
    return this.statementEnd(j + 2, end);
  }

  /** The name an import or export specifier takes (`a`, `type a`, `a as b`: a). */
  private specifierName(a: number, b: number): string {
    if (this.is(a, 'type') && b - a > 1 && !this.is(a + 1, 'as')) a++;
    const t = this.tok(a)!;
    if (t.kind === 'string') return t.value!;
    if (t.kind !== 'name') this.unsupported('an import specifier', a);
    return t.text;
  }

  /** The name an export specifier gives (`a`: a, `a as b`: b). */
  private exportedName(a: number, b: number): string {
    const last = this.tok(b - 1)!;
    if (b - a >= 3 && this.is(b - 2, 'as')) return last.kind === 'string' ? last.value! : last.text;
    return this.specifierName(a, b);
  }

  private readonly exported = (name: string | null): void => {
    if (name !== null) this.exports.push(name);
  };

  private exportDeclaration(i: number, end: number, top: boolean): number {
    let j = i + 1;
    if (this.is(j, 'type') && (this.is(j + 1, '{') || this.is(j + 1, '*'))) j++;
    if (this.is(j, '*')) {
      if (this.is(j + 1, 'as')) {
        if (top) this.exports.push(this.tok(j + 2)!.text);
        j += 3;
      } else {
        j++;
        if (top) this.exports.push({ star: this.literal(j + 1) });
      }
      this.addImport(this.literal(j + 1), '*');
      return this.statementEnd(j + 2, end);
    }
    if (this.is(j, '{')) {
      const c = this.close(j);
      const parts = this.commaParts(j + 1, c);
      if (top) for (const [a, b] of parts) this.exports.push(this.exportedName(a, b));
      if (this.is(c + 1, 'from')) {
        this.addImport(
          this.literal(c + 2),
          parts.map(([a, b]) => this.specifierName(a, b)),
        );
        return this.statementEnd(c + 3, end);
      }
      return this.statementEnd(c + 1, end);
    }
    if (this.is(j, '=')) {
      if (top) this.exports.push('default');
      return this.expressionStatement(j + 1, end);
    }
    if (this.is(j, 'default')) {
      if (top) this.exports.push('default');
      const k = j + 1;
      if (this.is(k, 'function') || (this.is(k, 'async') && this.is(k + 1, 'function')))
        return this.fn(k, end, 'decl', i);
      if (this.is(k, 'class') || (this.is(k, 'abstract') && this.is(k + 1, 'class'))) return this.classAt(k, end);
      if (this.is(k, 'interface')) return this.skipTypeDeclaration(k, end);
      return this.expressionStatement(k, end);
    }
    if (this.is(j, 'import')) this.unsupported('export import', j);
    return this.statement(j, end, top ? 'export' : null, i);
  }

  // ---- statements ----

  private statements(i: number, end: number, top = false): void {
    while (i < end) {
      const next = this.statement(i, end, null, i, top);
      if (next <= i) this.unsupported('a statement', i);
      i = next;
    }
  }

  /**
   * One statement from `i`; `exported`: it follows `export` (its name is exported), which starts it at `start`.
   * Returns the index after it.
   */
  private statement(i: number, end: number, exported: 'export' | null, start = i, top = false): number {
    const t = this.tok(i)!;
    if (t.kind === 'punct') {
      if (t.text === ';') return i + 1;
      if (t.text === '{') {
        const c = this.close(i);
        this.statements(i + 1, c);
        return c + 1;
      }
      if (t.text === '@') this.unsupported('a decorator', i);
      return this.expressionStatement(i, end);
    }
    if (t.kind !== 'name') return this.expressionStatement(i, end);
    const next = this.tok(i + 1);
    const declared = exported === null ? ignore : this.exported;
    switch (t.text) {
      case 'import':
        if (this.is(i + 1, '(') || this.is(i + 1, '.')) return this.expressionStatement(i, end);
        return this.importDeclaration(i, end);
      case 'export':
        return this.exportDeclaration(i, end, top);
      case 'declare':
        if (this.is(i + 1, 'module') || this.is(i + 1, 'global')) {
          let j = i + 2;
          while (j < end && !this.is(j, '{')) j++;
          const c = this.close(j);
          this.typeImports(j, c);
          return c + 1;
        }
        return this.statement(i + 1, end, exported, start);
      case 'namespace':
      case 'module':
        if (next?.kind === 'name' || next?.kind === 'string') this.unsupported('a namespace', i);
        break;
      case 'async':
        if (this.is(i + 1, 'function') && !next!.newline) {
          declared(this.tok(i + 2 + (this.is(i + 2, '*') ? 1 : 0))?.text ?? null);
          return this.fn(i, end, 'decl', start);
        }
        break;
      case 'function':
        declared(this.tok(i + 1 + (this.is(i + 1, '*') ? 1 : 0))?.text ?? null);
        return this.fn(i, end, 'decl', start);
      case 'abstract':
        if (this.is(i + 1, 'class')) {
          declared(this.tok(i + 2)!.text);
          return this.classAt(i, end);
        }
        break;
      case 'class':
        declared(this.tok(i + 1)!.text);
        return this.classAt(i, end);
      case 'interface':
        if (next?.kind === 'name') {
          declared(next.text);
          return this.skipTypeDeclaration(i, end);
        }
        break;
      case 'type':
        if (next?.kind === 'name' && (this.is(i + 2, '=') || this.is(i + 2, '<'))) {
          declared(next.text);
          let j = i + 2;
          if (this.is(j, '<')) j = this.angles(j, end, true);
          if (j < 0 || !this.is(j, '=')) this.unsupported('a type alias', i);
          const e = this.skipType(j + 1, end);
          this.typeImports(i, e);
          return this.statementEnd(e, end);
        }
        break;
      case 'enum':
        declared(next!.text);
        return this.close(i + 2) + 1;
      case 'const':
        if (this.is(i + 1, 'enum')) {
          declared(this.tok(i + 2)!.text);
          return this.close(i + 3) + 1;
        }
        return this.variables(i + 1, end, exported !== null);
      case 'let':
      case 'var':
        return this.variables(i + 1, end, exported !== null);
      case 'if':
      case 'while':
      case 'with': {
        const c = this.close(i + 1);
        this.expression(i + 2, c, {});
        return c + 1 < end ? this.statement(c + 1, end, null) : c + 1;
      }
      case 'for':
        return this.forStatement(i, end);
      case 'do': {
        const j = this.statement(i + 1, end, null);
        if (!this.is(j, 'while')) this.unsupported('a do without while', j);
        const c = this.close(j + 1);
        this.expression(j + 2, c, {});
        return this.statementEnd(c + 1, end);
      }
      case 'else':
        return this.statement(i + 1, end, null);
      case 'switch':
        return this.switchStatement(i, end);
      case 'try':
      case 'finally':
        return this.statement(i + 1, end, null);
      case 'catch': {
        let j = i + 1;
        if (this.is(j, '(')) {
          const c = this.close(j);
          this.typeImports(j, c);
          j = c + 1;
        }
        return this.statement(j, end, null);
      }
      case 'return':
      case 'throw':
        if (this.is(i + 1, ';') || this.is(i + 1, '}') || i + 1 >= end || next!.newline)
          return this.statementEnd(i + 1, end);
        return this.expressionStatement(i + 1, end);
      case 'break':
      case 'continue': {
        let j = i + 1;
        if (this.isName(j) && !this.tok(j)!.newline) j++;
        return this.statementEnd(j, end);
      }
      case 'case': {
        const j = this.expression(i + 1, end, { colonEnds: true });
        if (!this.is(j, ':')) this.unsupported('a case without its colon', j);
        return j + 1;
      }
      case 'default':
        if (this.is(i + 1, ':')) return i + 2;
        break;
    }
    if (this.is(i + 1, ':') && !OPERATOR_NAMES.has(t.text)) return this.statement(i + 2, end, null); // a label
    return this.expressionStatement(i, end);
  }

  /** After a statement's last token: its `;`, if any. */
  private statementEnd(j: number, end: number): number {
    return j < end && this.is(j, ';') ? j + 1 : j;
  }

  private expressionStatement(i: number, end: number): number {
    return this.statementEnd(this.expression(i, end, { asi: true }), end);
  }

  private forStatement(i: number, end: number): number {
    let j = i + 1;
    if (this.is(j, 'await')) j++;
    const c = this.close(j);
    for (const [a, b] of this.parts(j + 1, c, ';')) {
      if (a >= b) continue;
      if (this.is(a, 'const') || this.is(a, 'let') || this.is(a, 'var')) this.variables(a + 1, b, false);
      else this.expression(a, b, {});
    }
    return this.statement(c + 1, end, null);
  }

  private switchStatement(i: number, end: number): number {
    const c = this.close(i + 1);
    this.expression(i + 2, c, {});
    const open = c + 1;
    const close = this.close(open);
    this.statements(open + 1, close);
    return close + 1;
  }

  /** `const`/`let`/`var`'s declarators from `i` (after the keyword); `exported`: their names are exported. */
  private variables(i: number, end: number, exported: boolean): number {
    let j = i;
    for (;;) {
      const t = this.tok(j);
      if (t === undefined) this.unsupported('a declaration', j);
      let name: string;
      if (t.kind === 'name') {
        name = t.text;
        if (exported) this.exports.push(name);
        j++;
      } else if (this.is(j, '{') || this.is(j, '[')) {
        const c = this.close(j);
        name = this.text(j, c + 1);
        this.expression(j, c + 1, {});
        j = c + 1;
      } else return this.unsupported('a declaration', j);
      if (this.is(j, '!')) j++;
      if (this.is(j, ':')) {
        const e = this.skipType(j + 1, end);
        this.typeImports(j + 1, e);
        j = e;
      }
      if (this.is(j, 'of') || this.is(j, 'in')) return this.expression(j + 1, end, {});
      if (this.is(j, '=')) j = this.expression(j + 1, end, { name, commaEnds: true, asi: true });
      if (!this.is(j, ',')) return this.statementEnd(j, end);
      j++;
    }
  }

  // ---- functions and classes ----

  /** The anonymous name of a function here: after the nearest named function around. */
  private anonymous(): string {
    return this.outer === null ? '(arrow)' : `${this.outer}/(arrow)`;
  }

  /** Records a function whose body runs over [`open`, `close`] while `body` reads it, named `name`. */
  private withFunction(name: string, start: number, params: [number, number], body: () => number): number {
    const facts: FunctionFacts = { name, line: this.lineOf(this.s.t[start]!.start) + 1, lines: 0, positional: 0 };
    this.functions.push(facts);
    const outer = this.outer;
    if (!name.endsWith('(arrow)')) this.outer = name;
    try {
      facts.positional = this.parameters(params[0], params[1]);
      const last = body();
      facts.lines = this.lineOf(this.s.t[last - 1]!.end) - (facts.line - 1) + 1;
      return last;
    } finally {
      this.outer = outer;
    }
  }

  /**
   * `function` (or `async function`) at `i`: a declaration (named by its own name) or an expression (named `name`,
   * the variable or property it is given to, else anonymous); `start`: where its node starts (`export`). Returns the
   * index after it.
   */
  private fn(i: number, end: number, kind: 'decl' | 'expr', start = i, name?: string, asi?: boolean): number {
    let j = i;
    if (this.is(j, 'async')) j++;
    j++; // function
    if (this.is(j, '*')) j++;
    let own = '';
    if (this.isName(j) && !this.is(j, '(') && !this.is(j, '<')) own = this.tok(j++)!.text;
    if (this.is(j, '<')) j = this.angles(j, end, true);
    if (j < 0 || !this.is(j, '(')) return this.unsupported('a function', i);
    const close = this.close(j);
    const bodyAt = this.returnTypeEnd(close + 1, end);
    if (!this.is(bodyAt, '{')) {
      this.typeImports(j, bodyAt);
      return this.statementEnd(bodyAt, end); // an overload's signature, or a declaration without body
    }
    const named = kind === 'decl' ? own : (this.whole(name, this.close(bodyAt) + 1, asi) ?? this.anonymous());
    return this.withFunction(named, start, [j, close], () => {
      this.typeImports(close + 1, bodyAt);
      const c = this.close(bodyAt);
      this.statements(bodyAt + 1, c);
      return c + 1;
    });
  }

  /** After a parameter list's `)` at `i`: the index after its return type (`: T`), if any. */
  private returnTypeEnd(i: number, end: number): number {
    return this.is(i, ':') ? this.skipType(i + 1, end) : i;
  }

  /** The positional parameters of the list in (`open`, `close`), reading their types and default values. */
  private parameters(open: number, close: number): number {
    let positional = 0;
    for (let [a, b] of this.commaParts(open + 1, close, true)) {
      if (this.is(a, '@')) this.unsupported('a decorator', a);
      while (a + 1 < b && PARAMETER_MODIFIERS.has(this.tok(a)!.text) && this.isName(a + 1)) a++;
      let j = a;
      if (this.is(j, '...')) j++;
      if (this.is(j, '{') || this.is(j, '[')) {
        if (this.is(j, '[')) positional++;
        const c = this.close(j);
        this.expression(j, c + 1, {});
        j = c + 1;
      } else {
        if (!(this.is(j, 'this') && j === a)) positional++;
        j++;
      }
      if (this.is(j, '?')) j++;
      if (this.is(j, ':')) {
        const e = this.skipType(j + 1, b);
        this.typeImports(j + 1, e);
        j = e;
      }
      if (this.is(j, '=')) j = this.expression(j + 1, b, {});
      if (j !== b) this.unsupported('a parameter', j);
    }
    return positional;
  }

  /**
   * An arrow function from `i` (`async`, `<`, `(` or its one parameter's name), whose `=>` is at `arrow`; `name` when
   * it is what a variable or property is given. Returns the index after it.
   */
  private arrowFn(i: number, params: [number, number] | null, arrow: number, end: number, opts: ExprOptions): number {
    const block = this.is(arrow + 1, '{');
    const name = (block ? this.whole(opts.name, this.close(arrow + 1) + 1, opts.asi) : opts.name) ?? this.anonymous();
    const list: [number, number] = params ?? [arrow - 2, arrow];
    return this.withFunction(name, i, list, () => {
      if (params !== null) this.typeImports(params[1] + 1, arrow);
      if (this.is(arrow + 1, '{')) {
        const c = this.close(arrow + 1);
        this.statements(arrow + 2, c);
        return c + 1;
      }
      return this.expression(arrow + 1, end, {
        commaEnds: true,
        colonEnds: opts.colonEnds,
        asi: opts.asi,
      });
    });
  }

  /**
   * Whether an arrow function starts at `i` (`async`, `<`, `(`, or a name): its parameter list ([open, close], or
   * null for a lone name) and its `=>`, or null.
   */
  private arrowAt(i: number, end: number): { params: [number, number] | null; arrow: number } | null {
    let j = i;
    if (
      this.is(j, 'async') &&
      !this.tok(j + 1)?.newline &&
      (this.is(j + 1, '(') || this.is(j + 1, '<') || (this.isName(j + 1) && this.is(j + 2, '=>')))
    )
      j++;
    if (this.isName(j) && this.is(j + 1, '=>')) return { params: null, arrow: j + 1 };
    if (this.is(j, '<')) {
      j = this.angles(j, end, true);
      if (j < 0) return null;
    }
    if (!this.is(j, '(')) return null;
    const close = this.close(j);
    if (this.is(close + 1, '=>')) return { params: [j, close], arrow: close + 1 };
    if (!this.is(close + 1, ':')) return null;
    if (this.is(close + 2, '(')) {
      // `(a): (b) => c`: TypeScript reads the return type as far as it can; this reader does not guess.
      const e = this.skipType(close + 2, end);
      if (this.is(e, '=>')) this.unsupported("an arrow's parenthesized return type", close + 2);
      return null;
    }
    const e = this.skipType(close + 2, end);
    return this.is(e, '=>') && e < end ? { params: [j, close], arrow: e } : null;
  }

  /** `class` (or `abstract class`) at `i`, a declaration or an expression. Returns the index after it. */
  private classAt(i: number, end: number): number {
    let j = i;
    if (this.is(j, 'abstract')) j++;
    j++; // class
    let own = '';
    if (this.isName(j) && !this.is(j, 'extends') && !this.is(j, 'implements')) own = this.tok(j++)!.text;
    const head = j;
    while (j < end && !this.is(j, '{')) {
      if (this.is(j, '<')) {
        const k = this.angles(j, end, true);
        if (k < 0) this.unsupported("a class's type parameters", j);
        j = k;
      } else if (this.is(j, '(') || this.is(j, '[')) j = this.close(j) + 1;
      else j++;
    }
    this.typeImports(head, j);
    const close = this.close(j);
    const prefix = this.classPrefix;
    this.classPrefix = own === '' ? '' : `${own}.`;
    try {
      this.classBody(j + 1, close);
    } finally {
      this.classPrefix = prefix;
    }
    return close + 1;
  }

  private classBody(i: number, end: number): void {
    while (i < end) {
      if (this.is(i, ';')) {
        i++;
        continue;
      }
      if (this.is(i, '@')) this.unsupported('a decorator', i);
      if (this.is(i, 'static') && this.is(i + 1, '{')) {
        const c = this.close(i + 1);
        this.statements(i + 2, c);
        i = c + 1;
        continue;
      }
      i = this.member(i, end, 'class');
    }
  }

  /** A property's name at `i`: its text as TypeScript's `getText` gives it, and the index after it. */
  private propertyName(i: number): { text: string; next: number } {
    const t = this.tok(i)!;
    if (this.is(i, '[')) {
      const c = this.close(i);
      this.expression(i + 1, c, {});
      return { text: this.text(i, c + 1), next: c + 1 };
    }
    if (t.kind === 'name' || t.kind === 'private' || t.kind === 'string' || t.kind === 'number')
      return { text: t.text, next: i + 1 };
    return this.unsupported('a property name', i);
  }

  /**
   * A member of a class body or an object literal at `i`, up to its end (`;`/`,` not included for an object
   * literal's). Returns the index after it.
   */
  private member(i: number, end: number, where: 'class' | 'object'): number {
    const start = i;
    let j = i;
    while (MODIFIERS.has(this.tok(j)!.text) && this.isName(j) && this.nameLike(j + 1) && !this.tok(j + 1)!.newline) j++;
    if ((this.is(j, 'get') || this.is(j, 'set')) && this.nameLike(j + 1) && !this.is(j + 1, '*')) j++;
    if (this.is(j, '*')) j++;
    if (where === 'class' && this.is(j, '[')) {
      // An index signature: `[key: string]: T;`.
      const c = this.close(j);
      if (this.is(j + 2, ':') && this.isName(j + 1)) {
        const e = this.skipType(c + 2, end);
        this.typeImports(j, e);
        return this.statementEnd(e, end);
      }
    }
    const { text, next } = this.propertyName(j);
    j = next;
    if (this.is(j, '?') || this.is(j, '!')) j++;
    if (this.is(j, '(') || this.is(j, '<')) {
      let open = j;
      if (this.is(j, '<')) open = this.angles(j, end, true);
      if (open < 0 || !this.is(open, '(')) this.unsupported('a method', j);
      const close = this.close(open);
      const bodyAt = this.returnTypeEnd(close + 1, end);
      if (!this.is(bodyAt, '{')) {
        this.typeImports(open, bodyAt);
        return where === 'class' ? this.statementEnd(bodyAt, end) : bodyAt;
      }
      return this.withFunction(`${this.classPrefix}${text}`, start, [open, close], () => {
        this.typeImports(close + 1, bodyAt);
        const c = this.close(bodyAt);
        this.statements(bodyAt + 1, c);
        return c + 1;
      });
    }
    if (where === 'object') {
      if (this.is(j, ':')) return this.expression(j + 1, end, { name: text, commaEnds: true });
      if (this.is(j, '=')) return this.expression(j + 1, end, { commaEnds: true });
      return j;
    }
    if (this.is(j, ':')) {
      const e = this.skipType(j + 1, end);
      this.typeImports(j + 1, e);
      j = e;
    }
    if (this.is(j, '=')) j = this.expression(j + 1, end, { name: `${this.classPrefix}${text}`, asi: true });
    return this.statementEnd(j, end);
  }

  /** Whether a member's name (or its `*`) starts at `k`: what makes the word before it a modifier. */
  private nameLike(k: number): boolean {
    const t = this.tok(k);
    if (t === undefined) return false;
    return (
      t.kind === 'name' ||
      t.kind === 'private' ||
      t.kind === 'string' ||
      t.kind === 'number' ||
      this.is(k, '[') ||
      this.is(k, '*')
    );
  }

  private objectLiteral(open: number, close: number): void {
    this.list(open, close, (a) =>
      this.is(a, '...') ? this.expression(a + 1, close, { commaEnds: true }) : this.member(a, close, 'object'),
    );
  }

  /**
   * The comma-separated items between `open` and its closing bracket, each read by `item` from its first token up to
   * the `,` or bracket after it (an item's own commas, in type arguments, are its own).
   */
  private list(open: number, close: number, item: (at: number) => number): void {
    let j = open + 1;
    while (j < close) {
      if (this.is(j, ',')) {
        j++; // a hole
        continue;
      }
      const e = item(j);
      if (e !== close && !this.is(e, ',')) this.unsupported('a list item', e);
      j = e === close ? e : e + 1;
    }
  }

  // ---- expressions ----

  /**
   * Skims an expression from `i` to the first token that ends it; returns that token's index. What it finds on the
   * way: functions, classes, object literals, dynamic imports, the types of `as` and `satisfies`.
   */
  private expression(i: number, end: number, opts: ExprOptions): number {
    const first = i;
    let questions = 0;
    while (i < end) {
      const t = this.tok(i)!;
      const prev = i > first ? this.tok(i - 1) : undefined;
      if (t.kind === 'punct') {
        const p = t.text;
        if (p === ';' || p === ')' || p === ']' || p === '}') break;
        if (p === ',' && opts.commaEnds) break;
        if (p === ':') {
          if (questions > 0) {
            questions--;
            i++;
            continue;
          }
          break;
        }
      }
      if (opts.asi && prev !== undefined && t.newline && this.endsOperand(prev) && this.startsStatement(i)) break;
      const name = i === first ? opts.name : undefined;
      const inner: ExprOptions = { name, colonEnds: opts.colonEnds || questions > 0, asi: opts.asi };
      if (t.kind === 'template') {
        for (const part of t.parts ?? []) this.inStream(part, () => this.expression(0, part.length, {}));
        i++;
        continue;
      }
      if (t.kind === 'name') {
        if (t.text === 'function' || (t.text === 'async' && this.is(i + 1, 'function') && !this.tok(i + 1)!.newline)) {
          i = this.fn(i, end, 'expr', i, name, opts.asi);
          continue;
        }
        if (t.text === 'class' && (prev === undefined || !this.is(i - 1, '.'))) {
          i = this.classAt(i, end);
          continue;
        }
        if (t.text === 'import' && this.is(i + 1, '(')) {
          this.dynamicImport(i);
          i = this.close(i + 1) + 1;
          continue;
        }
        if ((t.text === 'as' || t.text === 'satisfies') && prev !== undefined && this.endsOperand(prev)) {
          const e = this.skipType(i + 1, end);
          this.typeImports(i + 1, e);
          i = e;
          continue;
        }
      }
      if (t.kind === 'name' || this.is(i, '(') || this.is(i, '<')) {
        const operandStart = prev === undefined || !this.endsOperand(prev);
        if (operandStart && !this.is(i - 1, '.') && !this.is(i - 1, '?.')) {
          const arrow = this.arrowAt(i, end);
          if (arrow !== null) {
            i = this.arrowFn(i, arrow.params, arrow.arrow, end, inner);
            continue;
          }
          if (this.is(i, '<')) this.unsupported('a type assertion', i);
        } else if (this.is(i, '<')) {
          const e = this.angles(i, end);
          if (e > 0 && (this.is(e, '(') || this.tok(e)?.kind === 'template')) {
            this.typeImports(i, e);
            i = e;
            continue;
          }
        }
      }
      if (t.kind === 'punct') {
        const p = t.text;
        if (p === '?') questions++;
        else if (p === '(' || p === '[') {
          const c = this.close(i);
          this.list(i, c, (a) => this.expression(a, c, { commaEnds: true }));
          i = c + 1;
          continue;
        } else if (p === '{') {
          const c = this.close(i);
          this.objectLiteral(i, c);
          i = c + 1;
          continue;
        }
      }
      i++;
    }
    return i;
  }

  /**
   * `name`, when a function that starts an expression and ends before `after` is the whole expression (what a
   * declaration or property is given): the expression ends there.
   */
  private whole(name: string | undefined, after: number, asi: boolean | undefined): string | undefined {
    const t = this.tok(after);
    if (name === undefined || t === undefined) return name;
    if (t.kind === 'punct' && [';', ',', ')', ']', '}'].includes(t.text)) return name;
    return asi && t.newline && this.startsStatement(after) ? name : undefined;
  }

  private endsOperand(t: Token): boolean {
    if (t.kind === 'punct')
      return t.text === ')' || t.text === ']' || t.text === '}' || t.text === '>' || t.text === '!';
    if (t.kind === 'name') return !OPERATOR_NAMES.has(t.text);
    return true;
  }

  /** Whether a token after a line break starts a new statement rather than continuing the expression before it. */
  private startsStatement(i: number): boolean {
    const t = this.tok(i)!;
    if (t.kind === 'name') return !OPERATOR_NAMES.has(t.text) || t.text === 'return' || t.text === 'throw';
    if (t.kind === 'punct') return t.text === '{' || t.text === '++' || t.text === '--' || t.text === '@';
    return t.kind !== 'template';
  }

  /** `import(…)` at `i`: its specifier and the names taken (syntax-facts.ts's dynamicNames). */
  private dynamicImport(i: number): void {
    const close = this.close(i + 1);
    const specifier = this.literal(i + 2);
    if (specifier === null || !(this.is(i + 3, ')') || this.is(i + 3, ','))) return;
    let a = i;
    let b = close;
    if (this.is(a - 1, 'await')) a--;
    while (this.is(a - 1, '(') && this.s.match[a - 1] === b + 1) {
      a--;
      b++;
    }
    if ((this.is(b + 1, '.') || this.is(b + 1, '?.')) && this.isName(b + 2)) {
      this.addImport(specifier, [this.tok(b + 2)!.text]);
      return;
    }
    if (this.is(a - 1, '=') && this.is(a - 2, '}')) {
      const open = this.s.match[a - 2]!;
      const after = this.tok(b + 1);
      const initializerEnds = after === undefined || [';', ',', ')', '}'].includes(after.text) || after.newline;
      if (open >= 0 && initializerEnds && ['const', 'let', 'var'].includes(this.tok(open - 1)?.text ?? '')) {
        const names = new Set<string>();
        for (const [p, q] of this.commaParts(open + 1, a - 2)) {
          if (this.is(p, '...') || !this.isName(p)) {
            this.addImport(specifier, '*');
            return;
          }
          names.add(this.tok(p)!.text);
          void q;
        }
        this.addImport(specifier, names);
        return;
      }
    }
    this.addImport(specifier, '*');
  }

  // ---- types ----

  /** `import('x')` types in [a, b): the module and the name taken (`import('x').A` A, `import('x').A.B` A). */
  private typeImports(a: number, b: number): void {
    for (let k = a; k < b; k++) {
      const t = this.s.t[k]!;
      if (!(t.kind === 'name' && t.text === 'import' && this.is(k + 1, '('))) continue;
      const specifier = this.literal(k + 2);
      const close = this.close(k + 1);
      const qualifier: string[] = [];
      let j = close + 1;
      while (this.is(j, '.') && this.isName(j + 1)) {
        qualifier.push(this.tok(j + 1)!.text);
        j += 2;
      }
      this.addImport(
        specifier,
        qualifier.length === 0 ? '*' : [qualifier.length === 1 ? qualifier[0]! : qualifier.slice(0, -1).join('.')],
      );
      k = close;
    }
  }

  /** A list of type arguments or parameters at `i` (`<`): the index after its `>`, or -1 where it is no such list. */
  private angles(i: number, end: number, parameters = false): number {
    let depth = 0;
    for (let j = i; j < end; j++) {
      const t = this.s.t[j]!;
      if (t.kind !== 'punct') continue;
      if (t.text === '<') depth++;
      else if (t.text === '>') {
        if (--depth === 0) return j + 1;
      } else if (t.text === '(' || t.text === '[' || t.text === '{') j = this.close(j);
      else if (t.text === '=' && parameters) continue;
      else if (t.text === ')' || t.text === ']' || t.text === '}' || NOT_IN_TYPES.has(t.text)) return -1;
    }
    return -1;
  }

  /**
   * A type from `i`: the index after it. A `=>` after an operand ends it (an arrow's return type follows), and so
   * does a `{` (a body).
   */
  private skipType(i: number, end: number): number {
    let operand = true;
    let extendsOpen = 0;
    let colons = 0;
    while (i < end) {
      const t = this.s.t[i]!;
      const p = t.kind === 'punct' ? t.text : null;
      if (operand) {
        if (p === '|' || p === '&') {
          i++;
          continue;
        }
        if (
          t.kind === 'name' &&
          ['keyof', 'typeof', 'readonly', 'unique', 'infer', 'asserts', 'new', 'abstract'].includes(t.text) &&
          !this.is(i + 1, '.') &&
          (this.isName(i + 1) ||
            this.is(i + 1, '(') ||
            this.is(i + 1, '<') ||
            this.is(i + 1, '[') ||
            this.is(i + 1, '{'))
        ) {
          i++;
          continue;
        }
        if (p === '(') {
          const c = this.close(i);
          if (this.is(c + 1, '=>')) {
            i = c + 2;
            continue;
          }
          i = c + 1;
          operand = false;
          continue;
        }
        if (p === '<') {
          const e = this.angles(i, end);
          if (e < 0) return i;
          i = e;
          continue;
        }
        if (p === '{' || p === '[') {
          i = this.close(i) + 1;
          operand = false;
          continue;
        }
        if (p === '-' && this.tok(i + 1)?.kind === 'number') {
          i += 2;
          operand = false;
          continue;
        }
        if (t.kind === 'name' || t.kind === 'string' || t.kind === 'number' || t.kind === 'template') {
          if (t.kind === 'name' && t.text === 'import' && this.is(i + 1, '(')) i = this.close(i + 1) + 1;
          else i++;
          while ((this.is(i, '.') && this.isName(i + 1)) || (this.is(i, '<') && !this.tok(i)!.newline)) {
            if (this.is(i, '.')) i += 2;
            else {
              const e = this.angles(i, end);
              if (e < 0) break;
              i = e;
            }
          }
          operand = false;
          continue;
        }
        return i;
      }
      if (p === '[' && !t.newline) {
        i = this.close(i) + 1;
        continue;
      }
      if (p === '|' || p === '&') {
        operand = true;
        i++;
        continue;
      }
      if (t.kind === 'name' && (t.text === 'extends' || t.text === 'is')) {
        if (t.text === 'extends') extendsOpen++;
        operand = true;
        i++;
        continue;
      }
      if (p === '?' && extendsOpen > 0) {
        extendsOpen--;
        colons++;
        operand = true;
        i++;
        continue;
      }
      if (p === ':' && colons > 0) {
        colons--;
        operand = true;
        i++;
        continue;
      }
      return i;
    }
    return i;
  }

  /** `interface X … { … }` at `i`: the index after it. */
  private skipTypeDeclaration(i: number, end: number): number {
    let j = i;
    while (j < end && !this.is(j, '{')) {
      if (this.is(j, '<')) {
        const e = this.angles(j, end, true);
        j = e < 0 ? j + 1 : e;
      } else j++;
    }
    const c = this.close(j);
    this.typeImports(i, c);
    return c + 1;
  }

  // ---- lists ----

  /**
   * The ranges between the commas of [a, b) at its own depth (an empty last one, after a trailing comma, dropped);
   * `types`: a `<` there opens type arguments (a parameter list's), whose commas are not the list's.
   */
  private commaParts(a: number, b: number, types = false): [number, number][] {
    return this.parts(a, b, ',', types).filter(([p, q], k, all) => p < q || k < all.length - 1);
  }

  private parts(a: number, b: number, separator: string, types = false): [number, number][] {
    const out: [number, number][] = [];
    let from = a;
    let angle = 0;
    for (let j = a; j < b; j++) {
      const t = this.s.t[j]!;
      if (t.kind !== 'punct') continue;
      if (t.text === '(' || t.text === '[' || t.text === '{') j = this.close(j);
      else if (types && t.text === '<') angle++;
      else if (types && t.text === '>' && angle > 0) angle--;
      else if (t.text === separator && angle === 0) {
        out.push([from, j]);
        from = j + 1;
      }
    }
    out.push([from, b]);
    return out;
  }

  private inStream<T>(tokens: Token[], read: () => T): T {
    const saved = this.s;
    this.s = { t: tokens, match: matchBrackets(tokens) };
    try {
      return read();
    } finally {
      this.s = saved;
    }
  }
}

interface ExprOptions {
  /** What a function that is the whole expression is named (the variable or property it is given to). */
  name?: string | undefined;
  /** A `,` at this depth ends the expression (a declarator's, an argument's, an arrow's body). */
  commaEnds?: boolean;
  /** A `:` with no `?` open before it ends the expression (a ternary's branch, a case's label). */
  colonEnds?: boolean | undefined;
  /** A line break may end the expression (a statement's). */
  asi?: boolean | undefined;
}
