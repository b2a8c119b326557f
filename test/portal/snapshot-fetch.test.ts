// tier: daemon
// The usage worker's snapshot fetch (portal/snapshot-fetch.ts) must leave nothing behind when it gives up on ndsctl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import {
  declaredClientCount,
  DEFAULT_OUTPUT_CAP,
  fetchSnapshot,
  outputBound,
  SnapshotBuffer,
} from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/portal.ts';

/** Two hex digits of a number's low byte, for a MAC's part. */
const hexByte = (n: number): string => (n & 255).toString(16).padStart(2, '0');

const dir = mkdtempSync(join(tmpdir(), 'sluice-fetch-'));

/** Processes whose command line carries `marker` (a sleep the hung wrapper started). */
function survivors(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  } // pgrep exits 1 when nothing matches
}

test('a hung ndsctl wrapper leaks no process per tick: the timeout kills the whole process group', async () => {
  const marker = String(4000 + Math.floor(Math.random() * 5000)) + '.5';
  const script = join(dir, 'hung-ndsctl');
  // Like `ip netns exec … ndsctl` or an sh wrapper: the child that hangs is not the one the meter spawned.
  writeFileSync(script, `#!/bin/sh\nsleep ${marker} &\nwait\n`);
  chmodSync(script, 0o755);
  for (let tick = 0; tick < 3; tick++) {
    const r = await fetchSnapshot({ kind: 'command', argv: [script] }, { timeoutMs: 200 });
    assert.is(r.ok, false);
    if (!r.ok) assert.is(r.problem, 'timeout');
  }
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(survivors(`sleep ${marker}`), []);
});

test(
  'an ndsctl that declares 2 clients and floods is cut off early (64 KiB + 8 KiB per client) and its process ' +
    'group killed',
  async () => {
    const marker = String(4000 + Math.floor(Math.random() * 5000)) + '.25';
    const script = join(dir, 'flood-ndsctl');
    // A 100 MB answer used to be read whole (RSS 944 MB) before anything refused it.
    writeFileSync(
      script,
      `#!/bin/sh\nsleep ${marker} &\nprintf '{\\n  "client_list_length":"2",\\n  "clients":{\\n'\nyes '"x":1,'\n`,
    );
    chmodSync(script, 0o755);
    const r = await fetchSnapshot({ kind: 'command', argv: [script] }, { timeoutMs: 5000 });
    assert.is(r.ok, false);
    if (!r.ok) {
      assert.is(r.problem, 'failed');
      assert.match(
        r.message,
        new RegExp(`output over ${outputBound(2, DEFAULT_OUTPUT_CAP)} bytes, more than its declared clients can need`),
      );
    }
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(survivors(`sleep ${marker}`), []);
  },
);

test(
  'output that does not start with a client count is ' + 'refused after its first 4 KiB, not read to the end',
  async () => {
    const script = join(dir, 'garbage-ndsctl');
    writeFileSync(script, `#!/bin/sh\nyes '{"clients":{}}'\n`);
    chmodSync(script, 0o755);
    const r = await fetchSnapshot({ kind: 'command', argv: [script] }, { timeoutMs: 5000 });
    assert.is(r.ok, false);
    if (!r.ok) assert.match(r.message, /does not start with a client count/);
  },
);

/** A control socket that answers every request with `answer` (then keeps writing `flood` until the reader hangs up). */
async function socketServing(answer: string, flood?: string): Promise<{ path: string; close: () => Promise<void> }> {
  const path = join(dir, `ndsctl-${Math.random().toString(16).slice(2)}.sock`);
  const server = createServer((conn) => {
    conn.on('error', () => undefined);
    conn.once('data', () => {
      conn.write(answer);
      if (flood === undefined) {
        conn.end();
        return;
      }
      const chunk = flood.repeat(4096);
      const pump = (): void => {
        while (!conn.destroyed && conn.write(chunk));
        if (!conn.destroyed) conn.once('drain', pump);
      };
      pump();
    });
  });
  await new Promise<void>((res) => server.listen(path, res));
  return { path, close: () => new Promise<void>((res) => server.close(() => res())) };
}

test(
  'over the control socket: an honest 10k-client snapshot is read whole; a flood after a small count is refused ' +
    'early; the cap holds',
  async () => {
    const model = new PortalModel();
    for (let i = 0; i < 10_000; i++)
      model.addClient(
        `02:00:00:${hexByte(i >> 16)}:${hexByte(i >> 8)}:${hexByte(i)}`,
        `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      );
    const honest = model.renderJson('opennds');
    const big = await socketServing(honest);
    const ok = await fetchSnapshot({ kind: 'socket', path: big.path }, { timeoutMs: 10_000 });
    assert.ok(ok.ok, ok.ok ? '' : ok.message);
    if (ok.ok) assert.is(ok.bytes.length, Buffer.byteLength(honest));
    const capped = await fetchSnapshot(
      { kind: 'socket', path: big.path },
      { timeoutMs: 10_000, maxBytes: 1024 * 1024 },
    );
    assert.is(capped.ok, false, `a ${(Buffer.byteLength(honest) / 1048576).toFixed(1)} MB snapshot over a 1 MiB cap`);
    if (!capped.ok) assert.match(capped.message, /output over 1048576 bytes \(main.portal_output_max\)/);
    await big.close();

    const flood = await socketServing('{\n"client_length": 3,\n"clients":{\n', '"x":1,');
    const r = await fetchSnapshot({ kind: 'socket', path: flood.path }, { timeoutMs: 10_000 });
    assert.is(r.ok, false);
    if (!r.ok) assert.match(r.message, new RegExp(`output over ${outputBound(3, DEFAULT_OUTPUT_CAP)} bytes`));
    await flood.close();
  },
);

test('socket reads land in the kept buffer: the same bytes and the sentinel after them, tick after tick', async () => {
  const model = new PortalModel();
  for (let i = 0; i < 2_000; i++)
    model.addClient(`02:00:00:00:${hexByte(i >> 8)}:${hexByte(i)}`, `10.0.${i >> 8}.${i & 255}`);
  const text = model.renderJson('opennds');
  const server = await socketServing(text);
  const into = new SnapshotBuffer(1024);
  let capacity = 0;
  for (let tick = 0; tick < 3; tick++) {
    const r = await fetchSnapshot({ kind: 'socket', path: server.path }, { timeoutMs: 10_000, into });
    assert.ok(r.ok, r.ok ? '' : r.message);
    if (!r.ok) continue;
    assert.is(r.bytes.toString('utf8'), text);
    assert.is(Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length + 1)[r.bytes.length], 0x22);
    if (tick === 0) capacity = into.capacity;
    else assert.is(into.capacity, capacity, 'the buffer grew on the first snapshot only');
  }
  await server.close();
});

test('a reply under 60 KiB stays in the buffer as first allocated (64 KiB), not grown by its last read', async () => {
  const model = new PortalModel();
  for (let i = 0; i < 40; i++) model.addClient(`02:00:00:00:00:${hexByte(i)}`, `10.0.0.${i}`);
  const text = model.renderJson('opennds');
  assert.ok(text.length > 16 * 1024 && text.length < 60 * 1024, `${text.length} bytes`);
  const server = await socketServing(text);
  const into = new SnapshotBuffer();
  const capacity = into.capacity;
  const r = await fetchSnapshot({ kind: 'socket', path: server.path }, { timeoutMs: 10_000, into });
  await server.close();
  assert.ok(r.ok && r.bytes.toString('utf8') === text);
  assert.is(into.capacity, capacity);
});

test('SnapshotBuffer.space: a view after the data that keeps the sentinel byte, grown when too little is free', () => {
  const b = new SnapshotBuffer(16);
  b.append(Buffer.from('{"a":'));
  const view = b.space(8);
  assert.ok(view.length >= 8);
  assert.is(b.capacity, 5 + view.length + 1);
  view.set(Buffer.from('1}'));
  b.commit(2);
  assert.is(b.bytes().toString(), '{"a":1}');
  const more = b.space(1000);
  assert.ok(more.length >= 1000 && b.capacity === 7 + more.length + 1);
  assert.is(b.bytes().toString(), '{"a":1}', 'growing keeps the data');
});

test("the declared count is read from both portals' first line, split across reads too", () => {
  assert.equal(declaredClientCount(Buffer.from('{\n  "client_list_length":"3",\n  "clients":{')), {
    kind: 'count',
    clients: 3,
  });
  assert.equal(declaredClientCount(Buffer.from('{\n"client_length": 12,\n"clients":{')), {
    kind: 'count',
    clients: 12,
  });
  assert.equal(declaredClientCount(Buffer.from('{\n  "client_list')), { kind: 'pending' });
  assert.equal(declaredClientCount(Buffer.from('{"clients":{},"x":1}')), { kind: 'missing' });
  assert.equal(declaredClientCount(Buffer.from('ndsctl: opennds probably not started, exiting')), { kind: 'missing' });
  assert.is(outputBound(0, DEFAULT_OUTPUT_CAP), 65536);
  assert.is(outputBound(1_000_000, DEFAULT_OUTPUT_CAP), DEFAULT_OUTPUT_CAP);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
