// tier: fast
// scripts/wrap-comments.ts: the comment paragraphs over the line limit are rewrapped with their words unchanged, and
// nothing else moves (code, strings, lists, code blocks, tables, directives). Small limits keep the cases readable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { wrapComments } from '../../scripts/wrap-comments.ts';

const words = (s: string): string[] =>
  s
    .replace(/\/\/|\/\*\*?|\*\/|^\s*\*/gm, ' ')
    .split(/\s+/)
    .filter(Boolean);
const longest = (s: string): number => Math.max(...s.split('\n').map((l) => [...l].length));

test('a // paragraph over the limit: its words move to the next lines, the same words in the same order', () => {
  const source = ['// one two three four five six seven', '// eight nine', 'const x = 1;', ''].join('\n');
  const out = wrapComments(source, 'a.ts', 20);
  assert.is(out, ['// one two three', '// four five six', '// seven eight nine', 'const x = 1;', ''].join('\n'));
  assert.equal(words(out), words(source));
});

test('a file with no line over the limit comes back byte for byte, and a second run changes nothing', () => {
  const source = '/** Short. */\nexport const a = 1; // fine\n// also fine\n';
  assert.is(wrapComments(source, 'a.ts', 40), source);
  const long = '  // alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu\n  x();\n';
  const once = wrapComments(long, 'a.ts', 30);
  assert.ok(longest(once) <= 30, once);
  assert.is(wrapComments(once, 'a.ts', 30), once);
});

test(
  'the indent is kept, and only the paragraph with the ' + 'long line changes (blank comment lines separate them)',
  () => {
    const source = [
      '    // first paragraph stays as it is',
      '    // short',
      '    //',
      '    // second paragraph has a line that is much too long for it',
      '    // and a short end',
      '    f();',
    ].join('\n');
    const out = wrapComments(source, 'a.ts', 40).split('\n');
    assert.equal(out.slice(0, 3), source.split('\n').slice(0, 3));
    assert.equal(out.slice(3), [
      '    // second paragraph has a line that',
      '    // is much too long for it and a',
      '    // short end',
      '    f();',
    ]);
  },
);

test('list items keep their marker and hang; an indented block, a table and a fence are left as written', () => {
  const source = [
    '// Intro:',
    '// - an item whose text goes well past the limit here',
    '//   and its continuation',
    '// - a second item',
    '//     indented code that is long and must stay as it is',
    '// | a table | row that is long and must stay as it is |',
    '// ```',
    '// fenced code that is long and must stay as it is too',
    '// ```',
    '1;',
  ].join('\n');
  const out = wrapComments(source, 'a.ts', 40).split('\n');
  assert.equal(out, [
    '// Intro:',
    '// - an item whose text goes well past',
    '//   the limit here and its continuation',
    '// - a second item',
    '//     indented code that is long and must stay as it is',
    '// | a table | row that is long and must stay as it is |',
    '// ```',
    '// fenced code that is long and must stay as it is too',
    '// ```',
    '1;',
  ]);
});

test('a line after a list item that is not indented starts a paragraph of its own', () => {
  const source = ['// - item', '// a new paragraph that is far too long for the limit given', '1;'].join('\n');
  assert.equal(wrapComments(source, 'a.ts', 30).split('\n'), [
    '// - item',
    '// a new paragraph that is far',
    '// too long for the limit',
    '// given',
    '1;',
  ]);
});

test('a word is never split: a URL longer than the limit stays whole on its line', () => {
  const source = '// see https://example.com/a/very/long/path/that/does/not/fit for why\n1;\n';
  const out = wrapComments(source, 'a.ts', 30);
  assert.equal(out.split('\n'), [
    '// see',
    '// https://example.com/a/very/long/path/that/does/not/fit',
    '// for why',
    '1;',
    '',
  ]);
});

test('a moved word never starts a line as a list marker, a table row or a tag', () => {
  const source = '// the range is 1 - 2 and | is a pipe and @x is a tag here\n1;\n';
  const out = wrapComments(source, 'a.ts', 22);
  for (const line of out.split('\n')) assert.not.match(line, /^\/\/ ([-|@]|\d+\.\s)/, line);
  assert.equal(words(out), words(source));
});

test('JSDoc: a block paragraph rewraps with ` * `, the closing line keeps its */, tags start paragraphs', () => {
  const source = [
    '  /**',
    '   * A description that runs on for longer than the limit allows here.',
    '   * @param a the first argument, described at some length to wrap */',
    '  function f(a) {}',
  ].join('\n');
  const out = wrapComments(source, 'a.ts', 40);
  assert.equal(out.split('\n'), [
    '  /**',
    '   * A description that runs on for',
    '   * longer than the limit allows here.',
    '   * @param a the first argument,',
    '   * described at some length to wrap */',
    '  function f(a) {}',
  ]);
  assert.equal(words(out), words(source));
});

test('a one-line JSDoc over the limit becomes a block', () => {
  const source = '  /** The number of clients a tick reads at most, past which it waits. */\n  const n = 1;\n';
  assert.equal(wrapComments(source, 'a.ts', 50).split('\n'), [
    '  /**',
    '   * The number of clients a tick reads at most,',
    '   * past which it waits.',
    '   */',
    '  const n = 1;',
    '',
  ]);
});

test('strings, templates and regexes that look like comments are not comments; a comment after code stays', () => {
  const source = [
    "const a = '// not a comment, however long the line that holds it happens to be';",
    'const b = `',
    '// inside a template literal, also not a comment, however long it is',
    '`;',
    'const c = /\\/\\/ a regex, not a comment either, however long it happens to be/;',
    'f(); // a trailing comment after code that is too long stays as written',
    '',
  ].join('\n');
  assert.is(wrapComments(source, 'a.ts', 30), source);
});

test("directives and a test file's tier line are never rewrapped", () => {
  const source = [
    '// tier: peers; needs freeradius radclient mosquitto openssl python3 shellcheck',
    '// @ts-expect-error the reason, which is long enough to pass the limit',
    'x();',
    '/// <reference types="node" and a long tail that passes the limit />',
    '',
  ].join('\n');
  assert.is(wrapComments(source, 'a.ts', 30), source);
});

test('a usage line that ends a code span keeps its line end: the words that pass go on a line of their own', () => {
  const source = ['// `run [--a A] [--b B] [--c C]`', '// What it does.', '1;'].join('\n');
  assert.equal(wrapComments(source, 'a.ts', 26).split('\n'), [
    '// `run [--a A] [--b B]',
    '// [--c C]`',
    '// What it does.',
    '1;',
  ]);
});

test.run();
