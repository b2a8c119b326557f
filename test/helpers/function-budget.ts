/**
 * The functions of a TypeScript file with their length and positional parameters, for the architecture test's function
 * budget: declarations, methods, constructors, accessors, and function expressions and arrows (named by the variable,
 * property or call they are given to). A parameter is positional unless it is a destructured object (an options
 * object); `this` is not a parameter. Length counts the lines from the function's first line to its last. An anonymous
 * function is named by the nearest named function around it (`outer/(arrow)`).
 */
import type ts from 'typescript';
import { cachedFacts, typescript } from './syntax-cache.ts';

export interface FunctionFacts {
  /** `name` or `Class.name`; an anonymous function by the variable or property it is given to, else `outer/(arrow)`. */
  name: string;
  line: number;
  lines: number;
  positional: number;
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

/** The functions of `source` (`path` names it in the parser's messages), read once per source (syntax-cache.ts). */
export function functionsOf(path: string, source: string): FunctionFacts[] {
  return cachedFacts('functions', import.meta.url, source, () => readFunctions(path, source));
}

function readFunctions(path: string, source: string): FunctionFacts[] {
  const ts = typescript();
  const file = ts.createSourceFile(path, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
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
