// tier: fast
// The nft counter dump's scanner (portal/nft-scan.ts) must read what JSON.parse reads (nft-dump-reference.ts writes
// the contract on JSON.parse's tree) on real and generated dumps, and refuse, never guess, on everything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { NftDumpError, type CounterDump, type NftDumpReason } from '../../src/portal/counter-dump.ts';
import { parseCounterTable } from '../../src/portal/kernel-counters.ts';
import { scanCounterDump } from '../../src/portal/nft-scan.ts';
import { prng } from '../../src/prng.ts';
import { referenceDump, type ReferenceDump } from './nft-dump-reference.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/nft/nft-1.0.6-${name}.json`, import.meta.url), 'utf8');
const REAL = ['empty-table', '3-clients', '64-clients'].map((name) => [name, fixture(name)] as const);

function scanned(text: string | Uint8Array): ReferenceDump | 'refused' {
  let dump: CounterDump;
  try {
    dump = scanCounterDump(text);
  } catch (err) {
    if (err instanceof NftDumpError) return 'refused';
    throw err;
  }
  return { tableHandle: dump.tableHandle, intact: dump.intact, clients: dump.readings() };
}

/**
 * A text's UTF-8 bytes, as nft's output reaches the scanner, in one buffer reused from text to text (a view valid until
 * the next call; scanned() is done with it before): a Buffer.from of each generated and mutated text allocated ~57 MB
 * outside the heap, one backing store a text.
 */
let scratch = Buffer.alloc(1 << 16);
function bytesOf(text: string): Buffer {
  if (text.length * 3 > scratch.length) scratch = Buffer.alloc(text.length * 3);
  return scratch.subarray(0, scratch.write(text));
}

function refusal(text: string | Uint8Array): NftDumpError {
  try {
    scanCounterDump(text);
  } catch (err) {
    if (err instanceof NftDumpError) return err;
    throw err;
  }
  throw new Error(`accepted: ${Buffer.from(text.slice(0, 200)).toString()}`);
}

test("real dumps of nft 1.0.6: the scanner reads what JSON.parse reads, the fixture's counts and keys", () => {
  for (const [name, text] of REAL) {
    const reference = referenceDump(text);
    assert.ok(reference !== 'refused', name);
    assert.equal(scanned(text), reference, name);
    assert.equal(scanned(Buffer.from(text)), reference, `${name} as bytes`);
    assert.ok(reference.intact, name);
  }
  const { readings, intact } = parseCounterTable(fixture('3-clients'));
  assert.ok(intact);
  assert.equal(
    readings.map(({ mac, downBytes, upBytes, key }) => [mac, downBytes, upBytes, key]),
    [
      // Download: the egress counter's bytes less 14 a packet (7214 B in 13 packets, 9924 B in 18).
      ['02:00:00:00:00:0a', 7214 - 13 * 14, 9672, '02:00:00:00:00:0a'],
      ['02:00:00:00:00:0b', 9924 - 18 * 14, 7032, '02:00:00:00:00:0b'],
      ['aa:bb:cc:dd:ee:ff', 0, 0, ''],
    ],
    'the counter named other (with its comment) is not a client',
  );
  assert.is(parseCounterTable(fixture('64-clients')).readings.length, 64);
  assert.equal(parseCounterTable(fixture('empty-table')), { readings: [], intact: true });
});

/**
 * Where a dump is cut: every byte of the small real dumps, which hold each shape nft prints (metainfo, table, counters,
 * maps with and without elements, chains, rules, the end); of a longer one its first and last SPAN bytes and every
 * STRIDE-th byte between, its middle being the same counters and elements again (126-128 and 42 bytes each: 11 divides
 * none, so the cuts still fall on every offset within them). Each cut costs a scan of what is before it: all 23,000
 * cuts of the 64-client dump were quadratic, ~250M bytes scanned.
 */
function cuts(end: number): number[] {
  const SPAN = 1_000;
  const STRIDE = 11;
  const at: number[] = [];
  for (let cut = 0; cut < end; cut++)
    if (end <= 3 * SPAN || cut < SPAN || cut >= end - SPAN || cut % STRIDE === 0) at.push(cut);
  return at;
}

test('a dump cut anywhere is refused (truncated, or not JSON): never the readings of a part of it', () => {
  for (const [name, text] of REAL) {
    // The dump's bytes, as nft's output reaches the scanner, cut without a copy (the dumps are ASCII: byte = char).
    const bytes = Buffer.from(text);
    assert.is(bytes.length, text.length, `${name} is ASCII`);
    const end = text.trimEnd().length;
    for (const cut of cuts(end)) {
      const err = refusal(bytes.subarray(0, cut));
      assert.ok(['truncated', 'not-json', 'shape'].includes(err.reason), `${name} cut at ${cut}: ${err.reason}`);
    }
    assert.equal(scanned(text.slice(0, end)), referenceDump(text), 'without its newline');
  }
});

test('each refusal has its reason: missing fields, counts past 2^53, escapes, duplicates, the table', () => {
  const counter = (fields: string): string =>
    `{"nftables": [{"table": {"family": "netdev", "name": "sluice_count", "handle": 2}}, {"counter": {${fields}}}]}`;
  const full: Record<string, string> = {
    family: '"netdev"',
    name: '"cu_020000000001"',
    table: '"sluice_count"',
    handle: '7',
    packets: '1',
    bytes: '9007199254740991',
  };
  const join = (o: Record<string, string>): string =>
    Object.entries(o)
      .map(([k, v]) => `"${k}": ${v}`)
      .join(', ');
  assert.is(scanned(counter(join(full))) === 'refused', false, '2^53 - 1 bytes is a count');
  for (const key of Object.keys(full)) {
    const { [key]: _, ...without } = full;
    assert.is(refusal(counter(join(without))).reason, 'missing-field', `without ${key}`);
  }
  const cases: Array<[NftDumpReason, string]> = [
    ['bad-number', counter(join({ ...full, bytes: '9007199254740992' }))],
    ['bad-number', counter(join({ ...full, bytes: '123456789012345678901234567890' }))],
    ['bad-number', counter(join({ ...full, bytes: '-1' }))],
    ['bad-number', counter(join({ ...full, bytes: '5.0' }))],
    ['bad-number', counter(join({ ...full, bytes: '5e3' }))],
    ['not-json', counter(join({ ...full, bytes: '05' }))],
    ['shape', counter(join({ ...full, bytes: '"5"' }))],
    ['shape', counter(join({ ...full, name: '7' }))],
    ['escape', counter(join({ ...full, name: '"cu_02000000000\\u0031"' }))],
    ['escape', counter(join({ ...full, table: '"sluice\\u005fcount"' }))],
    ['escape', counter(`${join(full)}, "\\u0062ytes": 1`)],
    ['duplicate', counter(`${join(full)}, "bytes": 1`)],
    ['duplicate', counter(join(full)).replace(']}', `, {"counter": {${join(full)}}}]}`)],
    [
      'duplicate',
      counter(join(full)).replace(']}', ', {"table": {"family": "netdev", "name": "sluice_count", "handle": 3}}]}'),
    ],
    ['duplicate', `{"nftables": [], "nftables": []}`],
    ['no-table', `{"nftables": [{"counter": {${join(full)}}}]}`],
    ['missing-field', `{"nftables": [{"table": {"family": "netdev", "name": "sluice_count"}}]}`],
    ['shape', `{"nftables": [{"table": {"family": "netdev", "name": "sluice_count", "handle": 2}}, {"counter": 7}]}`],
    ['shape', `{"nftables": {}}`],
    ['shape', `{"nftables": [], "extra": 1}`],
    ['shape', `{}`],
    ['not-json', `{"nftables": [7]}`],
    ['not-json', `${counter(join(full))} x`],
    ['not-json', counter(join({ ...full, name: '"cu_02\n0000000001"' }))],
    ['not-json', counter(`${join(full)}, "comment": "\\x"`)],
    ['truncated', counter(join(full)).slice(0, -1)],
    ['too-deep', counter(`${join(full)}, "x": ${'['.repeat(40)}${']'.repeat(40)}`)],
    ['truncated', ''],
    ['not-json', 'nft: not supported'],
  ];
  for (const [reason, text] of cases) {
    const err = refusal(text);
    assert.is(err.reason, reason, text);
    assert.is(err.code, 'ERR_KERNEL_QUOTA');
    assert.ok(err.at >= 0 && err.at <= text.length);
  }
  // What nft may print and the scanner does not read: escapes in a comment, any number in a rule.
  const fine = counter(`${join(full)}, "comment": "a \\"quoted\\" \\\\ \\u00e9 comment", "x": [-1.5e3, 0, true, null]`);
  assert.equal(scanned(fine), referenceDump(fine));
});

const SPACES = [' ', '\n', '\t', '\r\n ', ''];
/** What JSON.stringify writes other than as it is in a string. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** JSON.stringify of a string, without its call for one with nothing to escape (most). */
const quoted = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);
const HEX_DIGITS = '0123456789abcdef'.split('');

/**
 * JSON as nft prints it (0: jansson's ", " and ": " on one line), compact, indented, or with random whitespace. The
 * first three are JSON.stringify's own output (0: indented by one, its line breaks and indents taken out: a string
 * holds no raw line break); only the random one is written here, into one list of pieces joined once.
 */
function serialize(v: unknown, style: number, rnd: () => number): string {
  if (style === 0) return JSON.stringify(v, null, 1).replace(/,\n */g, ', ').replace(/\n */g, '');
  if (style === 1) return JSON.stringify(v);
  if (style === 2) return JSON.stringify(v, null, 2);
  const ws = (): string => SPACES[Math.floor(rnd() * 5)]!;
  const out: string[] = [];
  // The whitespace is drawn as the nesting is written: after an array's or object's opening, around each key's colon,
  // then, once its members are written, around the comma between them (the same between all) and before its closing.
  const go = (x: unknown): void => {
    if (x === null || typeof x !== 'object') {
      out.push(typeof x === 'string' ? quoted(x) : String(x));
      return;
    }
    const array = Array.isArray(x);
    out.push(array ? '[' : '{', ws());
    const commas: number[] = [];
    const members: Array<[string, unknown]> | unknown[] = array ? x : Object.entries(x);
    for (let m = 0; m < members.length; m++) {
      if (m > 0) commas.push(out.push('') - 1);
      if (array) go(members[m]);
      else {
        const [k, y] = members[m] as [string, unknown];
        out.push(quoted(k), ws(), ': ', ws());
        go(y);
      }
    }
    const comma = `${ws()}, ${ws()}`;
    for (const at of commas) out[at] = comma;
    out.push(ws(), array ? ']' : '}');
  };
  go(v);
  return out.join('');
}

/** A random dump in nft's shape, with what nft could print around it and what a broken table could hold. */
function generate(rnd: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number): boolean => rnd() < p;
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  // Object.fromEntries made each object by its slow path: ~0.2 ms of a dump's ~0.3 ms.
  const object = (entries: Array<[string, unknown]>): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of chance(0.2) ? shuffle(entries) : entries) o[k] = v;
    return o;
  };
  const hex = (): string => {
    let h = '';
    for (let k = 0; k < 12; k++) h += pick(HEX_DIGITS);
    return h;
  };
  const count = (): number =>
    pick([0, 1, Math.floor(rnd() * 1e6), Math.floor(rnd() * 2 ** 40), Number.MAX_SAFE_INTEGER]);
  const T = 'sluice_count';
  let handle = 10;
  const items: unknown[] = [];
  const up: unknown[] = [];
  const down: unknown[] = [];
  const counterItem = (name: string, table = T): unknown => ({
    counter: object([
      ['family', 'netdev'],
      ['name', name],
      ['table', table],
      ['handle', (handle += 1 + Math.floor(rnd() * 3))],
      ...(chance(0.05) ? [['comment', pick(['a "quoted" one', 'back\\slash', 'é', '\n'])] as [string, unknown]] : []),
      ['packets', count()],
      ['bytes', count()],
      ...(chance(0.03) ? [['future', { nested: [1, 'x', null] }] as [string, unknown]] : []),
    ]),
  });
  const clients = Math.floor(rnd() * 30);
  const named: string[] = [];
  for (let c = 0; c < clients; c++) {
    const h = hex();
    named.push(h);
    const ip = `10.${Math.floor(rnd() * 250)}.${Math.floor(rnd() * 250)}.${Math.floor(rnd() * 250)}`;
    if (!chance(0.05)) items.push(counterItem(`cu_${h}`));
    if (!chance(0.05)) items.push(counterItem(`cd_${h}`));
    if (!chance(0.1)) up.push([ip, `cu_${h}`]);
    if (!chance(0.1)) down.push(chance(0.03) ? [ip, `cd_${h}`, 'extra'] : [ip, `cd_${h}`]);
    if (chance(0.05)) down.push([`10.9.9.${c}`, `cd_${h}`]);
  }
  if (chance(0.3)) items.push(counterItem('other'));
  if (chance(0.2)) items.push(counterItem(`cu_${hex().toUpperCase()}`));
  if (chance(0.2)) items.push(counterItem(`cu_${hex()}`, 'another_table'));
  if (chance(0.2)) down.push([{ elem: { val: '10.0.0.1', comment: 'x' } }, 'cd_000000000001'], 'odd', [1, 2]);
  const map = (name: string, elem: unknown[]): unknown => ({
    map: object([
      ['family', 'netdev'],
      ['name', name],
      ['table', T],
      ['type', 'ipv4_addr'],
      ['handle', 3],
      ['map', 'counter'],
      ...(elem.length > 0 || chance(0.1) ? [['elem', elem] as [string, unknown]] : []),
    ]),
  });
  const chain = (name: string): unknown => ({
    chain: { family: 'netdev', table: T, name, handle: 1, type: 'filter', hook: 'prerouting', prio: pick([50, -150]) },
  });
  const rule = (name: string): unknown => ({
    rule: {
      family: 'netdev',
      table: T,
      chain: name,
      handle: 5,
      expr: [{ counter: { map: { key: { payload: { protocol: 'ip', field: 'saddr' } }, data: '@cup' } } }],
    },
  });
  const rest = [
    ...(chance(0.9) ? [map('cup', up)] : []),
    ...(chance(0.9) ? [map('cdown', down)] : []),
    ...(chance(0.9) ? [chain('count_up'), chain('count_down')] : [chain('count_up')]),
    rule('count_up'),
    rule('count_down'),
    ...(chance(0.1) ? [{ set: { family: 'netdev', name: 's', table: T, type: 'ipv4_addr', handle: 9 } }, {}] : []),
  ];
  const body = chance(0.15) ? shuffle([...items, ...rest]) : [...items, ...rest];
  // A second cdown before the counters: its elements are read before the counters they name, and the later map's win.
  if (chance(0.15))
    body.unshift(
      map(
        'cdown',
        named.slice(0, 3).map((h) => [`10.7.7.${h.slice(0, 2)}`, `cd_${h}`]),
      ),
    );
  const table = { table: { family: 'netdev', name: T, handle: Math.floor(rnd() * 100) } };
  const other = { table: { family: 'ip', name: T, handle: 1 } };
  return {
    nftables: [
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      ...(chance(0.1) ? [other] : []),
      ...(chance(0.02) ? [] : [table]),
      ...body,
    ],
  };
}

test('generated dumps: the scanner reads exactly what JSON.parse reads, or both refuse', () => {
  const rnd = prng(40);
  let accepted = 0;
  for (let run = 0; run < 1500; run++) {
    const text = serialize(generate(rnd), run % 4, rnd);
    const reference = referenceDump(text);
    assert.equal(scanned(bytesOf(text)), reference, `run ${run}: ${text.slice(0, 300)}`);
    if (reference !== 'refused') accepted++;
  }
  assert.ok(accepted > 1300, `${accepted} accepted`);
});

/** The text with the character at `at` changed to `b` (op 0), removed (1) or doubled (2). */
function mutated(text: string, at: number, op: number, b: string): string {
  return op === 0
    ? text.slice(0, at) + b + text.slice(at + 1)
    : op === 1
      ? text.slice(0, at) + text.slice(at + 1)
      : text.slice(0, at) + text[at] + text.slice(at);
}

/**
 * mutated()'s UTF-8 bytes: the text's bytes with the character at `at` changed (op 0: to `b`), removed (1) or doubled
 * (2), written into the reused scratch buffer straight from the text's bytes, for a text of ASCII only (byte =
 * character): the string of the mutated text is then made only for the scans that accept it, where the reference and
 * the message need it.
 */
function mutatedBytes(text: Buffer, at: number, op: number, b: string): Buffer {
  if (text.length + 4 > scratch.length) scratch = Buffer.alloc(text.length * 3);
  let n = text.copy(scratch, 0, 0, op === 2 ? at + 1 : at);
  if (op === 0) n += scratch.write(b, n);
  n += text.copy(scratch, n, op === 2 ? at : at + 1);
  return scratch.subarray(0, n);
}

test('mutated dumps (a byte changed, removed or doubled): never a reading JSON.parse does not give', () => {
  const rnd = prng(41);
  const texts = [
    ...REAL.map(([, t]) => t),
    ...Array.from({ length: 20 }, (_, i) => serialize(generate(rnd), i % 4, rnd)),
  ];
  /** Each text's bytes when it is ASCII only (a generated comment may hold an é), else undefined. */
  const textBytes = texts.map((t) => {
    const bytes = Buffer.from(t);
    return bytes.length === t.length ? bytes : undefined;
  });
  const bytes = '{}[],:" \\0123456789abcdefnrtulse.-+E\u00e9\u0001';
  let refused = 0;
  for (let run = 0; run < 6000; run++) {
    const text = texts[run % texts.length]!;
    const at = Math.floor(rnd() * text.length);
    const op = Math.floor(rnd() * 3);
    const b = bytes[Math.floor(rnd() * bytes.length)]!;
    const ascii = textBytes[run % texts.length];
    const mine = scanned(ascii === undefined ? bytesOf(mutated(text, at, op, b)) : mutatedBytes(ascii, at, op, b));
    if (mine === 'refused') {
      refused++;
      continue;
    }
    const text2 = mutated(text, at, op, b);
    assert.equal(
      mine,
      referenceDump(text2),
      `run ${run}: ${JSON.stringify(text2.slice(Math.max(0, at - 40), at + 40))}`,
    );
  }
  assert.ok(refused > 0 && refused < 6000);
});

test.run();
