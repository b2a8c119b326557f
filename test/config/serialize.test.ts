// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';
import { quoteUci } from '../../src/config/index.ts';
import { parseUci, type UciSection } from '../../src/config/uci.ts';
import { serializeUci } from '../../src/config/serialize.ts';

const section = (
  type: string,
  name: string,
  options: [string, string | string[]][],
  anonymous = false,
): UciSection => ({ type, name, anonymous, index: 0, options: new Map(options) });

test('canonical export format, byte for byte as uci commit writes it', () => {
  const text = serializeUci({
    sections: [
      section('sluice', 'main', [
        ['enabled', '1'],
        ['ndsctl', ['/usr/bin/ip', 'netns', 'exec']],
      ]),
      section('pricing', 'cfg02abcd', [['note', "it's"]], true),
    ],
  });
  assert.is(
    text,
    "\nconfig sluice 'main'\n\toption enabled '1'\n\tlist ndsctl '/usr/bin/ip'\n\tlist ndsctl 'netns'\n\tlist " +
      "ndsctl 'exec'\n" +
      "\nconfig pricing\n\toption note 'it'\\''s'\n\n",
  );
});

test("quoteUci escapes ' as '\\''", () => {
  assert.is(quoteUci("a'b''"), "'a'\\''b'\\'''\\'''");
  assert.is(quoteUci(''), "''");
});

test('serialize → parse round trip with random values (quotes, backslashes, newlines, #, ;)', () => {
  const chars = ["'", '"', '\\', '\n', '\r', '\t', ' ', '#', ';', 'a', 'Z', '0', '$', '`', 'é', '€', '\u{1F600}'];
  let seed = 7;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
  const value = (allowEmpty: boolean) => {
    let s = '';
    for (let n = next(12) + (allowEmpty ? 0 : 1); n > 0; n--) s += chars[next(chars.length)];
    return s;
  };
  for (let round = 0; round < 300; round++) {
    const sections: UciSection[] = [];
    for (let i = 0, n = 1 + next(4); i < n; i++) {
      const options: [string, string | string[]][] = [];
      for (let j = 0, m = next(5); j < m; j++) {
        options.push([
          `opt_${j}`,
          next(3) === 0 ? Array.from({ length: 1 + next(3) }, () => value(true)) : value(false),
        ]);
      }
      sections.push(section(next(2) ? 'pricing' : 'sluice', `s_${round}_${i}`, options));
    }
    const text = serializeUci({ sections });
    const back = parseUci(text);
    assert.equal(
      back.sections.map((s) => [s.type, s.name, [...s.options]]),
      sections.map((s) => [s.type, s.name, [...s.options]]),
    );
    assert.is(serializeUci(back), text, 'serialize is a fixed point');
  }
});

test('anonymous sections are written without a name and come back anonymous in order', () => {
  const text = serializeUci({
    sections: [section('pricing', 'x', [['a', '1']], true), section('pricing', 'y', [['a', '2']], true)],
  });
  const back = parseUci(text);
  assert.equal(
    back.sections.map((s) => [s.anonymous, s.index, s.options.get('a')]),
    [
      [true, 0, '1'],
      [true, 1, '2'],
    ],
  );
});

test('names that UCI cannot hold are refused with ERR_UCI_INVALID', () => {
  for (const bad of [
    section('t', 'bad-name', []),
    section('has space', 'ok', []),
    section('t', 'ok', [['bad.opt', 'v']]),
    section('t', 'ok', [['o', 'nul\0']]),
  ]) {
    try {
      serializeUci({ sections: [bad] });
      assert.unreachable('should throw');
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_UCI_INVALID'), String(err));
    }
  }
});

test.run();
