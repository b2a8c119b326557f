// tier: fast
// A reply scanned in two parts (the other part on another thread: portal/scan-part.ts) must give the sink exactly the
// calls, and end exactly as, the scan of the whole: wherever the split falls (a right guess, a wrong one), however the
// scan ends (every stop reason), whether the other part's answer comes or not, fed whole or as it arrives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  macFromParts,
  PartRecords,
  scanPart,
  SnapshotScan,
  type PartResult,
  type PartScanner,
  type PortalFlavour as Flavour,
} from '../../src/portal/index.ts';
import { findSplit } from '../../src/portal/scan-part.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/ndsctl/${name}`, import.meta.url)).toString();

/** The bytes in a SharedArrayBuffer, a sentinel quote after them (as the worker's snapshot buffer holds a reply). */
function shared(bytes: Uint8Array): Buffer {
  const buf = Buffer.from(new SharedArrayBuffer(bytes.length + 1));
  buf.set(bytes);
  buf[bytes.length] = 0x22;
  return buf.subarray(0, bytes.length);
}

/** Another thread, played on this one: the part is scanned when handed over, its answer kept until asked for. */
class InlineParts implements PartScanner {
  readonly minBytes = 0;
  readonly firstPart = 0.5;
  begun = 0;
  merged = 0;
  private pending: PartResult | undefined;
  constructor(
    readonly where: (buf: Buffer, from: number, n: number) => number,
    /** The answer never comes (a thread that died or hangs): the first thread scans the part itself. */
    private readonly silent = false,
  ) {}
  begin(buf: Buffer, _from: number, start: number, n: number, flavour: Flavour): boolean {
    this.begun++;
    this.pending = scanPart(buf, start, n, flavour, new PartRecords(1));
    return true;
  }
  result(): PartResult | undefined {
    const part = this.pending;
    this.pending = undefined;
    if (part !== undefined && !this.silent) this.merged++;
    return this.silent ? undefined : part;
  }
  drop(): void {
    this.pending = undefined;
  }
}

type Row = [mac: string, token: number, state: number, down: number, up: number];
type Address = [mac: string, ip: string];

/** The scan with the sink the epoch accountant is (a MAC twice is refused), fed at `cuts`, then ended. */
function scan(buf: Buffer, parts?: PartScanner, cuts: readonly number[] = [], flavour: Flavour | 'auto' = 'auto') {
  const rows: Row[] = [];
  const addresses: Address[] = [];
  const seen = new Set<string>();
  const s = new SnapshotScan(
    flavour,
    () => (hi, lo, token, state, down, up) => {
      const mac = macFromParts(hi, lo);
      if (seen.has(mac)) return false;
      seen.add(mac);
      rows.push([mac, token, state, down, up]);
      return true;
    },
    (mac, ip) => addresses.push([mac, ip]),
    false,
    parts,
  );
  for (const cut of cuts) s.feed(shared(buf.subarray(0, cut)));
  return { out: s.end(buf), rows, addresses };
}

/** Replies that end every way a scan can end, each with enough clients to split between. */
function cases(): Array<[name: string, text: string]> {
  const base = fixture('opennds-9.10-all-3-clients.json');
  return [
    ['opennds', base],
    ['nodogsplash', fixture('nodogsplash-5.0.2-all-2-clients.synthetic.json')],
    ['count mismatch', base.replace('"client_list_length":"3"', '"client_list_length":"4"')],
    ['count mismatch, fewer', base.replace('"client_list_length":"3"', '"client_list_length":"2"')],
    ['duplicate MAC across the split', base.replaceAll('02:00:00:00:0c:03', '02:00:00:00:0c:01')],
    ['duplicate MAC in the second part', base.replaceAll('02:00:00:00:0c:03', '02:00:00:00:0c:02')],
    ['not a MAC', base.replace('"02:00:00:00:0c:03"', '"not-a-mac-at-all!"')],
    [
      'exponent in the last client',
      base.replace(/"upload_this_session":"\d+"(?![\s\S]*upload_this_session)/, '"x":1e3'),
    ],
    ['fraction', base.replace(/"download_this_session":"\d+"(?![\s\S]*download_this_session)/, '"x":"0.5"')],
    ['escape in the last client', base.replace(/"custom":"[^"]*"(?![\s\S]*"custom")/, '"custom":"a\\"b"')],
    ['a client without its counters', base.replace(/"upload_this_session":"\d+",?(?![\s\S]*upload_this_session)/, '')],
    ['an entry after the last comma is missing', base.replace(/,\s*"02:00:00:00:0c:03":\{[^}]*\}/, ',')],
    // A client whose custom field looks like the boundary before a client: only the scan knows it is inside a record.
    ['a boundary inside a record', base.replace(/"custom":"[^"]*"/, '"custom":"},"02:00:00:00:0c:09":"y"')],
    ['nested object', base.replace(/"custom":"[^"]*"/, '"custom":{"a":"},"}')],
    ['trailing garbage', base + 'x'],
    ['truncated', base.slice(0, base.lastIndexOf('}') - 40)],
  ];
}

test('split at every byte: the sink calls and the outcome of the whole scan, the other part used when right', () => {
  for (const [name, text] of cases()) {
    const buf = shared(Buffer.from(text));
    const whole = scan(buf);
    let merged = 0;
    for (let at = 1; at < buf.length; at++) {
      const parts = new InlineParts(() => at);
      const split = scan(buf, parts);
      assert.equal(split.out, whole.out, `${name}, split at ${at}`);
      assert.equal(split.rows, whole.rows, `${name}, split at ${at}`);
      assert.equal(split.addresses, whole.addresses, `${name}, split at ${at}`);
      merged += parts.merged;
      const silent = scan(buf, new InlineParts(() => at, true));
      assert.equal([silent.out, silent.rows], [whole.out, whole.rows], `${name}, split at ${at}, no answer`);
    }
    // A split just after an entry's comma is a right guess once the scan got past a client (with no escape: that
    // one is found before any split).
    if (whole.rows.length >= 2 && !name.startsWith('escape')) assert.ok(merged > 0, `${name}: some split used`);
  }
});

test('the guessed boundary: a real one near the middle; a look-alike inside a record is given up by the scan', () => {
  const base = fixture('opennds-9.10-all-3-clients.json');
  const buf = shared(Buffer.from(base));
  const at = findSplit(buf, 0, buf.length);
  assert.ok(at > 0);
  assert.is(buf.toString('latin1', at - 2, at), '},');
  // Inside the first client's record: a closing brace, a comma and a quoted MAC key, as before a client. Without
  // escapes a string cannot hold a quote, so only a reply the scanner refuses can show one (here a string's end and
  // a bare MAC after it); the scan stops before the guess and the other part is dropped.
  const lookAlike = base.replace(/"custom":"[^"]*"/, '"custom":"},"02:00:00:00:0c:09":"y"');
  const fooled = shared(Buffer.from(lookAlike));
  const guess = findSplit(fooled, 0, fooled.length);
  assert.ok(guess > 0 && guess < lookAlike.indexOf('"02:00:00:00:0c:02"'), 'the look-alike is found first');
  const parts = new InlineParts(() => guess);
  const split = scan(fooled, parts);
  assert.equal([split.out, split.rows], [scan(fooled).out, scan(fooled).rows]);
  assert.is(parts.begun, 1);
  assert.is(parts.merged, 0, 'the wrong guess is not merged');
});

test('fed as it arrives, split at each boundary: the calls and outcome of the whole scan', () => {
  for (const [name, text] of cases()) {
    const buf = shared(Buffer.from(text));
    const whole = scan(buf);
    const boundaries: number[] = [];
    for (let at = findSplit(buf, 0, buf.length); at > 0; at = findSplit(buf, at, buf.length)) boundaries.push(at);
    for (const at of boundaries)
      for (let cut = at; cut <= buf.length; cut += 7) {
        const streamed = scan(buf, new InlineParts(() => at), [cut]);
        assert.equal(streamed.out, whole.out, `${name}, split at ${at}, cut at ${cut}`);
        if (name.startsWith('escape')) continue;
        assert.equal(streamed.rows, whole.rows, `${name}, split at ${at}, cut at ${cut}`);
      }
  }
});

test('a simulated portal of 2,000 clients: split at the guess, the second part handed back in order', () => {
  for (const flavour of ['opennds', 'nodogsplash'] as const) {
    const portal = new PortalModel({ flavour }, { clock: { now: () => 1_795_221_800_000 } });
    const sim = new TrafficSimulator(portal, { clients: 2000, seed: 5, resetChance: 0.01, departureChance: 0.01 });
    sim.populate();
    sim.step(10_000);
    const buf = shared(Buffer.from(portal.renderJson(flavour)));
    const whole = scan(buf);
    assert.ok(whole.out.ok);
    const parts = new InlineParts(findSplit);
    const split = scan(buf, parts);
    assert.is(parts.merged, 1, flavour);
    assert.equal(split, whole, flavour);
    // Pieces of uneven size: a part may end inside a client, and the scan resumes after that part's last whole one.
    const cuts: number[] = [];
    for (let at = 1, step = 1; at < buf.length; at += step, step = (step * 7 + 3) % 300_007) cuts.push(at);
    assert.equal(scan(buf, new InlineParts(findSplit), cuts), whole, `${flavour}, streamed`);
  }
});

test("a reply under the other thread's minimum, or not in shared memory, is scanned by one thread", () => {
  const text = fixture('opennds-9.10-all-3-clients.json');
  const parts = new InlineParts(findSplit);
  Object.assign(parts, { minBytes: text.length });
  scan(shared(Buffer.from(text)), parts);
  const unshared = new InlineParts(findSplit);
  scan(Buffer.from(text), unshared);
  assert.equal([parts.begun, unshared.begun], [0, 0]);
});

test.run();
