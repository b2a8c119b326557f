// tier: fast
// The scanner must agree with JSON.parse on every snapshot it accepts, and stop (never guess) on everything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  macFromParts,
  parseSnapshot,
  parseSnapshotFallback,
  PortalParseError,
  scanSnapshot,
  SnapshotScan,
  type PortalFlavour as Flavour,
} from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/ndsctl/${name}`, import.meta.url));

type Row = [mac: string, token: number, state: number, down: number, up: number];
function viaScanner(buf: Uint8Array, flavour: Flavour | 'auto' = 'auto') {
  const rows: Row[] = [];
  const seen = new Set<string>();
  // Like the epoch accountant, the sink refuses a MAC it already had in this snapshot.
  const out = scanSnapshot(buf, flavour, () => (hi, lo, token, state, down, up) => {
    const mac = macFromParts(hi, lo);
    if (seen.has(mac)) return false;
    seen.add(mac);
    rows.push([mac, token, state, down, up]);
    return true;
  });
  return { out, rows };
}
/** The scanner fed the reply in pieces ending at each of `cuts` (ascending), then given it whole. */
function viaStream(buf: Uint8Array, cuts: readonly number[], flavour: Flavour | 'auto' = 'auto') {
  const rows: Row[] = [];
  const seen = new Set<string>();
  const scan = new SnapshotScan(flavour, () => (hi, lo, token, state, down, up) => {
    const mac = macFromParts(hi, lo);
    if (seen.has(mac)) return false;
    seen.add(mac);
    rows.push([mac, token, state, down, up]);
    return true;
  });
  // Each piece is a copy, as a reply read so far would be: the scan may not look past its end.
  for (const cut of cuts) scan.feed(Buffer.from(buf.subarray(0, cut)));
  return { out: scan.end(buf), rows };
}
function viaFallback(buf: Uint8Array, flavour: Flavour | 'auto' = 'auto') {
  const rows: Row[] = [];
  const out = parseSnapshotFallback(buf, flavour, () => (hi, lo, token, state, down, up) => {
    rows.push([macFromParts(hi, lo), token, state, down, up]);
    return true;
  });
  return { out, rows };
}

test('real openNDS 9.10 capture: counters in KiB units as printed, states, detected flavour', () => {
  const { out, rows } = viaScanner(fixture('opennds-9.10-all-3-clients.json'));
  assert.ok(out.ok);
  assert.is(out.ok && out.flavour, 'opennds');
  assert.equal(
    rows.map((r) => [r[0], r[2], r[3], r[4]]),
    [
      ['02:00:00:00:0c:01', 2, 20504, 16],
      ['02:00:00:00:0c:02', 2, 39967, 0],
      ['02:00:00:00:0c:03', 1, 0, 0],
    ],
  );
  assert.equal(rows, viaFallback(fixture('opennds-9.10-all-3-clients.json')).rows);
});

test('nodogsplash: bare numbers, detected flavour, same rows as JSON.parse', () => {
  const buf = fixture('nodogsplash-5.0.2-all-2-clients.synthetic.json');
  const { out, rows } = viaScanner(buf);
  assert.is(out.ok && out.flavour, 'nodogsplash');
  assert.equal(
    rows.map((r) => [r[0], r[3], r[4]]),
    [
      ['02:00:00:00:0d:01', 52428, 1048],
      ['02:00:00:00:0d:02', 0, 0],
    ],
  );
  assert.equal(rows, viaFallback(buf).rows);
});

test('nodogsplash inf/nan averages: scanner stops, fallback names invalid-number', () => {
  const buf = fixture('nodogsplash-5.0.2-inf-nan.synthetic.json');
  assert.not.ok(viaScanner(buf).out.ok);
  const fb = viaFallback(buf);
  assert.is(!fb.out.ok && fb.out.problem, 'invalid-number');
  assert.is(fb.rows.length, 0);
});

test('configured flavour that does not match the output is refused by both paths', () => {
  assert.not.ok(viaScanner(fixture('opennds-9.10-all-3-clients.json'), 'nodogsplash').out.ok);
  const fb = viaFallback(fixture('opennds-9.10-all-3-clients.json'), 'nodogsplash');
  assert.is(!fb.out.ok && fb.out.problem, 'wrong-flavour');
});

test('every truncation of a snapshot is refused, never read as fewer clients', () => {
  for (const name of ['opennds-9.10-all-3-clients.json', 'nodogsplash-5.0.2-all-2-clients.synthetic.json']) {
    const full = fixture(name);
    const end = full.toString().trimEnd().length;
    for (let cut = 0; cut < end; cut++) {
      const part = full.subarray(0, cut);
      const s = viaScanner(part);
      assert.not.ok(s.out.ok, `${name} cut at ${cut} accepted`);
      const f = viaFallback(part);
      assert.not.ok(f.out.ok, `${name} cut at ${cut} accepted by fallback`);
    }
  }
});

test('unexpected field order, extra whitespace and "null" strings: scanner reads them like JSON.parse', () => {
  const doc = JSON.parse(fixture('opennds-9.10-all-3-clients.json').toString()) as {
    clients: Record<string, Record<string, string>>;
  };
  for (const c of Object.values(doc.clients)) {
    const entries = Object.entries(c).reverse();
    for (const k of Object.keys(c)) delete c[k];
    for (const [k, v] of entries) c[k] = v;
    c['download_quota'] = 'null';
  }
  const reordered = Buffer.from(JSON.stringify(doc, null, 3));
  const s = viaScanner(reordered);
  assert.ok(s.out.ok);
  assert.equal(s.rows, viaFallback(reordered).rows);
  assert.equal(s.rows, viaScanner(fixture('opennds-9.10-all-3-clients.json')).rows);
});

test(
  'a count that disagrees with the list: the scanner stops, ' + 'the fallback refuses (a client could look departed)',
  () => {
    const text = fixture('opennds-9.10-all-3-clients.json')
      .toString()
      .replace('"client_list_length":"3"', '"client_list_length":"4"');
    assert.not.ok(viaScanner(Buffer.from(text)).out.ok);
    const fb = viaFallback(Buffer.from(text));
    assert.is(!fb.out.ok && fb.out.problem, 'count-mismatch');
  },
);

test('a value that imitates a field cannot fool the scanner; escapes go to JSON.parse', () => {
  // A custom string with escaped quotes: valid JSON whose raw bytes contain `"download_this_session":"999999"`.
  const text = fixture('opennds-9.10-all-3-clients.json')
    .toString()
    .replace('"custom":"bmE="', '"custom":"x\\",\\"download_this_session\\":\\"999999\\",\\"y\\":\\"z"');
  const s = viaScanner(Buffer.from(text));
  assert.not.ok(s.out.ok);
  const fb = viaFallback(Buffer.from(text));
  assert.ok(fb.out.ok);
  assert.is(fb.rows[0]![3], 20504);
});

test('duplicate MAC, non-MAC key, counter "null", exponent, trailing garbage: all refused by the scanner', () => {
  const base = fixture('opennds-9.10-all-3-clients.json').toString();
  const cases = [
    base.replaceAll('02:00:00:00:0c:02', '02:00:00:00:0c:01'),
    base.replace('"02:00:00:00:0c:03"', '"not-a-mac-at-all!"'),
    base.replace('"download_this_session":"0"', '"download_this_session":"null"'),
    base.replace('"client_list_length":"3"', '"client_list_length":3e0'),
    base + 'x',
  ];
  for (const text of cases) assert.not.ok(viaScanner(Buffer.from(text)).out.ok, text.slice(0, 60));
});

test('snapshots of a simulated portal: scanner and fallback agree for both formats, including trusted lists', () => {
  for (const flavour of ['opennds', 'nodogsplash'] as const) {
    const portal = new PortalModel(
      { flavour, trustedMacs: flavour === 'opennds' ? ['02:aa:00:00:00:01', '02:aa:00:00:00:02'] : [] },
      { clock: { now: () => 1_795_221_800_000 } },
    );
    const sim = new TrafficSimulator(portal, { clients: 300, seed: 7, resetChance: 0.01, departureChance: 0.01 });
    sim.populate();
    for (let i = 0; i < 5; i++) {
      sim.step(10_000);
      const buf = Buffer.from(portal.renderJson(flavour));
      const s = viaScanner(buf);
      assert.ok(s.out.ok, `${flavour}: ${JSON.stringify(s.out)}`);
      assert.is(s.rows.length, portal.size);
      assert.equal(s.rows, viaFallback(buf).rows);
      const byMac = new Map(portal.clients().map((c) => [c.mac, c]));
      const unit = flavour === 'opennds' ? 1024 : 1000;
      for (const r of s.rows) {
        const c = byMac.get(r[0])!;
        assert.is(r[3], Math.floor(c.downloadBytes / unit));
        assert.is(r[4], Math.floor(c.uploadBytes / unit));
      }
    }
  }
});

/** Snapshots the streamed scan is held to: accepted ones and one of each way of stopping. */
function streamCases(): Array<[name: string, text: string]> {
  const base = fixture('opennds-9.10-all-3-clients.json').toString();
  return [
    ['opennds', base],
    ['nodogsplash', fixture('nodogsplash-5.0.2-all-2-clients.synthetic.json').toString()],
    ['empty', '{\n"client_length": 0,\n"clients":{\n}\n}\n'],
    ['count mismatch', base.replace('"client_list_length":"3"', '"client_list_length":"4"')],
    ['duplicate MAC', base.replaceAll('02:00:00:00:0c:02', '02:00:00:00:0c:01')],
    ['not a MAC', base.replace('"02:00:00:00:0c:03"', '"not-a-mac-at-all!"')],
    [
      'exponent in the last client',
      base.replace(/"upload_this_session":"\d+"(?![\s\S]*upload_this_session)/, '"x":1e3'),
    ],
    ['fraction', base.replace('"download_this_session":"0"', '"download_this_session":"0.5"')],
    ['escape in the last client', base.replace(/"custom":"[^"]*"(?![\s\S]*"custom")/, '"custom":"a\\"b"')],
    ['trailing garbage', base + 'x'],
    ['truncated', base.slice(0, base.lastIndexOf('}') - 40)],
  ];
}

test('a streamed scan cut at every byte gives the sink calls and the outcome of the whole scan', () => {
  // The escape case's clients as they are without it: those before the escape may reach the sink, in order.
  const clean = viaScanner(fixture('opennds-9.10-all-3-clients.json')).rows;
  for (const [name, text] of streamCases()) {
    const buf = Buffer.from(text);
    const whole = viaScanner(buf);
    for (let cut = 0; cut <= buf.length; cut++) {
      const streamed = viaStream(buf, [cut]);
      assert.equal(streamed.out, whole.out, `${name}, cut at ${cut}`);
      // An escape is found where it arrives: the clients before it may reach the sink first (the caller re-runs the
      // tick with JSON.parse after resetting it, as for any stop); every other outcome has the whole scan's calls.
      if (name.startsWith('escape')) {
        assert.ok(streamed.rows.length < clean.length, `${name}, cut at ${cut}: the client with the escape is not fed`);
        assert.equal(streamed.rows, clean.slice(0, streamed.rows.length), `${name}, cut at ${cut}`);
      } else assert.equal(streamed.rows, whole.rows, `${name}, cut at ${cut}`);
    }
    const byteByByte = viaStream(
      buf,
      Array.from({ length: buf.length }, (_, k) => k + 1),
    );
    assert.equal(byteByByte.out, whole.out, `${name}, byte by byte`);
    // Byte by byte, the escape (in the last client) arrives after the clients before it were fed.
    const expected = name.startsWith('escape') ? clean.slice(0, clean.length - 1) : whole.rows;
    assert.equal(byteByByte.rows, expected, `${name}, byte by byte`);
  }
});

test('a streamed scan of a simulated portal in uneven pieces reads what the whole scan reads', () => {
  const portal = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  const sim = new TrafficSimulator(portal, { clients: 200, seed: 11 });
  sim.populate();
  sim.step(10_000);
  const buf = Buffer.from(portal.renderJson('opennds'));
  const whole = viaScanner(buf);
  assert.ok(whole.out.ok);
  const cuts: number[] = [];
  for (let at = 1, step = 1; at < buf.length; at += step, step = (step * 7 + 3) % 4099) cuts.push(at);
  const streamed = viaStream(buf, cuts);
  assert.equal(streamed.out, whole.out);
  assert.equal(streamed.rows, whole.rows);
});

test('member separators of every shape: read like JSON.parse, learned or not, and every cut refused', () => {
  // The scanner learns the first separator between two members (comma, whitespace, quote) and then recognises it two
  // words at a time; a separator that differs anywhere, or is longer than it can learn, is read byte by byte.
  const shapes = [
    ',\n      "',
    ',"',
    ', "',
    ',\n"',
    ',\n     "',
    ',\n       "',
    ',\n\t     "',
    ',\r\n      "',
    ',\n      \t"',
    ',\n  \t   "',
    ',         "',
    ',\n      \n"',
  ];
  for (let first = 0; first < shapes.length; first++) {
    let k = first;
    const text = fixture('opennds-9.10-all-3-clients.json')
      .toString()
      .replace(/,\n {6}"/g, () => shapes[k++ % shapes.length]!);
    const buf = Buffer.from(text);
    const s = viaScanner(buf);
    assert.ok(s.out.ok, `separators from ${JSON.stringify(shapes[first])}`);
    assert.equal(s.rows, viaFallback(buf).rows);
    assert.equal(s.rows, viaScanner(fixture('opennds-9.10-all-3-clients.json')).rows);
    for (let cut = 0; cut < text.trimEnd().length; cut++)
      assert.not.ok(viaScanner(buf.subarray(0, cut)).out.ok, `separators from ${first}, cut at ${cut} accepted`);
  }
  // The learned separator's bytes, then something other than a key: refused where the byte loop refuses it.
  const base = fixture('opennds-9.10-all-3-clients.json').toString();
  for (const bad of [',\n      x"mac":"x"', ',\n      }', ',\n      ,"', ',\n      "', ',\n  x   ', ',\nx     ']) {
    const text = base.replace(',\n      "mac"', `${bad}"mac"`);
    const s = viaScanner(Buffer.from(text));
    assert.not.ok(s.out.ok, JSON.stringify(bad));
    assert.not.ok(viaFallback(Buffer.from(text)).out.ok, JSON.stringify(bad));
  }
});

test('empty client list in both formats', () => {
  for (const text of [
    '{\n  "client_list_length":"0",\n  "clients":{\n  }\n}\n',
    '{\n"client_length": 0,\n"clients":{\n}\n}\n',
  ]) {
    const s = viaScanner(Buffer.from(text));
    assert.ok(s.out.ok);
    assert.is(s.out.ok && s.out.clients, 0);
  }
});

test('the worker and the main thread refuse the same broken client lists, for the same reason', () => {
  const base = fixture('opennds-9.10-all-3-clients.json').toString();
  const cases: Array<[text: string, problem: string, flavour: Flavour | 'auto']> = [
    [base.replace('"client_list_length":"3"', '"client_list_length":"4"'), 'count-mismatch', 'auto'],
    [base.replace('"client_list_length":"3"', '"client_list_length":"three"'), 'malformed', 'auto'],
    [JSON.stringify({ ...(JSON.parse(base) as object), clients: [] }), 'malformed', 'auto'],
    [base, 'wrong-flavour', 'nodogsplash'],
  ];
  for (const [text, problem, flavour] of cases) {
    const fb = viaFallback(Buffer.from(text), flavour);
    assert.is(!fb.out.ok && fb.out.problem, problem, problem);
    assert.throws(
      () => parseSnapshot(text, flavour),
      (err: unknown) =>
        err instanceof PortalParseError && (err.details as { problem?: string } | undefined)?.problem === problem,
      problem,
    );
  }
});

test.run();
