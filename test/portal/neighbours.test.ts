// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  completeNeighbours,
  entriesOfMac,
  neighbourIp,
  neighbourMac,
  neighbourMacReader,
  neighbourParser,
  neighbourReader,
  neighbourTable,
  sharedNeighbourTable,
} from '../../src/portal/neighbours.ts';

const A = '02:00:00:00:0c:01';
const HEADER = 'IP address       HW type     Flags       HW address            Mask     Device';
const table = (...rows: string[]): string => [HEADER, ...rows, ''].join('\n');

test('one complete entry for the MAC: its address', () => {
  const t = table(
    '10.0.0.9         0x1         0x2         02:00:00:00:0c:02     *        br-lan',
    '10.0.0.2         0x1         0x2         02:00:00:00:0C:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), '10.0.0.2');
  assert.is(neighbourIp(t, '02:00:00:00:0c:03'), null, 'not there');
});

test("the table's text parsed once for the looks of one moment: the same text answers its last parse", () => {
  const rows = Array.from(
    { length: 100 },
    (_, i) => `10.0.1.${i + 2}   0x1   0x2   02:00:00:00:0d:${i.toString(16).padStart(2, '0')}   *   br-lan`,
  );
  const t = table(...rows);
  const parse = neighbourParser();
  const first = parse(t);
  assert.is(first.length, 100);
  // A copy of the same text (as a second read of the file gives) answers the same parse, not a new one.
  assert.ok(parse(`${t}`.slice(0)) === first, 'one parse for the same text');
  assert.ok(parse(t.split('').join('')) === first, 'one parse for an equal text read again');
  const changed = table(...rows.slice(1));
  assert.is(parse(changed).length, 99, 'another text is parsed anew');
  assert.is(neighbourIp(t, '02:00:00:00:0d:00'), '10.0.1.2', 'and the first again');
  assert.ok(parse(t) !== first && parse(t) === parse(t), 'the first text again: parsed anew, then kept');
});

test('the parse is kept by its owner, not the module: completeNeighbours parses each call, parsers apart', () => {
  const t = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  assert.ok(completeNeighbours(t) !== completeNeighbours(t), 'pure: a new parse each call');
  assert.equal(completeNeighbours(t), [{ ip: '10.0.0.2', mac: A, device: 'br-lan' }]);
  const one = neighbourParser();
  const other = neighbourParser();
  assert.ok(one(t) !== other(t), "each parser its own parse: one owner's table does not answer another's");
  // The shared read's callers (a purchase's opening and the metering guard's check) share its parser.
  const read = sharedNeighbourTable(async () => t);
  assert.ok(read.parse !== undefined && read.parse(t) === read.parse(`${t}`.slice(0)));
});

test("a parse's entries by MAC: the entries a filter finds, in the table's order, one index a parse", () => {
  const rows = Array.from(
    { length: 100 },
    (_, i) => `10.0.1.${i + 2}   0x1   0x2   02:00:00:00:0d:${(i % 50).toString(16).padStart(2, '0')}   *   br-lan`,
  );
  const parse = neighbourParser();
  const entries = parse(table(...rows));
  for (const mac of ['02:00:00:00:0d:00', '02:00:00:00:0d:31', '02:00:00:00:0d:99'])
    assert.equal(
      entriesOfMac(entries, mac),
      entries.filter((e) => e.mac === mac),
      mac,
    );
  assert.equal(
    entriesOfMac(entries, '02:00:00:00:0d:01').map((e) => e.ip),
    ['10.0.1.3', '10.0.1.53'],
    'the older entry first',
  );
  assert.ok(entriesOfMac(entries, '02:00:00:00:0d:01') === entriesOfMac(entries, '02:00:00:00:0d:01'), 'indexed once');
  const other = parse(table(...rows.slice(1)));
  assert.equal(
    entriesOfMac(other, '02:00:00:00:0d:00').map((e) => e.ip),
    ['10.0.1.52'],
    'another parse, its own index',
  );
});

test('incomplete or failed entries do not count', () => {
  const t = table(
    '10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        br-lan',
    '10.0.0.3         0x1         0x0         02:00:00:00:0c:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), null);
});

test('several addresses (a client that changed address): only the one the caller has, else none', () => {
  const t = table(
    '10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan',
    '10.0.0.7         0x1         0x2         02:00:00:00:0c:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), null);
  assert.is(neighbourIp(t, A, '10.0.0.7'), '10.0.0.7');
  assert.is(neighbourIp(t, A, '10.0.0.8'), null);
  const one = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  assert.is(neighbourIp(one, A, '10.0.0.8'), null, 'the caller and the table disagree: the portal settles it');
});

test('the reader: the file read at each call; none readable → null', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-arp-'));
  try {
    const path = join(dir, 'arp');
    const read = neighbourReader(path);
    assert.is(await read(A, null), null);
    writeFileSync(path, table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan'));
    assert.is(await read(A, null), '10.0.0.2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the table read at once, not on libuv's pool: a burst's openings never wait a pool round trip", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-arp-'));
  try {
    const path = join(dir, 'arp');
    const text = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
    writeFileSync(path, text);
    const read = neighbourTable(path);
    // An I/O turn of the event loop (setImmediate) comes only after the pool's callbacks: none is needed.
    let turned = false;
    setImmediate(() => (turned = true));
    assert.is(await read(), text);
    assert.not.ok(turned, 'answered within the turn it was asked in');
    assert.is(await neighbourTable(join(dir, 'none'))(), null, 'none readable → null');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an address's MAC: its one complete entry on the gated device", () => {
  const t = table(
    '10.0.0.2         0x1         0x2         02:00:00:00:0C:01     *        br-lan',
    '10.0.0.3         0x1         0x0         02:00:00:00:0c:03     *        br-lan',
    '10.0.0.4         0x1         0x2         02:00:00:00:0c:04     *        br-guest',
    '10.0.0.5         0x1         0x2         02:00:00:00:0c:05     *        br-lan',
    '10.0.0.5         0x1         0x2         02:00:00:00:0c:06     *        br-guest',
  );
  assert.is(neighbourMac(t, '10.0.0.2', ['br-lan']), A, 'canonical form');
  assert.is(neighbourMac(t, '10.0.0.3', ['br-lan']), null, 'incomplete: the kernel has not resolved it');
  assert.is(neighbourMac(t, '10.0.0.4', ['br-lan']), null, 'on another network of the router: no client of the portal');
  assert.is(neighbourMac(t, '10.0.0.4', null), '02:00:00:00:0c:04', 'no device given: any');
  assert.is(neighbourMac(t, '10.0.0.5', ['br-lan']), '02:00:00:00:0c:05', 'the gated device entry alone');
  assert.is(neighbourMac(t, '10.0.0.5', null), null, 'two MACs for one address: none');
  assert.is(neighbourMac(t, '10.0.0.9', ['br-lan']), null, 'not there');
  assert.is(neighbourMac(t, 'fd00::2', ['br-lan']), null, 'IPv6 is not in this table');
});

test("the address's MAC reader: the file read at each call; none readable → null", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-arp-'));
  try {
    const path = join(dir, 'arp');
    const read = neighbourMacReader(['br-lan'], path);
    assert.is(await read('10.0.0.2'), null);
    writeFileSync(path, table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan'));
    assert.is(await read('10.0.0.2'), A);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a shared table: the reads of one moment are one read, answered again until it is too old', async () => {
  let reads = 0;
  let text = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  let now = 0;
  const read = sharedNeighbourTable(
    async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      return text;
    },
    1000,
    () => now,
  );
  const all = await Promise.all(Array.from({ length: 32 }, () => read()));
  assert.is(reads, 1, '32 callers of one moment: one read');
  assert.ok(all.every((t) => t === text));
  text = table('10.0.0.5         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  now = 999;
  assert.is(neighbourIp((await read())!, A), '10.0.0.2', 'within its age: the earlier read');
  assert.is(reads, 1);
  now = 1001;
  assert.is(neighbourIp((await read())!, A), '10.0.0.5', 'too old: read again');
  assert.is(reads, 2);
});

test('a shared table a caller refuses (its device took another address) is read again at once', async () => {
  let reads = 0;
  let text = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  const read = sharedNeighbourTable(
    async () => {
      reads++;
      return text;
    },
    60_000,
    () => 0,
  );
  assert.is(neighbourIp((await read())!, A), '10.0.0.2');
  text = table('10.0.0.7         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  const at7 = (t: string): boolean => neighbourIp(t, A, '10.0.0.7') !== null;
  assert.is(neighbourIp((await read(at7))!, A), '10.0.0.7', 'the new address');
  assert.is(reads, 2);
  assert.is(neighbourIp((await read(at7))!, A), '10.0.0.7', 'kept from then on');
  assert.is(reads, 2);
});

test("an address's MAC answered from a recent read, and a new address read at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'arp-'));
  const path = join(dir, 'arp');
  try {
    writeFileSync(path, table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan'));
    const read = neighbourMacReader(['br-lan'], path, 60_000);
    assert.is(await read('10.0.0.2'), A);
    // The device moves to .3 and another takes .2: the new address is read at once, and then the old one's too.
    writeFileSync(
      path,
      table(
        '10.0.0.3         0x1         0x2         02:00:00:00:0c:01     *        br-lan',
        '10.0.0.2         0x1         0x2         02:00:00:00:0c:02     *        br-lan',
      ),
    );
    assert.is(await read('10.0.0.3'), A);
    assert.is(await read('10.0.0.2'), '02:00:00:00:0c:02');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
