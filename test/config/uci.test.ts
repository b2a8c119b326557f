// tier: fast
// Grammar of UCI files as libuci (openwrt/uci file.c, strict mode) reads them. The expected values were
// cross-checked against `uci export` built from openwrt/uci 66127cd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { anonymousSectionName, findSection, parseUci, UciParseError, type UciPackage } from '../../src/config/uci.ts';

/** Options of a section as a plain object, for deep comparison. */
function opts(pkg: UciPackage, ref: string): Record<string, string | string[]> {
  const s = findSection(pkg, ref);
  assert.ok(s, `section ${ref} exists`);
  return Object.fromEntries(s.options);
}

function parseError(text: string): UciParseError {
  try {
    parseUci(text, 'f');
  } catch (err) {
    assert.instance(err, UciParseError);
    return err as UciParseError;
  }
  throw new Error(`expected a parse error for ${JSON.stringify(text)}`);
}

test('config, option, list with the three quoting styles and bare words', () => {
  const pkg = parseUci(
    `config sluice 'main'\n\toption a 'one'\n\toption b "two"\n\toption c three\n\tlist l 'x'\n\tlist l y\n`,
  );
  assert.equal(pkg.sections.length, 1);
  const s = pkg.sections[0]!;
  assert.equal([s.type, s.name, s.anonymous, s.index], ['sluice', 'main', false, 0]);
  assert.equal(opts(pkg, 'main'), { a: 'one', b: 'two', c: 'three', l: ['x', 'y'] });
});

test("single quotes take no escapes; '\\'' embeds a quote by concatenation", () => {
  const pkg = parseUci(`config t 's'\n\toption a 'it'\\''s'\n\toption b 'back\\slash'\n`);
  assert.equal(opts(pkg, 's'), { a: "it's", b: 'back\\slash' });
});

test('double quotes and bare words: backslash takes the next character literally (no \\n decoding)', () => {
  const pkg = parseUci(
    `config t 's'\n\toption a "say \\"hi\\""\n\toption b "a\\nb"\n\toption c x\\ y\n\toption d "\\\\"\n`,
  );
  assert.equal(opts(pkg, 's'), { a: 'say "hi"', b: 'anb', c: 'x y', d: '\\' });
});

test('adjacent pieces concatenate: \'a\'"b"c', () => {
  const pkg = parseUci(`config t 's'\n\toption v 'a'"b"c'd e'\n`);
  assert.equal(opts(pkg, 's'), { v: 'abcd e' });
});

test('quoted values may span lines; the newlines are part of the value', () => {
  const pkg = parseUci(`config t 's'\n\toption a 'line one\nline two'\n\toption b "x\n\ny"\n\toption c after\n`);
  assert.equal(opts(pkg, 's'), { a: 'line one\nline two', b: 'x\n\ny', c: 'after' });
});

test('a backslash at the end of a line joins the next line', () => {
  const pkg = parseUci(`config t 's'\n\toption a foo\\\nbar\n\toption b "x\\\ny"\n`);
  assert.equal(opts(pkg, 's'), { a: 'foobar', b: 'xy' });
});

test('; separates commands', () => {
  const pkg = parseUci(`config t 's' ; option a 1 ; option b 2\nconfig t 'u';option c '3';option d 4\n`);
  assert.equal(opts(pkg, 's'), { a: '1', b: '2' });
  assert.equal(opts(pkg, 'u'), { c: '3', d: '4' });
});

test('libuci quirk: ; right after an argument without quotes or escapes drops the rest of the line', () => {
  const pkg = parseUci(`config t 's'\n\toption a 1;option b 2\n\toption c 3\n`);
  assert.equal(opts(pkg, 's'), { a: '1', c: '3' });
});

test('# starts a comment outside quotes only, also right after a bare word', () => {
  const pkg = parseUci(
    `# header\nconfig t 's' # trailing\n\t# indented\n\toption a 'x#y'\n\toption b "#"\n\toption c v#ignored\n`,
  );
  assert.equal(opts(pkg, 's'), { a: 'x#y', b: '#', c: 'v' });
});

test('option again overrides in place; list appends; list after option makes a list', () => {
  const pkg = parseUci(
    `config t 's'\n\toption a 1\n\toption b 2\n\toption a 3\n\toption c x\n\tlist c y\n\tlist d ''\n`,
  );
  const s = findSection(pkg, 's')!;
  assert.equal([...s.options.keys()], ['a', 'b', 'c', 'd']);
  assert.equal(opts(pkg, 's'), { a: '3', b: '2', c: ['x', 'y'], d: [''] });
});

test('option over a list replaces the list', () => {
  const pkg = parseUci(`config t 's'\n\tlist l a\n\tlist l b\n\toption l c\n`);
  assert.equal(opts(pkg, 's'), { l: 'c' });
});

test('an empty value deletes the option; so does a missing value', () => {
  const pkg = parseUci(
    `config t 's'\n\toption a 1\n\toption a ''\n\toption b 2\n\toption b\n\toption c ""\n\toption d 4\n`,
  );
  assert.equal(opts(pkg, 's'), { d: '4' });
});

test('anonymous sections: libuci generated names, @type[i] addressing, index per type', () => {
  const pkg = parseUci(`config dnsmasq\n\toption a b\nconfig foo\nconfig dnsmasq 'named'\nconfig dnsmasq\n`);
  // `uci -X show` prints cfg01411c for the first anonymous dnsmasq section: djbhash("dnsmasq") % 65536 = 0x411c.
  assert.equal(
    pkg.sections.map((s) => s.name),
    ['cfg01411c', 'cfg027389', 'named', 'cfg04411c'],
  );
  assert.equal(
    pkg.sections.map((s) => s.anonymous),
    [true, true, false, true],
  );
  assert.equal(
    pkg.sections.map((s) => s.index),
    [0, 0, 1, 2],
  );
  assert.equal(findSection(pkg, '@dnsmasq[0]')?.name, 'cfg01411c');
  assert.equal(findSection(pkg, '@dnsmasq[1]')?.name, 'named');
  assert.equal(findSection(pkg, '@dnsmasq[-1]')?.name, 'cfg04411c');
  assert.equal(findSection(pkg, '@dnsmasq[3]'), undefined);
  assert.equal(anonymousSectionName('dnsmasq', 1), 'cfg01411c');
});

test('a named section seen again is reopened and its options merge', () => {
  const pkg = parseUci(`config t 'a'\n\toption x 1\nconfig t 'b'\nconfig t 'a'\n\toption y 2\n`);
  assert.equal(
    pkg.sections.map((s) => s.name),
    ['a', 'b'],
  );
  assert.equal(opts(pkg, 'a'), { x: '1', y: '2' });
});

test('package line, abbreviated commands, CRLF line ends and blank lines', () => {
  const pkg = parseUci(`package sluice\r\n\r\nc t 's'\r\n\to a 1\r\n\tl b 2\r\n\n   \n`);
  assert.equal(pkg.name, 'sluice');
  assert.equal(opts(pkg, 's'), { a: '1', b: ['2'] });
});

test('section type may contain printable punctuation; names may not', () => {
  const pkg = parseUci(`config my-type.x 'ok_1'\n`);
  assert.equal(pkg.sections[0]?.type, 'my-type.x');
  assert.is(parseError(`config t 'bad-name'\n`).reason, 'invalid character in name field');
  assert.is(parseError(`config t 's'\n\toption bad.name 1\n`).reason, 'invalid character in name field');
});

test('syntax errors carry file:line:column and libuci reason', () => {
  const cases: [string, string, number, number][] = [
    [`config t 's'\n\tbogus a b\n`, 'invalid command', 2, 2],
    [`option a b\n`, 'option/list command found before the first section', 1, 1],
    [`config t 's'\n\toption a 'unterminated\nmore\n`, "EOF with unterminated '", 2, 11],
    [`config t 's'\n\n\toption a "x\n`, 'EOF with unterminated "', 3, 11],
    [`config t 's'\n\toption a b c\n`, 'too many arguments', 2, 13],
    [`config t 's' extra\n`, 'too many arguments', 1, 14],
    [`config ''\n`, 'insufficient arguments', 1, 8],
    [`config t 's'\n\toption ''\n`, 'insufficient arguments', 2, 9],
    [`config t 'a'\nconfig u 'a'\n`, 'section of different type overwrites prior section with same name', 2, 8],
    [`config t 's'\n\toption`, 'option without name', 2, 2],
    [`config t 's'\nconfig\n`, 'invalid command', 2, 1],
    [`package bad!name\n`, 'invalid character in name field', 1, 9],
    [`config t 's'\n\toption a 'x\0y'\n`, 'NUL byte in file', 2, 13],
  ];
  for (const [text, reason, line, column] of cases) {
    const err = parseError(text);
    assert.is(err.code, 'ERR_UCI_PARSE');
    assert.is(err.reason, reason, JSON.stringify(text));
    assert.equal([err.line, err.column], [line, column], `position for ${JSON.stringify(text)}`);
    assert.is(err.message, `f:${line}:${column}: ${reason}`);
    assert.equal(err.details, { file: 'f', line, column, reason });
  }
});

test('bad input never throws anything but UciParseError', () => {
  const alphabet = ['config', 'option', 'list', ' ', '\t', '\n', ';', '#', "'", '"', '\\', 'a', '_', '-', '\r', 'é'];
  let seed = 42;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
  for (let i = 0; i < 3000; i++) {
    let text = '';
    for (let j = next(30); j > 0; j--) text += alphabet[next(alphabet.length)];
    try {
      parseUci(text);
    } catch (err) {
      assert.instance(err, UciParseError, JSON.stringify(text));
    }
  }
});

test.run();
