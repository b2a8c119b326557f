// tier: daemon
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { PaymentRef } from '../../src/sessions/model.ts';
import { isSluiceError } from '../../src/errors.ts';
import { makeSession, openRecord } from './store-suite.ts';
import { tempDirs } from '../helpers/temp.ts';
import { useBytes } from './helpers.ts';

const tempDir = tempDirs('sluice-journal-', test.after);

const journalFile = (dir: string): string =>
  join(
    dir,
    readdirSync(dir).find((n) => /^sessions\.\d+\.journal$/.test(n))!,
  );

async function loadAt(dir: string) {
  const store = new JournalStore({ dir });
  const loaded = await store.load();
  return { store, loaded };
}

test('journal lines are `crc32hex json`, bigints as decimal strings', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const s = makeSession({ allotment: 12345678901234567890n });
  await store.append([openRecord(s)]);
  await store.close();
  const lines = readFileSync(journalFile(dir), 'utf8').split('\n');
  assert.is(lines.at(-1), '', 'every record ends with a newline');
  assert.equal(
    JSON.parse(lines[0]!.slice(9)),
    { t: 'jnl', v: 1, gen: 0, at: JSON.parse(lines[0]!.slice(9)).at, n: 0 },
    'a journal begins with its header',
  );
  const [crc, json] = [lines[1]!.slice(0, 8), lines[1]!.slice(9)];
  assert.match(crc, /^[0-9a-f]{8}$/);
  const parsed = JSON.parse(json) as { t: string; s: { allotment: string }; n: number };
  assert.is(parsed.t, 'open');
  assert.is(parsed.s.allotment, '12345678901234567890');
  assert.is(parsed.n, 1, 'records are numbered in their journal');
});

test('a torn last record, cut at every byte offset, recovers the state before it', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const s = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
  await store.append([openRecord(s)]);
  await store.append([{ t: 'usage', at: 5, entries: [[s.id, 3, 4096]] }]);
  const before = statSync(journalFile(dir)).size;
  await store.append([
    {
      t: 'topup',
      id: s.id,
      add: 120n,
      keys: ['ref:x:last', 'idem:last'],
      at: 9,
      payment: { method: 'x', reference: 'last', amount: 5n, asset: 'USDC', at: 9 },
    },
  ]);
  await store.close();
  const full = statSync(journalFile(dir)).size;
  assert.ok(full > before + 50);
  for (let cut = before; cut < full; cut++) {
    const copy = tempDir();
    cpSync(dir, copy, { recursive: true });
    truncateSync(journalFile(copy), cut);
    // A crash mid-append: the seal (written after each commit's fdatasync) still says the length before it.
    writeFileSync(join(copy, 'sessions.seal'), JSON.stringify({ gen: 0, bytes: before }));
    const { store: reopened, loaded } = await loadAt(copy);
    const got = loaded.sessions.get(s.id)!;
    assert.is(got.allotment, 60n, `cut at ${cut}`);
    assert.is(got.bytes, 4096, `cut at ${cut}`);
    assert.not.ok(loaded.refs.has('idem:last'), `cut at ${cut}`);
    assert.is(
      loaded.warnings.some((w) => w.code === 'ERR_JOURNAL_TORN'),
      cut > before,
      `cut at ${cut}`,
    );
    assert.is(statSync(journalFile(copy)).size, before, 'the torn tail is cut off the file');
    // Appends after recovery land on a clean line boundary.
    await reopened.append([{ t: 'usage', at: 10, entries: [[s.id, 5, 8192]] }]);
    await reopened.close();
    const again = await loadAt(copy);
    assert.is(again.loaded.sessions.get(s.id)!.bytes, 8192);
    assert.equal(again.loaded.warnings, []);
    await again.store.close();
    rmSync(copy, { recursive: true, force: true });
  }
  const intact = await loadAt(dir);
  assert.is(intact.loaded.sessions.get(s.id)!.allotment, 180n, 'the uncut file has the top-up');
  await intact.store.close();
});

test('a corrupt record in the middle is reported, the records around it kept, and the file rewritten', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const [a, b, c] = [makeSession(), makeSession(), makeSession()];
  await store.append([openRecord(a)]);
  await store.append([openRecord(b)]);
  await store.append([openRecord(c)]);
  await store.close();
  const path = journalFile(dir);
  const text = readFileSync(path, 'utf8');
  // The header, a's line, then b's: b's is damaged.
  const secondLine = text.indexOf('\n', text.indexOf('\n') + 1) + 1;
  const flip = secondLine + 40;
  writeFileSync(path, text.slice(0, flip) + (text[flip] === '1' ? '2' : '1') + text.slice(flip + 1));
  const { store: reopened, loaded } = await loadAt(dir);
  const corrupt = loaded.warnings.find((w) => w.code === 'ERR_JOURNAL_CORRUPT');
  assert.ok(corrupt, 'corruption reported');
  assert.ok(loaded.sessions.has(a.id), 'earlier data kept');
  assert.not.ok(loaded.sessions.has(b.id));
  assert.ok(loaded.sessions.has(c.id), 'later acknowledged purchases kept');
  assert.ok(
    readdirSync(dir).some((n) => n.endsWith('.journal.corrupt')),
    'a copy is kept for a post-mortem',
  );
  await reopened.append([openRecord(makeSession())]);
  await reopened.close();
  const again = await loadAt(dir);
  assert.equal(again.loaded.warnings, [], 'the damage is gone after the rewrite');
  assert.is(again.loaded.sessions.size, 3);
  await again.store.close();
});

for (const step of ['snapshot-temp-written', 'snapshot-renamed', 'journal-switched'] as const) {
  test(`a process killed mid-compaction (${step}) loses nothing and leaves no stray file in use`, async () => {
    const dir = tempDir();
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'journal-crash-child.ts'), dir, step, '50'],
      { encoding: 'utf8' },
    );
    assert.is(child.signal, 'SIGKILL', child.stderr);
    assert.not.match(child.stdout, 'compacted');
    const ids = JSON.parse(child.stdout.split('\n')[0]!) as string[];
    const { store, loaded } = await loadAt(dir);
    assert.is(loaded.sessions.size, 50);
    ids.forEach((id, i) => assert.is(loaded.sessions.get(id)!.used, i + 1));
    assert.not.ok(existsSync(join(dir, 'sessions.snapshot.tmp')), 'the temp snapshot is ignored and removed');
    assert.is(readdirSync(dir).filter((n) => n.endsWith('.journal')).length, 1, 'one journal in use');
    await store.append([openRecord(makeSession())]);
    await store.close();
    const again = await loadAt(dir);
    assert.is(again.loaded.sessions.size, 51);
    await again.store.close();
  });
}

for (const step of ['snapshot-temp-written', 'snapshot-renamed', 'journal-switched'] as const) {
  test(`a start killed as it compacts damage (${step}) loses nothing, and the next start finishes it`, async () => {
    const dir = tempDir();
    const { store } = await loadAt(dir);
    const sessions = Array.from({ length: 20 }, () => makeSession());
    for (const s of sessions) await store.append([openRecord(s)]);
    await store.close();
    // A record written twice: damage the start reads past (applied once) and compacts away.
    const path = join(dir, 'sessions.0.journal');
    const lines = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, [...lines.slice(0, 6), lines[5], ...lines.slice(6)].join('\n'));
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'journal-crash-child.ts'), dir, step, '0', 'start'],
      { encoding: 'utf8' },
    );
    assert.is(child.signal, 'SIGKILL', child.stderr);
    assert.not.match(child.stdout, 'started');
    const { store: again, loaded } = await loadAt(dir);
    assert.equal([...loaded.sessions.keys()].sort(), sessions.map((s) => s.id).sort());
    assert.not.ok(existsSync(join(dir, 'sessions.snapshot.tmp')), 'the temp snapshot is ignored and removed');
    await again.close();
    const last = await loadAt(dir);
    assert.equal(last.loaded.warnings, [], 'the damage is gone after the start that finished');
    assert.is(last.loaded.sessions.size, 20);
    assert.is(readdirSync(dir).filter((n) => n.endsWith('.journal')).length, 1, 'one journal in use');
    await last.store.close();
  });
}

test('a garbage temp snapshot left behind is ignored', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const s = makeSession();
  await store.append([openRecord(s)]);
  await store.compact(Date.now());
  await store.close();
  writeFileSync(join(dir, 'sessions.snapshot.tmp'), 'half a snaps');
  const { store: reopened, loaded } = await loadAt(dir);
  assert.ok(loaded.sessions.has(s.id));
  assert.equal(loaded.warnings, []);
  await reopened.close();
});

test('compaction runs by itself past the size threshold and the state survives it', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir, compactBytes: 2000 });
  await store.load();
  const sessions = Array.from({ length: 40 }, () => makeSession());
  for (const s of sessions) await store.append([openRecord(s)]);
  assert.ok(store.stats().compactions > 0);
  assert.ok(store.stats().journalBytes <= 2000 + 1000);
  await store.close();
  const { store: reopened, loaded } = await loadAt(dir);
  assert.is(loaded.sessions.size, 40);
  await reopened.close();
});

const pay = (reference: string): PaymentRef => ({
  method: 'x402',
  reference,
  amount: 100n,
  asset: 'USDC',
  at: Date.now(),
});

test('200 concurrent activates are all durable, with fewer fsyncs than purchases, and all recovered', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir });
  const manager = await SessionManager.open({ store });
  const macs = Array.from(
    { length: 200 },
    (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );
  const results = await Promise.all(
    macs.map((mac, i) => manager.activate({ mac, metric: 'bytes', allotment: 1_000_000n, payment: pay(`p${i}`) })),
  );
  assert.is(results.filter((r) => r.session.state === 'ACTIVE').length, 200);
  assert.ok(store.stats().fsyncs < 200, `group commit: ${store.stats().fsyncs} fsyncs`);
  await manager.close();
  const reopened = await SessionManager.open({ store: new JournalStore({ dir }) });
  assert.is(reopened.list({ state: 'ACTIVE' }).length, 200);
  assert.equal(
    reopened
      .list()
      .map((s) => s.mac)
      .sort(),
    [...macs].sort(),
  );
  await reopened.close();
});

test('32 purchases of one moment share one write and one fdatasync, the first included', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir });
  const manager = await SessionManager.open({ store });
  const before = store.stats();
  const macs = Array.from({ length: 32 }, (_, i) => `02:00:00:00:0e:${i.toString(16).padStart(2, '0')}`);
  const results = await Promise.all(
    macs.map((mac, i) => manager.activate({ mac, metric: 'bytes', allotment: 1_000_000n, payment: pay(`m${i}`) })),
  );
  assert.is(results.filter((r) => r.session.state === 'ACTIVE').length, 32);
  assert.is(store.stats().writes - before.writes, 1, 'one write for the 32');
  assert.is(store.stats().fsyncs - before.fsyncs, 1, 'one fdatasync for the 32');
  // One at a time: each purchase its own write, none waiting on another.
  await manager.activate({ mac: '02:00:00:00:0e:40', metric: 'bytes', allotment: 1n, payment: pay('alone') });
  assert.is(store.stats().writes - before.writes, 2);
  await manager.close();
  const reopened = await SessionManager.open({ store: new JournalStore({ dir }) });
  assert.is(reopened.list({ state: 'ACTIVE' }).length, 33);
  await reopened.close();
});

/**
 * A socket and its peer in this process: `send` writes to the peer's end, `received` gets each read on this end
 * (one 'data' event, one read of the event loop's poll).
 */
async function socketPair(received: (chunk: Buffer) => void): Promise<{ send: (s: string) => void; end: () => void }> {
  const path = join(tempDir(), 'pair.sock');
  const server = createServer((conn) => conn.on('data', received));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const peer = connect(path);
  await new Promise<void>((resolve) => peer.once('connect', resolve));
  return {
    send: (s) => void peer.write(s),
    end: () => {
      peer.destroy();
      server.close();
    },
  };
}

test('purchases of one moment read in two pieces (the second while the first runs) share one write', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir });
  const manager = await SessionManager.open({ store });
  const before = store.stats();
  const done: Array<Promise<unknown>> = [];
  // A bus hands a burst of calls over in pieces: the second piece is on the socket while the first's grants run,
  // and the event loop reads it at its next poll.
  const pair = await socketPair((chunk) => {
    for (const mac of chunk
      .toString()
      .split(' ')
      .filter((m) => m !== '')) {
      done.push(manager.activate({ mac, metric: 'bytes', allotment: 1_000n, payment: pay(`two-${mac}`) }));
      if (mac.endsWith(':00')) pair.send('02:00:00:00:0f:01 02:00:00:00:0f:02');
    }
  });
  pair.send('02:00:00:00:0f:00');
  while (done.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
  await Promise.all(done);
  pair.end();
  assert.is(store.stats().writes - before.writes, 1, 'one write for the three');
  assert.is(store.stats().fsyncs - before.fsyncs, 1, 'one fdatasync for the three');
  await manager.close();
  const reopened = await SessionManager.open({ store: new JournalStore({ dir }) });
  assert.is(reopened.list({ state: 'ACTIVE' }).length, 3);
  await reopened.close();
});

test('a replayed payment reference or idempotency key is refused after a restart', async () => {
  const dir = tempDir();
  const manager = await SessionManager.open({ store: new JournalStore({ dir }) });
  await manager.activate({
    mac: '02:00:00:00:00:01',
    metric: 'seconds',
    allotment: 60n,
    payment: pay('once'),
    idempotencyKey: 'req-1',
  });
  await manager.close();
  const reopened = await SessionManager.open({ store: new JournalStore({ dir }) });
  for (const attempt of [{ payment: pay('once') }, { payment: pay('other'), idempotencyKey: 'req-1' }]) {
    try {
      await reopened.activate({ mac: '02:00:00:00:00:02', metric: 'seconds', allotment: 60n, ...attempt });
      assert.unreachable('replay accepted');
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_PAYMENT_REPLAYED'), String(err));
    }
  }
  assert.is(reopened.byMac('02:00:00:00:00:02'), null, 'nothing granted');
  await reopened.close();
});

test('a failed journal write grants nothing, says no, and refuses further appends', async () => {
  const dir = tempDir();
  const store = new JournalStore({ dir });
  const manager = await SessionManager.open({ store });
  const started: string[] = [];
  manager.on('started', (s) => started.push(s.id));
  // Pull the file out from under the store: the next write fails like a dying flash chip would. Its descriptor is
  // replaced by a read-only one of the same file (a descriptor only closed could be reused by the next open).
  const held = store as unknown as { fd: number };
  closeSync(held.fd);
  held.fd = openSync(join(dir, 'sessions.0.journal'), 'r');
  for (const mac of ['02:00:00:00:00:0a', '02:00:00:00:00:0b']) {
    try {
      await manager.activate({ mac, metric: 'bytes', allotment: 10n, payment: pay(mac) });
      assert.unreachable('purchase answered yes without a durable write');
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_JOURNAL_WRITE'), String(err));
    }
    assert.is(manager.byMac(mac), null);
  }
  assert.equal(started, []);
  assert.is(manager.stats().live, 0);
  await manager.close();
});

// Written by the code before usage counters became numbers (bigints as decimal strings, one counter past 2^53 and
// one end record at 2^60 + 1): the same line format, so it must recover unchanged; counters past 2^53 saturate.
test('a journal written when counters were bigints recovers: exact below 2^53, MAX_SAFE_INTEGER above', async () => {
  const dir = tempDir();
  cpSync(new URL('../fixtures/journal-bigint-counters/', import.meta.url).pathname, dir, { recursive: true });
  const { store, loaded } = await loadAt(dir);
  assert.equal(loaded.warnings, []);
  const a = loaded.sessions.get('00000000000000a1')!;
  assert.equal([a.state, a.used, a.bytes, a.allotment], ['ACTIVE', 4_500_000, 4_500_000, 10_000_000n]);
  assert.equal(a.meterMark, { token: 7, down: 4_000_000, up: 500_000 });
  const b = loaded.sessions.get('00000000000000b2')!;
  assert.equal(
    [b.state, b.used, b.bytes, b.allotment],
    ['TERMINATED', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1n << 70n],
  );
  await store.close();

  const manager = await SessionManager.open({ store: new JournalStore({ dir }) });
  assert.is(manager.get('00000000000000a1')!.used, 4_500_000);
  assert.is(manager.remaining('00000000000000a1'), 5_500_000n);
  assert.equal(useBytes(manager, [['02:00:00:00:00:a1', 1000]]), []);
  await manager.close();
  const last = readFileSync(journalFile(dir), 'utf8').trimEnd().split('\n').at(-1)!;
  assert.equal(
    JSON.parse(last.slice(9)),
    { t: 'usage', at: JSON.parse(last.slice(9)).at, u: [['00000000000000a1', '4501000', '4501000']], n: 1 },
    'new lines keep counters as decimal strings',
  );
  const again = await loadAt(dir);
  assert.is(again.loaded.sessions.get('00000000000000a1')!.used, 4_501_000);
  await again.store.close();
});

test('a cut within the acknowledged bytes (its seal says more was written) refuses to start', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const s = makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 });
  await store.append([openRecord(s)]);
  const before = statSync(journalFile(dir)).size;
  await store.append([{ t: 'usage', at: 5, entries: [[s.id, 3, 4096]] }]);
  await store.close();
  // The journal as it was before the last acknowledged append (a cut on a record boundary: it reads as whole).
  truncateSync(journalFile(dir), before);
  const reopened = new JournalStore({ dir });
  try {
    await reopened.load();
    assert.unreachable('a journal older than its seal was read as holding less');
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_STATE_LOST'), String(err));
    assert.match(err.message, /seal says/);
  }
  // --reset-state accepts the loss.
  const reset = new JournalStore({ dir, resetState: true });
  const loaded = await reset.load();
  assert.ok(loaded.sessions.has(s.id));
  await reset.close();
});

test.run();
