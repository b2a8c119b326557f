/**
 * What the architecture tests read from a TypeScript file's syntax, all of it from one read: the names it takes from
 * each relative specifier and the names it exports (test/helpers/import-graph.ts's rules), and its functions with
 * their length and positional parameters (the function budget, test/architecture-functions.test.ts). The facts come
 * from a scan of the file's tokens (syntax-scan.ts), or from TypeScript's tree (tsFacts, the readers below) for a file
 * the scan does not read; the two agree on every source of the repository (test/syntax-scan-typescript.test.ts). Both
 * tests read the same files; a file's facts are kept by its hash (syntax-cache.ts), so whichever test reads a changed
 * file first reads it for both.
 *
 * Functions: declarations, methods, constructors, accessors, and function expressions and arrows (named by the
 * variable, property or call they are given to). A parameter is positional unless it is a destructured object (an
 * options object); `this` is not a parameter. Length counts the lines from the function's first line to its last. An
 * anonymous function is named by the nearest named function around it (`outer/(arrow)`).
 */
import type ts from 'typescript';
import { cachedFacts, typescript } from './syntax-cache.ts';
import { scanFacts, UnsupportedSyntax } from './syntax-scan.ts';

const SCAN_URL = new URL('./syntax-scan.ts', import.meta.url).href;
const TOKENS_URL = new URL('../../scripts/ts-tokens.ts', import.meta.url).href;

/**
 * What a module imports from one specifier: the names it uses, or '*' when it takes the whole module (`import * as`).
 */
export interface ImportedNames {
  specifier: string;
  names: Set<string> | '*';
}

/** An exported name as written, or `{ star }` where the module has `export * from star`. */
export type ExportEntry = string | { star: string | null };

export interface FunctionFacts {
  /** `name` or `Class.name`; an anonymous function by the variable or property it is given to, else `outer/(arrow)`. */
  name: string;
  line: number;
  lines: number;
  positional: number;
}

export interface SyntaxFacts {
  /** One entry per relative specifier (static and dynamic imports, re-exports, `import('x').T` types). */
  imports: { specifier: string; names: string[] | '*' }[];
  /** The names the module exports, in order (exportedNames in import-graph.ts follows the stars). */
  exports: ExportEntry[];
  functions: FunctionFacts[];
}

/**
 * The facts of `source`: from the cache when it was read before, else from its tokens (syntax-scan.ts), or from
 * TypeScript's parse of it where that reader meets syntax it does not read.
 */
export function syntaxFacts(source: string): SyntaxFacts {
  return cachedFacts('syntax', [import.meta.url, SCAN_URL, TOKENS_URL], source, () => {
    try {
      return scanFacts(source);
    } catch (err) {
      if (err instanceof UnsupportedSyntax) return tsFacts(source);
      throw err;
    }
  });
}

/** The facts of `source` from one parse of it by TypeScript (what syntax-scan.ts is checked against). */
export function tsFacts(source: string): SyntaxFacts {
  const ts = typescript();
  const file = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  return {
    imports: readImportedNames(file).map(({ specifier, names }) => ({
      specifier,
      names: names === '*' ? ('*' as const) : [...names],
    })),
    exports: readExports(file),
    functions: readFunctions(file),
  };
}

/** The functions of `source`, as the function budget measures them. */
export function functionsOf(source: string): FunctionFacts[] {
  return syntaxFacts(source).functions;
}

function literalOf(node: ts.Node | undefined): string | null {
  const ts = typescript();
  return node !== undefined && ts.isStringLiteralLike(node) ? node.text : null;
}

/** The names a dynamic `import('x')` takes: `const { a } = await import(…)` or `(await import(…)).a`; else '*'. */
function dynamicNames(call: ts.CallExpression): Set<string> | '*' {
  const ts = typescript();
  let node: ts.Node = call;
  if (ts.isAwaitExpression(node.parent)) node = node.parent;
  while (ts.isParenthesizedExpression(node.parent)) node = node.parent;
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.expression === node) return new Set([parent.name.text]);
  if (ts.isVariableDeclaration(parent) && ts.isObjectBindingPattern(parent.name)) {
    const names = new Set<string>();
    for (const element of parent.name.elements) {
      const name = element.propertyName ?? element.name;
      if (element.dotDotDotToken || !ts.isIdentifier(name)) return '*';
      names.add(name.text);
    }
    return names;
  }
  return '*';
}

/** What a module takes from each relative specifier, in the order first met. */
function readImportedNames(file: ts.SourceFile): ImportedNames[] {
  const ts = typescript();
  const out = new Map<string, Set<string> | '*'>();
  const add = (specifier: string | null, names: Iterable<string> | '*'): void => {
    if (specifier === null || !specifier.startsWith('.')) return;
    const had = out.get(specifier);
    if (had === '*') return;
    if (names === '*') {
      out.set(specifier, '*');
      return;
    }
    const set = had ?? new Set<string>();
    for (const n of names) set.add(n);
    out.set(specifier, set);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const names: string[] = [];
      if (clause?.name) names.push('default');
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) add(literalOf(node.moduleSpecifier), '*');
      else {
        for (const e of bindings?.elements ?? []) names.push((e.propertyName ?? e.name).text);
        add(literalOf(node.moduleSpecifier), names);
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const clause = node.exportClause;
      if (!clause || ts.isNamespaceExport(clause)) add(literalOf(node.moduleSpecifier), '*');
      else
        add(
          literalOf(node.moduleSpecifier),
          clause.elements.map((e) => (e.propertyName ?? e.name).text),
        );
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(literalOf(node.arguments[0]), dynamicNames(node));
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      const specifier = ts.isLiteralTypeNode(arg) ? literalOf(arg.literal) : null;
      const qualifier = node.qualifier;
      add(
        specifier,
        qualifier === undefined ? '*' : [ts.isIdentifier(qualifier) ? qualifier.text : qualifier.left.getText()],
      );
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return [...out].map(([specifier, names]) => ({ specifier, names }));
}

/** The names a module exports as written, in order, and `{ star }` where it has `export * from star`. */
function readExports(file: ts.SourceFile): ExportEntry[] {
  const ts = typescript();
  const out: ExportEntry[] = [];
  const add = (name: string): void => {
    out.push(name);
  };
  for (const statement of file.statements) {
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (clause && ts.isNamedExports(clause)) for (const e of clause.elements) add(e.name.text);
      else if (clause && ts.isNamespaceExport(clause)) add(clause.name.text);
      else out.push({ star: literalOf(statement.moduleSpecifier) });
      continue;
    }
    if (ts.isExportAssignment(statement)) {
      add('default');
      continue;
    }
    const modifiers = ts.canHaveModifiers(statement) ? (ts.getModifiers(statement) ?? []) : [];
    if (!modifiers.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    if (modifiers.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) {
      add('default');
      continue;
    }
    if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) if (ts.isIdentifier(d.name)) add(d.name.text);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement) ||
        ts.isModuleDeclaration(statement)) &&
      statement.name &&
      ts.isIdentifier(statement.name)
    )
      add(statement.name.text);
  }
  return out;
}

function nameOf(node: ts.Node, file: ts.SourceFile): string {
  const ts = typescript();
  const cls = (n: ts.Node): string => {
    for (let p = n.parent; p; p = p.parent) if (ts.isClassLike(p)) return p.name ? `${p.name.text}.` : '';
    return '';
  };
  const text = (n: ts.PropertyName | ts.BindingName | undefined): string =>
    n === undefined ? '' : ts.isIdentifier(n) || ts.isPrivateIdentifier(n) ? n.text : n.getText(file);
  if (ts.isConstructorDeclaration(node)) return `${cls(node)}constructor`;
  if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isAccessor(node))
    return `${ts.isFunctionDeclaration(node) ? '' : cls(node)}${text(node.name)}`;
  const p = node.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyDeclaration(p) || ts.isPropertyAssignment(p))
    return `${ts.isPropertyDeclaration(p) ? cls(p) : ''}${text(p.name)}`;
  // Anonymous: named by the nearest function around it that has a name (`sinkFor/(arrow)`), stable across edits.
  for (let q = node.parent; q; q = q.parent) {
    if (ts.isFunctionLike(q)) {
      const outer = nameOf(q, file);
      if (!outer.endsWith('(arrow)')) return `${outer}/(arrow)`;
    }
  }
  return '(arrow)';
}

function readFunctions(file: ts.SourceFile): FunctionFacts[] {
  const ts = typescript();
  const out: FunctionFacts[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const params = (node as ts.SignatureDeclarationBase).parameters.filter(
        (p) => !(ts.isIdentifier(p.name) && p.name.text === 'this'),
      );
      const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({
        name: nameOf(node, file),
        line: start + 1,
        lines: end - start + 1,
        positional: params.filter((p) => !ts.isObjectBindingPattern(p.name)).length,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}
